#!/usr/bin/env bash
# Builds the test control plane into test/harness/bin/:
#   bin/harness            etcd | apiserver | kcm | scheduler | kubectl | freeport | version
#   bin/kwok               kwok controller (separate module, test/harness/kwok)
#   bin/kwok-stages.yaml   kwok Stage documents shipped in the kwok module zip
#   bin/kubectl            symlink -> harness (multi-call)
#   bin/kube-proxy         k8s.io/kubernetes/cmd/kube-proxy (same module), for the data-path suite
# Uses the default Go build and module caches, so a warm rebuild takes seconds.
# Idempotent: run it as often as you like.
set -euo pipefail

HARNESS="$(cd "$(dirname "$0")" && pwd)"
BIN="$HARNESS/bin"

# shellcheck source=../lib/common.sh
source "$HARNESS/../lib/common.sh"
go_tool_build build.sh "$BIN" "$HARNESS" "$HARNESS/kwok"

# Stamp the real release version (what official k8s builds do with -X), so
# /version, kubectl version and User-Agents say v1.36.3 instead of v0.0.0-master.
# buildDate is the module's publication time: deterministic, keeps the link cached.
read -r kver ktime < <(cd "$HARNESS" && go list -m -f '{{.Version}} {{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
kmajor="${kver#v}"; kmajor="${kmajor%%.*}"
kminor="${kver#v*.}"; kminor="${kminor%%.*}"
ldx=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldx+=" -X $pkg.gitVersion=$kver -X $pkg.gitMajor=$kmajor -X $pkg.gitMinor=$kminor"
  ldx+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$ktime -X $pkg.gitCommit="
done

t=$(now)
(cd "$HARNESS" && go build -trimpath -ldflags="-s -w$ldx" -o "$BIN/harness" .)
ln -sfn harness "$BIN/kubectl"
echo "build.sh: bin/harness built in $(elapsed "$t")s"

t=$(now)
(cd "$HARNESS" && go build -trimpath -ldflags="-s -w$ldx" -o "$BIN/kube-proxy" k8s.io/kubernetes/cmd/kube-proxy)
echo "build.sh: bin/kube-proxy built in $(elapsed "$t")s"

t=$(now)
(cd "$HARNESS/kwok" && go build -trimpath -ldflags='-s -w' -o "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok)
echo "build.sh: bin/kwok built in $(elapsed "$t")s"

# kwok >= v0.8.0 has no built-in default stages: ship the upstream "fast" set
# (what kwokctl uses) from the exact module version pinned in kwok/go.sum.
kwokdir="$(cd "$HARNESS/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
stages="$kwokdir/kustomize/stage"
{
  for f in node/fast/node-initialize.yaml \
           node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [ -f "$stages/$f" ] || { echo "build.sh: missing kwok stage $stages/$f" >&2; exit 1; }
    echo "---"
    echo "# from sigs.k8s.io/kwok kustomize/stage/$f"
    cat "$stages/$f"
  done
} > "$BIN/kwok-stages.yaml.new"
mv -f "$BIN/kwok-stages.yaml.new" "$BIN/kwok-stages.yaml"

"$BIN/harness" version | sed 's/^/build.sh: /'
echo "build.sh: kwok $("$BIN/kwok" --version 2>/dev/null | head -1 || echo '?')"
echo "build.sh: done in $(elapsed "$t0")s"
