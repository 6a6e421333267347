{{/*
Metadata labels of every object: what the kustomize base adds (part-of), Helm's release
bookkeeping, then commonLabels. Pass (dict "root" $ "extra" (dict ...)); "extra" wins, then the
chart's own labels, so commonLabels cannot break a label wpgw relies on.
*/}}
{{- define "wpgw.labels" -}}
{{- $root := .root -}}
{{- $chart := printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- $fixed := dict "app.kubernetes.io/part-of" "wpgw" "helm.sh/chart" $chart "app.kubernetes.io/instance" $root.Release.Name "app.kubernetes.io/version" $root.Chart.AppVersion -}}
{{- toYaml (merge (deepCopy (.extra | default dict)) $fixed (deepCopy $root.Values.commonLabels)) -}}
{{- end -}}

{{/* imagePullSecrets of a pod spec (names or {name}), or nothing. */}}
{{- define "wpgw.pullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ if kindIs "string" . }}{{ . }}{{ else }}{{ .name }}{{ end }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* registry/repository:tag, or @digest when the tag is one. */}}
{{- define "wpgw.image" -}}
{{- $i := .Values.image -}}
{{- $repo := $i.repository -}}
{{- with $i.registry }}{{ $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}{{ end -}}
{{- $tag := $i.tag | default .Chart.AppVersion | toString -}}
{{- printf "%s%s%s" $repo (ternary "@" ":" (hasPrefix "sha256:" $tag)) $tag -}}
{{- end -}}

{{/*
The Deployment of one component: (dict "root" $ "name" "wpgw-webhook" "c" .Values.webhook
"container" (dict "name" … "args" … "ports" … ["env" …] ["volumeMounts" …]) ["volumes" (list …)]).
Both components run the same image under the same restrictions; only the container differs.
*/}}
{{- define "wpgw.deployment" -}}
{{- $root := .root -}}
{{- $c := .c -}}
{{- $select := dict "app.kubernetes.io/name" .name -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "wpgw.labels" (dict "root" $root "extra" $select) | nindent 4 }}
spec:
  replicas: {{ $c.replicas }}
  selector:
    matchLabels:
      {{- toYaml $select | nindent 6 }}
  template:
    metadata:
      labels:
        {{- toYaml (merge (deepCopy $select) (deepCopy $c.podLabels)) | nindent 8 }}
      {{- with $c.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ .name }}
      {{- include "wpgw.pullSecrets" $root | nindent 6 }}
      {{- if $c.hostNetwork }}
      hostNetwork: true
      # Cluster DNS still, although the pod uses the node's network.
      dnsPolicy: ClusterFirstWithHostNet
      {{- end }}
      {{- range $field := list "nodeSelector" "priorityClassName" "tolerations" "affinity" "topologySpreadConstraints" }}
      {{- with get $c $field }}
      {{- dict $field . | toYaml | nindent 6 }}
      {{- end }}
      {{- end }}
      {{- with $c.podSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .volumes }}
      volumes:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - image: {{ include "wpgw.image" $root }}
          {{- with $root.Values.image.pullPolicy }}
          imagePullPolicy: {{ . }}
          {{- end }}
          {{- toYaml .container | nindent 10 }}
          readinessProbe:
            httpGet: {path: /readyz, port: https, scheme: HTTPS}
            periodSeconds: 5
          livenessProbe:
            httpGet: {path: /healthz, port: https, scheme: HTTPS}
            initialDelaySeconds: 5
            periodSeconds: 10
          {{- with $c.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $c.securityContext }}
          securityContext:
            {{- toYaml . | nindent 12 }}
          {{- end }}
{{- end -}}

{{/* The PodDisruptionBudget of one component, same arguments as wpgw.deployment. */}}
{{- define "wpgw.pdb" -}}
{{- if .c.pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "wpgw.labels" (dict "root" .root) | nindent 4 }}
spec:
  {{- if hasKey .c.pdb "minAvailable" }}
  minAvailable: {{ .c.pdb.minAvailable }}
  {{- end }}
  {{- if hasKey .c.pdb "maxUnavailable" }}
  maxUnavailable: {{ .c.pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels: {app.kubernetes.io/name: {{ .name }}}
{{- end }}
{{- end -}}

{{/* The Secret the webhook reads its certificate files from (tls.mode certManager or secret). */}}
{{- define "wpgw.tlsSecretName" -}}
{{- if eq .Values.tls.mode "certManager" -}}
wpgw-webhook-cert
{{- else -}}
{{- required "tls.mode secret needs tls.secret.name (an existing kubernetes.io/tls Secret)" .Values.tls.secret.name -}}
{{- end -}}
{{- end -}}
