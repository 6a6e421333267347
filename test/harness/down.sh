#!/usr/bin/env bash
# down.sh <state-dir>
# Stops the components started by up.sh: SIGTERM, then SIGKILL after a grace
# period. Clients first, then kube-apiserver, then etcd. Logs are kept.
# Only pids recorded in <state-dir>/*.pid whose command line is one of this
# harness's binaries are signalled. Safe to run repeatedly.
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 <state-dir>" >&2; exit 2; }
HARNESS="$(cd "$(dirname "$0")" && pwd)"
BIN="$HARNESS/bin"
[ -d "$1" ] || { echo "down.sh: $1: no such state dir (nothing to stop)"; exit 0; }
STATE="$(cd "$1" && pwd)"
GRACE="${HARNESS_STOP_GRACE:-10}"

ours() { # ours <pid>: alive and running a harness binary?
  local cmd
  cmd="$( { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null)" || return 1
  case "$cmd" in "$BIN/harness "*|"$BIN/kwok "*) return 0 ;; *) return 1 ;; esac
}

stop_group() { # stop_group <component>...: TERM all, wait, KILL leftovers
  local c pid pids=() names=()
  for c in "$@"; do
    [ -f "$STATE/$c.pid" ] || continue
    pid="$(cat "$STATE/$c.pid")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && ours "$pid"; then
      kill -TERM "$pid" 2>/dev/null && { pids+=("$pid"); names+=("$c"); }
    else
      rm -f "$STATE/$c.pid"
    fi
  done
  [ "${#pids[@]}" -gt 0 ] || return 0
  local deadline=$(( $(date +%s) + GRACE )) i left
  while :; do
    left=0
    for pid in "${pids[@]}"; do ours "$pid" && left=1; done
    [ "$left" = 0 ] && break
    [ "$(date +%s)" -ge "$deadline" ] && break
    sleep 0.2
  done
  for i in "${!pids[@]}"; do
    if ours "${pids[$i]}"; then
      echo "down.sh: ${names[$i]} (pid ${pids[$i]}) ignored SIGTERM for ${GRACE}s: SIGKILL"
      kill -KILL "${pids[$i]}" 2>/dev/null
    fi
    echo "down.sh: stopped ${names[$i]} (pid ${pids[$i]})"
    rm -f "$STATE/${names[$i]}.pid"
  done
}

stop_group kwok scheduler kcm
stop_group apiserver
stop_group etcd
echo "down.sh: done; logs kept in $STATE/logs"
