# --- litehammer trace: every SQL statement Django runs, as JSON lines for `litehammer import`
# (printed by `litehammer capture --snippet django`; docs/capture.md). Append to settings.py.
# Output: $LITEHAMMER_TRACE (default litehammer-django.jsonl), appended to by every process.
import itertools as _lh_it, json as _lh_json, logging as _lh_logging, os as _lh_os
import threading as _lh_threading, time as _lh_time
from pathlib import Path as _LhPath

from contextlib import contextmanager as _lh_contextmanager
from django.core.signals import request_finished as _lh_finished, request_started as _lh_started
from django.db.backends import utils as _lh_utils
from django.db.backends.signals import connection_created as _lh_created

_lh_local = _lh_threading.local()
_lh_ids = _lh_it.count(1)  # connections and requests, per process


def _lh_value(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$blob": bytes(v).hex()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_lh_value(x) for x in v]
    return str(v)


_lh_debug_sql = _lh_utils.CursorDebugWrapper.debug_sql


@_lh_contextmanager
def _lh_timed_debug_sql(self, *args, **kwargs):
    # The thread's CPU when the statement returns: Django's debug bookkeeping after it and the
    # logging are the trace's own cost (tracer_ns), not the app's.
    with _lh_debug_sql(self, *args, **kwargs):
        try:
            yield
        finally:
            _lh_local.stmt_cpu = _lh_time.thread_time_ns()


_lh_utils.CursorDebugWrapper.debug_sql = _lh_timed_debug_sql


class LitehammerHandler(_lh_logging.FileHandler):
    """Writes the lines, and adds up the thread CPU the trace costs (`tracer_ns`, before the
    line): from a statement's return (or the handler's start) to the line written. Import
    takes it out of the app time."""

    def handle(self, record):
        now = _lh_time.thread_time_ns()
        stmt = getattr(_lh_local, "stmt_cpu", None)
        _lh_local.stmt_cpu = None
        record.litehammer_cpu = cpu = stmt if stmt is not None and hasattr(record, "duration") else now
        record.litehammer_tracer = spent = getattr(_lh_local, "tracer_ns", 0)
        try:
            return super().handle(record)
        finally:
            _lh_local.tracer_ns = spent + _lh_time.thread_time_ns() - cpu


class LitehammerFormatter(_lh_logging.Formatter):
    def format(self, record):
        end = _lh_time.monotonic_ns()
        cpu = getattr(record, "litehammer_cpu", None) or _lh_time.thread_time_ns()
        line = {"logger": "django.db.backends", "pid": _lh_os.getpid(),
                "tid": _lh_threading.get_native_id(), "cpu_ns": cpu,
                "tracer_ns": getattr(record, "litehammer_tracer", 0),
                "request": getattr(_lh_local, "request", None)}
        event = getattr(record, "litehammer_event", None)
        if event is not None:
            line.update(event, ts_ns=end)
        else:
            from django.db import connections
            conn = connections[record.alias]
            params = getattr(record, "params", None)
            line.update(end_ns=end, duration=record.duration, sql=record.sql, alias=record.alias,
                        conn=getattr(conn, "_litehammer_conn", None),
                        params=None if params is None else _lh_value(params))
        return _lh_json.dumps(line, default=str)


class LitehammerFilter(_lh_logging.Filter):
    def filter(self, record):  # statements (with a duration) and the connect/close lines
        return hasattr(record, "duration") or hasattr(record, "litehammer_event")


def _lh_event(kind, conn, **fields):
    _lh_logging.getLogger("django.db.backends").debug(
        "litehammer %s", kind, extra={"litehammer_event": dict(event=kind, conn=conn, **fields)})


def _lh_connected(sender, connection, **kwargs):
    connection.force_debug_cursor = True  # Django logs statements only with its debug cursor
    connection._litehammer_conn = conn = next(_lh_ids)
    raw = connection.connection
    settings = {k: raw.execute(f"PRAGMA {k}").fetchone()[0]
                for k in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")}
    _lh_event("connect", conn, file=str(_LhPath(connection.settings_dict["NAME"]).resolve()),
              settings=settings)
    if not hasattr(connection, "_litehammer_close"):
        connection._litehammer_close = connection._close

        def _close():
            _lh_event("close", connection._litehammer_conn)
            connection._litehammer_close()
        connection._close = _close


_lh_server_pid = None


def _lh_request_started(sender, environ=None, **kwargs):
    global _lh_server_pid
    _lh_local.request = f"{_lh_os.getpid()}-{next(_lh_ids)}"
    if _lh_server_pid != _lh_os.getpid() and environ is not None:
        # The HTTP server (gunicorn/…), once per process: how it queues requests for its
        # workers is not in the SQL, and import models the queue from it.
        _lh_server_pid = _lh_os.getpid()
        _lh_event("server", None, software=str(environ.get("SERVER_SOFTWARE", "")),
                  multithread=bool(environ.get("wsgi.multithread", False)))


def _lh_request_finished(sender, **kwargs):
    _lh_local.request = None


_lh_created.connect(_lh_connected, dispatch_uid="litehammer-trace")
_lh_started.connect(_lh_request_started, dispatch_uid="litehammer-trace")
_lh_finished.connect(_lh_request_finished, dispatch_uid="litehammer-trace")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"litehammer": {"()": LitehammerFormatter}},
    "filters": {"litehammer": {"()": LitehammerFilter}},
    "handlers": {"litehammer": {
        "()": LitehammerHandler, "formatter": "litehammer", "filters": ["litehammer"],
        "filename": _lh_os.environ.get("LITEHAMMER_TRACE", "litehammer-django.jsonl")}},
    "loggers": {"django.db.backends": {
        "handlers": ["litehammer"], "level": "DEBUG", "propagate": False}},
}
# --- end of litehammer trace
