"""Writing litehammer traces (docs/trace-format.md, "v": 1) from Python.

Shared by django_trace.py and sqlite3_trace.py. Same file layout as the preload library:
one file per process and thread, PREFIX.PID.TID.jsonl, each starting with a header line; the
buffer is written when it passes 64 KiB, on flush()/close and at interpreter exit. After
os.fork() the child drops what it inherited. Merge the files as for the library (headers
first, then events sorted by "ts"), e.g. with `litehammer capture`'s merge step.
"""
import atexit
import itertools
import json
import os
import re
import sqlite3
import sys
import threading
import time

FORMAT_VERSION = 1
FLUSH_AT = 64 * 1024
_conn_ids = itertools.count(1)
_lock = threading.Lock()
_writers = []  # every live TraceWriter of this process, for the flush at exit


def next_conn_id():
    return next(_conn_ids)


class TraceWriter:
    """Per-thread buffers for one output prefix."""

    def __init__(self, prefix, source):
        self.prefix = os.fspath(prefix)
        self.source = source
        self._local = threading.local()
        with _lock:
            _writers.append(self)

    def _buf(self):
        st = getattr(self._local, "state", None)
        if st is None or st["pid"] != os.getpid():
            st = {"pid": os.getpid(), "tid": threading.get_native_id(), "lines": [], "size": 0}
            self._local.state = st
            with _lock:
                self._all().append(st)
            self._header(st)
        return st

    def _all(self):
        pid = os.getpid()
        if getattr(self, "_states_pid", None) != pid:
            self._states, self._states_pid = [], pid
        return self._states

    def _header(self, st):
        self._append(st, {
            "v": FORMAT_VERSION, "kind": "header", "ts": time.monotonic_ns(), "pid": st["pid"],
            "tid": st["tid"], "ppid": os.getppid(), "source": self.source, "clock": "monotonic",
            "anchor_mono_ns": time.monotonic_ns(), "anchor_wall_ns": time.time_ns(),
            "sqlite_version": sqlite3.sqlite_version, "exe": sys.executable, "redacted": False,
        })

    def _append(self, st, obj):
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"
        st["lines"].append(line)
        st["size"] += len(line)
        if st["size"] >= FLUSH_AT:
            self._flush_state(st)

    def event(self, kind, ts, **fields):
        """Appends one event line; `ts` is time.monotonic_ns() at its start."""
        st = self._buf()
        obj = {"v": FORMAT_VERSION, "kind": kind, "ts": ts, "pid": st["pid"], "tid": st["tid"]}
        obj.update(fields)
        self._append(st, obj)

    def _flush_state(self, st):
        if not st["lines"] or st["pid"] != os.getpid():
            return
        path = f"{self.prefix}.{st['pid']}.{st['tid']}.jsonl"
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write("".join(st["lines"]))
        except OSError:
            pass  # like the library: never break the application
        st["lines"].clear()
        st["size"] = 0

    def flush(self):
        """Writes this thread's buffer."""
        st = getattr(self._local, "state", None)
        if st is not None:
            self._flush_state(st)

    def flush_all(self):
        with _lock:
            states = list(self._all())
        for st in states:
            self._flush_state(st)


@atexit.register
def _flush_at_exit():
    for w in list(_writers):
        w.flush_all()


def stmt_fields(conn_id, dur_ns, sql, expanded, changes, autocommit, readonly=None):
    """The fields of a "stmt" line (besides v/kind/ts/pid/tid)."""
    txn, pragma = classify(sql)
    return {
        "conn": conn_id, "dur_ns": dur_ns, "sql": sql, "expanded": expanded, "changes": changes,
        "autocommit": autocommit, "readonly": readonly, "txn": txn, "pragma": pragma,
    }


_LEAD = re.compile(r"\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*([A-Za-z]*)\s*([A-Za-z]*)\s*([A-Za-z]*)", re.S)


def classify(sql):
    """(txn, pragma) as the library computes them from the statement's leading keywords."""
    m = _LEAD.match(sql or "")
    w = [x.upper() for x in m.groups()] if m else ["", "", ""]
    txn = {"BEGIN": "begin", "COMMIT": "commit", "END": "commit", "SAVEPOINT": "savepoint",
           "RELEASE": "release"}.get(w[0])
    if w[0] == "ROLLBACK":
        nxt = w[2] if w[1] == "TRANSACTION" else w[1]
        txn = "rollback_to" if nxt == "TO" else "rollback"
    return txn, w[0] == "PRAGMA"


def sql_literal(v):
    """A Python value as SQLite's sqlite3_expanded_sql would print the bound value."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "x'" + bytes(v).hex() + "'"
    return "'" + str(v).replace("'", "''") + "'"


def expand(sql, params):
    """Substitutes `?`/`?NNN`/`:name` parameters outside strings, identifiers and comments."""
    if not params:
        return sql
    out, i, n, pos = [], 0, len(sql), 0
    named = isinstance(params, dict)
    while i < n:
        c = sql[i]
        if c in "'\"`":
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i:j + 1])
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(sql[i:j])
            i = j
        elif c == "?" and not named:
            j = i + 1
            while j < n and sql[j].isdigit():
                j += 1
            idx = int(sql[i + 1:j]) - 1 if j > i + 1 else pos
            pos = idx + 1
            out.append(sql_literal(params[idx]) if idx < len(params) else sql[i:j])
            i = j
        elif c in ":@$" and named and i + 1 < n and (sql[i + 1].isalnum() or sql[i + 1] == "_"):
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            key = sql[i + 1:j]
            out.append(sql_literal(params[key]) if key in params else sql[i:j])
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)
