"""Per-worker request counters for calibration/run.

The middleware times each request (CPU via time.process_time, wall via
perf_counter) and, inside it, every database call: statements (through a Django
execute wrapper), commits/rollbacks and connection setup (patched below).  The
gunicorn worker_exit hook (gunicorn.conf.py) dumps the counters as JSON.
Requests carrying the header X-Warmup are not counted."""
import json
import os
import time
from collections import defaultdict

FIELDS = ("n", "req_cpu", "req_wall", "db_cpu", "db_wall", "stmts", "commits", "connects", "s5xx")
_stats = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
_current = None  # the per-kind dict of the request being timed, or None


def kind_of(path):
    if path.startswith("/read/"):
        return "read"
    if path.startswith("/post/"):
        return "comment" if path.rstrip("/").endswith(("/comment", "/comment/new")) else "view"
    return "other"


class _DbTimer:
    __slots__ = ("field", "c0", "w0")

    def __init__(self, field):
        self.field = field

    def __enter__(self):
        self.c0 = time.process_time()
        self.w0 = time.perf_counter()

    def __exit__(self, *exc):
        cur = _current
        if cur is not None:
            cur["db_cpu"] += time.process_time() - self.c0
            cur["db_wall"] += time.perf_counter() - self.w0
            cur[self.field] += 1
        return False


def execute_wrapper(execute, sql, params, many, context):
    with _DbTimer("stmts"):
        return execute(sql, params, many, context)


def begin(kind):
    global _current
    _current = _stats[kind]
    return _current


def end():
    global _current
    _current = None


def patch_backend():
    from django.db.backends.sqlite3 import base

    W = base.DatabaseWrapper

    def timed(fn, field):
        def wrapper(self, *a, **kw):
            with _DbTimer(field):
                return fn(self, *a, **kw)

        return wrapper

    W._commit = timed(W._commit, "commits")
    W._rollback = timed(W._rollback, "commits")
    # get_new_connection = sqlite3.connect + Django's PRAGMAs + init_command.
    W.get_new_connection = timed(W.get_new_connection, "connects")


def dump(directory):
    path = os.path.join(directory, f"stats.{os.getpid()}.json")
    with open(path, "w") as f:
        json.dump(dict(_stats), f)
