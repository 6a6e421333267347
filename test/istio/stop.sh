#!/usr/bin/env bash
# stop.sh <harness-state-dir>: stops the istiod started by start.sh (SIGTERM, SIGKILL after
# ISTIO_STOP_GRACE seconds, default 10) and removes the validating webhook it registered, if the
# cluster is still up (so a later Istio object write does not fail against a dead URL).
# Only the pid in <state>/istiod.pid is signalled, and only if it runs this directory's
# bin/pilot-discovery. Logs are kept. Safe to run repeatedly.
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 <harness-state-dir>" >&2; exit 2; }
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="$HERE/bin"
[ -d "$1" ] || { echo "istio/stop.sh: $1: no such state dir (nothing to stop)"; exit 0; }
STATE="$(cd "$1" && pwd)"
GRACE="${ISTIO_STOP_GRACE:-10}"

# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"

# Unregister the webhooks first: with failurePolicy Fail and istiod gone, every Istio object
# write would be refused.
if [ -f "$STATE/env" ]; then
  # shellcheck disable=SC1091
  source "$STATE/env"
  if "$HARNESS_KUBECTL" --request-timeout=5s get --raw /readyz >/dev/null 2>&1; then
    "$HARNESS_KUBECTL" --request-timeout=5s delete validatingwebhookconfiguration istio-validator-istio-system \
      --ignore-not-found >/dev/null 2>&1 && echo "istio/stop.sh: removed ValidatingWebhookConfiguration istio-validator-istio-system"
    "$HARNESS_KUBECTL" --request-timeout=5s delete mutatingwebhookconfiguration istio-sidecar-injector \
      --ignore-not-found 2>/dev/null | grep -q deleted && echo "istio/stop.sh: removed MutatingWebhookConfiguration istio-sidecar-injector"
  fi
fi

stop_pidfiles istio/stop.sh "$STATE" "$GRACE" "$BIN/pilot-discovery" istiod

echo "istio/stop.sh: done; log kept in $STATE/logs/istiod.log"
