"""OpenTelemetry and logging set-up: one call per process, at start-up."""

from __future__ import annotations

import logging
import os
import sys
from typing import IO, Any

from opentelemetry import trace
from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from pythonjsonlogger.json import JsonFormatter

_configured = False


def _span_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


def setup_tracing(service_name: str, trace_file: str | None) -> TracerProvider:
    """Install the tracer provider: OTLP when configured, a JSON-lines file when asked.

    S3 calls are traced through urllib3 (the transport of the minio SDK), apart from object
    writes, which the store traces itself (``ObjectStore.put_stream``). FastAPI and
    SQLAlchemy are instrumented where the app and engine are built.
    """
    global _configured
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if trace_file:
        out: IO[str] = open(trace_file, "a", buffering=1)  # noqa: SIM115 - lives with the process
        provider.add_span_processor(
            BatchSpanProcessor(
                ConsoleSpanExporter(out=out, formatter=_span_line), schedule_delay_millis=200
            )
        )
    if not _configured:
        trace.set_tracer_provider(provider)
        URLLib3Instrumentor().instrument()
        _configured = True
    return provider


class _TraceContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            record.trace_id = format(ctx.trace_id, "032x")
            record.span_id = format(ctx.span_id, "016x")
        return True


def setup_logging(service_name: str, level: str) -> None:
    """JSON logs on stderr, each line carrying the service and the current trace/span ids."""
    handler = logging.StreamHandler(sys.stderr)
    fields: dict[str, Any] = {"service": service_name}
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "asctime": "time"},
            static_fields=fields,
        )
    )
    handler.addFilter(_TraceContextFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
