"""The backlog page: consumer lag from Kafka itself, outbox rows waiting in each service (from
their /metrics), dead letters, tasks out with each vendor and queued per job."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaClient, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.offset import OffsetRequest
from prometheus_client.parser import text_string_to_metric_families

from services.dashboard.context import Dashboard
from services.dashboard.repository import backlog as repo
from services.dashboard.use_cases.filters import visible_datasets
from services.dashboard.use_cases.health import UPSTREAM_TIMEOUT, describe, service_urls
from shared.auth import Principal

# Only Conveyor's own consumer groups are shown (tests and benches name theirs alike).
GROUP_PREFIX = "conveyor-"
# The services with an outbox relay, and the gauge it sets.
OUTBOX_SERVICES = ("ingest", "clean", "labeling", "qc")
OUTBOX_METRIC = "conveyor_outbox_waiting"
# Bounds of one lag reading: a down or hung broker costs the page this much, no more.
KAFKA_TIMEOUT_SECONDS = 3.0
JOBS_SHOWN = 100
# ListOffsets' special timestamps
_LATEST, _EARLIEST = -1, -2


@dataclass(frozen=True)
class Offsets:
    """What Kafka says of the partitions a group committed on: committed, first and end."""

    committed: Mapping[str, Mapping[TopicPartition, int]]  # group -> partition -> offset
    beginning: Mapping[TopicPartition, int]
    end: Mapping[TopicPartition, int]
    partitions: Mapping[str, Sequence[int]]  # topic -> its partitions


def lag_rows(offsets: Offsets) -> list[dict[str, Any]]:
    """Lag per (group, topic), summed over the topic's partitions. A partition the group has
    not committed on yet lags by everything still in it (end - beginning): a new group
    starts from the earliest offset."""
    rows = []
    for group, committed in sorted(offsets.committed.items()):
        topics = sorted({tp.topic for tp in committed if tp.topic in offsets.partitions})
        for topic in topics:
            lag = done = end = 0
            for partition in offsets.partitions[topic]:
                tp = TopicPartition(topic, partition)
                last, first = offsets.end.get(tp, 0), offsets.beginning.get(tp, 0)
                at = committed.get(tp, -1)
                at = first if at < 0 else min(max(at, first), last)
                lag += last - at
                done += at
                end += last
            rows.append(
                {
                    "group": group,
                    "topic": topic,
                    "lag": lag,
                    "committed": done,
                    "end": end,
                    "partitions": len(offsets.partitions[topic]),
                }
            )
    return rows


async def read_offsets(bootstrap_servers: str) -> Offsets:
    """Committed offsets of every Conveyor group, and the first and end offsets of the topics
    they committed on: Kafka's admin API, then ListOffsets to each partition's leader. Both
    clients are made for the call (measured on loopback: a few ms to start; cheaper than
    keeping them healthy across broker restarts)."""
    timeout = KAFKA_TIMEOUT_SECONDS
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000)
    )
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000)
    )
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            groups = sorted(
                g[0] for g in await admin.list_consumer_groups() if g[0].startswith(GROUP_PREFIX)
            )
            fetched = await asyncio.gather(*(admin.list_consumer_group_offsets(g) for g in groups))
            committed = {
                group: {tp: meta.offset for tp, meta in found.items()}
                for group, found in zip(groups, fetched, strict=True)
                if found
            }
            # Every topic (naming some could auto-create one deleted since a group committed
            # on it); those are left out.
            wanted = {tp.topic for found in committed.values() for tp in found}
            leaders: dict[int, list[TopicPartition]] = defaultdict(list)
            partitions: dict[str, list[int]] = {}
            for topic in await admin.describe_topics():
                if topic["topic"] in wanted and not topic["error_code"]:
                    partitions[topic["topic"]] = sorted(p["partition"] for p in topic["partitions"])
                    for p in topic["partitions"]:
                        leaders[p["leader"]].append(TopicPartition(topic["topic"], p["partition"]))
            await client.bootstrap()
            beginning, end = await asyncio.gather(
                _list_offsets(client, leaders, _EARLIEST), _list_offsets(client, leaders, _LATEST)
            )
    finally:
        with contextlib.suppress(Exception):
            await client.close()
        with contextlib.suppress(Exception):
            await admin.close()
    return Offsets(committed, beginning, end, partitions)


async def _list_offsets(
    client: AIOKafkaClient, leaders: Mapping[int, Sequence[TopicPartition]], at: int
) -> dict[TopicPartition, int]:
    """The earliest or latest offset of each partition, asked of its leader."""

    async def ask(node: int, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        by_topic: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for tp in tps:
            by_topic[tp.topic].append((tp.partition, at))
        answer = await client.send(node, OffsetRequest(-1, 0, list(by_topic.items())))
        found = {}
        for topic, rows in answer.topics:
            for row in rows:
                partition, error_code, offset = row[0], row[1], row[3]  # v1+: ..., ts, offset
                if error_code:
                    raise for_code(error_code)(f"ListOffsets {topic}/{partition}")
                found[TopicPartition(topic, partition)] = offset
        return found

    answers = await asyncio.gather(*(ask(node, tps) for node, tps in leaders.items()))
    return {tp: offset for answer in answers for tp, offset in answer.items()}


async def consumer_lag(bootstrap_servers: str) -> tuple[list[dict[str, Any]], str | None]:
    """Lag rows, or none and why Kafka could not be read."""
    try:
        return lag_rows(await read_offsets(bootstrap_servers)), None
    except Exception as exc:
        return [], describe(exc)


def waiting_rows(metrics_text: str) -> int | None:
    """The sum of the outbox gauge's samples in a /metrics page (None: not exported)."""
    found = None
    for family in text_string_to_metric_families(metrics_text):
        if family.name == OUTBOX_METRIC:
            found = int(sum(sample.value for sample in family.samples))
    return found


async def outbox_waiting(http: httpx.AsyncClient, name: str, url: str) -> dict[str, Any]:
    """One service's outbox rows waiting, from its /metrics."""
    row: dict[str, Any] = {"service": name, "url": url, "waiting": None, "error": None}
    try:
        response = await http.get(f"{url}/metrics", timeout=UPSTREAM_TIMEOUT)
        response.raise_for_status()
        row["waiting"] = waiting_rows(response.text)
        if row["waiting"] is None:
            row["error"] = f"no {OUTBOX_METRIC} in its /metrics (relay not started yet?)"
    except Exception as exc:
        row["error"] = describe(exc)
    return row


async def backlog(
    dashboard: Dashboard, principal: Principal, dead_letters_limit: int
) -> dict[str, Any]:
    """Everything the backlog page shows; Kafka or a service being down is told in the
    answer, never raised."""
    settings = dashboard.settings
    urls = service_urls(settings)
    (lag, lag_error), outbox = await asyncio.gather(
        consumer_lag(settings.kafka_bootstrap_servers),
        asyncio.gather(*(outbox_waiting(dashboard.http, s, urls[s]) for s in OUTBOX_SERVICES)),
    )
    visible = visible_datasets(principal)
    async with dashboard.units.read() as session:
        count, letters = await repo.dead_letter_page(session, dead_letters_limit)
        vendors = await repo.tasks_per_vendor(session, visible)
        jobs = await repo.queued_per_job(session, visible, JOBS_SHOWN)
    return {
        "lag": lag,
        "lag_error": lag_error,
        "outbox": list(outbox),
        "dead_letters": {"count": count, "items": letters},
        "vendors": vendors,
        "jobs": jobs,
    }
