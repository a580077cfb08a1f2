# gunicorn settings for calibration/run (which passes --workers/--bind itself).
import os

worker_class = "sync"
timeout = 60
graceful_timeout = 10
accesslog = None


def worker_exit(server, worker):
    d = os.environ.get("CALIB_STATS_DIR")
    if d:
        from blog import stats

        stats.dump(d)
