#!/usr/bin/env bash
# Whole-run benchmark of idrecon against the built-in simulator, as ratios to
# the transfer floor measured in the same run of this script.
#
# Builds the release binary and the floor benchmark (benches/floor.rs), then
# for each N starts a separate `idrecon sim --users N` and measures, in this
# order (interleaved, so the machine's load hits both alike):
#
#  floor (first)    benches/floor.rs walking the pages of a first run with no
#                   processing: Graph `$deltatoken=latest` + `/users?$top=999`,
#                   IFS `$skip` pages 4 at a time, Flow's cursor; the three
#                   sources concurrently, each page parsed into a
#                   serde_json::Value and dropped.
#  reconcile (first)  `idrecon reconcile --format json` with a fresh store:
#                   full Azure listing, all findings new.
#  floor (second)   the same with an empty Graph delta round.
#  reconcile (second) the stored delta link: no changes, findings persisting.
#  demo             `idrecon demo --users N --format json`: one process
#                   generates the tenant, serves it in-process over loopback,
#                   runs, reconciles, stores and renders (ratio to the first
#                   run's floor; `generate` is the tenant generation alone).
#
# Every reconcile's JSON report is checked against the generator's expected
# findings (same keys, kinds and causes; `floor check`): a run that is fast
# but wrong fails the benchmark.
#
# Wall time and peak RSS come from /usr/bin/time -v (or Python's resource
# module); the floor reports its own (VmHWM).
#
# Usage: scripts/bench-demo.sh [N ...]      (default: 100000 1000000)
# Env:   IDRECON_BENCH_NO_BUILD=1   skip the builds
#        IDRECON_BENCH_LOG=DIR      keep each run's stderr (the log) in DIR
#        IDRECON_BENCH_VERBOSE=1    log at debug level (-v), for phase timings
#        IDRECON_BENCH_REPEAT=K     measure each floor/run pair K times (default 1)
#        IDRECON_BENCH_NO_DEMO=1    skip `demo`
#        IDRECON_BENCH_BASELINE=BIN another idrecon binary (e.g. an older
#                                   build) measured interleaved with this one,
#                                   against the same floors: before and after
#        IDRECON_BENCH_LATENCY=N    instead: the latency-bound run with N people,
#                                   every page of all three sources 100 ms slow
#                                   (first run only; the floor is then the
#                                   longest sequential chain of pages)
#
# Exit code 2 from a run is expected (findings are open) and counts as
# success here; anything else, or findings that differ, is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=("$@")
if [ ${#sizes[@]} -eq 0 ]; then
    sizes=(100000 1000000)
fi
latency="${IDRECON_BENCH_LATENCY:-}"
if [ -n "$latency" ]; then
    sizes=("$latency")
fi
repeat="${IDRECON_BENCH_REPEAT:-1}"
baseline="${IDRECON_BENCH_BASELINE:-}"

if [ -z "${IDRECON_BENCH_NO_BUILD:-}" ]; then
    cargo build --release --locked --quiet
    cargo bench --locked --quiet --bench floor --no-run 2>/dev/null
fi
bin="${CARGO_TARGET_DIR:-target}/release/idrecon"
if [ ! -x "$bin" ]; then
    echo "bench-demo: $bin not found (build with: cargo build --release)" >&2
    exit 1
fi
floor_bin="$(find "${CARGO_TARGET_DIR:-target}/release/deps" -maxdepth 1 -type f -executable -name 'floor-*' -printf '%T@ %p\n' |
    sort -rn | head -n 1 | cut -d' ' -f2)"
if [ -z "$floor_bin" ]; then
    echo "bench-demo: the floor benchmark is not built (cargo bench --bench floor --no-run)" >&2
    exit 1
fi

logdir="${IDRECON_BENCH_LOG:-}"
if [ -n "$logdir" ]; then
    mkdir -p "$logdir"
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

# measure LOG OUT CMD...: runs CMD with stdout to OUT and stderr to LOG;
# prints "SECONDS MAX_RSS_KB EXIT_CODE".
measure() {
    local log="$1" out="$2"
    shift 2
    if [ -x /usr/bin/time ]; then
        local tfile rc=0 wall rss
        tfile="$(mktemp)"
        /usr/bin/time -v -o "$tfile" "$@" >"$out" 2>"$log" || rc=$?
        # "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:41.23"
        wall="$(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$tfile" |
            awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')"
        rss="$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tfile")"
        rm -f "$tfile"
        echo "$wall $rss $rc"
    else
        python3 - "$log" "$out" "$@" <<'PY'
import resource, subprocess, sys, time
log, out, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
start = time.monotonic()
with open(log, "wb") as err, open(out, "wb") as o:
    rc = subprocess.call(cmd, stdout=o, stderr=err)
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

# field NAME LINE: the value of NAME=… in a floor output line.
field() {
    sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"
}

status=0
# row RUN PEOPLE WALL FLOOR RSS_KB EXIT [LOG]
row() {
    local ratio="-"
    if [ "$4" != "-" ]; then
        ratio="$(awk -v w="$3" -v f="$4" 'BEGIN { printf "%.2f", w / f }')"
    fi
    printf '%-26s %9s %9.2f %9s %7s %8.0f MiB %5s\n' "$1" "$2" "$3" "$4" "$ratio" "$(($5 / 1024))" "$6"
    if [ "$6" != 0 ] && [ "$6" != 2 ]; then
        echo "bench-demo: $1 with $2 people exited $6; last log lines:" >&2
        tail -n 20 "${7:-/dev/null}" >&2
        status=1
    fi
}

# floor_run NAME PEOPLE [--second]: measures the floor; sets $floor_wall.
floor_run() {
    local name="$1" n="$2" line
    shift 2
    if ! line="$("$floor_bin" walk --config "$work/sim.toml" "$@" 2>"$(logfile "floor-$n")")"; then
        echo "bench-demo: the floor failed:" >&2
        cat "$(logfile "floor-$n")" >&2
        exit 1
    fi
    floor_wall="$(field wall_s "$line")"
    row "$name" "$n" "$floor_wall" "-" "$(field peak_rss_kib "$line")" 0
    printf '%-26s graph %s s (%s pages), IFS %s s (%s pages), Flow %s s (%s pages)\n' "" \
        "$(field graph_s "$line")" "$(field graph_pages "$line")" \
        "$(field ifs_s "$line")" "$(field ifs_pages "$line")" \
        "$(field flow_s "$line")" "$(field flow_pages "$line")"
}

# check_report REPORT PEOPLE SEED: the findings are the generator's.
check_report() {
    local out
    if ! out="$("$floor_bin" check --report "$1" --users "$2" --seed "$3" 2>&1)"; then
        echo "bench-demo: $out" >&2
        status=1
    fi
}

start_sim() { # PEOPLE [FAULTS]
    local faults=()
    if [ -n "${2:-}" ]; then
        faults=(--faults "$2")
    fi
    "$bin" --log-format text sim --listen 127.0.0.1:0 --users "$1" "${faults[@]}" \
        >"$work/sim.toml" 2>"$work/sim.err" &
    sim_pid=$!
    for _ in $(seq 1 1200); do
        if grep -q "listening on" "$work/sim.err" 2>/dev/null; then
            return
        fi
        if ! kill -0 "$sim_pid" 2>/dev/null; then
            echo "bench-demo: the simulator did not start:" >&2
            cat "$work/sim.err" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "bench-demo: the simulator did not start in 10 minutes" >&2
    exit 1
}

stop_sim() {
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
    sim_pid=""
}

# reconcile_run LABEL PEOPLE DB FLOOR LOGNAME [BIN]
reconcile_run() {
    local log report wall rss rc
    log="$(logfile "$5")"
    report="$work/report.json"
    read -r wall rss rc < <(measure "$log" "$report" "${6:-$bin}" "${verbosity[@]}" --log-format text \
        --config "$work/sim.toml" --db "$3" reconcile --format json)
    row "$1" "$2" "$wall" "$4" "$rss" "$rc" "$log"
    check_report "$report" "$2" 1
    rm -f "$report"
}

printf '%-26s %9s %9s %9s %7s %12s %5s\n' "run" "people" "wall (s)" "floor (s)" "ratio" "peak RSS" "exit"
for n in "${sizes[@]}"; do
    if [ -n "$latency" ]; then
        start_sim "$n" "graph:slow=100x*,ifs:slow=100x*,flow:slow=100x*"
    else
        start_sim "$n"
    fi
    for _ in $(seq 1 "$repeat"); do
        db="sqlite://$work/bench-$n.db"
        base_db="sqlite://$work/base-$n.db"
        floor_run "floor (first run)" "$n"
        first_floor="$floor_wall"
        if [ -n "$baseline" ]; then
            reconcile_run "baseline (first run)" "$n" "$base_db" "$first_floor" "baseline-$n-1" "$baseline"
        fi
        reconcile_run "reconcile (first run)" "$n" "$db" "$first_floor" "reconcile-$n-1"
        if [ -n "$latency" ]; then
            rm -f "$work"/bench-"$n".db* "$work"/base-"$n".db*
            continue
        fi
        floor_run "floor (second run)" "$n" --second
        if [ -n "$baseline" ]; then
            reconcile_run "baseline (second run)" "$n" "$base_db" "$floor_wall" "baseline-$n-2" "$baseline"
        fi
        reconcile_run "reconcile (second run)" "$n" "$db" "$floor_wall" "reconcile-$n-2"
        rm -f "$work"/bench-"$n".db* "$work"/base-"$n".db*
    done
    stop_sim
    if [ -n "$latency" ] || [ -n "${IDRECON_BENCH_NO_DEMO:-}" ]; then
        continue
    fi
    log="$(logfile "demo-$n")"
    read -r wall rss rc < <(measure "$log" "$work/demo.json" "$bin" "${verbosity[@]}" \
        --log-format text demo --users "$n" --format json)
    row "demo" "$n" "$wall" "$first_floor" "$rss" "$rc" "$log"
    check_report "$work/demo.json" "$n" 1
    rm -f "$work/demo.json"
    gen="$("$floor_bin" generate --users "$n")"
    printf '%-26s %9s %9.2f\n' "  of which: generate" "$n" "$(field wall_s "$gen")"
done
exit "$status"
