# The OTel proof's gunicorn settings: each worker writes its spans when it exits (app.flush).
import sys, os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
worker_class = "sync"
accesslog = None
graceful_timeout = 60


def worker_exit(server, worker):
    import app

    app.flush()
