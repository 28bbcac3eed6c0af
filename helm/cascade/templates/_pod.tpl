{{/*
The pod template shared by origins (StatefulSet) and edges (Deployment).
Call with (dict "root" $ "component" "origin"|"edge"); the container runs `cascade <component>`.

The container is configured only through environment variables, one per
CASCADE_* setting of the binary. Static settings come from the component's
ConfigMap, per-pod ones from the downward API, the Redis URL of an external
Redis, the cluster secret and the TURN credentials from Secrets.
*/}}
{{- define "cascade.podTemplate" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $comp := .component }}
{{- $c := index $v $comp }}
{{- $name := include "cascade.componentName" (dict "root" $root "component" $comp) }}
{{- $mode := $v.media.mode }}
{{- $hostMode := ne $mode "podIP" }}
{{- $source := include "cascade.advertiseSource" $root }}
{{- $lookupIP := eq $source "nodeExternalIP" }}
{{- $sel := dict "root" $root "component" $comp }}
metadata:
  labels:
    {{- include "cascade.selectorLabels" $sel | nindent 4 }}
    {{- with $c.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "cascade.configChecksum" $sel }}
    {{- with $c.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "cascade.serviceAccountName" $root }}
  {{- /* The token is only needed to read the Node's ExternalIP. */}}
  automountServiceAccountToken: {{ $lookupIP }}
  {{- if eq $mode "hostNetwork" }}
  hostNetwork: true
  {{- /* Keep cluster DNS (Redis and peers by Service name) on the host network. */}}
  dnsPolicy: ClusterFirstWithHostNet
  {{- end }}
  terminationGracePeriodSeconds: {{ include "cascade.gracePeriod" $sel }}
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ $v.podSecurityContext.runAsUser }}
    runAsGroup: {{ $v.podSecurityContext.runAsGroup }}
    fsGroup: {{ $v.podSecurityContext.fsGroup }}
    seccompProfile:
      type: RuntimeDefault
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $c.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $c.affinity }}
  affinity:
    {{- toYaml $c.affinity | nindent 4 }}
  {{- else if eq $c.podAntiAffinity "soft" }}
  affinity:
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector:
              matchLabels:
                {{- include "cascade.selectorLabels" $sel | nindent 16 }}
  {{- else if eq $c.podAntiAffinity "hard" }}
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "cascade.selectorLabels" $sel | nindent 14 }}
  {{- end }}
  {{- with $c.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $lookupIP }}
  initContainers:
    - name: advertise-ip
      image: {{ include "cascade.image" $root }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command: ["/bin/sh", "/opt/cascade/scripts/advertise-ip.sh"]
      env:
        - name: NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        - name: HOST_IP
          valueFrom:
            fieldRef:
              fieldPath: status.hostIP
        - name: FALLBACK_TO_HOST_IP
          value: {{ $v.media.advertiseIP.fallbackToHostIP | quote }}
      resources:
        requests:
          cpu: 10m
          memory: 16Mi
        limits:
          cpu: 100m
          memory: 64Mi
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
      volumeMounts:
        - name: scripts
          mountPath: /opt/cascade/scripts
          readOnly: true
        - name: run
          mountPath: /run/cascade
  {{- end }}
  containers:
    - name: {{ $comp }}
      image: {{ include "cascade.image" $root }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      {{- if $lookupIP }}
      {{- /* Reads the IP found by the init container, then execs the node. */}}
      command: ["/bin/sh", "/opt/cascade/scripts/entrypoint.sh", "cascade", {{ $comp | quote }}]
      {{- else }}
      command: ["cascade", {{ $comp | quote }}]
      {{- end }}
      ports:
        - name: http
          containerPort: {{ $c.ports.http }}
          protocol: TCP
          {{- if include "cascade.httpOnNode" $root }}
          hostPort: {{ $c.ports.http }}
          {{- end }}
        - name: grpc
          containerPort: {{ $c.ports.grpc }}
          protocol: TCP
          {{- if eq $mode "hostNetwork" }}
          hostPort: {{ $c.ports.grpc }}
          {{- end }}
        {{- if $v.media.udpMux.enabled }}
        {{- /* The one port of every WHEP viewer's media, whatever udpMuxShards (the shards share
               it): a node port in the host modes, like the range. */}}
        - name: udp-mux
          containerPort: {{ $c.ports.udpMux }}
          protocol: UDP
          {{- if $hostMode }}
          hostPort: {{ $c.ports.udpMux }}
          {{- end }}
        {{- end }}
        {{- if $v.media.iceTcp.enabled }}
        {{- /* ICE over TCP: the one port of every session's passive TCP candidate, a node port in
               the host modes like the mux. */}}
        - name: ice-tcp
          containerPort: {{ $c.ports.iceTcp }}
          protocol: TCP
          {{- if $hostMode }}
          hostPort: {{ $c.ports.iceTcp }}
          {{- end }}
        {{- end }}
        {{- if $hostMode }}
        {{- /* Kubernetes has no port ranges: each media port is declared, which also lets the scheduler keep two pods that use it off one node. */}}
        {{- range $p := untilStep (int $c.udpPorts.start) (int (add1 $c.udpPorts.end)) 1 }}
        - containerPort: {{ $p }}
          hostPort: {{ $p }}
          protocol: UDP
        {{- end }}
        {{- end }}
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        - name: POD_IP
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
        - name: HOST_IP
          valueFrom:
            fieldRef:
              fieldPath: status.hostIP
        - name: CASCADE_NODE_ID
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- /* Region and zone: the values, else the topology labels Kubernetes 1.33+ copies onto
               pods (empty where it does not: no region, no zone). */}}
        {{- range $key, $env := dict "region" "CASCADE_REGION" "zone" "CASCADE_ZONE" }}
        {{- $value := index $v.topology $key }}
        {{- if $value }}
        - name: {{ $env }}
          value: {{ $value | quote }}
        {{- else if $v.topology.fromPodLabels }}
        - name: {{ $env }}
          valueFrom:
            fieldRef:
              fieldPath: {{ printf "metadata.labels['topology.kubernetes.io/%s']" $key }}
        {{- end }}
        {{- end }}
        {{- $listen := list "CASCADE_HTTP_LISTEN" "CASCADE_GRPC_LISTEN" "CASCADE_UDP_PORTS" "CASCADE_UDP_MUX" "CASCADE_ICE_TCP_PORT" }}
        {{- if $v.media.udpMux.enabled }}
        {{- $listen = append $listen "CASCADE_UDP_MUX_PORT" }}
        {{- if ne (int $c.udpMuxShards) 0 }}
        {{- $listen = append $listen "CASCADE_UDP_MUX_SHARDS" }}
        {{- end }}
        {{- end }}
        {{- range $key := $listen }}
        - name: {{ $key }}
          valueFrom:
            configMapKeyRef:
              name: {{ $name }}
              key: {{ $key }}
        {{- end }}
        {{- /* Media sockets bind to the pod's own address: the advertised one (a node or public IP)
               is not an address of the pod's network namespace except with hostNetwork. */}}
        - name: CASCADE_MEDIA_BIND
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
        {{- if eq $source "hostIP" }}
        - name: CASCADE_ADVERTISE_IP
          valueFrom:
            fieldRef:
              fieldPath: status.hostIP
        {{- else if eq $source "podIP" }}
        - name: CASCADE_ADVERTISE_IP
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
        {{- else if eq $source "static" }}
        - name: CASCADE_ADVERTISE_IP
          value: {{ $v.media.advertiseIP.static | quote }}
        {{- end }}
        {{- /* With nodeExternalIP, entrypoint.sh sets CASCADE_ADVERTISE_IP and replaces the unexpanded $(CASCADE_ADVERTISE_IP) below. */}}
        - name: CASCADE_GRPC_ADVERTISE
          value: {{ include "cascade.grpcAdvertise" $sel | quote }}
        - name: CASCADE_HTTP_ADVERTISE
          value: {{ include "cascade.httpAdvertise" $sel | quote }}
        {{- /* From a Secret: the URL carries the Redis password (bundled or external). */}}
        - name: CASCADE_REDIS
          valueFrom:
            secretKeyRef:
              name: {{ include "cascade.redis.secretName" $root }}
              key: {{ include "cascade.redis.secretKey" $root }}
        {{- /* Signs and checks the token on every gRPC call between nodes (relay, status): the same
               Secret for origins and edges. */}}
        - name: CASCADE_CLUSTER_SECRET
          valueFrom:
            secretKeyRef:
              name: {{ include "cascade.clusterSecret.name" $root }}
              key: {{ include "cascade.clusterSecret.key" $root }}
        {{- /* TURN credentials announced with turn.servers, only from Secrets: the shared secret the
               nodes mint credentials from, or a static username and password. */}}
        {{- with include "cascade.turn.secretName" $root }}
        - name: CASCADE_TURN_SECRET
          valueFrom:
            secretKeyRef:
              name: {{ . }}
              key: {{ include "cascade.turn.secretKey" $root }}
        {{- end }}
        {{- with $v.turn.static.existingSecret }}
        - name: CASCADE_TURN_USERNAME
          valueFrom:
            secretKeyRef:
              name: {{ . }}
              key: {{ $v.turn.static.usernameKey }}
        - name: CASCADE_TURN_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ . }}
              key: {{ $v.turn.static.passwordKey }}
        {{- end }}
        {{- $keys := list "CASCADE_CAPACITY" "CASCADE_DRAIN_TIMEOUT" "CASCADE_LOG_FORMAT" "RUST_LOG" "CASCADE_REDIS_PREFIX" "CASCADE_LEASE_SECS" "CASCADE_MAX_EDGE_FANOUT" "CASCADE_MAX_RELAY_DEPTH" "CASCADE_FAILOVER_TIMEOUT" }}
        {{- if $v.otlp.endpoint }}
        {{- $keys = append $keys "CASCADE_OTLP_ENDPOINT" }}
        {{- end }}
        {{- if and (eq $comp "edge") $v.edge.upstream }}
        {{- $keys = append $keys "CASCADE_UPSTREAM" }}
        {{- end }}
        {{- if $v.turn.servers }}
        {{- $keys = append $keys "CASCADE_ICE_SERVERS" }}
        {{- end }}
        {{- if $v.turn.ttlSeconds }}
        {{- $keys = append $keys "CASCADE_TURN_TTL" }}
        {{- end }}
        {{- range $key := $keys }}
        - name: {{ $key }}
          valueFrom:
            configMapKeyRef:
              name: {{ $name }}
              key: {{ $key }}
        {{- end }}
        {{- with $c.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- if or $v.secrets.extraEnv $v.secrets.existingSecret }}
      envFrom:
        {{- if $v.secrets.extraEnv }}
        - secretRef:
            name: {{ include "cascade.fullname" $root }}-env
        {{- end }}
        {{- with $v.secrets.existingSecret }}
        - secretRef:
            name: {{ . }}
        {{- end }}
      {{- end }}
      startupProbe:
        httpGet:
          path: /healthz
          port: http
        periodSeconds: 2
        failureThreshold: 30
        timeoutSeconds: 2
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
        periodSeconds: 10
        timeoutSeconds: 3
        failureThreshold: 3
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        periodSeconds: 5
        timeoutSeconds: 2
        failureThreshold: 2
      lifecycle:
        preStop:
          exec:
            {{- /* The node also drains on SIGTERM; asking first lets /readyz fail and endpoints drop it while it still serves. */}}
            command:
              - /bin/sh
              - -c
              - {{ printf "curl -fsS -m 5 -X POST http://127.0.0.1:%d/v1/nodes/self/drain || true; sleep %d" (int $c.ports.http) (int $v.drain.preStopDelaySeconds) | quote }}
      {{- with $c.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if $lookupIP }}
        - name: scripts
          mountPath: /opt/cascade/scripts
          readOnly: true
        - name: run
          mountPath: /run/cascade
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if $lookupIP }}
    - name: scripts
      configMap:
        name: {{ include "cascade.fullname" $root }}-scripts
        defaultMode: 0555
    - name: run
      emptyDir:
        medium: Memory
        sizeLimit: 1Mi
    {{- end }}
{{- end }}
