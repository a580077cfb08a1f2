"""sqlite-web as a WSGI app for gunicorn: `sqlite_web` the command runs Flask's development
server, so this does what its `configure_app` does for one database file, with no password
(every request is anonymous) and the journal mode and synchronous from the environment
(SQLITE_WEB_DB, SQLITE_WEB_JOURNAL, SQLITE_WEB_SYNCHRONOUS), set on every connection through
sqlite-web's own `startup_hook`, which it calls after each per-request `connect()`.
"""
import os

from sqlite_web.sqlite_web import app, initialize_app

JOURNAL = os.environ.get("SQLITE_WEB_JOURNAL", "wal")
SYNC = os.environ.get("SQLITE_WEB_SYNCHRONOUS", "normal")


def startup_hook(db):
    db.execute_sql(f"PRAGMA journal_mode = {JOURNAL}")
    db.execute_sql(f"PRAGMA synchronous = {SYNC}")


initialize_app([os.environ["SQLITE_WEB_DB"]], startup_hook=startup_hook)
app.secret_key = "load-test"
application = app
