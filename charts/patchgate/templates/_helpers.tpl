{{/* The chart's name, or nameOverride. */}}
{{- define "patchgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: fullnameOverride, else the release name when it holds the chart's name, else release-chart. */}}
{{- define "patchgate.fullname" -}}
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

{{- define "patchgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "patchgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "patchgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "patchgate.labels" -}}
helm.sh/chart: {{ include "patchgate.chart" . }}
{{ include "patchgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "patchgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "patchgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "patchgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
patchgate.doc: a policy document given as a map or as a YAML string, as a map
(a copy: the values are never changed). Call with (list "what" value).
*/}}
{{- define "patchgate.doc" -}}
{{- $what := index . 0 }}
{{- $v := index . 1 }}
{{- if kindIs "string" $v }}
{{- $m := fromYaml $v }}
{{- if hasKey $m "Error" }}
{{- fail (printf "%s: not a YAML map: %s" $what (get $m "Error")) }}
{{- end }}
{{- toYaml $m }}
{{- else }}
{{- toYaml (deepCopy $v) }}
{{- end }}
{{- end }}

{{/*
patchgate.auditMode: in audit mode, every "enforce" a policy document's spec
names itself (spec.kernel.action, spec.kernel.onUnknown, and each rule's
action and whenKernelBehind) becomes "audit", so that audit mode refuses no
container whatever the policy says: an install in audit mode must never be the
thing that breaks a node. In enforce mode the document is left as written.
Call with (list spec mode); spec is changed in place (callers pass a copy).
*/}}
{{- define "patchgate.auditMode" -}}
{{- $spec := index . 0 }}
{{- if eq (index . 1) "audit" }}
{{- $kernel := get $spec "kernel" }}
{{- if kindIs "map" $kernel }}
{{- range $key := list "action" "onUnknown" }}
{{- if eq (toString (get $kernel $key)) "enforce" }}
{{- $_ := set $kernel $key "audit" }}
{{- end }}
{{- end }}
{{- end }}
{{- $rules := get $spec "rules" }}
{{- if kindIs "map" $rules }}
{{- range $name, $rule := $rules }}
{{- if kindIs "map" $rule }}
{{- range $key := list "action" "whenKernelBehind" }}
{{- if eq (toString (get $rule $key)) "enforce" }}
{{- $_ := set $rule $key "audit" }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
patchgate.policy: the base policy with mode as spec.defaultAction (and, in
audit mode, no "enforce" left: patchgate.auditMode) and, with exemptSelf, an
exemption for the release namespace appended.
*/}}
{{- define "patchgate.policy" -}}
{{- $pol := include "patchgate.doc" (list "policy" .Values.policy) | fromYaml }}
{{- $spec := get $pol "spec" | default dict }}
{{- if not (kindIs "map" $spec) }}
{{- fail "policy: spec must be a map" }}
{{- end }}
{{- if and (hasKey $spec "defaultAction") (ne (toString (get $spec "defaultAction")) .Values.mode) }}
{{- fail (printf "policy: spec.defaultAction is %v but mode is %s; set mode, not spec.defaultAction" (get $spec "defaultAction") .Values.mode) }}
{{- end }}
{{- $_ := set $spec "defaultAction" .Values.mode }}
{{- include "patchgate.auditMode" (list $spec .Values.mode) }}
{{- if .Values.exemptSelf }}
{{- /* The exemption's namespace, container names and image are all chosen by
whoever creates a pod there, and patchgate's image with a writable hostPath of
/ is close to host root. "default" is where helm installs without --namespace,
and where ordinary users create pods. */}}
{{- if eq .Release.Namespace "default" }}
{{- fail "exemptSelf: the release namespace is \"default\", and every pod in it would be exempt from runAsRoot, hostPathMounts and capabilities (host root for anyone who can create a pod there); install into a namespace of its own (--namespace patchgate-system --create-namespace) that only administrators can create pods in, or set exemptSelf=false and write your own exemption" }}
{{- end }}
{{- $ex := get $spec "exemptions" | default list }}
{{- /* Narrowed to the chart's two containers running the chart's image (as the
runtime names it: the reference in the pod spec), so that another pod in the
namespace, or a shell image there, is judged like any other. The image has no
shell, and its binaries only install themselves and run patchgate. */}}
{{- $self := dict "name" "patchgate-itself" "namespaces" (list .Release.Namespace) "containers" (list "install" "patchgate") "images" (list (include "patchgate.image" .)) "rules" (list "runAsRoot" "hostPathMounts" "capabilities") }}
{{- $_ := set $spec "exemptions" (append $ex $self) }}
{{- end }}
{{- $_ := set $pol "spec" $spec }}
{{- toYaml $pol }}
{{- end }}

{{/*
patchgate.overlay: the node overlay nodePolicies.<node> as a map. Its
spec.defaultAction, when set, must be mode: an overlay's wins on its node, so
one saying audit would leave that node in audit mode under mode=enforce with
nothing to show for it. In audit mode it keeps no "enforce"
(patchgate.auditMode). Call with (list $ node doc).
*/}}
{{- define "patchgate.overlay" -}}
{{- $root := index . 0 }}
{{- $what := printf "nodePolicies.%s" (index . 1) }}
{{- $doc := include "patchgate.doc" (list $what (index . 2)) | fromYaml }}
{{- $spec := get $doc "spec" | default dict }}
{{- if and (kindIs "map" $spec) (hasKey $spec "defaultAction") (ne (toString (get $spec "defaultAction")) $root.Values.mode) }}
{{- fail (printf "%s: spec.defaultAction is %v but mode is %s; a node overlay cannot change the mode" $what (get $spec "defaultAction") $root.Values.mode) }}
{{- end }}
{{- if kindIs "map" $spec }}
{{- include "patchgate.auditMode" (list $spec $root.Values.mode) }}
{{- $_ := set $doc "spec" $spec }}
{{- end }}
{{- toYaml $doc }}
{{- end }}
