#!/usr/bin/env bash
# Conformance: Microsoft's own Python SDKs (msgraph-sdk, MSAL) against the
# simulator, installed from PyPI into a throw-away venv
# (tests/conformance/conformance.py says what is checked).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin idrecon
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check \
  'msgraph-sdk>=1.0' 'msal>=1.31' 'cryptography>=42'
"$work/venv/bin/python" tests/conformance/conformance.py "$PWD/target/debug/idrecon" "$work"
