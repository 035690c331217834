#!/usr/bin/env bash
# Whole-run benchmark of idrecon against the built-in simulator.
#
# Builds the release binary, then for each N measures wall time and peak
# resident memory (max RSS) of:
#
#  1. demo       `idrecon demo --users N --format json > /dev/null`: one
#                process generates the tenant, serves it from the in-process
#                simulator over loopback HTTP, fetches the three sources
#                concurrently, reconciles, stores the run in SQLite and
#                renders the JSON report. Peak RSS and CPU include the
#                simulator's own copy of the tenant.
#  2. reconcile  `idrecon reconcile --format json > /dev/null` against a
#                separate `idrecon sim --users N` process, so the figures are
#                idrecon's alone: a first run (full Azure listing, all
#                findings new) and a second run (Azure delta, findings
#                persisting), both with a fresh store in a temporary directory.
#
# Usage: scripts/bench-demo.sh [N ...]      (default: 100000 1000000)
# Env:   IDRECON_BENCH_NO_BUILD=1  skip `cargo build --release`
#        IDRECON_BENCH_LOG=DIR     keep each run's stderr (the log) in DIR
#        IDRECON_BENCH_VERBOSE=1   log at debug level (-v), for phase timings
#        IDRECON_BENCH_DEMO_ONLY=1 measure only `demo`
#
# Exit code 2 from a run is expected (findings are open) and counts as
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

# measure LOG CMD...: runs CMD with stdout to /dev/null and stderr to LOG;
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
        wall="$(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$tfile" |
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

logfile() { # NAME -> path of the log file for that run
    if [ -n "$logdir" ]; then
        echo "$logdir/$1.log"
    else
        echo "$work/$1.log"
    fi
}

verbosity=()
if [ -n "${IDRECON_BENCH_VERBOSE:-}" ]; then
    verbosity=(-v)
fi

work="$(mktemp -d)"
sim_pid=""
# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
    if [ -n "$sim_pid" ]; then
        kill "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

status=0
# row RUN USERS WALL RSS_KB EXIT LOG
row() {
    printf '%-24s %9s %10.1f %8.0f MiB %6s\n' "$1" "$2" "$3" "$(($4 / 1024))" "$5"
    if [ "$5" != 0 ] && [ "$5" != 2 ]; then
        echo "bench-demo: $1 with $2 users exited $5; last log lines:" >&2
        tail -n 20 "$6" >&2
        status=1
    fi
}

printf '%-24s %9s %10s %12s %6s\n' "run" "people" "wall (s)" "peak RSS" "exit"
for n in "${sizes[@]}"; do
    log="$(logfile "demo-$n")"
    read -r wall rss rc < <(measure "$log" "$bin" "${verbosity[@]}" --log-format text demo --users "$n" --format json)
    row "demo" "$n" "$wall" "$rss" "$rc" "$log"

    if [ -n "${IDRECON_BENCH_DEMO_ONLY:-}" ]; then
        continue
    fi
    # A standalone simulator on a free port; its stdout is a ready config.
    "$bin" --log-format text sim --listen 127.0.0.1:0 --users "$n" >"$work/sim.toml" 2>"$work/sim.err" &
    sim_pid=$!
    for _ in $(seq 1 600); do
        if grep -q "listening on" "$work/sim.err" 2>/dev/null; then
            break
        fi
        if ! kill -0 "$sim_pid" 2>/dev/null; then
            echo "bench-demo: the simulator did not start:" >&2
            cat "$work/sim.err" >&2
            exit 1
        fi
        sleep 0.5
    done
    db="sqlite://$work/bench-$n.db"
    for run in 1 2; do
        log="$(logfile "reconcile-$n-$run")"
        read -r wall rss rc < <(measure "$log" "$bin" "${verbosity[@]}" --log-format text \
            --config "$work/sim.toml" --db "$db" reconcile --format json)
        label="reconcile (first run)"
        if [ "$run" = 2 ]; then
            label="reconcile (second run)"
        fi
        row "$label" "$n" "$wall" "$rss" "$rc" "$log"
    done
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
    sim_pid=""
    rm -f "$work"/bench-"$n".db*
done
exit "$status"
