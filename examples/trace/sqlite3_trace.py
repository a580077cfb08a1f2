"""A litehammer trace from Python's sqlite3 module, without the preload library.

    import sqlite3_trace
    con = sqlite3_trace.connect("app.db", prefix="/tmp/trace")   # like sqlite3.connect
    con.execute("INSERT INTO t VALUES(?)", (1,))
    con.close()
    # files /tmp/trace.PID.TID.jsonl; merge as for the library

How it works and what it cannot see:
- `Connection.set_trace_callback` reports each statement as it starts, with its expanded SQL
  (parameters substituted, Python 3.11+), including the BEGIN/COMMIT the sqlite3 module issues
  itself. It gives no duration and no "SQL as written", so the wrapper also times every
  execute()/executemany()/executescript()/commit()/rollback() with time.monotonic_ns():
  a statement's dur_ns runs from its trace callback to the next statement's callback in the same
  call, or to the call's return. Time spent stepping rows later (fetchone/fetchall after
  execute) is not included, so dur_ns of a SELECT returning many rows is too small.
- "sql" is the text passed to execute() for the statement the caller asked for; for statements
  the module issued itself (BEGIN, COMMIT) it is the traced text.
- "changes" is cursor.rowcount (0 for statements that do not modify rows; for executemany the
  total split evenly over the executions, null when it does not divide);
  "autocommit" is `not in_transaction` after the call; "readonly" is null (unknown).
- Statements with triggers: Python reports the outer statement again for each trigger
  sub-statement, so they may appear more than once.
- Installing your own set_trace_callback on the wrapped connection replaces this one.
"""
import os
import sqlite3
import time

from litehammer_trace import TraceWriter, classify, next_conn_id, stmt_fields

_writers = {}


def _writer(prefix):
    prefix = os.fspath(prefix)
    if prefix not in _writers:
        _writers[prefix] = TraceWriter(prefix, "python-sqlite3-trace")
    return _writers[prefix]


def connect(database, *args, prefix=None, **kwargs):
    """sqlite3.connect plus tracing to `prefix` (default $LITEHAMMER_TRACE_OUT)."""
    prefix = prefix or os.environ.get("LITEHAMMER_TRACE_OUT")
    con = sqlite3.connect(database, *args, **kwargs)
    if not prefix:
        return con
    return TracedConnection(con, database, _writer(prefix))


class _Tracer:
    """Collects the statements one call starts and writes their lines when it returns."""

    def __init__(self, con, writer, conn_id):
        self.con, self.writer, self.conn_id = con, writer, conn_id
        self.started = []
        con.set_trace_callback(self._on_stmt)

    def _on_stmt(self, expanded):
        self.started.append((time.monotonic_ns(), expanded))

    def call(self, fn, sql, cursor_of_result, *args):
        self.started.clear()
        err = None
        try:
            result = fn(*args)
            return result
        except BaseException as e:  # still record what ran
            err = e
            result = None
            raise
        finally:
            end = time.monotonic_ns()
            started, self.started = self.started, []
            rowcount = -1
            cur = cursor_of_result(result) if err is None else None
            if cur is not None:
                rowcount = cur.rowcount
            autocommit = not self.con.in_transaction
            many = fn.__name__ == "executemany"
            for i, (ts, expanded) in enumerate(started):
                last = i == len(started) - 1
                stop = end if last else started[i + 1][0]
                begin = classify(expanded)[0] == "begin"
                # The caller's statement is the last one started; earlier ones are the module's
                # own (an implicit BEGIN) or, for executemany, the earlier executions.
                mine = sql is not None and (last or (many and not begin))
                if many and not begin:
                    # rowcount is the total over all executions: split it when it divides evenly.
                    n = sum(1 for _, e in started if classify(e)[0] != "begin")
                    changes = rowcount // n if rowcount >= 0 and rowcount % n == 0 else None
                else:
                    changes = max(rowcount, 0) if last else 0
                self.writer.event("stmt", ts, **stmt_fields(
                    self.conn_id, stop - ts, sql if mine else expanded, expanded, changes,
                    autocommit if last else (False if begin else autocommit),
                ))


class TracedCursor:
    def __init__(self, cur, tracer):
        self._cur, self._t = cur, tracer

    def execute(self, sql, params=()):
        self._t.call(self._cur.execute, sql, lambda r: r, sql, params)
        return self

    def executemany(self, sql, seq):
        self._t.call(self._cur.executemany, sql, lambda r: r, sql, seq)
        return self

    def executescript(self, script):
        self._t.call(self._cur.executescript, None, lambda r: None, script)
        return self

    def __iter__(self):
        return iter(self._cur)

    def __getattr__(self, name):
        return getattr(self._cur, name)


class TracedConnection:
    def __init__(self, con, database, writer):
        self._con, self._writer = con, writer
        self._conn_id = next_conn_id()
        self._t = _Tracer(con, writer, self._conn_id)
        path = os.fspath(database)
        file = "" if path in ("", ":memory:") or path.startswith("file:") else os.path.abspath(path)
        writer.event("open", time.monotonic_ns(), conn=self._conn_id, path=path, file=file, flags=None)

    def cursor(self, *args):
        return TracedCursor(self._con.cursor(*args), self._t)

    def execute(self, sql, params=()):
        return self.cursor().execute(sql, params)

    def executemany(self, sql, seq):
        return self.cursor().executemany(sql, seq)

    def executescript(self, script):
        return self.cursor().executescript(script)

    def commit(self):
        self._t.call(self._con.commit, None, lambda r: None)

    def rollback(self):
        self._t.call(self._con.rollback, None, lambda r: None)

    def close(self):
        self._con.close()
        self._writer.event("close", time.monotonic_ns(), conn=self._conn_id)
        self._writer.flush()

    def __enter__(self):
        self._con.__enter__()
        return self

    def __exit__(self, *exc):
        # The context manager commits or rolls back: time it like commit()/rollback().
        fn = self._con.rollback if exc[0] is not None else self._con.commit
        self._t.call(fn, None, lambda r: None)
        return False

    def __getattr__(self, name):
        return getattr(self._con, name)


if __name__ == "__main__":
    import sys

    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/sqlite3-trace"
    con = connect(":memory:", prefix=out)
    con.execute("CREATE TABLE t(a INTEGER, b TEXT)")
    con.executemany("INSERT INTO t VALUES(?, ?)", [(1, "x"), (2, "it's")])
    con.commit()
    print(con.execute("SELECT count(*) FROM t WHERE a > ?", (0,)).fetchone())
    con.close()
