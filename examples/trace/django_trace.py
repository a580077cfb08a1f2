"""A litehammer trace from Django (SQLite backend), without the preload library.

    # settings.py or AppConfig.ready():
    import django_trace
    django_trace.install("/tmp/trace")      # or $LITEHAMMER_TRACE_OUT
    # files /tmp/trace.PID.TID.jsonl; merge as for the library

install() hooks every new connection (the `connection_created` signal): it writes an "open"
line, appends an execute wrapper (`connection.execute_wrappers`, the hook behind
`connection.execute_wrapper()`) that times each query, and wraps the connection's
_commit/_rollback/_close so COMMIT, ROLLBACK and close are seen too (Django commits through
the driver's commit(), which no execute wrapper sees). BEGIN and SAVEPOINT/RELEASE go through
cursor.execute, so the wrapper sees them.

Limits:
- "sql" is the query Django sends to the sqlite3 module, with Django's `%s` placeholders
  turned into `?` as the backend does; "expanded" substitutes the parameters the way
  sqlite3_expanded_sql prints them (so it matches the library's trace for the same run).
- dur_ns is the time of cursor.execute(); rows fetched afterwards are not included.
  executemany() writes one line per parameter set, each with an equal share of the time
  ("x_dur_split": n) and "changes" null unless rowcount divides evenly.
- "readonly" is null (unknown).
- Statements Django runs on the raw driver connection while opening it (a
  sqlite_compileoption_used() query, PRAGMA foreign_keys, PRAGMA legacy_alter_table,
  init_command) bypass the execute wrappers and are not recorded; the preload library
  records them.
"""
import os
import re
import time

from litehammer_trace import TraceWriter, expand, next_conn_id, stmt_fields

_QMARK = re.compile(r"(?<!%)%s")
_NAMED = re.compile(r"(?<!%)%\((\w+)\)s")


def to_sqlite(sql, params):
    """Django's sqlite backend conversion: %s -> ?, %(name)s -> :name, %% -> %."""
    if isinstance(params, dict):
        return _NAMED.sub(r":\1", sql).replace("%%", "%")
    return _QMARK.sub("?", sql).replace("%%", "%")


class TraceExecuteWrapper:
    """An execute wrapper writing one "stmt" line per executed statement."""

    def __init__(self, writer, conn_id):
        self.writer, self.conn_id = writer, conn_id

    def __call__(self, execute, sql, params, many, context):
        ts = time.monotonic_ns()
        try:
            return execute(sql, params, many, context)
        finally:
            dur = time.monotonic_ns() - ts
            wrapper = context["connection"]
            raw = wrapper.connection
            autocommit = raw is not None and not raw.in_transaction
            rowcount = getattr(context.get("cursor"), "rowcount", -1)
            if many:
                sets = list(params or [])
                n = max(len(sets), 1)
                changes = rowcount // n if rowcount >= 0 and rowcount % n == 0 else None
                for i, p in enumerate(sets):
                    q = to_sqlite(sql, p)
                    fields = stmt_fields(self.conn_id, dur // n, q, expand(q, p), changes, autocommit)
                    fields["x_dur_split"] = n
                    self.writer.event("stmt", ts + i * (dur // n), **fields)
            else:
                q = to_sqlite(sql, params) if params is not None else sql
                self.writer.event("stmt", ts, **stmt_fields(
                    self.conn_id, dur, q, expand(q, params), max(rowcount, 0), autocommit))


def _wrap_txn(wrapper, name, sql, writer, conn_id):
    orig = getattr(wrapper, name)

    def wrapped():
        raw = wrapper.connection
        was_open = raw is not None and raw.in_transaction
        ts = time.monotonic_ns()
        try:
            return orig()
        finally:
            if was_open:  # the driver only sends COMMIT/ROLLBACK inside a transaction
                writer.event("stmt", ts, **stmt_fields(
                    conn_id, time.monotonic_ns() - ts, sql, sql, 0, not raw.in_transaction))

    setattr(wrapper, name, wrapped)


def install(prefix=None):
    """Trace every Django database connection created from now on (SQLite ones only)."""
    from django.db.backends.signals import connection_created

    prefix = prefix or os.environ.get("LITEHAMMER_TRACE_OUT")
    if not prefix:
        return
    writer = TraceWriter(prefix, "django-execute-wrapper")

    def on_created(sender, connection, **kwargs):
        if connection.vendor != "sqlite":
            return
        conn_id = next_conn_id()
        name = os.fspath(connection.settings_dict["NAME"])
        memory = connection.is_in_memory_db()
        writer.event("open", time.monotonic_ns(), conn=conn_id, path=name,
                     file="" if memory else os.path.abspath(name), flags=None)
        # Replace a wrapper left from an earlier (closed) connection of this DatabaseWrapper.
        connection.execute_wrappers[:] = [
            w for w in connection.execute_wrappers if not isinstance(w, TraceExecuteWrapper)
        ]
        connection.execute_wrappers.append(TraceExecuteWrapper(writer, conn_id))
        _wrap_txn(connection, "_commit", "COMMIT", writer, conn_id)
        _wrap_txn(connection, "_rollback", "ROLLBACK", writer, conn_id)
        orig_close = connection._close

        def _close():
            try:
                return orig_close()
            finally:
                writer.event("close", time.monotonic_ns(), conn=conn_id)
                writer.flush()
                # The next connection of this wrapper gets fresh hooks from on_created.
                for attr in ("_commit", "_rollback", "_close"):
                    connection.__dict__.pop(attr, None)

        connection._close = _close

    connection_created.connect(on_created, weak=False)


if __name__ == "__main__":
    # A self-contained demo: python3 django_trace.py /tmp/django-trace
    import sys

    import django
    from django.conf import settings

    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/django-trace"
    db = out + ".demo.sqlite3"
    settings.configure(DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db}})
    django.setup()
    install(out)
    from django.db import connection, transaction

    with connection.cursor() as c:
        c.execute("CREATE TABLE IF NOT EXISTS t(a INTEGER, b TEXT)")
    with transaction.atomic():
        with connection.cursor() as c:
            c.execute("INSERT INTO t VALUES(%s, %s)", [1, "it's"])
            c.executemany("INSERT INTO t VALUES(%s, %s)", [(2, "x"), (3, "y")])
            with transaction.atomic():  # a savepoint
                c.execute("UPDATE t SET b = %s WHERE a > %s", ["z", 1])
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM t")
        print(c.fetchone())
    connection.close()
    os.remove(db)
