#!/usr/bin/env bash
# Schemathesis (PyPI, pinned) in a virtualenv in the cache, outside the repo: created on the first run,
# reused afterwards. Prints the path of its `st` command.
#   scripts/schemathesis.sh              install when missing, then print the path
#   scripts/schemathesis.sh --no-install print the path, or exit 1 when it is not installed
set -euo pipefail
VERSION=4.32.5
VENV="${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}/schemathesis-$VERSION"
ST="$VENV/bin/st"
if [ ! -x "$ST" ]; then
  if [ "${1:-}" = --no-install ]; then
    echo "schemathesis $VERSION is not installed in $VENV; run scripts/schemathesis.sh (needs python3 >= 3.9 with venv)" >&2
    exit 1
  fi
  echo "installing schemathesis $VERSION into $VENV" >&2
  rm -rf "$VENV"
  # CPython before 3.11.8 / 3.12.2 fails inside Hypothesis at random ("AST constructor recursion depth
  # mismatch", gh-106905): a 3.13 or later when the machine has one (pyenv's included), else python3.
  python=python3
  for candidate in python3 python3.14 python3.13 "$HOME"/.pyenv/versions/3.1[3-9]*/bin/python3; do
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)' 2>/dev/null; then python=$candidate; break; fi
  done
  "$python" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION" >&2
fi
echo "$ST"
