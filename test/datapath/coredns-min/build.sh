#!/usr/bin/env bash
# Builds CoreDNS (main.go: only the plugins the data-path suite's Corefiles use) from its Go
# module, pinned in go.mod/go.sum, into test/datapath/bin/coredns-min (DATAPATH_BIN_DIR=... elsewhere).
# Uses the default Go build and module caches, so a warm rebuild takes seconds. Idempotent.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="${DATAPATH_BIN_DIR:-$HERE/../bin}"

# shellcheck source=../../lib/common.sh
source "$HERE/../../lib/common.sh"
go_build_env coredns-min/build.sh

t0=$(now)
mkdir -p "$BIN"
(cd "$HERE" && go mod download)
ver="$(cd "$HERE" && go list -m -f '{{.Version}}' github.com/coredns/coredns)"
# Stamp the commit as CoreDNS's own Makefile does (its -version prints it); the release tag
# is already in coremain.CoreVersion.
(cd "$HERE" && nice go build -trimpath -ldflags="-s -w -X github.com/coredns/coredns/coremain.GitCommit=$ver" -o "$BIN/coredns-min.new" .)
mv -f "$BIN/coredns-min.new" "$BIN/coredns-min"
echo "coredns-min/build.sh: $("$BIN/coredns-min" -version | head -1) built in $(elapsed "$t0")s"
