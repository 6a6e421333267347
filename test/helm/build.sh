#!/usr/bin/env bash
# Builds the helm CLI into test/helm/bin/helm from the helm.sh/helm/v4 module pinned in this
# directory's go.mod (no release binaries here). A separate Go module: helm pins its own k8s.io/*.
# Uses the default Go build and module caches, so a warm rebuild takes seconds. Idempotent.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="$HERE/bin"

# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
go_tool_build helm/build.sh "$BIN" "$HERE"

# Stamp the module version like helm's release builds do, so `helm version` tells what was built.
hver="$(cd "$HERE" && go list -m -f '{{.Version}}' helm.sh/helm/v4)"
t=$(now)
# Straight to bin/ so Go can skip an up-to-date link.
(cd "$HERE" && go build -trimpath -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$hver" -o "$BIN/helm" helm.sh/helm/v4/cmd/helm)
echo "helm/build.sh: bin/helm built in $(elapsed "$t")s: $("$BIN/helm" version --short)"
echo "helm/build.sh: done in $(elapsed "$t0")s"
