import os
import time

from django.db import connection

from . import stats, trace

TRACE = bool(os.environ.get("CALIB_TRACE_DIR"))


class StatsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.enabled = bool(os.environ.get("CALIB_STATS_DIR"))

    def __call__(self, request):
        if TRACE:
            trace.write(f"#### {request.method} {request.path}")
        if not self.enabled or "HTTP_X_WARMUP" in request.META:
            return self._respond(request)
        cur = stats.begin(stats.kind_of(request.path))
        c0 = time.process_time()
        w0 = time.perf_counter()
        try:
            with connection.execute_wrapper(stats.execute_wrapper):
                response = self._respond(request)
        finally:
            cur["req_cpu"] += time.process_time() - c0
            cur["req_wall"] += time.perf_counter() - w0
            cur["n"] += 1
            stats.end()
        if response.status_code >= 500:
            cur["s5xx"] += 1
        return response

    def _respond(self, request):
        response = self.get_response(request)
        response["X-Kind"] = stats.kind_of(request.path)
        return response


class SessionFromQueryMiddleware:
    """`?s=<session key>` stands for the session cookie (before SessionMiddleware): a load
    generator that sends one fixed list of URLs and cannot vary a header per request
    (calibration/run --oha) names each request's returning visitor in its URL. The session's
    SQL is the cookie's. Requests without `s` are untouched."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.GET.get("s")
        if key:
            request.META["HTTP_COOKIE"] = f"sessionid={key}"
            request.__dict__.pop("COOKIES", None)  # a cached_property, in case it was read
        return self.get_response(request)
