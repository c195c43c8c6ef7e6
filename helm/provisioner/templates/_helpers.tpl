{{/* Chart name, truncated to 63 characters (the DNS label limit). */}}
{{- define "provisioner.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name: the release name, and the chart name unless the release name
contains it already. */}}
{{- define "provisioner.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "provisioner.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "provisioner.labels" -}}
helm.sh/chart: {{ include "provisioner.chart" . }}
{{ include "provisioner.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: provisioner
{{- end -}}

{{/* Labels that select the service's pods (immutable once deployed). */}}
{{- define "provisioner.selectorLabels" -}}
app.kubernetes.io/name: {{ include "provisioner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "provisioner.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* A value as a string: whole numbers without an exponent (values arrive as float64). */}}
{{- define "provisioner.scalar" -}}
{{- $s := toString . -}}
{{- if kindIs "float64" . -}}
{{- if eq . (floor .) -}}
{{- $s = toString (int64 .) -}}
{{- end -}}
{{- end -}}
{{- $s -}}
{{- end -}}

{{- define "provisioner.settingsName" -}}
{{- printf "%s-settings" (include "provisioner.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The replay Job's consumer group: its own, never the service's. */}}
{{- define "provisioner.replayGroup" -}}
{{- $group := .Values.replay.group | default (printf "%s-replay" .Values.kafka.group) -}}
{{- if eq $group .Values.kafka.group -}}
{{- fail "replay.group must differ from kafka.group: a replay consumes with its own group" -}}
{{- end -}}
{{- $group -}}
{{- end -}}

{{/* The environment of the service, shared by the Deployment and the replay Job. Secrets come
from secretKeyRef or from mounted files, never from the values. */}}
{{- define "provisioner.env" -}}
- name: PROVISIONER_BROKERS
  value: {{ required "kafka.brokers is required" .Values.kafka.brokers | quote }}
- name: PROVISIONER_INPUT_TOPIC
  value: {{ .Values.kafka.inputTopic | quote }}
- name: PROVISIONER_OUTPUT_TOPIC
  value: {{ .Values.kafka.outputTopic | quote }}
{{- with .Values.kafka.dlqTopic }}
- name: PROVISIONER_DLQ_TOPIC
  value: {{ . | quote }}
{{- end }}
- name: PROVISIONER_GROUP
  value: {{ .Values.kafka.group | quote }}
{{- with .Values.kafka.schemaRegistry }}
- name: PROVISIONER_SCHEMA_REGISTRY
  value: {{ . | quote }}
{{- end }}
{{- if .Values.kafka.writerSchema }}
- name: PROVISIONER_SCHEMA
  value: /etc/provisioner/writer.avsc
{{- end }}
- name: PROVISIONER_OUTPUT_FORMAT
  value: {{ .Values.kafka.outputFormat | quote }}
- name: PROVISIONER_BATCH_SIZE
  value: {{ .Values.kafka.batchSize | int | quote }}
- name: PROVISIONER_BATCH_LINGER_MS
  value: {{ .Values.kafka.batchLingerMs | int | quote }}
- name: PROVISIONER_BATCHES_IN_FLIGHT
  value: {{ .Values.kafka.batchesInFlight | int | quote }}
- name: PROVISIONER_PLACEMENTS_AT_ONCE
  value: {{ .Values.kafka.placementsAtOnce | int | quote }}
- name: PROVISIONER_REDIS
  valueFrom:
    secretKeyRef:
      name: {{ required "redis.urlSecret.name is required" .Values.redis.urlSecret.name | quote }}
      key: {{ .Values.redis.urlSecret.key | quote }}
- name: PROVISIONER_REDIS_PREFIX
  value: {{ .Values.redis.prefix | quote }}
- name: PROVISIONER_SETTINGS
  value: /etc/provisioner/settings.yaml
- name: PROVISIONER_HTTP_PORT
  value: {{ .Values.http.port | int | quote }}
- name: PROVISIONER_SHUTDOWN_TIMEOUT
  value: {{ .Values.shutdownTimeoutSeconds | int | quote }}
- name: PROVISIONER_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- if not (hasKey .Values.kafka.properties "client.id") }}
# librdkafka client.id: the brokers' logs and quotas name the pod.
- name: PROVISIONER_KAFKA_client.id
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
{{- range $name, $value := .Values.kafka.properties }}
- name: {{ printf "PROVISIONER_KAFKA_%s" $name | quote }}
  value: {{ include "provisioner.scalar" $value | quote }}
{{- end }}
{{- range $name, $ref := .Values.kafka.secretProperties }}
- name: {{ printf "PROVISIONER_KAFKA_%s" $name | quote }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name | quote }}
      key: {{ $ref.key | quote }}
{{- end }}
{{- if .Values.salesforce.enabled }}
- name: PROVISIONER_SALESFORCE_URL
  value: {{ required "salesforce.url is required when salesforce.enabled" .Values.salesforce.url | quote }}
- name: PROVISIONER_SALESFORCE_API_VERSION
  value: {{ .Values.salesforce.apiVersion | quote }}
- name: PROVISIONER_SALESFORCE_CLIENT_ID
  value: {{ required "salesforce.clientId is required when salesforce.enabled" .Values.salesforce.clientId | quote }}
- name: PROVISIONER_SALESFORCE_CLIENT_SECRET_FILE
  value: /var/run/secrets/provisioner/salesforce-client-secret
- name: PROVISIONER_LOOKUP_REFRESH_INTERVAL
  value: {{ .Values.salesforce.lookupRefreshSeconds | int | quote }}
{{- if .Values.reimport.intervalSeconds }}
- name: PROVISIONER_REIMPORT_INTERVAL
  value: {{ .Values.reimport.intervalSeconds | int | quote }}
{{- end }}
{{- end }}
{{- if .Values.reimport.tokenSecret.name }}
- name: PROVISIONER_REIMPORT_TOKEN_FILE
  value: /var/run/secrets/provisioner/reimport-token
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Secret files: the Salesforce client secret and the reimport token, in one projected
volume. Empty when neither is configured. */}}
{{- define "provisioner.credentialSources" -}}
{{- if .Values.salesforce.enabled }}
- secret:
    name: {{ required "salesforce.clientSecretSecret.name is required when salesforce.enabled" .Values.salesforce.clientSecretSecret.name | quote }}
    items:
      - key: {{ .Values.salesforce.clientSecretSecret.key | quote }}
        path: salesforce-client-secret
{{- end }}
{{- if .Values.reimport.tokenSecret.name }}
- secret:
    name: {{ .Values.reimport.tokenSecret.name | quote }}
    items:
      - key: {{ .Values.reimport.tokenSecret.key | quote }}
        path: reimport-token
{{- end }}
{{- end -}}

{{/* Volumes and mounts shared by the Deployment and the replay Job. */}}
{{- define "provisioner.volumes" -}}
- name: settings
  configMap:
    name: {{ include "provisioner.settingsName" . }}
{{- $sources := include "provisioner.credentialSources" . }}
{{- if $sources }}
- name: credentials
  projected:
    defaultMode: 0440
    sources:
      {{- $sources | trim | nindent 6 }}
{{- end }}
{{- end -}}

{{- define "provisioner.volumeMounts" -}}
# A directory mount (not subPath): an edit of the ConfigMap reaches the running pod.
- name: settings
  mountPath: /etc/provisioner
  readOnly: true
{{- if include "provisioner.credentialSources" . }}
- name: credentials
  mountPath: /var/run/secrets/provisioner
  readOnly: true
{{- end }}
{{- end -}}
