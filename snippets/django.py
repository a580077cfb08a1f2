# litehammer apply --for django: {{config}}
# {{durability}}
# journal_mode={{journal_mode}} {{journal_scope}}; synchronous,
# busy_timeout and cache_size are per connection: they must be set on every connection,
# which is what init_command (5.1+) and the connection_created signal do.

# settings.py, Django 5.1 and later:
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
        "OPTIONS": {
            "init_command": (
                "PRAGMA journal_mode={{journal_mode}};"
                "PRAGMA synchronous={{synchronous}};"
                "PRAGMA busy_timeout={{busy_timeout_ms}};"
                "PRAGMA cache_size={{cache_size}};"
            ),
            "transaction_mode": "{{TRANSACTION_MODE}}",
        },
    }
}

# Django before 5.1: run the PRAGMAs from the connection_created signal (e.g. in an
# AppConfig.ready()); BEGIN {{TRANSACTION_MODE}} needs 5.1's transaction_mode.
from django.db.backends.signals import connection_created


def set_sqlite_pragmas(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode={{journal_mode}};")
            cursor.execute("PRAGMA synchronous={{synchronous}};")
            cursor.execute("PRAGMA busy_timeout={{busy_timeout_ms}};")
            cursor.execute("PRAGMA cache_size={{cache_size}};")


connection_created.connect(set_sqlite_pragmas)
