#!/usr/bin/env bash
# Builds kube-router (main.go; the suite runs only its network policy controller) from its Go
# module, pinned in go.mod/go.sum, into test/datapath/bin/kube-router (DATAPATH_BIN_DIR=...
# elsewhere), and installs the ipset tool it runs (Debian package) when missing.
# Uses the default Go build and module caches, so a warm rebuild takes seconds. Idempotent.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${DATAPATH_BIN_DIR:-$HERE/../bin}"

# shellcheck source=../../lib/common.sh
source "$HERE/../../lib/common.sh"
go_tool_build netpol/build.sh "$OUT" "$HERE"

if ! command -v ipset >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "netpol/build.sh: need root to apt-get install ipset" >&2; exit 1; }
  echo "netpol/build.sh: apt-get install ipset"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ipset >/dev/null
fi

ver="$(cd "$HERE" && go list -m -f '{{.Version}}' github.com/cloudnativelabs/kube-router/v2)"
# kube-router's Makefile stamps its version the same way (kube-router --version prints it).
(cd "$HERE" && nice go build -trimpath -ldflags="-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$ver" -o "$OUT/kube-router.new" .)
mv -f "$OUT/kube-router.new" "$OUT/kube-router"
echo "netpol/build.sh: $("$OUT/kube-router" --version 2>&1 | head -1), $(ipset --version | head -1), built in $(elapsed "$t0")s"
