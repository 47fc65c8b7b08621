{{/* Names and labels. */}}
{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchboard.fullname" -}}
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

{{/* Name of one daemon's objects: (dict "root" $ "component" "tracker"). */}}
{{- define "switchboard.componentName" -}}
{{- printf "%s-%s" (include "switchboard.fullname" .root | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "switchboard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "switchboard.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: switchboard
{{- end -}}

{{- define "switchboard.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The shared TURN secret: which Secret and key turnd and credapi mount. */}}
{{- define "switchboard.secretName" -}}
{{- default (printf "%s-auth" (include "switchboard.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "switchboard.secretKey" -}}
{{- if .Values.auth.existingSecret -}}{{ .Values.auth.existingSecretKey }}{{- else -}}secrets{{- end -}}
{{- end -}}

{{/* Where files land in every pod. */}}
{{- define "switchboard.configDir" -}}/etc/switchboard/config{{- end -}}
{{- define "switchboard.secretsDir" -}}/etc/switchboard/secrets{{- end -}}
{{- define "switchboard.tlsDir" -}}/etc/switchboard/tls{{- end -}}
{{/* In-memory (emptyDir) directory the nodeaddr init container writes turnd's public address to. */}}
{{- define "switchboard.runDir" -}}/run/switchboard{{- end -}}
{{- define "switchboard.publicIPFile" -}}{{ include "switchboard.runDir" . }}/public_ip{{- end -}}
{{- define "switchboard.publicIPv6File" -}}{{ include "switchboard.runDir" . }}/public_ipv6{{- end -}}

{{/* "true" when turnd.config turns on RFC 6062 TCP relay allocations (the relay range then takes TCP too). */}}
{{- define "switchboard.turndTCPRelay" -}}
{{- if dig "relay" "tcp_allocations" false .Values.turnd.config -}}true{{- end -}}
{{- end -}}

{{/* "true" when turnd's advertised address comes from the node's ExternalIP via the nodeaddr
     init container (DaemonSet mode, no fixed turnd.relay.publicIP); "" otherwise. */}}
{{- define "switchboard.turndNodeaddr" -}}
{{- $v := .Values.turnd -}}
{{- if and $v.enabled (eq $v.mode "daemonset") (not $v.relay.publicIP) (eq $v.relay.publicIPFrom.source "nodeExternalIP") -}}true{{- end -}}
{{- end -}}

{{/* "true" when the dual-stack DaemonSet's advertised IPv6 address comes from the node's
     addresses via a second nodeaddr init container (turnd.relay.ipv6.enabled, no fixed
     turnd.relay.ipv6.publicIP); "" otherwise. */}}
{{- define "switchboard.turndNodeaddr6" -}}
{{- $v := .Values.turnd -}}
{{- if and $v.enabled (eq $v.mode "daemonset") $v.relay.ipv6.enabled (not $v.relay.ipv6.publicIP) -}}true{{- end -}}
{{- end -}}

{{/* "true" when a turnd init container reads the Kubernetes API (ServiceAccount, RBAC, token). */}}
{{- define "switchboard.turndAPIAccess" -}}
{{- if or (include "switchboard.turndNodeaddr" .) (include "switchboard.turndNodeaddr6" .) -}}true{{- end -}}
{{- end -}}

{{/*
Pod and container security: non-root (distroless nonroot uid), read-only root filesystem,
no capabilities, no privilege escalation, the runtime's default seccomp profile. Not values:
nothing in Switchboard needs more (ports are unprivileged, nothing is written to disk).
*/}}
{{- define "switchboard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "switchboard.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Probes on the ops listener: liveness /healthz, readiness /readyz (fails while draining). */}}
{{- define "switchboard.probes" -}}
startupProbe:
  httpGet: {path: /healthz, port: ops}
  periodSeconds: 2
  failureThreshold: 30
livenessProbe:
  httpGet: {path: /healthz, port: ops}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: ops}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end -}}

{{/* Keys of the rendered config the chart owns; <daemon>.config may not set them. */}}
{{- define "switchboard.commonConfig" -}}
{{- $ := .root -}}
listen: {{ printf "0.0.0.0:%d" (int .port) | quote }}
ops:
  listen: {{ printf "0.0.0.0:%d" (int .opsPort) | quote }}
log:
  level: {{ $.Values.log.level | quote }}
  format: {{ $.Values.log.format | quote }}
{{- end -}}

{{/* The secrets-file volume both turnd and credapi mount (whole directory: subPath mounts never update). */}}
{{- define "switchboard.secretVolume" -}}
- name: auth
  secret:
    secretName: {{ include "switchboard.secretName" . }}
    defaultMode: 0440
    items:
      - key: {{ include "switchboard.secretKey" . }}
        path: secrets
{{- end -}}

{{- define "switchboard.tlsVolume" -}}
- name: tls
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
{{- end -}}

{{- define "switchboard.tlsConfig" -}}
tls:
  cert: {{ printf "%s/tls.crt" (include "switchboard.tlsDir" .) }}
  key: {{ printf "%s/tls.key" (include "switchboard.tlsDir" .) }}
{{- end -}}

{{/*
trusted_proxies for tracker or credapi ((dict "root" $ "component" "credapi")): the daemon's
trustedProxies, else ingressControllerCIDRs while its Ingress is on, else none. A Service
reachable around the Ingress (LoadBalancer, NodePort) arrives from node addresses, which the
broad default would trust: refuse that combination rather than let clients pick their address.
*/}}
{{- define "switchboard.trustedProxies" -}}
{{- $v := index .root.Values .component -}}
{{- $list := list -}}
{{- if $v.trustedProxies -}}
{{- $list = $v.trustedProxies -}}
{{- else if $v.ingress.enabled -}}
{{- $list = .root.Values.ingressControllerCIDRs -}}
{{- if and $list (ne $v.service.type "ClusterIP") -}}
{{- fail (printf "%s.service.type=%s exposes %s around its Ingress, and clients arriving that way come from node addresses inside ingressControllerCIDRs, so they could claim any address in X-Forwarded-For: set %s.trustedProxies to the ingress controller's pod CIDR, or use service.type ClusterIP" .component $v.service.type .component .component) -}}
{{- end -}}
{{- end -}}
{{- toYaml $list -}}
{{- end -}}

{{/* credapi ice.urls: explicit, else each LoadBalancer address (IPv6 ones bracketed), else turnd.publicHost. */}}
{{- define "switchboard.iceURLs" -}}
{{- $urls := list -}}
{{- if .Values.credapi.iceURLs -}}
{{- $urls = .Values.credapi.iceURLs -}}
{{- else if .Values.turnd.enabled -}}
{{- $hosts := list -}}
{{- if eq .Values.turnd.mode "deployment" -}}
{{- range .Values.turnd.loadBalancer.instances }}{{ $hosts = append $hosts .publicIP }}{{ with .publicIPv6 }}{{ $hosts = append $hosts (printf "[%s]" .) }}{{ end }}{{ end -}}
{{- else if .Values.turnd.publicHost -}}
{{- $hosts = list .Values.turnd.publicHost -}}
{{- end -}}
{{- range $hosts -}}
{{- $urls = append $urls (printf "stun:%s:%d" . (int $.Values.turnd.port)) -}}
{{- $urls = append $urls (printf "turn:%s:%d?transport=udp" . (int $.Values.turnd.port)) -}}
{{- $urls = append $urls (printf "turn:%s:%d?transport=tcp" . (int $.Values.turnd.port)) -}}
{{- end -}}
{{- /* Once: the certificate names publicHost, not each address. */ -}}
{{- if and $hosts $.Values.turnd.tls.secretName $.Values.turnd.publicHost -}}
{{- $urls = append $urls (printf "turns:%s:%d?transport=tcp" $.Values.turnd.publicHost (int $.Values.turnd.tls.port)) -}}
{{- end -}}
{{- end -}}
{{- toYaml $urls -}}
{{- end -}}

{{/* credapi trackers: explicit, else the tracker Ingress as wss://. */}}
{{- define "switchboard.trackerURLs" -}}
{{- $urls := list -}}
{{- if .Values.credapi.trackers -}}
{{- $urls = .Values.credapi.trackers -}}
{{- else if and .Values.tracker.enabled .Values.tracker.ingress.enabled -}}
{{- $urls = list (printf "%s://%s" (ternary "wss" "ws" (not (empty .Values.tracker.ingress.tlsSecretName))) .Values.tracker.ingress.host) -}}
{{- end -}}
{{- toYaml $urls -}}
{{- end -}}

{{/* turnd pod template: (dict "root" $ "name" .. "config" .. "c" .. "hostNetwork" bool "publicIP" ".."
     "publicIPv6" ".." "instance" ".." "nodeaddr" .. "nodeaddr6" .. "apiAccess" ..). */}}
{{- define "switchboard.turndPod" -}}
{{- $ := .root -}}
{{- $v := $.Values.turnd -}}
metadata:
  labels:
    {{- include "switchboard.labels" .c | nindent 4 }}
    {{- if .instance }}
    switchboard.dev/turnd-instance: {{ .instance | quote }}
    {{- end }}
    {{- with $.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ toYaml .config | sha256sum }}
    {{- with $.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  # No token in turnd's container: only the nodeaddr init container talks to the API, with a
  # token volume of its own (kube-api-access below).
  automountServiceAccountToken: false
  {{- if .apiAccess }}
  serviceAccountName: {{ .name }}
  {{- end }}
  enableServiceLinks: false
  {{- if .hostNetwork }}
  # TURN needs the node's real address and its UDP relay ports without NAT in between.
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  {{- end }}
  {{- with $.Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  securityContext:
    {{- include "switchboard.podSecurityContext" $ | nindent 4 }}
  {{- if .apiAccess }}
  {{- $from := $v.relay.publicIPFrom }}
  initContainers:
    {{- if .nodeaddr }}
    # Writes the node's ExternalIP (pods only see the InternalIP) for relay.public_ip_file.
    {{- $family := ternary "--same-family-as=$(HOST_IP)" (printf "--family=%s" (lower $from.family)) (eq $from.family "auto") }}
    {{- include "switchboard.nodeaddrInit" (dict "root" $ "name" "nodeaddr" "out" (include "switchboard.publicIPFile" $) "family" $family) | nindent 4 }}
    {{- end }}
    {{- if .nodeaddr6 }}
    # The node's IPv6 address (ExternalIP, or InternalIP as publicIPFrom allows) for relay.public_ipv6_file.
    {{- include "switchboard.nodeaddrInit" (dict "root" $ "name" "nodeaddr-ipv6" "out" (include "switchboard.publicIPv6File" $) "family" "--family=ipv6") | nindent 4 }}
    {{- end }}
  {{- end }}
  containers:
    - name: turnd
      image: {{ include "switchboard.image" $ }}
      imagePullPolicy: {{ $.Values.image.pullPolicy }}
      command: ["/usr/local/bin/turnd"]
      args: ["--config={{ include "switchboard.configDir" $ }}/turnd.yaml"]
      env:
        {{- if .hostNetwork }}
        - name: HOST_IP
          valueFrom:
            fieldRef: {fieldPath: status.hostIP}
        # Ops on the node's cluster address only, not on every interface of the host
        # (brackets keep an IPv6 node address a valid host:port; IPv4 accepts them too).
        - name: SWITCHBOARD_TURND_OPS_LISTEN
          value: {{ printf "[$(HOST_IP)]:%d" (int $v.opsPort) | quote }}
        # Relay sockets on the node address, not whichever global address the host lists first.
        - name: SWITCHBOARD_TURND_RELAY_IP
          value: "$(HOST_IP)"
        {{- end }}
        {{- if not .nodeaddr }}
        - name: SWITCHBOARD_TURND_RELAY_PUBLIC_IP
          value: {{ .publicIP | default "$(HOST_IP)" | quote }}
        {{- end }}
        {{- with .publicIPv6 }}
        # This instance's IPv6 load balancer address: clients and relays over IPv6 too.
        - name: SWITCHBOARD_TURND_LISTEN_IPV6
          value: {{ printf "[::]:%d" (int $v.port) | quote }}
        {{- if $v.tls.secretName }}
        - name: SWITCHBOARD_TURND_TLS_LISTEN_IPV6
          value: {{ printf "[::]:%d" (int $v.tls.port) | quote }}
        {{- end }}
        # Every IPv6 address of the pod (it has one); the load balancer's address is advertised.
        - name: SWITCHBOARD_TURND_RELAY_IPV6
          value: "::"
        - name: SWITCHBOARD_TURND_RELAY_PUBLIC_IPV6
          value: {{ . | quote }}
        {{- end }}
      ports:
        - {name: turn-udp, containerPort: {{ $v.port }}, protocol: UDP{{ if .hostNetwork }}, hostPort: {{ $v.port }}{{ end }}}
        - {name: turn-tcp, containerPort: {{ $v.port }}, protocol: TCP{{ if .hostNetwork }}, hostPort: {{ $v.port }}{{ end }}}
        {{- if $v.tls.secretName }}
        - {name: turns, containerPort: {{ $v.tls.port }}, protocol: TCP{{ if .hostNetwork }}, hostPort: {{ $v.tls.port }}{{ end }}}
        {{- end }}
        - {name: ops, containerPort: {{ $v.opsPort }}, protocol: TCP{{ if .hostNetwork }}, hostPort: {{ $v.opsPort }}{{ end }}}
      {{- include "switchboard.probes" $ | nindent 6 }}
      securityContext:
        {{- include "switchboard.containerSecurityContext" $ | nindent 8 }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      volumeMounts:
        - {name: config, mountPath: {{ include "switchboard.configDir" $ }}, readOnly: true}
        - {name: auth, mountPath: {{ include "switchboard.secretsDir" $ }}, readOnly: true}
        {{- if $v.tls.secretName }}
        - {name: tls, mountPath: {{ include "switchboard.tlsDir" $ }}, readOnly: true}
        {{- end }}
        {{- if .apiAccess }}
        - {name: run, mountPath: {{ include "switchboard.runDir" $ }}, readOnly: true}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ .name }}
    {{- include "switchboard.secretVolume" $ | nindent 4 }}
    {{- if .apiAccess }}
    # In memory: nothing is written to the node's disk.
    - name: run
      emptyDir: {medium: Memory, sizeLimit: 1Mi}
    # The service-account token, for the init container only (automount would give turnd one
    # too). Short-lived: it is used once, at start.
    - name: kube-api-access
      projected:
        defaultMode: 0440
        sources:
          - serviceAccountToken: {path: token, expirationSeconds: 600}
          - configMap:
              name: kube-root-ca.crt
              items: [{key: ca.crt, path: ca.crt}]
    {{- end }}
    {{- if $v.tls.secretName }}
    {{- include "switchboard.tlsVolume" $v.tls.secretName | nindent 4 }}
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* A nodeaddr init container: (dict "root" $ "name" .. "out" file "family" flag). */}}
{{- define "switchboard.nodeaddrInit" -}}
{{- $ := .root -}}
{{- $from := $.Values.turnd.relay.publicIPFrom -}}
- name: {{ .name }}
  image: {{ include "switchboard.image" $ }}
  imagePullPolicy: {{ $.Values.image.pullPolicy }}
  command: ["/usr/local/bin/nodeaddr"]
  args:
    - --out={{ .out }}
    - {{ .family }}
    {{- if $from.internalIPFallback }}
    - --internal-fallback
    {{- end }}
    {{- if $from.allowPrivate }}
    - --allow-private
    {{- end }}
  env:
    - name: NODE_NAME
      valueFrom:
        fieldRef: {fieldPath: spec.nodeName}
    - name: HOST_IP
      valueFrom:
        fieldRef: {fieldPath: status.hostIP}
  # Its error (what to set when a node has no usable address) shows in kubectl describe.
  terminationMessagePolicy: FallbackToLogsOnError
  securityContext:
    {{- include "switchboard.containerSecurityContext" $ | nindent 4 }}
  resources:
    {{- toYaml $from.resources | nindent 4 }}
  volumeMounts:
    - {name: run, mountPath: {{ include "switchboard.runDir" $ }}}
    - {name: kube-api-access, mountPath: /var/run/secrets/kubernetes.io/serviceaccount, readOnly: true}
{{- end -}}

{{/* NOTES lines on a daemon's trusted proxies behind its Ingress (dict "root" "component" "limit"). */}}
{{- define "switchboard.trustNotes" -}}
{{- $trusted := include "switchboard.trustedProxies" (dict "root" .root "component" .component) | fromYamlArray -}}
{{- if not $trusted }}
    WARNING: {{ .component }} trusts no proxy (trustedProxies and ingressControllerCIDRs empty):
    behind the Ingress every client shares the controller's address and its {{ .limit }}.
{{- else }}
    {{ .component }} believes X-Forwarded-For from {{ join ", " $trusted }}{{ if not (index .root.Values .component).trustedProxies }} (ingressControllerCIDRs: narrow it to your pod CIDR){{ end }}.
{{- if not (and .root.Values.networkPolicy.enabled .root.Values.networkPolicy.publicFrom) }}
    WARNING: networkPolicy.publicFrom is empty, so any pod in those ranges can reach {{ .component }}
    directly and claim any client address; set it to the ingress controller's namespace.
{{- end }}
{{- end }}
{{- end -}}
