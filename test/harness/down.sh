#!/usr/bin/env bash
# down.sh <state-dir>
# Stops the components started by up.sh: SIGTERM, then SIGKILL after a grace
# period. Clients first, then kube-apiserver, then etcd. Logs are kept.
# Only pids recorded in <state-dir>/*.pid whose command line is one of this
# harness's binaries are signalled. Safe to run repeatedly.
set -uo pipefail

HARNESS="$(cd "$(dirname "$0")" && pwd)"
BIN="$HARNESS/bin"
# shellcheck source=../lib/common.sh
source "$HARNESS/../lib/common.sh"
state_dir_arg down.sh state-dir "$@"
GRACE="${HARNESS_STOP_GRACE:-10}"
stop_group() { stop_pidfiles down.sh "$STATE" "$GRACE" "$BIN/harness $BIN/kwok" "$@"; }

stop_group kwok scheduler kcm
stop_group apiserver
stop_group etcd
echo "down.sh: done; logs kept in $STATE/logs"
