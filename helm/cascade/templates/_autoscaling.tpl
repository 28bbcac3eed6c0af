{{/* HPA behaviour shared by the plain HPA and the one KEDA creates. */}}
{{- define "cascade.hpaBehavior" -}}
{{- $b := .Values.edge.autoscaling.behavior }}
scaleUp:
  stabilizationWindowSeconds: {{ $b.scaleUp.stabilizationWindowSeconds }}
  selectPolicy: Max
  policies:
    - type: Pods
      value: {{ $b.scaleUp.pods }}
      periodSeconds: {{ $b.scaleUp.periodSeconds }}
# Longer than the drain deadline: a removed edge spends up to
# drain.timeoutSeconds draining, so a short dip must not remove one.
scaleDown:
  stabilizationWindowSeconds: {{ $b.scaleDown.stabilizationWindowSeconds }}
  selectPolicy: Min
  policies:
    - type: Pods
      value: {{ $b.scaleDown.pods }}
      periodSeconds: {{ $b.scaleDown.periodSeconds }}
{{- end }}

{{/* Total viewers on this release's edge pods. */}}
{{- define "cascade.viewersQuery" -}}
{{- $a := .Values.edge.autoscaling }}
{{- if $a.keda.query }}
{{- $a.keda.query }}
{{- else }}
{{- printf "sum(cascade_viewers{namespace=\"%s\",pod=~\"%s-[a-z0-9]+-[a-z0-9]+\"})" .Release.Namespace (include "cascade.componentName" (dict "root" . "component" "edge")) }}
{{- end }}
{{- end }}
