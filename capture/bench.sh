#!/usr/bin/env bash
# Overhead of the capture library on a Python loop of point SELECTs (by hand, not a test).
# Times N_QUERIES (default 100000) `SELECT v FROM kv WHERE k = ?` with and without the preload,
# alternating, ROUNDS (default 5) rounds each, and prints the medians and their ratio.
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
t0 = time.perf_counter_ns()
for i in range(n):
    cur.execute("SELECT v FROM kv WHERE k = ?", (i % 1000,)).fetchone()
t1 = time.perf_counter_ns()
con.close()
print(t1 - t0)
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

run plain >/dev/null  # create and warm the database
plain=() capture=()
for r in $(seq "$ROUNDS"); do
    plain+=("$(run plain)")
    capture+=("$(run capture)")
    echo "round $r: plain ${plain[-1]} ns, capture ${capture[-1]} ns" >&2
done
lines=$(cat "$WORK"/trace.* | wc -l)
bytes=$(cat "$WORK"/trace.* | wc -c)
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mp=$(median "${plain[@]}") mc=$(median "${capture[@]}")
awk -v p="$mp" -v c="$mc" -v n="$N_QUERIES" -v l="$lines" -v b="$bytes" -v red="$REDACT" 'BEGIN {
    printf "queries %d, redact %d: median plain %.1f ms (%.2f us/query), capture %.1f ms (%.2f us/query)\n", n, red, p/1e6, p/n/1e3, c/1e6, c/n/1e3
    printf "ratio %.3f (%+.1f %%), +%.2f us/query; last trace %d lines, %.1f MB\n", c/p, (c/p-1)*100, (c-p)/n/1e3, l, b/1e6
}'
