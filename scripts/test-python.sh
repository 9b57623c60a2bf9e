#!/usr/bin/env bash
# Tests the Python client (clients/python) against a real `authproxy serve` admin API and a real
# redis-server: a venv in clients/python/.venv (git-ignored), the pinned test dependencies, the package
# itself built and installed as published (not editable), `mypy --strict`, then pytest.
# Needs what `.ci/run` sets up first: redis-server (scripts/setup-deps.sh), Node.js 24 on the PATH
# (scripts/setup-node.sh) and dist/ (npm ci). Arguments go to pytest, e.g. `-k github -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=clients/python
VENV="$PKG/.venv"
PYTHON="${PYTHON:-python3}"
PIP=(--quiet --disable-pip-version-check --no-input)

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || { echo "test-python: $PYTHON is $("$PYTHON" -V 2>&1); the client needs Python >= 3.10 (set PYTHON)" >&2; exit 1; }
# A venv left by another machine or Python may be broken: make it again.
if ! "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install "${PIP[@]}" -c "$PKG/constraints-test.txt" "./$PKG[test]"
# The same version number would let pip skip it: put this checkout's code in place.
"$VENV/bin/python" -m pip install "${PIP[@]}" --no-deps --force-reinstall "./$PKG"
echo "test-python: $("$VENV/bin/python" -V), $("$VENV/bin/python" -m pytest --version 2>&1), $("$VENV/bin/mypy" --version)"

status=0
(cd "$PKG" && .venv/bin/mypy) || status=$?

rc=0
(cd "$PKG" && .venv/bin/python -m pytest "$@") || rc=$?
if [ "$rc" -eq 5 ]; then
  # pytest's 5 is "no tests collected": expected only when the arguments selected none.
  if [ "$#" -gt 0 ]; then
    echo "test-python: no test matched the selection: $*"
    rc=0
  else
    echo "test-python: pytest collected no tests in $PKG/tests" >&2
  fi
fi
[ "$rc" -eq 0 ] || status=$rc
exit "$status"
