#!/usr/bin/env bash
# selfcheck.sh <state-dir>
# Smoke test of a cluster started by up.sh: scheduling onto the fake Windows
# node, kwok pod IPs from the node podCIDR, EndpointSlices, ClusterIP
# allocation, Job completion, server-side apply, CRD schema validation of an
# Istio object, and namespace deletion. Prints "N passed, N failed".
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 <state-dir>" >&2; exit 2; }
STATE="$(cd "$1" && pwd)" || exit 2
# shellcheck disable=SC1091
source "$STATE/env" || { echo "selfcheck: no $STATE/env (run up.sh first)" >&2; exit 2; }
k() { "$HARNESS_KUBECTL" "$@"; }

NS="selfcheck-$RANDOM"
PASS=0 FAIL=0
T0=$(date +%s.%N)
ok()   { PASS=$((PASS+1)); echo "selfcheck: PASS $*"; }
bad()  { FAIL=$((FAIL+1)); echo "selfcheck: FAIL $*"; }
retry() { # retry <seconds> <cmd...>
  local end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.5; done
}
in_cidr() { # in_cidr <ip> <a.b.c.0/24>
  [[ "$1" == "${2%.*/24}".* ]]
}

k create namespace "$NS" >/dev/null && ok "namespace $NS created" || bad "create namespace"
# Pods need the namespace's default ServiceAccount (ServiceAccount admission).
retry 30 k -n "$NS" get serviceaccount default && ok "default ServiceAccount created by KCM" || bad "default ServiceAccount"

k -n "$NS" apply -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: win-web}
spec:
  replicas: 2
  selector: {matchLabels: {app: win-web}}
  template:
    metadata: {labels: {app: win-web}}
    spec:
      nodeSelector: {kubernetes.io/os: windows}
      containers:
      - name: web
        image: mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc2022
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: win-web}
spec:
  selector: {app: win-web}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: plain-clusterip}
spec:
  type: ClusterIP
  ports: [{port: 8443, targetPort: 8443}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: one-shot}
spec:
  template:
    spec:
      restartPolicy: Never
      nodeSelector: {kubernetes.io/os: linux}
      containers: [{name: c, image: busybox}]
EOF
[ $? -eq 0 ] && ok "Deployment, Services, Job applied" || bad "apply workload"

if k -n "$NS" rollout status deployment/win-web --timeout=60s >/dev/null; then
  ok "Deployment win-web rolled out (2/2 available)"
else
  bad "Deployment win-web not available"
fi

pods="$(k -n "$NS" get pods -l app=win-web -o jsonpath='{range .items[*]}{.metadata.name} {.status.phase} {.spec.nodeName} {.status.podIP}{"\n"}{end}')"
echo "$pods" | sed 's/^/selfcheck:   pod /'
n=0; allok=1; ips=()
while read -r name phase node ip; do
  [ -n "$name" ] || continue
  n=$((n+1)); ips+=("$ip")
  [ "$phase" = Running ] && [ "$node" = windows-1 ] && in_cidr "$ip" 10.244.64.0/24 || allok=0
done <<<"$pods"
[ "$n" -eq 2 ] && [ "$allok" = 1 ] && ok "2 pods Running on windows-1 with podIPs in 10.244.64.0/24" || bad "pods: $pods"

slice_has_ips() {
  local got
  got="$(k -n "$NS" get endpointslices -l kubernetes.io/service-name=win-web \
    -o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]}{" "}{.conditions.ready}{"\n"}{end}')"
  for ip in "${ips[@]}"; do grep -q "^$ip true$" <<<"$got" || return 1; done
}
if [ "${#ips[@]}" -eq 2 ] && retry 30 slice_has_ips; then
  ok "EndpointSlice for win-web lists ready endpoints ${ips[*]}"
else
  bad "EndpointSlice: $(k -n "$NS" get endpointslices -o yaml 2>&1 | head -40)"
fi

cip="$(k -n "$NS" get service plain-clusterip -o jsonpath='{.spec.clusterIP}')"
if [[ "$cip" == 10.96.* ]]; then ok "ClusterIP allocated: $cip"; else bad "ClusterIP '$cip'"; fi

if k -n "$NS" wait --for=condition=Complete job/one-shot --timeout=60s >/dev/null; then
  ok "Job completed (kwok pod-complete stage + job controller)"
else
  bad "Job did not complete"
fi

jip="$(k -n "$NS" get pods -l job-name=one-shot -o jsonpath='{.items[0].spec.nodeName} {.items[0].status.podIP}')"
case "$jip" in
  "linux-1 10.244.0."*|"linux-2 10.244.1."*) ok "Job pod got a linux node and an IP from its podCIDR: $jip" ;;
  *) bad "Job pod placement/IP: '$jip'" ;;
esac

# Server-side apply: field manager recorded in managedFields.
if k -n "$NS" apply --server-side --field-manager=selfcheck -f - >/dev/null <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: ssa}
data: {a: "1"}
EOF
then
  mgr="$(k -n "$NS" get configmap ssa --show-managed-fields -o jsonpath='{.metadata.managedFields[0].manager}/{.metadata.managedFields[0].operation}')"
  [ "$mgr" = "selfcheck/Apply" ] && ok "server-side apply (managedFields $mgr)" || bad "SSA managedFields '$mgr'"
else
  bad "server-side apply failed"
fi

# Istio CRD schema: a valid VirtualService is accepted, a wrong field type is rejected.
if k -n "$NS" apply --server-side -f - >/dev/null <<'EOF'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: good}
spec:
  hosts: [win-web]
  http: [{route: [{destination: {host: win-web}}]}]
EOF
then ok "valid Istio VirtualService accepted (server-side apply)"; else bad "valid VirtualService rejected"; fi

bad_vs() { cat <<'EOF'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad}
spec:
  hosts: win-web
EOF
}
out="$(bad_vs | k -n "$NS" create -f - 2>&1)"; rc=$?
if [ $rc -ne 0 ] && grep -q 'spec.hosts.*must be of type array' <<<"$out"; then
  ok "invalid VirtualService rejected by CRD schema (create): $(grep -o 'spec.hosts[^,]*' <<<"$out" | head -1)"
else
  bad "invalid VirtualService (create) not rejected as expected: rc=$rc $out"
fi
out="$(bad_vs | k -n "$NS" apply --server-side -f - 2>&1)"; rc=$?
if [ $rc -ne 0 ] && grep -q 'spec.hosts' <<<"$out"; then
  ok "invalid VirtualService rejected (server-side apply): $(grep -o '\.spec\.hosts: expected [a-z]*' <<<"$out" | head -1)"
else
  bad "invalid VirtualService (server-side apply) not rejected: rc=$rc $out"
fi

# Gateway API CRDs are served too.
k get crd httproutes.gateway.networking.k8s.io >/dev/null 2>&1 && ok "Gateway API CRDs installed" || bad "no HTTPRoute CRD"

# Namespace deletion must finish (namespace controller + kwok pod-delete stage).
k delete namespace "$NS" --wait=false >/dev/null
if k wait --for=delete "namespace/$NS" --timeout=90s >/dev/null 2>&1; then
  ok "namespace $NS deleted"
else
  bad "namespace $NS still present: $(k get ns "$NS" -o jsonpath='{.status}' 2>&1)"
fi

echo "selfcheck: took $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
