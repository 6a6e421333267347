#!/usr/bin/env bash
# stop.sh <harness-state-dir>: stops the istiod started by start.sh (SIGTERM, SIGKILL after
# ISTIO_STOP_GRACE seconds, default 10) and removes the validating webhook it registered, if the
# cluster is still up (so a later Istio object write does not fail against a dead URL).
# Only the pid in <state>/istiod.pid is signalled, and only if it runs this directory's
# bin/pilot-discovery. Logs are kept. Safe to run repeatedly.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="$HERE/bin"
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
state_dir_arg istio/stop.sh harness-state-dir "$@"
GRACE="${ISTIO_STOP_GRACE:-10}"

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
