"""Rebuilding the projections from scratch: the dashboard's consumer group goes back to the
earliest offsets Kafka still holds, and the projections and the inbox are emptied, so the next
start of the service replays every topic into empty tables.

The service must be stopped: a group with active members is refused. The offsets are reset
before the tables are emptied, so a rebuild that fails half-way leaves either everything as it
was or offsets at the start with the projections still full (the inbox then makes the replay
change nothing); never empty projections behind offsets at the end.

A replay covers what Kafka still holds: events older than a topic's retention are gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError

from services.dashboard.context import SOURCE
from services.dashboard.models import SCHEMA, inbox
from services.dashboard.repository import rebuild as repo
from services.dashboard.settings import DashboardSettings
from shared.db import create_engine, migrate, session_factory
from shared.events import ALL_TOPICS
from shared.uow import UnitsOfWork


class GroupActive(RuntimeError):
    """The dashboard's consumer group has members: a dashboard process is still running."""


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild did: the group reset, its partitions and the rows thrown away."""

    group: str
    partitions: int
    topics: int
    # rows per table before they were emptied
    emptied: dict[str, int]


async def rebuild(settings: DashboardSettings, migrations_dir: Path) -> Rebuilt:
    """Reset the consumer group to the earliest offsets, then empty the projections.

    Raises :class:`GroupActive` (and changes nothing) when the group has active members.
    """
    group = settings.consumer_group
    # the tables exist before they are emptied (a rebuild of a new database)
    await migrate(migrations_dir, settings.database_url, SCHEMA)
    partitions = await reset_offsets(settings.kafka_bootstrap_servers, group)
    engine = create_engine(settings)
    try:
        units = UnitsOfWork(
            session_factory(engine), outbox=None, inbox=inbox, source=SOURCE, consumer=group
        )
        async with units.begin() as uow:
            emptied = await repo.projected_rows(uow.session)
            await repo.empty_projections(uow.session)
    finally:
        await engine.dispose()
    return Rebuilt(group, len(partitions), len({tp.topic for tp in partitions}), emptied)


async def reset_offsets(bootstrap_servers: str, group: str) -> list[TopicPartition]:
    """Commit the earliest offset of every partition the group reads (the ``conveyor.*``
    topics, and any other it has offsets for); :class:`GroupActive` if it has members."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await _refuse_active(admin, group)
        partitions = set(await admin.list_consumer_group_offsets(group))
        existing = set(await admin.list_topics())
        ours = [t.name for t in ALL_TOPICS if t.name in existing]
        for topic in await admin.describe_topics(ours) if ours else []:
            partitions.update(
                TopicPartition(topic["topic"], p["partition"]) for p in topic["partitions"]
            )
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        ordered = sorted(partitions)
        if ordered:
            consumer.assign(ordered)
            earliest = await consumer.beginning_offsets(ordered)
            try:
                await consumer.commit(dict(earliest))
            except CommitFailedError as exc:
                # Kafka refuses a commit from outside the group while it has members: a
                # dashboard started since the check above fails the reset, never races it.
                raise GroupActive(
                    f"consumer group {group!r} got a member during the reset: "
                    "stop the dashboard service first, then rebuild"
                ) from exc
        return ordered
    finally:
        await consumer.stop()


async def _refuse_active(admin: AIOKafkaAdminClient, group: str) -> None:
    for response in await admin.describe_consumer_groups([group]):
        for description in response.groups:
            _, name, state, _, _, members = description[:6]
            if name == group and members:
                raise GroupActive(
                    f"consumer group {group!r} has {len(members)} active member(s) "
                    f"(state {state}): stop the dashboard service first, then rebuild"
                )
