"""Workload for capture/tests/preload.rs: a few processes (fork and spawn) and threads that run a
known list of statements with CPU work in between, each writing what it ran to
EXPECT_DIR/expect.<pid>.<n>.json (the expanded SQL, as sqlite3_expanded_sql prints it)."""
import json
import multiprocessing as mp
import os
import sqlite3
import sys
import threading

MARKER = sys.argv[2]  # a unique text that must not survive redaction
NUMBER = int(sys.argv[3])  # a unique integer that must not survive redaction
EXPECT_DIR = sys.argv[1]
N_INSERT, N_SELECT = 40, 60


def lit(v):
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return str(v)


def spin():
    return sum(i * i for i in range(3000))


def run(db_path, tag):
    ran = []
    con = sqlite3.connect(db_path, isolation_level=None)

    def ex(sql, params=()):
        cur = con.execute(sql, params)
        rows = cur.fetchall()
        expanded = sql
        for p in params:
            expanded = expanded.replace("?", lit(p), 1)
        ran.append(expanded)
        spin()
        return rows

    ex("PRAGMA journal_mode=WAL")
    ex("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")
    ex("BEGIN IMMEDIATE")
    for k in range(N_INSERT):
        ex("INSERT INTO t(id, name, n) VALUES(?, ?, ?)", (k, f"{MARKER}-{tag}-{k}'q", NUMBER + k))
    ex("COMMIT")
    for k in range(N_SELECT):
        rows = ex("SELECT name, n FROM t WHERE id = ?", (k % N_INSERT,))
        assert len(rows) == 1
    ex("UPDATE t SET n = n + 1 WHERE id < 5")
    ex("SAVEPOINT sp1")
    ex("DELETE FROM t WHERE id = ?", (N_INSERT - 1,))
    ex("RELEASE sp1")
    ex("SELECT count(*) FROM t")
    con.close()
    name = f"expect.{os.getpid()}.{threading.get_native_id()}.json"
    with open(os.path.join(EXPECT_DIR, name), "w") as f:
        json.dump({"pid": os.getpid(), "tid": threading.get_native_id(), "opens": 1, "closes": 1, "stmts": ran}, f)


def worker(i):
    # One extra thread with its own connection in each worker.
    t = threading.Thread(target=run, args=(os.path.join(EXPECT_DIR, f"w{i}t.db"), f"{i}t"))
    t.start()
    run(os.path.join(EXPECT_DIR, f"w{i}.db"), str(i))
    t.join()


if __name__ == "__main__":
    procs = [mp.get_context("fork").Process(target=worker, args=(0,)),
             mp.get_context("fork").Process(target=worker, args=(1,)),
             mp.get_context("spawn").Process(target=worker, args=(2,))]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0, p.exitcode
    # The parent: a connection it never closes (flushed at exit).
    con = sqlite3.connect(":memory:")
    con.execute("SELECT 1").fetchall()
    with open(os.path.join(EXPECT_DIR, f"expect.{os.getpid()}.main.json"), "w") as f:
        json.dump({"pid": os.getpid(), "tid": threading.get_native_id(), "opens": 1, "closes": None,
                   "stmts": ["SELECT 1"]}, f)
    print(sqlite3.sqlite_version)
