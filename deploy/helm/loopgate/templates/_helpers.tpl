{{/* Names and labels shared by every template. */}}

{{- define "loopgate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "loopgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "loopgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "loopgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* selector labels of one component: include "loopgate.selector" (list . "router") */}}
{{- define "loopgate.selector" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: {{ include "loopgate.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "loopgate.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "loopgate.secretName" -}}
{{- if .Values.secrets.create -}}
{{ include "loopgate.fullname" . }}
{{- else -}}
{{ required "secrets.existingSecret is required when secrets.create is false" .Values.secrets.existingSecret }}
{{- end -}}
{{- end -}}

{{- define "loopgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default (include "loopgate.fullname" .) }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end -}}

{{/*
loopgate.config is the one config file every component reads: the values' config with the keys
the chart manages laid over it (listen addresses matching the container ports, the data dir on
its volume, the tokens file from the Secret, Kafka and ClickHouse from their values).
*/}}
{{- define "loopgate.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- $admin := dict "addr" (printf "0.0.0.0:%v" .Values.admin.port) "tokens_file" "/etc/loopgate/secrets/admin-tokens" -}}
{{- $kafka := dict "brokers" (required "kafka.brokers is required" .Values.kafka.brokers) "replication" .Values.kafka.replication "partitions" .Values.kafka.partitions -}}
{{- $warehouse := dict "backend" "server" "addr" (required "clickhouse.addr is required" .Values.clickhouse.addr) "database" .Values.clickhouse.database "username" .Values.clickhouse.username -}}
{{- $managed := dict "router_addr" (printf "0.0.0.0:%v" .Values.router.service.port) "data_dir" "/var/lib/loopgate" "admin" $admin "kafka" $kafka "warehouse" $warehouse -}}
{{- if .Values.optimizer.standby -}}
{{- $_ := set $managed "optimizer" (dict "standby" true) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $cfg $managed) -}}
{{- end -}}

{{/* loopgate.tokensFile is the admin tokens file: the values' lines plus Prometheus's read token. */}}
{{- define "loopgate.tokensFile" -}}
{{- $lines := list -}}
{{- with .Values.secrets.adminTokens }}{{ $lines = append $lines (trimSuffix "\n" .) }}{{ end -}}
{{- with .Values.secrets.metricsToken }}{{ $lines = append $lines (printf "prometheus read %s" .) }}{{ end -}}
{{- range $lines }}{{ . }}{{ "\n" }}{{ end -}}
{{- end -}}

{{/*
loopgate.pod is the pod spec of one component: include "loopgate.pod" (dict "ctx" . "component"
"router" "args" (list "router") "resources" .Values.router.resources "ports" (list ...) "probes"
true "persistent" false "grace" SECONDS "configName" NAME); persistent: the caller provides the
"data" volume (a StatefulSet's claim); configName: the ConfigMap, default the release's.
*/}}
{{- define "loopgate.pod" -}}
{{- $ctx := .ctx -}}
{{- $v := $ctx.Values -}}
serviceAccountName: {{ include "loopgate.serviceAccountName" $ctx }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $v.podSecurityContext | nindent 2 }}
{{- with .grace }}
terminationGracePeriodSeconds: {{ . }}
{{- end }}
containers:
  - name: {{ .component }}
    image: {{ include "loopgate.image" $ctx }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    args:
      {{- range .args }}
      - {{ . | quote }}
      {{- end }}
      - --config
      - /etc/loopgate/loopgate.yaml
    env:
      - name: LOOPGATE_CLICKHOUSE_PASSWORD
        valueFrom:
          secretKeyRef:
            name: {{ include "loopgate.secretName" $ctx }}
            key: clickhouse-password
            optional: true
    ports:
      {{- if eq .component "router" }}
      - name: http
        containerPort: {{ $v.router.service.port }}
      {{- end }}
      - name: admin
        containerPort: {{ $v.admin.port }}
    {{- if .probes }}
    startupProbe:
      httpGet: {path: /healthz, port: admin}
      periodSeconds: 2
      failureThreshold: 30
    livenessProbe:
      httpGet: {path: /healthz, port: admin}
      periodSeconds: 10
      failureThreshold: 3
    readinessProbe:
      httpGet: {path: /readyz, port: admin}
      periodSeconds: 5
      failureThreshold: 2
    {{- end }}
    resources:
      {{- toYaml .resources | nindent 6 }}
    securityContext:
      {{- toYaml $v.securityContext | nindent 6 }}
    volumeMounts:
      - name: config
        mountPath: /etc/loopgate/loopgate.yaml
        subPath: loopgate.yaml
        readOnly: true
      - name: secrets
        mountPath: /etc/loopgate/secrets
        readOnly: true
      - name: data
        mountPath: /var/lib/loopgate
      - name: tmp
        mountPath: /tmp
volumes:
  - name: config
    configMap:
      name: {{ .configName | default (include "loopgate.fullname" $ctx) }}
  - name: secrets
    secret:
      secretName: {{ include "loopgate.secretName" $ctx }}
      defaultMode: 0400
  - name: tmp
    emptyDir: {}
  {{- if not .persistent }}
  - name: data
    emptyDir: {}
  {{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* loopgate.podAnnotations: the checksums that roll the pods when the config or secret changes. */}}
{{- define "loopgate.podAnnotations" -}}
checksum/config: {{ include "loopgate.config" . | sha256sum }}
checksum/secret: {{ printf "%s\n%s\n%s" (include "loopgate.tokensFile" .) .Values.secrets.clickhousePassword .Values.secrets.kafkaSaslPassword | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}
