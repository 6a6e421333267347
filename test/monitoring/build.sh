#!/usr/bin/env bash
# Builds bin/promql-names (main.go): Prometheus's own PromQL parser (the
# github.com/prometheus/prometheus module pinned in go.mod), so test/e2e/monitoring.test.ts reads
# the chart's alert and dashboard expressions exactly as Prometheus does. Uses the default Go
# caches: a warm rebuild takes seconds. Idempotent.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"

# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
go_tool_build monitoring/build.sh "$HERE/bin" "$HERE"
(cd "$HERE" && go build -trimpath -o "$HERE/bin/promql-names" .)
echo "monitoring/build.sh: bin/promql-names built in $(elapsed "$t0")s"
