"""Settings for the calibration blog.  Everything that matters is driven by
environment variables so that calibration/run can sweep configurations:

  DB_PATH        path of the SQLite file (required; the runner uses a temp dir)
  JOURNAL_MODE   wal | delete            (PRAGMA journal_mode, run on every connect)
  SYNCHRONOUS    normal | full           (PRAGMA synchronous, run on every connect)
  ATOMIC         0 | 1                   (DATABASES ATOMIC_REQUESTS)
  TXMODE         deferred | immediate    (OPTIONS transaction_mode; "" = Django default)
  CONN_MAX_AGE   0 (default Django: a connection per request) | N seconds | None
  CALIB_STATS_DIR  if set, each worker writes per-kind timing counters there at exit
  CALIB_TRACE_DIR  if set, every SQL statement SQLite runs is logged there (per pid)
  CALIB_DEBUG    1 = DEBUG=True (only for trace runs)
  CALIB_SESSION_FROM_QUERY  1 = a `?s=<session key>` query parameter stands for the session
                 cookie (calibration/run --oha, whose URL list cannot vary a header)
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "calibration-only-not-secret"
DEBUG = os.environ.get("CALIB_DEBUG", "0") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.sessions",
    "blog",
]

MIDDLEWARE = [
    # Outermost: times the whole request (CPU and wall) and the DB calls in it.
    "blog.middleware.StatsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]

# CALIB_SESSION_FROM_QUERY=1 (calibration/run --oha): `?s=<key>` stands for the session cookie.
if os.environ.get("CALIB_SESSION_FROM_QUERY") == "1":
    MIDDLEWARE.insert(1, "blog.middleware.SessionFromQueryMiddleware")

ROOT_URLCONF = "calibsite.urls"
WSGI_APPLICATION = "calibsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    },
]


def _conn_max_age(value):
    if value.lower() in ("none", "persistent", "inf"):
        return None
    return int(value)


JOURNAL_MODE = os.environ.get("JOURNAL_MODE", "wal").lower()
SYNCHRONOUS = os.environ.get("SYNCHRONOUS", "normal").lower()
TXMODE = os.environ.get("TXMODE", "").lower()
assert JOURNAL_MODE in ("wal", "delete"), JOURNAL_MODE
assert SYNCHRONOUS in ("normal", "full"), SYNCHRONOUS
assert TXMODE in ("", "deferred", "immediate"), TXMODE

_options = {
    "init_command": (
        f"PRAGMA journal_mode={JOURNAL_MODE};"
        f"PRAGMA synchronous={SYNCHRONOUS};"
        "PRAGMA busy_timeout=5000"
    ),
}
# CALIB_SECURE_DELETE=on|off: set SQLite's secure_delete per connection (Debian's libsqlite3 is
# built with SECURE_DELETE, so it is on unless set; litehammer's bundled SQLite has it off).
SECURE_DELETE = os.environ.get("CALIB_SECURE_DELETE", "").lower()
assert SECURE_DELETE in ("", "on", "off"), SECURE_DELETE
if SECURE_DELETE:
    _options["init_command"] += f";PRAGMA secure_delete={SECURE_DELETE}"
if TXMODE:
    _options["transaction_mode"] = TXMODE.upper()
if os.environ.get("CALIB_TRACE_DIR"):
    from blog.trace import TracingConnection

    _options["factory"] = TracingConnection

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DB_PATH", str(BASE_DIR / "db.sqlite3")),
        "ATOMIC_REQUESTS": os.environ.get("ATOMIC", "0") == "1",
        "CONN_MAX_AGE": _conn_max_age(os.environ.get("CONN_MAX_AGE", "0")),
        "OPTIONS": _options,
    }
}

# Database sessions, saved on every request (what the issue asks us to model).
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_SAVE_EVERY_REQUEST = True

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if DEBUG and os.environ.get("CALIB_TRACE_DIR"):
    # Django's own SQL log (django.db.backends, DEBUG only), next to the SQLite trace.
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "sqlfile": {
                "class": "logging.FileHandler",
                "filename": os.path.join(os.environ["CALIB_TRACE_DIR"], "django-sql.log"),
            }
        },
        "loggers": {"django.db.backends": {"handlers": ["sqlfile"], "level": "DEBUG"}},
    }

if os.environ.get("CALIB_LH_LOG"):
    # litehammer's logger route (`litehammer capture --snippet django`, docs/capture.md): the
    # snippet as printed, appended here; it sets LOGGING and writes $LITEHAMMER_TRACE.
    os.environ["LITEHAMMER_TRACE"] = os.environ["CALIB_LH_LOG"]
    exec(open(BASE_DIR.parent.parent / "snippets" / "trace" / "django_settings.py").read())
