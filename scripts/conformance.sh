#!/usr/bin/env bash
# Conformance: Microsoft's own Python SDKs (msgraph-sdk, MSAL) against the
# simulator, installed from PyPI into a throw-away venv
# (tests/conformance/conformance.py says what is checked).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin idrecon
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "conformance: needs Python 3.11 or later (tomllib)" >&2; exit 1; }
python3 -m venv "$work/venv"
# uv installs msgraph-sdk's thousands of files in seconds (pip takes minutes).
"$work/venv/bin/pip" install --quiet --no-compile --disable-pip-version-check uv
"$work/venv/bin/uv" pip install --quiet --python "$work/venv/bin/python" \
  'msgraph-sdk>=1.0' 'msal>=1.31' 'cryptography>=42'
timeout 600 "$work/venv/bin/python" tests/conformance/conformance.py "$PWD/target/debug/idrecon" "$work"
