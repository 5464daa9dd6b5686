"""Consumer lag read from a real Kafka: committed vs end offsets per partition, a partition
with no commit counted from its first offset; Kafka unreachable is an answer, not an error."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.dashboard.use_cases.backlog import consumer_lag, waiting_rows
from tests.conftest import KAFKA
from tests.integration.conftest import kafka_topic


@pytest.fixture
def topic(stack: None) -> Iterator[str]:
    yield from kafka_topic("test-lag", 3)


def test_lag_sums_committed_and_uncommitted_partitions_of_a_conveyor_group(topic: str) -> None:
    group = f"conveyor-test-{uuid.uuid4().hex[:8]}"
    other = f"someone-else-{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
        await producer.start()
        try:
            for partition, count in ((0, 5), (1, 2)):
                for _ in range(count):
                    await producer.send_and_wait(topic, b"x", partition=partition)
            for name in (group, other):
                consumer = AIOKafkaConsumer(
                    bootstrap_servers=KAFKA, group_id=name, enable_auto_commit=False
                )
                await consumer.start()
                consumer.assign([TopicPartition(topic, 0)])
                await consumer.commit({TopicPartition(topic, 0): 2})
                await consumer.stop()
            first, error = await consumer_lag(KAFKA)
            assert error is None
            for _ in range(3):
                await producer.send_and_wait(topic, b"x", partition=0)
            later, _ = await consumer_lag(KAFKA)
        finally:
            await producer.stop()
        return first, later

    first, later = asyncio.run(scenario())
    # partition 0: 5 - 2; partition 1 (no commit): 2 - 0; partition 2: empty
    mine = [r for r in first if r["topic"] == topic]
    assert mine == [
        {"group": group, "topic": topic, "lag": 5, "committed": 2, "end": 7, "partitions": 3}
    ]
    assert [r["lag"] for r in later if r["topic"] == topic] == [8]
    assert not any(str(r["group"]).startswith("someone-else") for r in first)


def test_kafka_unreachable_gives_no_rows_and_a_reason() -> None:
    rows, error = asyncio.run(consumer_lag("127.0.0.1:1"))
    assert rows == [] and error


def test_outbox_waiting_is_read_from_prometheus_text() -> None:
    page = (
        "# HELP conveyor_outbox_waiting Outbox rows not yet published\n"
        "# TYPE conveyor_outbox_waiting gauge\n"
        'conveyor_outbox_waiting{schema="ingest"} 12.0\n'
        "# TYPE conveyor_outbox_published_total counter\n"
        'conveyor_outbox_published_total{schema="ingest"} 40.0\n'
    )
    assert waiting_rows(page) == 12
    assert waiting_rows("# TYPE other gauge\nother 1.0\n") is None
