#!/usr/bin/env bash
# Installs the Debian packages the project builds, tests and demos with. Idempotent: apt-get runs
# only when a package is missing, so a warm machine pays one dpkg query.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config python3
  librdkafka-dev libavro-dev libjansson-dev libcurl4-openssl-dev libhiredis-dev libyaml-dev
  libmicrohttpd-dev libssl-dev libcriterion-dev
  redis-server kcat clang gnuplot-nox
  yamllint python3-jsonschema
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The redis-server package starts a system instance; the project starts its own on free ports.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
