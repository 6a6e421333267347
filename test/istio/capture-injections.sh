#!/usr/bin/env bash
# capture-injections.sh [out-dir]: regenerates the golden fixtures of istiod's real sidecar
# injection (default out-dir: test/unit/testdata/istio-injected) on a throwaway harness cluster
# with istiod's injector on. Needs test/harness/build.sh and test/istio/build.sh first.
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
