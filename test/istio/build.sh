#!/usr/bin/env bash
# Builds the "Istio in the loop" tools into test/istio/bin/:
#   bin/pilot-discovery   istiod (istio.io/istio/pilot/cmd/pilot-discovery), Istio release-1.30
#   bin/xdsdump           minimal ADS client: dumps what istiod sends one proxy, as JSON
#   bin/istio-analyze     Istio's config analyzers on a live cluster (istioctl analyze -A), as JSON
#   bin/pilot-agent       Istio's proxy agent (istio.io/istio/pilot/cmd/pilot-agent): runs Envoy for
#                         the data-path suite (test/datapath), same module and version as istiod
# (ISTIO_BIN_DIR=... builds elsewhere, e.g. to time a cold build beside a running suite.)
# A separate Go module (test/istio/go.mod): Istio pins k8s.io/* v0.35, the harness v0.36.
# Uses the default Go build and module caches, so a warm rebuild takes seconds.
# Idempotent: run it as often as you like.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="${ISTIO_BIN_DIR:-$HERE/bin}"

# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
go_tool_build istio/build.sh "$BIN" "$HERE"

# Stamp the version like Istio's release builds do (-X istio.io/istio/pkg/version.*), from the
# module version actually built: istiod logs it and reports it in its debug endpoints.
read -r iver itime < <(cd "$HERE" && go list -m -f '{{.Version}} {{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' istio.io/istio)
ihash="${iver##*-}"
ldx="-X istio.io/istio/pkg/version.buildVersion=1.30-${ihash}"
ldx+=" -X istio.io/istio/pkg/version.buildGitRevision=${ihash}"
ldx+=" -X istio.io/istio/pkg/version.buildStatus=Clean -X istio.io/istio/pkg/version.buildTag=release-1.30"

t=$(now)
# Straight to bin/ (no temp file + mv) so Go can skip an up-to-date link.
(cd "$HERE" && go build -trimpath -ldflags="-s -w $ldx" -o "$BIN/pilot-discovery" istio.io/istio/pilot/cmd/pilot-discovery)
echo "istio/build.sh: bin/pilot-discovery built in $(elapsed "$t")s"

t=$(now)
(cd "$HERE" && go build -trimpath -ldflags='-s -w' -o "$BIN/xdsdump" ./xdsdump)
echo "istio/build.sh: bin/xdsdump built in $(elapsed "$t")s"

t=$(now)
(cd "$HERE" && go build -trimpath -ldflags="-s -w $ldx" -o "$BIN/istio-analyze" ./analyze)
echo "istio/build.sh: bin/istio-analyze built in $(elapsed "$t")s"

t=$(now)
(cd "$HERE" && go build -trimpath -ldflags="-s -w $ldx" -o "$BIN/pilot-agent" istio.io/istio/pilot/cmd/pilot-agent)
echo "istio/build.sh: bin/pilot-agent built in $(elapsed "$t")s"

echo "istio/build.sh: istio.io/istio $iver ($itime)"
echo "istio/build.sh: done in $(elapsed "$t0")s"
