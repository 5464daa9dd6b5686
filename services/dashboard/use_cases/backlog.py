"""The backlog page: consumer lag from Kafka itself, outbox rows waiting in each service (from
their /metrics), dead letters, tasks out with each vendor and queued per job."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
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
    they committed on, with Kafka's admin API and a group-less consumer made for this call
    (measured on loopback: ~4 ms and ~12 ms to start; cheaper than keeping them healthy
    across broker restarts)."""
    timeout = KAFKA_TIMEOUT_SECONDS
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000)
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        request_timeout_ms=int(timeout * 1000),
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
            partitions = {
                t["topic"]: sorted(p["partition"] for p in t["partitions"])
                for t in await admin.describe_topics()
                if t["topic"] in wanted and not t["error_code"]
            }
            await consumer.start()
            every = [TopicPartition(t, p) for t, ps in partitions.items() for p in ps]
            beginning = await consumer.beginning_offsets(every) if every else {}
            end = await consumer.end_offsets(every) if every else {}
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        with contextlib.suppress(Exception):
            await admin.close()
    return Offsets(committed, beginning, end, partitions)


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
