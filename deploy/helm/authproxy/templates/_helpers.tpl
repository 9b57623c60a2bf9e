{{/* Chart name. */}}
{{- define "authproxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: RELEASE-authproxy (or RELEASE when it already says authproxy), at most 63 characters. */}}
{{- define "authproxy.fullname" -}}
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

{{/* A name derived from the full name: (include "authproxy.child" (list . "suffix")). */}}
{{- define "authproxy.child" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "authproxy.fullname" $root | trunc (int (sub 62 (len (index . 1)))) | trimSuffix "-") (index . 1) }}
{{- end }}

{{- define "authproxy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "authproxy.labels" -}}
helm.sh/chart: {{ include "authproxy.chart" . }}
app.kubernetes.io/name: {{ include "authproxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of the shared service's pods. */}}
{{- define "authproxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authproxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: shared-service
{{- end }}

{{- define "authproxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "authproxy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "authproxy.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Names of the config ConfigMap and the Secrets the chart may create or reference. */}}
{{- define "authproxy.configMapName" -}}
{{- default (include "authproxy.fullname" .) .Values.existingConfigMap }}
{{- end }}
{{- define "authproxy.workspaceSecretName" -}}
{{- default (include "authproxy.child" (list . "workspace-secrets")) .Values.workspaceSecrets.existingSecret }}
{{- end }}
{{- define "authproxy.hasWorkspaceSecrets" -}}
{{- if or .Values.workspaceSecrets.existingSecret .Values.workspaceSecrets.values }}true{{ end }}
{{- end }}
{{- define "authproxy.redisSecretName" -}}
{{- if .Values.redis.url }}{{ include "authproxy.child" (list . "redis") }}{{ else }}{{ required "redis.existingSecret or redis.url is required while redis.enabled" .Values.redis.existingSecret }}{{ end }}
{{- end }}
{{- define "authproxy.adminSecretName" -}}
{{- if .Values.admin.tokens }}{{ include "authproxy.child" (list . "admin-tokens") }}{{ else }}{{ required "admin.existingSecret or admin.tokens is required while admin.enabled" .Values.admin.existingSecret }}{{ end }}
{{- end }}

{{/* Fails the render on value combinations authproxy itself would refuse at start. */}}
{{- define "authproxy.checks" -}}
{{- if and .Values.admin.enabled (not .Values.redis.enabled) }}
{{- fail "admin.enabled needs redis.enabled: the admin API stores configs in Redis" }}
{{- end }}
{{- if and .Values.tls.bindSandboxToCert (not .Values.tls.enabled) }}
{{- fail "tls.bindSandboxToCert needs tls.enabled (it checks client certificates)" }}
{{- end }}
{{- if not (has .Values.serve.logFormat (list "json" "pretty")) }}
{{- fail "serve.logFormat must be json or pretty" }}
{{- end }}
{{- if not (has .Values.sidecar.mode (list "forward" "transparent")) }}
{{- fail "sidecar.mode must be forward or transparent" }}
{{- end }}
{{- if and .Values.pdb.enabled .Values.pdb.minAvailable .Values.pdb.maxUnavailable }}
{{- fail "pdb: set one of minAvailable and maxUnavailable" }}
{{- end }}
{{- if eq (int .Values.sidecar.sandbox.runAsUser) 101 }}
{{- fail "sidecar.sandbox.runAsUser must not be 101: Envoy's and authproxy's uid, whose traffic transparent mode does not redirect and who own the socket" }}
{{- end }}
{{- if and .Values.shared.enabled (not .Values.keys.existingSecret) }}
{{- fail "keys.existingSecret is required: every replica needs the same sealing and signing keys" }}
{{- end }}
{{- end }}

{{/*
The grpc.health.v1 exec probe: node runs files/grpc-health-probe.cjs (mounted from the ConfigMap) with grpc-js
from the image. Argument: (list $root target tlsDir) with tlsDir "" for a Unix socket.
*/}}
{{- define "authproxy.grpcExecProbe" -}}
{{- $target := index . 1 }}
{{- $tlsDir := index . 2 -}}
exec:
  command:
    - node
    - /etc/authproxy/probe/grpc-health-probe.cjs
    - {{ $target | quote }}
    {{- if $tlsDir }}
    - --cert={{ $tlsDir }}/tls.crt
    - --key={{ $tlsDir }}/tls.key
    {{- end }}
{{- end }}
