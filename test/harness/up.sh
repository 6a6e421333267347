#!/usr/bin/env bash
# up.sh <state-dir>
#
# Starts a real Kubernetes control plane on 127.0.0.1 (free ports picked at
# run time): embedded etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok (fake nodes + fake pod lifecycle), each its own
# process with <state-dir>/logs/<name>.log and <state-dir>/<name>.pid.
# Then installs the CRDs from ../shared/crds (relative to the repo root),
# creates fake nodes linux-1, linux-2 (zone-b) and windows-1, and waits until
# they are Ready/untainted and the default ServiceAccount exists.
#
# Writes <state-dir>/kubeconfig (admin, system:masters), <state-dir>/env
# (shell-sourceable) and <state-dir>/env.json (same values, for Node/TS).
# Stop with down.sh <state-dir>. Binaries come from build.sh.
#
# Environment knobs:
#   HARNESS_CRDS_DIR          CRD directory (default: <repo>/../shared/crds)
#   HARNESS_SKIP_CRDS=1       do not install CRDs
#   HARNESS_KEEP_ON_FAILURE=1 leave components running if up.sh fails
#   HARNESS_TIMEOUT           seconds allowed for each wait step (default 90)
set -euo pipefail

HARNESS="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HARNESS/../.." && pwd)"
SHARED="$(cd "$REPO/.." && pwd)/shared"
BIN="$HARNESS/bin"
CRDS_DIR="${HARNESS_CRDS_DIR:-$SHARED/crds}"
STEP_TIMEOUT="${HARNESS_TIMEOUT:-90}"
K8S_VERSION="v1.36.3"
SERVICE_CIDR="10.96.0.0/16"
SA_ISSUER="https://kubernetes.default.svc.cluster.local"
COMPONENTS=(etcd apiserver kcm scheduler kwok)
# shellcheck source=../lib/common.sh
source "$HARNESS/../lib/common.sh"

die() { echo "up.sh: ERROR: $*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 <state-dir>" >&2; exit 2; }
case "$1" in *"'"*|*'"'*|*'\'*|*' '*) die "state dir must not contain quotes, backslashes or spaces: $1" ;; esac

for tool in openssl base64 awk setsid; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (Debian: apt-get install -y openssl coreutils gawk util-linux)"
done
for f in harness kwok kwok-stages.yaml; do
  [ -e "$BIN/$f" ] || die "$BIN/$f missing: run $HARNESS/build.sh first"
done
if [ -z "${HARNESS_SKIP_CRDS:-}" ]; then
  [ -d "$CRDS_DIR" ] || die "CRD dir $CRDS_DIR not found (set HARNESS_CRDS_DIR or HARNESS_SKIP_CRDS=1)"
fi

mkdir -p "$1"
STATE="$(cd "$1" && pwd)"
PKI="$STATE/pki"
LOGS="$STATE/logs"

# Refuse to clobber a running cluster.
for c in "${COMPONENTS[@]}"; do
  pid="$(cat "$STATE/$c.pid" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && runs_binary "$pid" "$BIN/harness" "$BIN/kwok"; then
    die "$c is still running (pid $pid) in $STATE: run down.sh $STATE first"
  fi
done
rm -rf "$STATE/etcd-data" "$PKI" "$STATE/kwok" "$STATE/kubeconfig" "$STATE/env" "$STATE/env.json" "$LOGS"
rm -f "$STATE"/*.pid
mkdir -p "$PKI" "$LOGS" "$STATE/kwok"

T0=$(now)
step() { echo "up.sh: [$(elapsed "$T0")s] $*"; }

SUCCESS=0
on_exit() {
  local rc=$?
  [ "$SUCCESS" = 1 ] && return 0
  echo "up.sh: FAILED (exit $rc) after $(elapsed "$T0")s; last lines of each component log:" >&2
  for c in "${COMPONENTS[@]}"; do
    if [ -f "$LOGS/$c.log" ]; then
      echo "----- $LOGS/$c.log (tail -n 40) -----" >&2
      tail -n 40 "$LOGS/$c.log" >&2 || true
    fi
  done
  if [ -z "${HARNESS_KEEP_ON_FAILURE:-}" ]; then
    "$HARNESS/down.sh" "$STATE" >&2 || true
  else
    echo "up.sh: HARNESS_KEEP_ON_FAILURE set: components left running; stop with down.sh $STATE" >&2
  fi
  exit "$rc"
}
trap on_exit EXIT

H="$BIN/harness"
KC="$STATE/kubeconfig"
kubectl() { "$H" kubectl --kubeconfig="$KC" "$@"; }

# start <name> <cmd...>: own session (pid == pgid), stdin closed, output to its log.
start() {
  local name=$1; shift
  setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}
alive() { kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null || die "$1 exited; see $LOGS/$1.log"; }

components_alive() { for c in "${COMPONENTS[@]}"; do [ ! -f "$STATE/$c.pid" ] || alive "$c"; done; }

# wait_for <desc> <cmd...>: retry every 0.25s up to STEP_TIMEOUT; all components must stay alive.
wait_for() {
  local desc=$1; shift
  RETRY_EACH=components_alive retry_until "$STEP_TIMEOUT" 0.25 "$@" && return 0
  [ -n "$RETRY_OUT" ] && printf '%s\n' "$RETRY_OUT" | tail -n 20 | sed 's/^/up.sh:   last attempt: /' >&2
  die "timed out after ${STEP_TIMEOUT}s waiting for: $desc"
}

# ---------------------------------------------------------------- ports
mapfile -t PORTS < <("$H" freeport 3)
[ "${#PORTS[@]}" -eq 3 ] || die "could not pick free ports"
ETCD_PORT=${PORTS[0]} ETCD_PEER_PORT=${PORTS[1]} API_PORT=${PORTS[2]}
API_URL="https://127.0.0.1:$API_PORT"
ETCD_URL="http://127.0.0.1:$ETCD_PORT"
step "ports: etcd=$ETCD_PORT etcd-peer=$ETCD_PEER_PORT apiserver=$API_PORT"

# ---------------------------------------------------------------- PKI (fresh per run)
cat >"$PKI/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[v3_serving]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
[v3_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
(
  set -e
  cd "$PKI"
  umask 077
  ossl() { openssl "$@" 2>>"$PKI/openssl.log"; }
  ossl ecparam -name prime256v1 -genkey -noout -out ca.key
  ossl req -x509 -new -key ca.key -subj "/CN=wpgw-harness-ca" -days 3650 \
    -config openssl.cnf -extensions v3_ca -out ca.crt
  sign() { # sign <name> <subject> <ext>
    ossl ecparam -name prime256v1 -genkey -noout -out "$1.key"
    ossl req -new -key "$1.key" -subj "$2" -config openssl.cnf -out "$1.csr"
    ossl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 12)" \
      -days 365 -extfile openssl.cnf -extensions "$3" -out "$1.crt"
    rm -f "$1.csr"
  }
  sign apiserver "/CN=kube-apiserver" v3_serving
  sign admin "/O=system:masters/CN=admin" v3_client
  ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key
  ossl pkey -in sa.key -pubout -out sa.pub
) || die "certificate generation failed (see $PKI/openssl.log)"
chmod 0644 "$PKI"/*.crt "$PKI/sa.pub"
step "PKI generated in $PKI"

b64() { base64 -w0 <"$1"; }
umask 077
cat >"$KC" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: harness
  cluster:
    server: $API_URL
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(b64 "$PKI/admin.crt")
    client-key-data: $(b64 "$PKI/admin.key")
contexts:
- name: harness
  context:
    cluster: harness
    user: admin
    namespace: default
current-context: harness
preferences: {}
EOF
umask 022

# ---------------------------------------------------------------- etcd
start etcd "$H" etcd --name=harness --data-dir="$STATE/etcd-data" \
  --listen-client-urls="$ETCD_URL" --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync=true --log-level=warn
wait_for "etcd ready" grep -q "etcd: ready" "$LOGS/etcd.log"
step "etcd ready ($ETCD_URL)"

# ---------------------------------------------------------------- kube-apiserver
start apiserver "$H" apiserver \
  --etcd-servers="$ETCD_URL" \
  --bind-address=127.0.0.1 --secure-port="$API_PORT" \
  --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
  --cert-dir="$PKI/apiserver" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --authorization-mode=RBAC \
  --service-account-issuer="$SA_ISSUER" \
  --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --allow-privileged=true \
  --profiling=false \
  --v=1
wait_for "kube-apiserver /readyz" kubectl get --raw=/readyz
step "kube-apiserver ready ($API_URL)"

# ---------------------------------------------------------------- KCM, scheduler, kwok
start kcm "$H" kcm \
  --kubeconfig="$KC" \
  --leader-elect=false --secure-port=0 \
  --controllers='*' \
  --service-account-private-key-file="$PKI/sa.key" \
  --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --kube-api-qps=100 --kube-api-burst=200 \
  --v=1
start scheduler "$H" scheduler \
  --kubeconfig="$KC" \
  --leader-elect=false --secure-port=0 \
  --v=1

# kwok.yaml holds only the Stage documents. Options go in flags: kwok v0.8.0
# does not default a KwokConfiguration read from --config (a partial one fails
# with "node leases parallelism must be greater than 0").
cp "$BIN/kwok-stages.yaml" "$STATE/kwok.yaml"
# KWOK_WORKDIR isolates kwok from a user's ~/.kwok/kwok.yaml. No --server-address
# and no --node-port: kwok opens no listening socket.
KWOK_WORKDIR="$STATE/kwok" start kwok "$BIN/kwok" \
  --kubeconfig="$KC" --config="$STATE/kwok.yaml" \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds=40 \
  --cidr=10.244.255.0/24 --node-ip=127.0.0.1
step "kube-controller-manager, kube-scheduler, kwok started"

# ---------------------------------------------------------------- CRDs
if [ -z "${HARNESS_SKIP_CRDS:-}" ]; then
  shopt -s nullglob
  crd_files=("$CRDS_DIR"/*.yaml "$CRDS_DIR"/*.yml "$CRDS_DIR"/*.json)
  shopt -u nullglob
  [ "${#crd_files[@]}" -gt 0 ] || die "no CRD files in $CRDS_DIR"
  apply_args=()
  for f in "${crd_files[@]}"; do apply_args+=(-f "$f"); done
  wait_for "CRD apply" kubectl apply --server-side --force-conflicts --field-manager=harness "${apply_args[@]}"
  kubectl wait --for=condition=Established crd --all --timeout="${STEP_TIMEOUT}s" >/dev/null \
    || die "CRDs not Established"
  step "$(kubectl get crd -o name | wc -l) CRDs Established (from $CRDS_DIR)"
fi

# ---------------------------------------------------------------- fake nodes
node() { # node <name> <os> <zone> <podCIDR> <ip>
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $1
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: $1
    kubernetes.io/os: $2
    kubernetes.io/arch: amd64
    beta.kubernetes.io/os: $2
    beta.kubernetes.io/arch: amd64
    topology.kubernetes.io/region: harness
    topology.kubernetes.io/zone: $3
    node.kubernetes.io/instance-type: kwok
    type: kwok
spec:
  podCIDR: $4
  podCIDRs: [$4]
status:
  addresses:
  - type: InternalIP
    address: $5
  - type: Hostname
    address: $1
  capacity: {cpu: "32", memory: 128Gi, pods: "110", ephemeral-storage: 100Gi}
  allocatable: {cpu: "32", memory: 128Gi, pods: "110", ephemeral-storage: 100Gi}
  nodeInfo:
    architecture: amd64
    operatingSystem: $2
    kubeletVersion: $K8S_VERSION
    kubeProxyVersion: $K8S_VERSION
    containerRuntimeVersion: kwok
    kernelVersion: kwok
    osImage: kwok-$2
    bootID: ""
    machineID: ""
    systemUUID: ""
EOF
}
# Node InternalIPs are loopback addresses on purpose: nothing here is routable,
# and the apiserver's node proxy (logs/exec) can then never dial a foreign host.
{
  node linux-1 linux zone-a 10.244.0.0/24 127.0.100.1
  node linux-2 linux zone-b 10.244.1.0/24 127.0.100.2
  node windows-1 windows zone-a 10.244.64.0/24 127.0.100.3
} >"$STATE/nodes.yaml"
wait_for "create nodes" kubectl create -f "$STATE/nodes.yaml"
step "nodes created"

nodes_ready() {
  local out
  out="$(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{" "}{.spec.taints[*].key}{"\n"}{end}')" || return 1
  [ "$(grep -c . <<<"$out")" -ge 3 ] || return 1
  awk '$2 != "True" {bad=1} /node.kubernetes.io\/(not-ready|unreachable)/ {bad=1} END {exit bad}' <<<"$out"
}
wait_for "nodes Ready without not-ready taint" nodes_ready
step "nodes Ready and untainted: $(kubectl get nodes -o jsonpath='{.items[*].metadata.name}')"

wait_for "default ServiceAccount" kubectl -n default get serviceaccount default
wait_for "kube-root-ca.crt ConfigMap" kubectl -n default get configmap kube-root-ca.crt
step "default ServiceAccount present"

# ---------------------------------------------------------------- env files
{
  echo "# generated by test/harness/up.sh; source this file"
  kv() { echo "export $1='$2'"; }
  kv KUBECONFIG "$KC"
  kv HARNESS_STATE_DIR "$STATE"
  kv HARNESS_BIN_DIR "$BIN"
  kv HARNESS_KUBECTL "$BIN/kubectl"
  kv HARNESS_APISERVER_URL "$API_URL"
  kv HARNESS_APISERVER_PORT "$API_PORT"
  kv HARNESS_CA_CERT "$PKI/ca.crt"
  kv HARNESS_CA_KEY "$PKI/ca.key"
  kv HARNESS_ADMIN_CERT "$PKI/admin.crt"
  kv HARNESS_ADMIN_KEY "$PKI/admin.key"
  kv HARNESS_ETCD_URL "$ETCD_URL"
  kv HARNESS_SERVICE_CIDR "$SERVICE_CIDR"
  kv HARNESS_SA_ISSUER "$SA_ISSUER"
  kv HARNESS_K8S_VERSION "$K8S_VERSION"
  kv HARNESS_LOG_DIR "$LOGS"
} >"$STATE/env.tmp"
mv "$STATE/env.tmp" "$STATE/env"
awk 'BEGIN{print "{"} /^export /{sub(/^export /,""); i=index($0,"="); k=substr($0,1,i-1); v=substr($0,i+2); sub(/.$/,"",v); if(n++) print ","; printf "  \"%s\": \"%s\"", k, v} END{print "\n}"}' \
  "$STATE/env" >"$STATE/env.json"

SUCCESS=1
step "cluster up: source $STATE/env  (stop: $HARNESS/down.sh $STATE)"
