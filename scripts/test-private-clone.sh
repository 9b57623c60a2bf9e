#!/usr/bin/env bash
# Runs the suites that start processes as other users (the transparent e2e, recipe and integration suites,
# caller-auth, private-clone) from a fresh clone of this checkout's HEAD inside a `mktemp -d` directory
# (mode 0700), as root, without opening any directory's search bit (what .ci/run does): the proof that
# `npm test` works from a private clone. node_modules is hard-linked from this checkout (copied when the
# file systems differ); Envoy and Node are this checkout's. Usage: sudo bash scripts/test-private-clone.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "test-private-clone: run as root (the suites switch uids and create network namespaces)" >&2; exit 2; }
source "$repo/scripts/setup-node.sh" >/dev/null
envoy="${ENVOY_BIN:-$repo/.venv/bin/envoy}"
[ -x "$envoy" ] || { echo "test-private-clone: no Envoy at $envoy: run scripts/setup-deps.sh or set ENVOY_BIN" >&2; exit 2; }
priv="$(mktemp -d)"
trap 'rm -rf "$priv"' EXIT
git clone -q "$repo" "$priv/clone"
cp -al "$repo/node_modules" "$priv/clone/node_modules" 2>/dev/null || cp -a "$repo/node_modules" "$priv/clone/node_modules"
cd "$priv/clone"
echo "private clone: $PWD (parent $(stat -c %A "$priv"))"
npx tsc -p .
ENVOY_BIN="$envoy" npx vitest run test/e2e/transparent.test.ts test/e2e/transparent-upstream-proxy.test.ts test/e2e/transparent-netns.test.ts test/integration/netns-recipe.test.ts test/integration/transparent.test.ts test/integration/caller-auth.test.ts test/integration/private-clone.test.ts
