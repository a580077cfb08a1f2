"""SQL trace for calibration/run --trace.  Imported from settings (before apps
load), so it must not import Django models.  Used as sqlite3.connect(factory=...),
so the trace also shows the PRAGMAs Django runs right after connecting."""
import os
import sqlite3

_out = None


def write(line):
    global _out
    if _out is None:
        path = os.path.join(os.environ["CALIB_TRACE_DIR"], f"trace.{os.getpid()}.log")
        _out = open(path, "a", buffering=1)
    _out.write(line + "\n")


class TracingConnection(sqlite3.Connection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        write("-- connect")
        self.set_trace_callback(lambda sql: write("SQL " + " ".join(sql.split())))

    def close(self):
        write("-- close")
        super().close()

    def commit(self):
        # sqlite3's commit() runs COMMIT only when a transaction is open; the
        # trace callback shows the COMMIT itself, this line shows the call.
        write("-- connection.commit()")
        super().commit()

    def rollback(self):
        write("-- connection.rollback()")
        super().rollback()
