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
{{- if lt (mul (int $v.terminationGracePeriodSeconds) 1000) (add $drain 5000) }}
{{- fail (printf "terminationGracePeriodSeconds (%v s) must exceed health.drainDelayMs + health.drainDeadlineMs (%v ms) by 5 s (closing and the last spans' export): the kubelet would kill calls still draining" $v.terminationGracePeriodSeconds $drain) }}
{{- end }}
{{- if and (eq $v.provider.protocol "v2") (not $v.sandbox) (not $v.provider.certSecret.name) }}
{{- fail "provider.protocol: v2 needs provider.certSecret (the provider's certificate)" }}
{{- end }}
{{- if and $v.redis.urlSecret.name (not $v.idempotency.fingerprintKeySecret.name) }}
{{- fail "redis.urlSecret needs idempotency.fingerprintKeySecret: every replica must fingerprint requests with the same key" }}
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
