#!/usr/bin/env bash
# "It runs on Windows" as a test: cross-builds idrecon.exe for
# x86_64-pc-windows-gnu, runs `idrecon.exe demo --users 500 --format json`
# under Wine (Debian's wine64, fresh WINEPREFIX in a temporary directory),
# checks exit code 2 and that the JSON has the same findings as the Linux
# build with the same seed, and checks that the command lines in
# deploy/windows/ parse with that binary. See docs/windows.md.
#
# Installs what it needs when missing (as .ci/run runs it: as root on a
# Debian machine): the Rust target, gcc-mingw-w64-x86-64, wine64.
#
# Wine 8 lacks bcryptprimitives.dll (ProcessPrng), which every Rust >= 1.78
# binary imports; a test-only stand-in (tests/windows/bcryptprimitives.c) is
# compiled into the temporary directory next to the copied .exe. It is never
# put in target/ or shipped.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-pc-windows-gnu
users=500
seed=7

step() { printf '== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

apt_install() {
    # Only what is missing; apt-get update once, only when installing.
    if [ -z "${apt_updated:-}" ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

step "toolchain"
if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi
command -v x86_64-w64-mingw32-gcc >/dev/null || apt_install gcc-mingw-w64-x86-64
[ -x /usr/lib/wine/wine64 ] || apt_install wine64

step "cross-build idrecon.exe ($target, debug)"
cargo build --quiet --target "$target" --bin idrecon
exe="target/$target/debug/idrecon.exe"
step "build the Linux binary for comparison"
cargo build --quiet --bin idrecon
linux_bin=target/debug/idrecon

work="$(mktemp -d)"
cleanup() {
    # Stop this prefix's wineserver first, or it still writes into the
    # prefix while it is removed.
    if [ -d "$work/prefix" ]; then
        WINEPREFIX="$work/prefix" /usr/lib/wine/wineserver64 -k 2>/dev/null || true
        WINEPREFIX="$work/prefix" /usr/lib/wine/wineserver64 -w 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
cp "$exe" "$work/idrecon.exe"
x86_64-w64-mingw32-gcc -shared -O2 -o "$work/bcryptprimitives.dll" \
    tests/windows/bcryptprimitives.c -ladvapi32

export WINEPREFIX="$work/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
wine() { /usr/lib/wine/wine64 "$@"; }

step "wine: idrecon.exe demo --users $users --seed $seed --format json"
set +e
wine "$work/idrecon.exe" demo --users "$users" --seed "$seed" --format json \
    >"$work/windows.json" 2>"$work/windows.err"
code=$?
set -e
if [ "$code" -ne 2 ]; then
    echo "windows-check: idrecon.exe demo exited $code, expected 2 (findings open)" >&2
    tail -n 20 "$work/windows.err" >&2
    exit 1
fi
set +e
"$linux_bin" demo --users "$users" --seed "$seed" --format json >"$work/linux.json" 2>/dev/null
linux_code=$?
set -e
[ "$linux_code" -eq 2 ] || { echo "windows-check: Linux demo exited $linux_code" >&2; exit 1; }

python3 - "$work/windows.json" "$work/linux.json" <<'PY'
import json, sys
win = json.load(open(sys.argv[1], encoding="utf-8"))
lin = json.load(open(sys.argv[2], encoding="utf-8"))
s = win["summary"]
if win.get("schema_version") != 1 or win.get("status") != "completed":
    sys.exit(f"windows-check: unexpected report header {win.get('schema_version')} {win.get('status')}")
if s["findings"] <= 0:
    sys.exit("windows-check: the Windows build found nothing")
if s != lin["summary"]:
    sys.exit(f"windows-check: summaries differ\n windows {s}\n linux   {lin['summary']}")
key = lambda f: (f["kind"], f.get("aad_id") or "", f.get("flow_user_id") or "")
if sorted(map(key, win["findings"])) != sorted(map(key, lin["findings"])):
    sys.exit("windows-check: findings differ between the Windows and Linux builds")
print(f"  ok: {s['people']} people, {s['findings']} findings, same as the Linux build")
PY

step "wine: the default config is %ProgramData%\\idrecon\\idrecon.toml"
set +e
wine "$work/idrecon.exe" history >/dev/null 2>"$work/default.err"
code=$?
set -e
if [ "$code" -ne 3 ] || ! grep -qF 'C:\ProgramData\idrecon\idrecon.toml not found' "$work/default.err"; then
    echo "windows-check: idrecon.exe without --config: exit $code, expected 3 naming C:\ProgramData\idrecon\idrecon.toml" >&2
    cat "$work/default.err" >&2
    exit 1
fi
echo "  ok"

step "deploy/windows command lines parse with idrecon.exe"
python3 - deploy/windows >"$work/arglines" <<'PY'
import sys, pathlib, xml.etree.ElementTree as ET
d = pathlib.Path(sys.argv[1])
ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
task = ET.parse(d / "idrecon-task.xml").getroot()
print("idrecon-task.xml\t" + task.find("t:Actions/t:Exec/t:Arguments", ns).text.strip())
svc = ET.parse(d / "idrecon-service.xml").getroot()
print("idrecon-service.xml\t" + svc.findtext("arguments").strip())
PY
while IFS=$'\t' read -r file args; do
    # --help last: clap checks every argument before it, then exits 0.
    # (No quoting inside the arguments, so word splitting is the Windows one.)
    # shellcheck disable=SC2086
    if ! wine "$work/idrecon.exe" $args --help >"$work/help.out" 2>&1; then
        echo "windows-check: $file: arguments not accepted by idrecon.exe: $args" >&2
        cat "$work/help.out" >&2
        exit 1
    fi
    echo "  ok: $file: $args"
done <"$work/arglines"
step "done"
