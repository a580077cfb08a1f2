"""otel_cpu.py -- the thread's CPU time on OpenTelemetry spans, for litehammer (printed by
`litehammer capture --snippet otel-cpu`; docs/capture.md). Python SDK (opentelemetry-sdk,
tested on 1.45.1); other SDKs can add the same attributes with a span processor of their own.

Spans carry wall-clock times only, so without this `litehammer import` takes a request's app
time as the wall-clock time inside its request span outside its SQLite spans: on a busy machine
that holds waiting for a core. This processor wraps the one that exports and adds, on every
span (the server's request span and each SQLite client span):

    litehammer.cpu_start_ns   the thread's CPU time (time.thread_time_ns) when the span starts
    litehammer.cpu_end_ns     the thread's CPU time when it ends
    thread.id                 the thread's native id (unless the span has one): the worker

Both readings leave out the CPU this processor and the processor it wraps (encoding and
exporting, for a SimpleSpanProcessor) have spent on the thread so far, so that the trace's own
cost is not replayed as app time. The rest of the SDK's cost (creating spans, the
instrumentations' wrappers) is still in them. `import` then takes a request's app time as the
worker thread's CPU between its statements, as for Rails and Django.

    from otel_cpu import CpuTimes
    provider.add_span_processor(CpuTimes(BatchSpanProcessor(OTLPSpanExporter())))

At on_end the SDK has frozen the span's attributes (`Span.end` sets them immutable before it
calls `_on_ending` and `on_end`), so the end reading goes on a copy of the ReadableSpan, which
is what the wrapped processor receives.
"""

import threading
import time

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

CPU_START = "litehammer.cpu_start_ns"
CPU_END = "litehammer.cpu_end_ns"


class CpuTimes(SpanProcessor):
    """Adds the thread's CPU readings to every span, then hands it to `inner`."""

    def __init__(self, inner):
        self.inner = inner
        self._own = threading.local()  # .ns: CPU this processor spent on the thread so far

    def on_start(self, span, parent_context=None):
        t0 = time.thread_time_ns()
        own = getattr(self._own, "ns", 0)
        span.set_attribute(CPU_START, t0 - own)
        if span.attributes is None or "thread.id" not in span.attributes:
            span.set_attribute("thread.id", threading.get_native_id())
        self.inner.on_start(span, parent_context=parent_context)
        self._own.ns = own + time.thread_time_ns() - t0

    def _on_ending(self, span):
        # SDK 1.45's private hook, called after the attributes are frozen: pass it on.
        hook = getattr(self.inner, "_on_ending", None)
        if hook is not None:
            hook(span)

    def on_end(self, span):
        t0 = time.thread_time_ns()
        own = getattr(self._own, "ns", 0)
        attrs = BoundedAttributes(None, {**(span.attributes or {}), CPU_END: t0 - own})
        attrs.dropped = span.dropped_attributes
        self.inner.on_end(
            ReadableSpan(
                name=span.name,
                context=span.context,
                parent=span.parent,
                resource=span.resource,
                attributes=attrs,
                events=span.events,
                links=span.links,
                kind=span.kind,
                status=span.status,
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            )
        )
        self._own.ns = own + time.thread_time_ns() - t0

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)
