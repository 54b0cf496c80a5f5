{{/* Chart name, shortened to a DNS label. */}}
{{- define "kycgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of the release's objects: <release>-kycgate, or the release name when it already says kycgate. */}}
{{- define "kycgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kycgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kycgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kycgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{ include "kycgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kycgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.name }}
{{- .Values.serviceAccount.name }}
{{- else if .Values.serviceAccount.create }}
{{- include "kycgate.fullname" . }}
{{- else }}
{{- "default" }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the spiffe-helper sidecar is on. */}}
{{- define "kycgate.spiffeHelper" -}}
{{- if and .Values.spiffe.enabled (eq .Values.spiffe.mode "helper") }}true{{ end }}
{{- end }}
