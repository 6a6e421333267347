#!/usr/bin/env bash
# capture-injections.sh [out-dir]: regenerates the golden fixtures of istiod's real sidecar
# injection (default out-dir: test/unit/testdata/istio-injected) on a throwaway harness cluster
# with istiod's injector on: first with the chart of the istio.io/istio module istiod is built
# from (1.30), then once per older sidecar template in legacy-templates/ (Istio 1.22-1.28), each
# with ENABLE_NATIVE_SIDECARS false (classic cases) and true (native cases).
# Needs test/harness/build.sh and test/istio/build.sh first. About a minute.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="${1:-$REPO/test/unit/testdata/istio-injected}"
STATE="$(mktemp -d /tmp/wpgw-capture-XXXXXX)"
cleanup() {
  "$HERE/stop.sh" "$STATE" >/dev/null 2>&1 || true
  "$REPO/test/harness/down.sh" "$STATE" >/dev/null 2>&1 || true
  rm -rf "$STATE"
}
trap cleanup EXIT
"$REPO/test/harness/up.sh" "$STATE"
ISTIO_INJECTOR=1 "$HERE/start.sh" "$STATE"
node "$HERE/capture-injections.mjs" "$STATE" "$OUT"

ISTIO_MOD_VERSION="$(awk '$1 == "istio.io/istio" { print $2; exit }' "$HERE/go.mod")"
CHART="$(go env GOMODCACHE)/istio.io/istio@$ISTIO_MOD_VERSION/manifests/charts/istio-control/istio-discovery"
for template in "$HERE"/legacy-templates/injection-template-*.yaml; do
  version="${template##*/injection-template-}"
  version="${version%.yaml}"
  chart="$STATE/chart-$version"
  node "$HERE/capture-injections.mjs" legacy-chart "$CHART" "$template" "$chart"
  chmod -R u+w "$chart"
  for mode in classic native; do
    "$HERE/stop.sh" "$STATE" >/dev/null
    native=false
    [ "$mode" = native ] && native=true
    ENABLE_NATIVE_SIDECARS=$native ISTIO_CHART_DIR="$chart" ISTIO_INJECTOR=1 "$HERE/start.sh" "$STATE" >/dev/null
    node "$HERE/capture-injections.mjs" "$STATE" "$OUT" legacy "$version" "$mode"
  done
done
