{{/* The chart's name, release-scoped names and labels. */}}
{{- define "yungate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "yungate.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "yungate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "yungate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "yungate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "yungate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "yungate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "yungate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Rules across values that the schema cannot say: checked once, by the
Deployment, so that a wrong combination never renders.
*/}}
{{- define "yungate.validate" -}}
{{- $v := .Values }}
{{- if and $v.sandbox $v.provider.url }}
{{- fail "sandbox: true and provider.url are both set: choose the provider or the embedded sandbox" }}
{{- end }}
{{- $drain := add $v.health.drainDelayMs $v.health.drainDeadlineMs }}
{{- if le (mul (int $v.terminationGracePeriodSeconds) 1000) (int $drain) }}
{{- fail (printf "terminationGracePeriodSeconds (%v s) must exceed health.drainDelayMs + health.drainDeadlineMs (%v ms): the kubelet would kill calls still draining" $v.terminationGracePeriodSeconds $drain) }}
{{- end }}
{{- if le (int $v.health.drainDeadlineMs) (int $v.provider.requestTimeoutMs) }}
{{- fail (printf "health.drainDeadlineMs (%v) must exceed provider.requestTimeoutMs (%v): a provider call in flight at SIGTERM must be able to finish" $v.health.drainDeadlineMs $v.provider.requestTimeoutMs) }}
{{- end }}
{{- if and (eq $v.access.identity "tls") (not $v.tls.clientCaSecret.name) }}
{{- fail "access.identity: tls needs tls.clientCaSecret.name (the CA client certificates are verified against)" }}
{{- end }}
{{- if and (eq $v.access.identity "header") $v.tls.clientCaSecret.name }}
{{- fail "access.identity: header with tls.clientCaSecret: the identity would come from a header while clients present certificates; choose one" }}
{{- end }}
{{- if and $v.tls.clientCaSecret.name (not $v.tls.secretName) }}
{{- fail "tls.clientCaSecret needs tls.secretName (mTLS is TLS first)" }}
{{- end }}
{{- if and $v.sandbox (or $v.autoscaling.enabled (gt (int $v.replicaCount) 1)) }}
{{- fail "sandbox: true runs one replica (replicaCount: 1, no autoscaling): each replica's embedded sandbox keeps its own ledger" }}
{{- end }}
{{- end }}
