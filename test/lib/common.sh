# Shared by the test tooling's shell scripts (test/harness, test/istio, each Go tool's build.sh).
# Source it:
#   source "$(dirname "$0")/../lib/common.sh"
# Defines functions only; sets nothing until one is called.

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# go_build_env <tag>: checks for Go >= 1.26 and sets up a reproducible, offline-friendly build:
# the local toolchain only (never a download), static binaries, go.sum as written, host platform.
go_build_env() {
  local tag="$1" gover
  command -v go >/dev/null 2>&1 || { echo "$tag: 'go' not found in PATH (need Go >= 1.26.0)" >&2; exit 1; }
  export GOTOOLCHAIN=local
  export CGO_ENABLED=0
  export GOFLAGS="${GOFLAGS:-} -mod=readonly"
  unset GOOS GOARCH 2>/dev/null || true
  gover="$(go env GOVERSION)"
  case "$gover" in
    go1.2[6-9]*|go1.[3-9][0-9]*) ;;
    *) echo "$tag: $gover is too old; need go >= 1.26.0 (k8s.io/kubernetes v1.36)" >&2; exit 1 ;;
  esac
  echo "$tag: $gover, GOMODCACHE=$(go env GOMODCACHE), GOCACHE=$(go env GOCACHE)"
}

# runs_binary <pid> <binary>...: is <pid> alive and running one of these binaries (by path)?
# Guards every signal we send: a pid file can outlive its process and the pid be reused.
runs_binary() {
  local pid="$1" cmd b
  shift
  cmd="$( { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null)" || return 1
  for b in "$@"; do
    case "$cmd" in "$b "*) return 0 ;; esac
  done
  return 1
}

# stop_pidfiles <tag> <state-dir> <grace-seconds> <binaries> <name>...: SIGTERM each process whose
# pid is in <state-dir>/<name>.pid and runs one of <binaries> (space-separated paths), wait up to
# the grace period for all of them, SIGKILL leftovers, remove the pid files.
stop_pidfiles() {
  local tag="$1" state="$2" grace="$3" bins=() c pid pids=() names=() deadline i left
  read -r -a bins <<<"$4"
  shift 4
  for c in "$@"; do
    [ -f "$state/$c.pid" ] || continue
    pid="$(cat "$state/$c.pid")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && runs_binary "$pid" "${bins[@]}"; then
      kill -TERM "$pid" 2>/dev/null && { pids+=("$pid"); names+=("$c"); }
    else
      rm -f "$state/$c.pid"
    fi
  done
  [ "${#pids[@]}" -gt 0 ] || return 0
  deadline=$(( $(date +%s) + grace ))
  while :; do
    left=0
    for pid in "${pids[@]}"; do runs_binary "$pid" "${bins[@]}" && left=1; done
    [ "$left" = 0 ] && break
    [ "$(date +%s)" -ge "$deadline" ] && break
    sleep 0.2
  done
  for i in "${!pids[@]}"; do
    if runs_binary "${pids[$i]}" "${bins[@]}"; then
      echo "$tag: ${names[$i]} (pid ${pids[$i]}) ignored SIGTERM for ${grace}s: SIGKILL"
      kill -KILL "${pids[$i]}" 2>/dev/null
    fi
    echo "$tag: stopped ${names[$i]} (pid ${pids[$i]})"
    rm -f "$state/${names[$i]}.pid"
  done
}

# go_tool_build <tag> <out-dir> <module-dir>...: the start of every Go tool's build.sh: the build
# environment (go_build_env), the output directory, each module's dependencies downloaded (from
# the module cache when warm). Sets t0 (the script's start, for elapsed).
go_tool_build() {
  local tag="$1" out="$2" dir t
  shift 2
  go_build_env "$tag"
  t0=$(now)
  mkdir -p "$out"
  t=$(now)
  for dir in "$@"; do (cd "$dir" && go mod download); done
  echo "$tag: modules ready in $(elapsed "$t")s"
}

# state_dir_arg <tag> <name> <args>...: the one argument of a stop script, its state directory
# (<name> in the usage line). A usage error (exit 2) unless there is exactly one; nothing to stop
# (exit 0) when it does not exist; otherwise STATE is its absolute path.
state_dir_arg() {
  local tag="$1" name="$2"
  shift 2
  [ $# -eq 1 ] || { echo "usage: $0 <$name>" >&2; exit 2; }
  [ -d "$1" ] || { echo "$tag: $1: no such state dir (nothing to stop)"; exit 0; }
  STATE="$(cd "$1" && pwd)"
}

# retry_until <seconds> <every> <cmd>...: runs <cmd> every <every> seconds until it succeeds
# (returns 0) or <seconds> have passed (returns 1). Its last output (stdout and stderr) is in
# RETRY_OUT. RETRY_EACH, when set, names a command run after each failed attempt in this shell
# (a liveness check that exits on a dead component).
retry_until() {
  local deadline=$(( $(date +%s) + $1 )) every="$2"
  shift 2
  until RETRY_OUT="$("$@" 2>&1)"; do
    [ -z "${RETRY_EACH:-}" ] || "$RETRY_EACH"
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep "$every"
  done
}
