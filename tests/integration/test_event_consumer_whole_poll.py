"""A whole-poll consumer on a real Kafka: a poll's partitions reach the handler as one batch,
each partition's events still in order, every event once, and every partition's offset
committed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.events import Envelope
from shared.kafka import EventConsumer, encode
from shared.routing import Delivered, Router
from tests.conftest import KAFKA
from tests.integration.conftest import kafka_topic

PARTITIONS = 3
PER_PARTITION = 12


@pytest.fixture
def topic(stack: None) -> Iterator[str]:
    yield from kafka_topic("test-whole-poll", PARTITIONS)


def envelope(partition: int, n: int) -> Envelope:
    return Envelope(
        id=f"p{partition}-{n:03d}",
        source="tests",
        type="conveyor.test.unknown.v1",  # a catch-all takes any type, even an unknown one
        time=datetime.now(UTC),
        data={"n": n},
    )


@pytest.mark.parametrize("linger_ms", [0, 100])
def test_a_poll_of_several_partitions_is_one_batch_in_partition_order(
    topic: str, linger_ms: int
) -> None:
    """Also with a linger (audit's setting): fewer bytes than the fetch waits for still
    arrive, after at most the linger."""
    group = f"conveyor-test-{uuid.uuid4().hex[:8]}"
    batches: list[list[Delivered]] = []

    async def record(_: None, deliveries: Sequence[Delivered]) -> None:
        batches.append(list(deliveries))

    async def scenario() -> dict[int, int | None]:
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
        await producer.start()
        try:
            for n in range(PER_PARTITION):
                for partition in range(PARTITIONS):
                    value, headers = encode(envelope(partition, n))
                    await producer.send_and_wait(topic, value, headers=headers, partition=partition)
            consumer = EventConsumer(
                bootstrap_servers=KAFKA,
                group_id=group,
                router=Router({}, None, pattern=f"^{topic}$", catch_all=record),
                producer=producer,
                whole_poll=True,
                linger_ms=linger_ms,
            )
            task = asyncio.create_task(consumer.run())
            try:
                async with asyncio.timeout(60):
                    while sum(len(b) for b in batches) < PARTITIONS * PER_PARTITION:
                        await asyncio.sleep(0.1)
                    await asyncio.sleep(1)  # the last poll's commit, and any stray redelivery
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            await producer.stop()
        reader = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=group)
        await reader.start()
        try:
            return {p: await reader.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
        finally:
            await reader.stop()

    committed = asyncio.run(scenario())

    delivered = [d.envelope.id for batch in batches for d in batch]
    assert sorted(delivered) == sorted(
        envelope(p, n).id for p in range(PARTITIONS) for n in range(PER_PARTITION)
    ), "every event once"
    for partition in range(PARTITIONS):
        own = [i for i in delivered if i.startswith(f"p{partition}-")]
        assert own == sorted(own), f"partition {partition} out of order"
    # The events were all there before the consumer started: a poll brings several
    # partitions, and they arrive together instead of one batch per partition.
    assert any(len({d.envelope.id[:2] for d in batch}) > 1 for batch in batches), [
        len(b) for b in batches
    ]
    assert committed == dict.fromkeys(range(PARTITIONS), PER_PARTITION)
