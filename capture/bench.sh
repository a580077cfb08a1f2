#!/usr/bin/env bash
# Overhead of the capture library on a Python loop of point SELECTs (by hand, not a test).
# Times N_QUERIES (default 100000) `SELECT v FROM kv WHERE k = ?` with and without the preload,
# alternating, ROUNDS (default 5) rounds each, and prints the medians and their ratio, of wall
# time and of the process's CPU time (user+sys; steadier on a busy machine). The capture run
# includes writing the trace (~240 bytes a statement).
# Usage: capture/bench.sh [--redact]     (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
N_QUERIES=${N_QUERIES:-100000}
ROUNDS=${ROUNDS:-5}
REDACT=0
[[ "${1:-}" == "--redact" ]] && REDACT=1

timeout -k 5 600 cargo build --release -p litehammer-capture >&2
LIB="$(pwd)/target/release/liblitehammer_capture.so"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cat > "$WORK/loop.py" <<'PY'
import sqlite3, sys, time
n = int(sys.argv[2])
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("CREATE TABLE IF NOT EXISTS kv(k INTEGER PRIMARY KEY, v TEXT)")
if con.execute("SELECT count(*) FROM kv").fetchone()[0] == 0:
    con.executemany("INSERT INTO kv VALUES(?, ?)", ((i, f"value-{i}") for i in range(1000)))
cur = con.cursor()
t0, c0 = time.perf_counter_ns(), time.process_time_ns()
for i in range(n):
    cur.execute("SELECT v FROM kv WHERE k = ?", (i % 1000,)).fetchone()
t1, c1 = time.perf_counter_ns(), time.process_time_ns()
con.close()
print(t1 - t0, c1 - c0)
PY

run() {  # $1 = plain|capture; prints the loop's ns
    if [[ $1 == capture ]]; then
        rm -f "$WORK"/trace.*
        LD_PRELOAD="$LIB" LITEHAMMER_CAPTURE_OUT="$WORK/trace" LITEHAMMER_CAPTURE_REDACT=$REDACT \
            timeout -k 5 300 python3 "$WORK/loop.py" "$WORK/db.sqlite" "$N_QUERIES"
    else
        timeout -k 5 300 python3 "$WORK/loop.py" "$WORK/db.sqlite" "$N_QUERIES"
    fi
}

echo "before: $(uptime)"
run plain >/dev/null  # create and warm the database
wall_p=() wall_c=() cpu_p=() cpu_c=()
for r in $(seq "$ROUNDS"); do
    read -r w c < <(run plain); wall_p+=("$w"); cpu_p+=("$c")
    read -r w c < <(run capture); wall_c+=("$w"); cpu_c+=("$c")
    echo "round $r: plain wall ${wall_p[-1]} cpu ${cpu_p[-1]} ns; capture wall ${wall_c[-1]} cpu ${cpu_c[-1]} ns" >&2
done
lines=$(cat "$WORK"/trace.* | wc -l)
bytes=$(cat "$WORK"/trace.* | wc -c)
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
minimum() { printf '%s\n' "$@" | sort -n | head -1; }
report() {  # $1 label, $2 plain median, $3 capture median
    awk -v what="$1" -v p="$2" -v c="$3" -v n="$N_QUERIES" 'BEGIN {
        printf "%-4s plain %8.1f ms (%.2f us/query), capture %8.1f ms (%.2f us/query): ratio %.3f (%+.1f %%, %+.2f us/query)\n",
            what, p/1e6, p/n/1e3, c/1e6, c/n/1e3, c/p, (c/p-1)*100, (c-p)/n/1e3
    }'
}
echo "queries $N_QUERIES, rounds $ROUNDS, redact $REDACT; last trace $lines lines, $bytes bytes"
echo "medians:"
report wall "$(median "${wall_p[@]}")" "$(median "${wall_c[@]}")"
report cpu "$(median "${cpu_p[@]}")" "$(median "${cpu_c[@]}")"
echo "minima (the least disturbed round of each):"
report wall "$(minimum "${wall_p[@]}")" "$(minimum "${wall_c[@]}")"
report cpu "$(minimum "${cpu_p[@]}")" "$(minimum "${cpu_c[@]}")"
echo "after: $(uptime)"
