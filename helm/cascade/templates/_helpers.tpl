{{/*
Names, labels and the settings derived from several values. The origin and
edge pods share one pod template ("cascade.podSpec"), so the environment,
probes and drain hook are written once.
*/}}

{{- define "cascade.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cascade.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of a component's resources: <fullname>-<component>, kept short enough for pod names. */}}
{{- define "cascade.componentName" -}}
{{- printf "%s-%s" (include "cascade.fullname" .root) .component | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "cascade.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cascade.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cascade.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "cascade.labels" -}}
helm.sh/chart: {{ include "cascade.chart" .root }}
{{ include "cascade.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: cascade
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/* Labels shared by every resource of the release, without a component. */}}
{{- define "cascade.commonLabels" -}}
helm.sh/chart: {{ include "cascade.chart" . }}
app.kubernetes.io/name: {{ include "cascade.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: cascade
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "cascade.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cascade.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cascade.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* "true" when the release deploys its own Redis. */}}
{{- define "cascade.redis.bundled" -}}
{{- if and (not .Values.redis.external.url) (not .Values.redis.external.existingSecret) }}true{{- end }}
{{- end }}

{{/* The bundled Redis's URL with its password: dict "root" $ "password" P. */}}
{{- define "cascade.redis.bundledURL" -}}
{{- $root := .root }}
{{- printf "redis://:%s@%s.%s.svc:6379/%v" .password (include "cascade.componentName" (dict "root" $root "component" "redis")) $root.Release.Namespace (int $root.Values.redis.database) }}
{{- end }}

{{/* Prefix of the nodes' Redis keys: redis.keyPrefix, else "<fullname>:". */}}
{{- define "cascade.redis.prefix" -}}
{{- default (printf "%s:" (include "cascade.fullname" .)) .Values.redis.keyPrefix }}
{{- end }}

{{/* Name of the Secret the Redis URL is read from: the user's (redis.external.existingSecret),
else the chart's (the external URL, or the bundled Redis's password and URL). */}}
{{- define "cascade.redis.secretName" -}}
{{- if .Values.redis.external.existingSecret }}
{{- .Values.redis.external.existingSecret }}
{{- else }}
{{- include "cascade.fullname" . }}-redis
{{- end }}
{{- end }}

{{- define "cascade.redis.secretKey" -}}
{{- if .Values.redis.external.existingSecret }}
{{- .Values.redis.external.existingSecretKey }}
{{- else -}}
redis-url
{{- end }}
{{- end }}

{{/* Name of the Secret holding the cluster secret (CASCADE_CLUSTER_SECRET): the user's
clusterSecret.existingSecret, else the one the chart generates, <fullname>-cluster. */}}
{{- define "cascade.clusterSecret.name" -}}
{{- if .Values.clusterSecret.existingSecret }}
{{- .Values.clusterSecret.existingSecret }}
{{- else }}
{{- include "cascade.fullname" . }}-cluster
{{- end }}
{{- end }}

{{- define "cascade.clusterSecret.key" -}}
{{- if .Values.clusterSecret.existingSecret }}
{{- .Values.clusterSecret.existingSecretKey }}
{{- else -}}
cluster-secret
{{- end }}
{{- end }}

{{/* Name of the Secret holding the TURN shared secret (CASCADE_TURN_SECRET): the user's
turn.existingSecret, else the chart's <fullname>-turn when turn.secret is set; empty without
either (the variable is not set). */}}
{{- define "cascade.turn.secretName" -}}
{{- if .Values.turn.existingSecret }}
{{- .Values.turn.existingSecret }}
{{- else if .Values.turn.secret }}
{{- include "cascade.fullname" . }}-turn
{{- end }}
{{- end }}

{{- define "cascade.turn.secretKey" -}}
{{- if .Values.turn.existingSecret }}
{{- .Values.turn.existingSecretKey }}
{{- else -}}
turn-secret
{{- end }}
{{- end }}

{{/* The TURN variables the chart sets on origins and edges from the turn values, one per line. */}}
{{- define "cascade.turn.env" -}}
{{- $t := .Values.turn }}
{{- if $t.servers }}
CASCADE_ICE_SERVERS
{{- end }}
{{- if include "cascade.turn.secretName" . }}
CASCADE_TURN_SECRET
{{- end }}
{{- if $t.ttlSeconds }}
CASCADE_TURN_TTL
{{- end }}
{{- if $t.static.existingSecret }}
CASCADE_TURN_USERNAME
CASCADE_TURN_PASSWORD
{{- end }}
{{- end }}

{{/* The advertise IP source with "auto" resolved. */}}
{{- define "cascade.advertiseSource" -}}
{{- $s := .Values.media.advertiseIP.source }}
{{- if eq $s "auto" }}
{{- if eq .Values.media.mode "podIP" }}podIP{{ else }}hostIP{{ end }}
{{- else }}
{{- $s }}
{{- end }}
{{- end }}

{{/* "true" when the pod's HTTP port is reachable on its node's address. */}}
{{- define "cascade.httpOnNode" -}}
{{- if or (eq .Values.media.mode "hostNetwork") (and (eq .Values.media.mode "hostPort") .Values.media.publishHttpOnNode) }}true{{- end }}
{{- end }}

{{- define "cascade.udpRange" -}}
{{- $c := index .root.Values .component }}
{{- printf "%d-%d" (int $c.udpPorts.start) (int $c.udpPorts.end) }}
{{- end }}

{{- define "cascade.gracePeriod" -}}
{{- $c := index .root.Values .component }}
{{- $d := .root.Values.drain }}
{{- if $c.terminationGracePeriodSeconds }}
{{- int $c.terminationGracePeriodSeconds }}
{{- else }}
{{- add $d.preStopDelaySeconds $d.timeoutSeconds $d.graceMarginSeconds }}
{{- end }}
{{- end }}

{{- define "cascade.httpAdvertise" -}}
{{- $c := index .root.Values .component }}
{{- if $c.httpAdvertise }}
{{- $c.httpAdvertise }}
{{- else if include "cascade.httpOnNode" .root }}
{{- printf "http://$(CASCADE_ADVERTISE_IP):%d" (int $c.ports.http) }}
{{- else }}
{{- printf "http://$(POD_IP):%d" (int $c.ports.http) }}
{{- end }}
{{- end }}

{{- define "cascade.grpcAdvertise" -}}
{{- $c := index .root.Values .component }}
{{- if $c.grpcAdvertise }}
{{- $c.grpcAdvertise }}
{{- else }}
{{- printf "http://$(POD_IP):%d" (int $c.ports.grpc) }}
{{- end }}
{{- end }}

{{/* Checksum of the configuration a component's pods read, so a change rolls them. */}}
{{- define "cascade.configChecksum" -}}
{{- $cm := include (print .root.Template.BasePath "/configmap.yaml") .root }}
{{- $sec := include (print .root.Template.BasePath "/secret.yaml") .root }}
{{- printf "%s\n%s" $cm $sec | sha256sum }}
{{- end }}

{{/*
Checks across values that the schema cannot express. Fails the render with a
message naming the key to fix.
*/}}
{{- define "cascade.validate" -}}
{{- $v := .Values }}
{{- $d := $v.drain }}
{{- $minGrace := add $d.preStopDelaySeconds $d.timeoutSeconds }}
{{- range $comp := list "origin" "edge" }}
{{- $c := index $v $comp }}
{{- if gt (int $c.udpPorts.start) (int $c.udpPorts.end) }}
{{- fail (printf "%s.udpPorts.start (%v) must not be above %s.udpPorts.end (%v)" $comp $c.udpPorts.start $comp $c.udpPorts.end) }}
{{- end }}
{{- if and (ne $v.media.mode "podIP") (gt (sub (int $c.udpPorts.end) (int $c.udpPorts.start)) 999) }}
{{- fail (printf "%s.udpPorts spans more than 1000 ports; in %s mode every port is declared on the pod, keep the range small" $comp $v.media.mode) }}
{{- end }}
{{- /* The mux's one port, whatever udpMuxShards: its shards share it (SO_REUSEPORT). */}}
{{- $mux := int $c.ports.udpMux }}
{{- if and $v.media.udpMux.enabled (le (int $c.udpPorts.start) $mux) (le $mux (int $c.udpPorts.end)) }}
{{- fail (printf "%s.ports.udpMux (%d) is inside %s.udpPorts (%s); the node's other media sockets take ports of that range" $comp $mux $comp (include "cascade.udpRange" (dict "root" $ "component" $comp))) }}
{{- end }}
{{- /* The pod listens on its HTTP, gRPC and ICE-TCP ports, all TCP: one number each. */}}
{{- if and $v.media.iceTcp.enabled (has (int $c.ports.iceTcp) (list (int $c.ports.http) (int $c.ports.grpc))) }}
{{- fail (printf "%s.ports.iceTcp (%d) is also %s.ports.http or %s.ports.grpc; the pod listens on each over TCP" $comp (int $c.ports.iceTcp) $comp $comp) }}
{{- end }}
{{- if and $c.ingress.enabled (not $c.ingress.hosts) }}
{{- fail (printf "%s.ingress.enabled needs at least one host in %s.ingress.hosts" $comp $comp) }}
{{- end }}
{{- if and $c.terminationGracePeriodSeconds (le (int $c.terminationGracePeriodSeconds) (int $minGrace)) }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%v) must exceed drain.preStopDelaySeconds + drain.timeoutSeconds (%v)" $comp $c.terminationGracePeriodSeconds $minGrace) }}
{{- end }}
{{- end }}
{{- if ne $v.media.mode "podIP" }}
{{- $o := $v.origin }}
{{- $e := $v.edge }}
{{- if and (le (int $o.udpPorts.start) (int $e.udpPorts.end)) (le (int $e.udpPorts.start) (int $o.udpPorts.end)) }}
{{- fail (printf "origin.udpPorts (%s) and edge.udpPorts (%s) overlap; in %s mode both use node ports" (include "cascade.udpRange" (dict "root" . "component" "origin")) (include "cascade.udpRange" (dict "root" . "component" "edge")) $v.media.mode) }}
{{- end }}
{{- if $v.media.udpMux.enabled }}
{{- if eq (int $o.ports.udpMux) (int $e.ports.udpMux) }}
{{- fail (printf "origin.ports.udpMux and edge.ports.udpMux are both %d; in %s mode both are node ports" (int $o.ports.udpMux) $v.media.mode) }}
{{- end }}
{{- range $pair := list (list "origin" $o "edge" $e) (list "edge" $e "origin" $o) }}
{{- $mux := int (index $pair 1).ports.udpMux }}
{{- $other := index $pair 3 }}
{{- if and (le (int $other.udpPorts.start) $mux) (le $mux (int $other.udpPorts.end)) }}
{{- fail (printf "%s.ports.udpMux (%d) is inside %s.udpPorts; in %s mode both use node ports" (index $pair 0) $mux (index $pair 2) $v.media.mode) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* The TCP ports: HTTP, gRPC and, when on, ICE-TCP. */}}
{{- $oports := list (int $o.ports.http) (int $o.ports.grpc) }}
{{- $eports := list (int $e.ports.http) (int $e.ports.grpc) }}
{{- if $v.media.iceTcp.enabled }}
{{- $oports = append $oports (int $o.ports.iceTcp) }}
{{- $eports = append $eports (int $e.ports.iceTcp) }}
{{- end }}
{{- range $p := $eports }}
{{- if has $p $oports }}
{{- fail (printf "edge.ports and origin.ports share TCP port %d; in %s mode both use node ports" $p $v.media.mode) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* The chart sets CASCADE_CLUSTER_SECRET from clusterSecret; a second source would set it twice
       (env) or be ignored (envFrom loses to env). */}}
{{- if hasKey $v.secrets.extraEnv "CASCADE_CLUSTER_SECRET" }}
{{- fail "secrets.extraEnv must not set CASCADE_CLUSTER_SECRET: the chart sets it from clusterSecret (use clusterSecret.existingSecret for your own)" }}
{{- end }}
{{- range $comp := list "origin" "edge" }}
{{- range $e := (index $v $comp).extraEnv }}
{{- if eq $e.name "CASCADE_CLUSTER_SECRET" }}
{{- fail (printf "%s.extraEnv must not set CASCADE_CLUSTER_SECRET: the chart sets it from clusterSecret (use clusterSecret.existingSecret for your own)" $comp) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* TURN: what the nodes refuse at start (both kinds of credentials, a TURN server without
       credentials), and a second source for a variable the chart sets. */}}
{{- $t := $v.turn }}
{{- $turnShared := include "cascade.turn.secretName" . }}
{{- if and $turnShared $t.static.existingSecret }}
{{- fail "turn.static.existingSecret is exclusive with turn.secret and turn.existingSecret: the nodes take either the shared secret or a static username and password" }}
{{- end }}
{{- if not (or $turnShared $t.static.existingSecret) }}
{{- range $t.servers }}
{{- if hasPrefix "turn" . }}
{{- fail (printf "turn.servers holds the TURN server %q but no credentials: set turn.existingSecret (or turn.secret) to the TURN server's static-auth-secret, or turn.static.existingSecret" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name := splitList "\n" (include "cascade.turn.env" .) }}
{{- if $name }}
{{- if hasKey $v.secrets.extraEnv $name }}
{{- fail (printf "secrets.extraEnv must not set %s: the chart sets it from the turn values" $name) }}
{{- end }}
{{- range $comp := list "origin" "edge" }}
{{- range $e := (index $v $comp).extraEnv }}
{{- if eq $e.name $name }}
{{- fail (printf "%s.extraEnv must not set %s: the chart sets it from the turn values" $comp $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (eq $v.media.advertiseIP.source "static") (not $v.media.advertiseIP.static) }}
{{- fail "media.advertiseIP.source is static but media.advertiseIP.static is empty" }}
{{- end }}
{{- $a := $v.edge.autoscaling }}
{{- if $a.enabled }}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) }}
{{- fail (printf "edge.autoscaling.minReplicas (%v) must not be above maxReplicas (%v)" $a.minReplicas $a.maxReplicas) }}
{{- end }}
{{- if le (int $a.behavior.scaleDown.stabilizationWindowSeconds) (int $d.timeoutSeconds) }}
{{- fail (printf "edge.autoscaling.behavior.scaleDown.stabilizationWindowSeconds (%v) must be longer than drain.timeoutSeconds (%v)" $a.behavior.scaleDown.stabilizationWindowSeconds $d.timeoutSeconds) }}
{{- end }}
{{- if and $a.keda.enabled $a.customMetrics.enabled }}
{{- fail "edge.autoscaling.keda.enabled and edge.autoscaling.customMetrics.enabled are exclusive: KEDA creates its own HPA from the Prometheus query, the other mode needs Prometheus Adapter" }}
{{- end }}
{{- if and (not $a.targetCPUUtilizationPercentage) (not $a.customMetrics.enabled) (not $a.keda.enabled) }}
{{- fail "edge.autoscaling has no metric: set targetCPUUtilizationPercentage or enable customMetrics or keda" }}
{{- end }}
{{- end }}
{{- end }}
