{{/*
The chart's name, or nameOverride.
*/}}
{{- define "cutover.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: truncated to 63 characters because some Kubernetes
name fields are limited to that (DNS label rules). A release whose name already contains the
chart's name is not repeated ("cutover", not "cutover-cutover").
*/}}
{{- define "cutover.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "cutover.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "cutover.labels" -}}
helm.sh/chart: {{ include "cutover.chart" . }}
{{ include "cutover.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
Labels that select the operator's pods. They must not change between releases: a
Deployment's selector is immutable.
*/}}
{{- define "cutover.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cutover.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the operator runs as.
*/}}
{{- define "cutover.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cutover.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference; the tag defaults to the chart's appVersion so that a chart version
always installs the operator it was released with.
*/}}
{{- define "cutover.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The catalog ConfigMap as NAMESPACE/NAME (the form `cutover run --catalog-configmap` takes);
a bare NAME is in the release namespace. Empty when no catalog ConfigMap is set.
*/}}
{{- define "cutover.catalogConfigMap" -}}
{{- with .Values.catalog.configMap }}
{{- if contains "/" . }}
{{- . }}
{{- else }}
{{- printf "%s/%s" $.Release.Namespace . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
RBAC rules, from files/rbac-rules.yaml (the output of `cutover rbac`, the operator's own list
of the API calls it makes). The Lease rules (group coordination.k8s.io) are split off: the
operator takes its Lease only in the release namespace, so they are granted there alone,
while the other rules are granted wherever plans are watched.
*/}}
{{- define "cutover.rules.all" -}}
{{- $rules := .Files.Get "files/rbac-rules.yaml" | fromYamlArray }}
{{- if not $rules }}
{{- fail "files/rbac-rules.yaml is missing or empty; regenerate it with `cargo run -- rbac > charts/cutover/files/rbac-rules.yaml`" }}
{{- end }}
{{- toYaml $rules }}
{{- end }}

{{- define "cutover.rules.watch" -}}
{{- $rules := list }}
{{- range (include "cutover.rules.all" . | fromYamlArray) }}
{{- if not (has "coordination.k8s.io" .apiGroups) }}
{{- $rules = append $rules . }}
{{- end }}
{{- end }}
{{- toYaml $rules }}
{{- end }}

{{- define "cutover.rules.leaderElection" -}}
{{- $rules := list }}
{{- range (include "cutover.rules.all" . | fromYamlArray) }}
{{- if has "coordination.k8s.io" .apiGroups }}
{{- $rules = append $rules . }}
{{- end }}
{{- end }}
{{- if not $rules }}
{{- fail "files/rbac-rules.yaml grants no Lease (coordination.k8s.io), which leader election needs" }}
{{- end }}
{{- toYaml $rules }}
{{- end }}

{{/*
Settings that the values schema cannot express, or that deserve a clearer message.
*/}}
{{- define "cutover.validate" -}}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicaCount) 1) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without a Lease every replica would act on the same plans" }}
{{- end }}
{{- if and (not .Values.watch.allNamespaces) (empty .Values.watch.namespaces) }}
{{- fail "watch.allNamespaces=false needs at least one namespace in watch.namespaces" }}
{{- end }}
{{- if and .Values.watch.allNamespaces (not (empty .Values.watch.namespaces)) }}
{{- fail "watch.namespaces is set but watch.allNamespaces is true: set watch.allNamespaces=false to watch only those namespaces" }}
{{- end }}
{{- end }}
