#!/usr/bin/env bash
# Checks the deployment files that can be checked without a running system:
#   - systemd units: `systemd-analyze verify` (any warning fails) and
#     `systemd-analyze security --offline` (exposure must stay <= 2.0);
#   - Kubernetes manifests: YAML parses and the safety settings are present;
#   - Windows task: XML is well-formed, one instance at a time, and the
#     findings exit code is 0 (scripts/windows-check.sh runs its arguments
#     through the Windows binary).
# Needs systemd-analyze (Debian package "systemd"; works without systemd as
# PID 1) and python3 with PyYAML (Debian "python3-yaml").
#
# IDRECON_BIN: binary to substitute for /usr/local/bin/idrecon while
# verifying (default: /usr/bin/true, since verify checks that ExecStart is
# executable).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${IDRECON_BIN:-$(command -v true)}"
status=0

command -v systemd-analyze >/dev/null || { echo "verify.sh: systemd-analyze not found (apt-get install systemd)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "verify.sh: python3 not found" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
units=()
for unit in "$here"/systemd/*.service "$here"/systemd/*.timer; do
    name="$(basename "$unit")"
    sed "s#/usr/local/bin/idrecon#${bin}#g" "$unit" >"$work/$name"
    units+=("$name")
done

echo "== systemd-analyze verify ${units[*]}"
if ! out="$(cd "$work" && systemd-analyze verify --man=no "${units[@]}" 2>&1)"; then
    echo "$out"
    status=1
elif [ -n "$out" ]; then
    echo "$out"
    echo "verify.sh: systemd-analyze printed warnings (treated as errors)" >&2
    status=1
fi

for unit in "${units[@]}"; do
    case "$unit" in *.service) ;; *) continue ;; esac
    echo "== systemd-analyze security $unit"
    if ! (cd "$work" && systemd-analyze security --offline=true --threshold=20 --no-pager "./$unit" | tail -n 1); then
        echo "verify.sh: $unit exposure above 2.0" >&2
        status=1
    fi
done

echo "== kubernetes manifests"
python3 - "$here/kubernetes" <<'PY' || status=1
import sys, pathlib, yaml

docs = {}
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.yaml")):
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            docs[(doc["kind"], doc["metadata"]["name"])] = doc
            print(f"  {path.name}: {doc['kind']}/{doc['metadata']['name']}")

def need(cond, what):
    if not cond:
        sys.exit(f"verify.sh: kubernetes: {what}")

cron = docs.get(("CronJob", "idrecon"))
need(cron, "CronJob idrecon missing")
spec = cron["spec"]
need(spec.get("concurrencyPolicy") == "Forbid", "concurrencyPolicy must be Forbid")
pod = spec["jobTemplate"]["spec"]["template"]["spec"]
need(pod["securityContext"].get("runAsNonRoot") is True, "pod runAsNonRoot")
(container,) = pod["containers"]
args = container["args"]
need("--findings-exit-code" in args and args[args.index("--findings-exit-code") + 1] == "0",
     "the Job must run with --findings-exit-code 0 (a night with findings is not a failed Job)")
sc = container["securityContext"]
need(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
need(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
volumes = {v["name"]: v for v in pod["volumes"]}
need(any("persistentVolumeClaim" in v for v in volumes.values()), "store on a PVC")
need(any("secret" in v for v in volumes.values()), "secrets mounted from a Secret")
for v in volumes.values():
    if "persistentVolumeClaim" in v:
        claim = v["persistentVolumeClaim"]["claimName"]
        need(("PersistentVolumeClaim", claim) in docs, f"PVC {claim} not defined")
    if "secret" in v:
        secret = v["secret"]["secretName"]
        need(("Secret", secret) in docs, f"Secret {secret} not defined")
print("  ok")
PY

echo "== windows task XML"
python3 - "$here/windows/idrecon-task.xml" <<'PY' || status=1
import sys, xml.etree.ElementTree as ET

ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
root = ET.parse(sys.argv[1]).getroot()
policy = root.find("t:Settings/t:MultipleInstancesPolicy", ns)
if policy is None or policy.text != "IgnoreNew":
    sys.exit("verify.sh: windows task: MultipleInstancesPolicy must be IgnoreNew")
command = root.find("t:Actions/t:Exec/t:Command", ns)
if command is None or not command.text.endswith("idrecon.exe"):
    sys.exit("verify.sh: windows task: Exec/Command must run idrecon.exe")
arguments = root.find("t:Actions/t:Exec/t:Arguments", ns)
if arguments is None or "--findings-exit-code 0" not in arguments.text:
    sys.exit("verify.sh: windows task: Arguments must pass --findings-exit-code 0")
print("  ok")
PY

exit "$status"
