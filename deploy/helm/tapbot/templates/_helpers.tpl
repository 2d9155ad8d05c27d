{{/*
The names of tapbot's objects: the release name, which with `helm install tapbot` gives the names
deploy/kubernetes uses. The pods' label is app.kubernetes.io/name: tapbot, as there, so install one
release per namespace.
*/}}
{{- define "tapbot.name" -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "tapbot.labels" -}}
app.kubernetes.io/name: tapbot
{{- end -}}

{{/* The port of TAP_HTTP_ADDR (":8080", "0.0.0.0:8080"), as tapbot reads it. */}}
{{- define "tapbot.port" -}}
{{- $addr := .Values.config.TAP_HTTP_ADDR | default ":8080" | toString -}}
{{- splitList ":" $addr | last -}}
{{- end -}}
