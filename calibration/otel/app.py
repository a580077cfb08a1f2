"""The OTel proof's app (#30, docs/capture.md "Proofs of the framework routes"): the WSGI blog of
tests/fixtures/frameworks/otel_app.py served by gunicorn (sync workers, one request at a time
each), with one persistent connection per worker (opened by its first request, so that its
PRAGMAs are inside a request span) and, with TRACE=DIR, the OpenTelemetry Python SDK from PyPI
(calibration/otel/requirements.txt): opentelemetry-instrumentation-wsgi (a server span per
request) and -sqlite3 (a client span per statement, values sanitized away), every span through
the CpuTimes processor of snippets/trace/otel_cpu.py (the thread's CPU time at its start and
end, and thread.id), wrapped around the collector below.

Spans are kept in memory and written when the worker exits (gunicorn.conf.py's worker_exit), as
OTLP/JSON lines in DIR/spans-PID.jsonl, encoded with the SDK's own OTLP encoder: exporting
while serving would add the encoder's CPU to every request's wall-clock gaps, which import
would count as app time (the CpuTimes processor takes the CPU it and the collector spend out of
its readings, but not the time other processes wait for a core while it runs).

    python3 app.py seed DB POSTS        # the database before the load
    DB=... JOURNAL=wal SYNC=normal [TRACE=DIR] gunicorn -c gunicorn.conf.py -w 4 -b ... app:application

GET /post/N/ is a page view (the post, its latest 20 comments, views + 1); GET or POST
/post/N/comment/new posts a comment (BEGIN IMMEDIATE, INSERT, comments + 1, COMMIT).
"""

import base64
import json
import os
import sqlite3
import sys
import threading

_conn = None
_provider = None
_collector = None


def seed(path, posts):
    db = sqlite3.connect(path)
    db.executescript(
        """PRAGMA journal_mode = wal;
        CREATE TABLE post (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL,
          views INTEGER NOT NULL DEFAULT 0, comments INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE comment (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL REFERENCES post(id),
          author TEXT NOT NULL, body TEXT NOT NULL, created TEXT NOT NULL);
        CREATE INDEX comment_post ON comment(post_id, id);"""
    )
    for i in range(1, posts + 1):
        db.execute("INSERT INTO post (id, title, body, comments) VALUES (?, ?, ?, 3)", (i, f"Post {i}", "Lorem ipsum. " * 40))
        for k in range(3):
            db.execute(
                "INSERT INTO comment (post_id, author, body, created) VALUES (?, ?, ?, datetime('now'))",
                (i, f"author{k}", f"comment {k} on post {i}: " + "blah " * (5 + 7 * k)),
            )
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def connection():
    global _conn
    if _conn is None:
        db = sqlite3.connect(os.environ["DB"], isolation_level=None, check_same_thread=False)
        cur = db.cursor()
        cur.execute(f"PRAGMA journal_mode = {os.environ.get('JOURNAL', 'wal')}")
        cur.execute(f"PRAGMA synchronous = {os.environ.get('SYNC', 'normal')}")
        cur.execute("PRAGMA busy_timeout = 5000")
        _conn = db
    return _conn


def blog(environ, start_response):
    parts = environ["PATH_INFO"].strip("/").split("/")  # post ID [comment new]
    try:
        pid = int(parts[1])
    except (IndexError, ValueError):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such page"]
    # Through a cursor: the instrumentation traces cursor.execute, not Connection.execute.
    cur = connection().cursor()
    if len(parts) == 2:
        post = cur.execute("SELECT id, title, body, views, comments FROM post WHERE id = ?", (pid,)).fetchone()
        rows = cur.execute(
            "SELECT id, author, body, created FROM comment WHERE post_id = ? ORDER BY id DESC LIMIT 20", (pid,)
        ).fetchall()
        cur.execute("UPDATE post SET views = views + 1 WHERE id = ?", (pid,))
        body = f"<h1>{post[1]}</h1><p>{post[2]}</p>" + "".join(f"<li>{r[1]}: {r[2]}</li>" for r in rows)
        start_response("200 OK", [("Content-Type", "text/html")])
        return [body.encode()]
    cur.execute("BEGIN IMMEDIATE")
    try:
        cur.execute(
            "INSERT INTO comment (post_id, author, body, created) VALUES (?, ?, ?, datetime('now'))",
            (pid, "visitor", "a comment from the load"),
        )
        cur.execute("UPDATE post SET comments = comments + 1 WHERE id = ?", (pid,))
        cur.execute("COMMIT")
    except Exception:
        cur.execute("ROLLBACK")
        raise
    start_response("201 Created", [("Content-Type", "text/plain")])
    return [b"ok"]


application = blog

if os.environ.get("TRACE"):
    from google.protobuf.json_format import MessageToDict
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.resources import ProcessResourceDetector, Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "snippets", "trace"))
    from otel_cpu import CpuTimes

    class Collector(SpanProcessor):
        """Keeps the ended spans; `write` encodes them as OTLP/JSON lines (hex ids)."""

        def __init__(self):
            self.spans = []
            self.lock = threading.Lock()

        def on_end(self, span):
            with self.lock:
                self.spans.append(span)

        def write(self, path):
            with self.lock:
                spans, self.spans = self.spans, []
            with open(path, "a", encoding="utf-8") as out:
                for i in range(0, len(spans), 500):
                    doc = MessageToDict(encode_spans(spans[i : i + 500]), use_integers_for_enums=True)
                    for rs in doc.get("resourceSpans", []):
                        for ss in rs.get("scopeSpans", []):
                            for s in ss.get("spans", []):
                                for k in ("traceId", "spanId", "parentSpanId"):
                                    if k in s:
                                        s[k] = base64.b64decode(s[k]).hex()
                    out.write(json.dumps(doc, separators=(",", ":")) + "\n")

    resource = Resource.create({"service.name": "blog"}).merge(ProcessResourceDetector().detect())
    _provider = TracerProvider(resource=resource)
    _collector = Collector()
    # CPU_TIMES=0: the collector alone (to measure what the CpuTimes processor costs).
    _provider.add_span_processor(_collector if os.environ.get("CPU_TIMES") == "0" else CpuTimes(_collector))
    trace.set_tracer_provider(_provider)
    SQLite3Instrumentor().instrument()
    application = OpenTelemetryMiddleware(blog)


def flush():
    """Writes this worker's spans (gunicorn.conf.py's worker_exit)."""
    if _collector is not None:
        _collector.write(os.path.join(os.environ["TRACE"], f"spans-{os.getpid()}.jsonl"))


if __name__ == "__main__":
    if sys.argv[1:2] == ["seed"]:
        seed(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("usage: python3 app.py seed DB POSTS")
