#!/usr/bin/env bash
# Builds the data-path benchmark's load generator (`npm run bench:datapath`, bench/README.md):
# vegeta (github.com/tsenart/vegeta/v12), pinned in go.mod/go.sum, into test/datapath/bin/vegeta
# (DATAPATH_BIN_DIR=... elsewhere). Why vegeta: an open-loop, constant-rate generator (a new
# worker, and connection, whenever all are busy, so a slow server never delays the schedule) that
# records each request's sequence number, start and latency, from which the bench charges latency
# from the intended send time. Skips the build when bin/vegeta already is this version.
# Uses the default Go build and module caches. Idempotent. Not part of .ci/run (benchmarks only).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${DATAPATH_BIN_DIR:-$HERE/../bin}"

# shellcheck source=../../lib/common.sh
source "$HERE/../../lib/common.sh"
go_tool_build loadgen/build.sh "$OUT" "$HERE"

ver="$(cd "$HERE" && go list -m -f '{{.Version}}' github.com/tsenart/vegeta/v12)"
if [ -x "$OUT/vegeta" ] && [ "$("$OUT/vegeta" -version 2>/dev/null | sed -n 's/^Version: *//p')" = "$ver" ]; then
  echo "loadgen/build.sh: bin/vegeta $ver cached"
  exit 0
fi
# vegeta's Makefile stamps its version the same way (vegeta -version prints it).
(cd "$HERE" && nice go build -trimpath -ldflags="-s -w -X main.Version=$ver" -o "$OUT/vegeta.new" github.com/tsenart/vegeta/v12)
mv -f "$OUT/vegeta.new" "$OUT/vegeta"
echo "loadgen/build.sh: bin/vegeta $ver built in $(elapsed "$t0")s"
