"""The object store's writes are traced by the store itself, one span per object.

On the local SeaweedFS, with the urllib3 instrumentation live: a put gives one ``PUT
<bucket>`` client span and no span of the instrumentation (a stat, still traced through
urllib3, shows the instrumentation is on), and a put the store refuses (a wrong secret
key) marks its span as an error.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.ingest.settings import IngestSettings
from shared import storage
from shared.storage import RAW_BUCKET, ObjectStore, StoreRefused


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Spans of the store and of the urllib3 instrumentation, kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(storage, "_tracer", provider.get_tracer("test"))
    instrumentor = URLLib3Instrumentor()
    instrumented_before = instrumentor.is_instrumented_by_opentelemetry
    if instrumented_before:
        instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()
        if instrumented_before:
            instrumentor.instrument()


@pytest.fixture
async def store(stack: None) -> ObjectStore:
    store = ObjectStore(IngestSettings(consumer_group="test-object-store-tracing"))
    await store.ensure_buckets()
    return store


async def test_a_put_is_one_span_of_the_store(
    store: ObjectStore, spans: InMemorySpanExporter
) -> None:
    key = f"tests/tracing/{uuid.uuid4()}"
    data = b"traced bytes"
    await store.put_stream(RAW_BUCKET, key, io.BytesIO(data), len(data), "image/jpeg")
    [put] = spans.get_finished_spans()
    assert put.name == f"PUT {RAW_BUCKET}"
    assert put.kind == SpanKind.CLIENT
    assert put.attributes is not None
    assert put.attributes["aws.s3.bucket"] == RAW_BUCKET
    assert put.attributes["aws.s3.key"] == key
    assert put.attributes["rpc.method"] == "PutObject"
    assert put.status.status_code != StatusCode.ERROR

    info = await store.stat(RAW_BUCKET, key)  # not traced by the store: urllib3's span
    assert info is not None and info.size == len(data)
    names = [s.name for s in spans.get_finished_spans()]
    assert names == [f"PUT {RAW_BUCKET}", "HEAD"]


async def test_a_failed_put_is_an_error_span(stack: None, spans: InMemorySpanExporter) -> None:
    wrong_key = IngestSettings(consumer_group="test-object-store-tracing", s3_secret_key="wrong")
    store = ObjectStore(wrong_key)
    with pytest.raises(StoreRefused, match="403 SignatureDoesNotMatch"):
        await store.put_stream(RAW_BUCKET, "k", io.BytesIO(b"x"), 1, "image/jpeg")
    await store.aclose()
    [put] = spans.get_finished_spans()
    assert put.name == f"PUT {RAW_BUCKET}"
    assert put.status.status_code == StatusCode.ERROR
