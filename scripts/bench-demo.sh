#!/usr/bin/env bash
# Whole-run benchmark: `idrecon demo` against the built-in simulator.
#
# Builds the release binary, then for each N runs
#     idrecon demo --users N --format json > /dev/null
# and prints wall time, peak resident memory (max RSS) and the exit code.
# One run covers everything a real run does: generating the tenant, the
# simulator serving Graph/IFS/Flow pages over loopback HTTP, fetching all
# three sources concurrently, correlate/classify/plan, storing the run in
# SQLite and rendering the JSON report. The simulator runs in the same
# process, so the peak RSS includes its copy of the tenant.
#
# Usage: scripts/bench-demo.sh [N ...]      (default: 100000 1000000)
# Env:   IDRECON_BENCH_NO_BUILD=1  skip `cargo build --release`
#        IDRECON_BENCH_LOG=DIR     keep each run's stderr (the log) in DIR
#        IDRECON_BENCH_VERBOSE=1   log at debug level (-v), for phase timings
#
# Exit code 2 from a demo run is expected (findings are open) and counts as
# success here; anything else is reported as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=("$@")
if [ ${#sizes[@]} -eq 0 ]; then
    sizes=(100000 1000000)
fi

if [ -z "${IDRECON_BENCH_NO_BUILD:-}" ]; then
    cargo build --release --locked --quiet
fi
bin="${CARGO_TARGET_DIR:-target}/release/idrecon"
if [ ! -x "$bin" ]; then
    echo "bench-demo: $bin not found (build with: cargo build --release)" >&2
    exit 1
fi

logdir="${IDRECON_BENCH_LOG:-}"
if [ -n "$logdir" ]; then
    mkdir -p "$logdir"
fi

# Runs "$@" with stdout to /dev/null and stderr to $2 of measure();
# prints "SECONDS MAX_RSS_KB EXIT_CODE".
measure() {
    local log="$1"
    shift
    if [ -x /usr/bin/time ]; then
        local tfile
        tfile="$(mktemp)"
        local rc=0
        /usr/bin/time -v -o "$tfile" "$@" >/dev/null 2>"$log" || rc=$?
        local wall rss
        # "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:41.23"
        wall="$(sed -n 's/.*Elapsed (wall clock) time[^:]*: //p' "$tfile" |
            awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')"
        rss="$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tfile")"
        rm -f "$tfile"
        echo "$wall $rss $rc"
    else
        # Fallback without GNU time: Python's resource module (ru_maxrss of
        # the waited-for child, in KiB on Linux).
        python3 - "$log" "$@" <<'PY'
import resource, subprocess, sys, time
log, cmd = sys.argv[1], sys.argv[2:]
start = time.monotonic()
with open(log, "wb") as err, open("/dev/null", "wb") as out:
    rc = subprocess.call(cmd, stdout=out, stderr=err)
wall = time.monotonic() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"{wall:.2f} {rss} {rc}")
PY
    fi
}

printf '%-10s %10s %12s %6s\n' "users" "wall (s)" "peak RSS" "exit"
status=0
for n in "${sizes[@]}"; do
    if [ -n "$logdir" ]; then
        log="$logdir/demo-$n.log"
    else
        log="$(mktemp)"
    fi
    verbosity=()
    if [ -n "${IDRECON_BENCH_VERBOSE:-}" ]; then
        verbosity=(-v)
    fi
    read -r wall rss rc < <(measure "$log" "$bin" "${verbosity[@]}" --log-format text demo --users "$n" --format json)
    printf '%-10s %10.1f %9.0f MB %6s\n' "$n" "$wall" "$((rss / 1024))" "$rc"
    if [ "$rc" != 0 ] && [ "$rc" != 2 ]; then
        echo "bench-demo: demo --users $n exited $rc; last log lines:" >&2
        tail -n 20 "$log" >&2
        status=1
    fi
    if [ -z "$logdir" ]; then
        rm -f "$log"
    fi
done
exit "$status"
