#!/usr/bin/env bash
# Builds the data-path suite's Go tools into test/datapath/bin/:
#   bin/coredns   CoreDNS (github.com/coredns/coredns, the version wpgw deploys as wpgw-dns),
#                 its own module (coredns/go.mod) so its pins never mix with the harness's or istiod's
# (kube-proxy: test/harness/build.sh; pilot-agent: test/istio/build.sh; Envoy: install.sh.)
# Uses the default Go caches; idempotent.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="${DATAPATH_BIN_DIR:-$HERE/bin}"
# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
go_tool_build datapath/build.sh "$BIN" "$HERE/coredns"
t=$(now)
(cd "$HERE/coredns" && go build -trimpath -ldflags='-s -w' -o "$BIN/coredns" github.com/coredns/coredns)
echo "datapath/build.sh: bin/coredns built in $(elapsed "$t")s ($("$BIN/coredns" -version | head -1))"
echo "datapath/build.sh: done in $(elapsed "$t0")s"
