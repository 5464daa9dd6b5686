"""Fault harness: a bounded stream of uploads while one fault is injected per run.

Each run creates a dataset, sends a fixed number of unique images at a fixed rate from a few
concurrent clients (retrying 502/503/504 and refused or dropped connections, as a client
should), injects one fault part-way through, waits (bounded) for the pipeline to settle and
then checks the delivery invariants against the services' APIs, Postgres and the object
store. One table of client outcomes and invariants is printed at the end; the exit status is
1 if any invariant failed.

    .venv/bin/python -m deploy.chaos                        # every fault (make chaos)
    .venv/bin/python -m deploy.chaos --faults kill-clean,postgres-down --uploads 300

It runs its own ingest, clean and audit processes on a fresh ``conveyor_chaos`` database and
holds the test suite's session lock meanwhile (they share the stack and the service ports).
The test suite calls :func:`run_fault` on its own processes (tests/e2e/test_faults.py).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

if not __package__:  # run as a script: import from the repository, not from deploy/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from minio.error import S3Error
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from deploy.sandbox import minio_client, reset
from deploy.services import SERVICES, ServiceProcess, stop_running
from deploy.stack.config import load_settings
from deploy.stack.kafka import Kafka
from deploy.stack.postgres import Postgres
from deploy.stack.process import Server, exclusive_lock
from deploy.stack.seaweedfs import SeaweedFS
from shared import endpoints
from shared.events import DEAD_LETTERS
from shared.storage import RAW_BUCKET, content_address
from tests.media import image

ROOT = Path(__file__).resolve().parent.parent
CHAOS_DB = "conveyor_chaos"
ADMIN_KEY = "cvk_chaos_bootstrap_admin"
STACK_SESSION_LOCK = "/tmp/conveyor-stack-session.lock"  # noqa: S108 - shared with the tests
SECOND_COPY_PORT_OFFSET = 10  # a joining copy listens on its service's port + 10
RETRY_STATUSES = frozenset({502, 503, 504})
VERDICT_TYPES = ("conveyor.asset.cleaned.v1", "conveyor.asset.rejected.v1")
INGESTED_TYPE = "conveyor.asset.ingested.v1"

KILLS = tuple(f"kill-{name}" for name in SERVICES)
JOINS = tuple(f"second-{name}" for name in SERVICES)
FAULTS = (*KILLS, "kafka-restart", "postgres-down", "store-hang", *JOINS)


@dataclass(frozen=True)
class Options:
    """What a run sends and how long a fault lasts."""

    uploads: int = 900
    rate: float = 15.0  # uploads per second, released at a fixed pace
    clients: int = 4  # concurrent uploaders
    outage: float = 30.0  # seconds Postgres is down or the store hung
    fault_at: float = 0.25  # fraction of the stream sent before the fault
    give_up: float = 180.0  # seconds a client keeps retrying one upload
    settle: float = 240.0  # seconds allowed for the pipeline to catch up after the stream


@dataclass
class Cluster:
    """The service processes the harness drives, and the database they use."""

    services: dict[str, ServiceProcess]
    env: dict[str, str]
    database: str
    run_dir: Path
    admin_key: str

    @property
    def dsn(self) -> str:
        """The superuser's DSN of the cluster's database (the checks read every schema)."""
        return endpoints.postgres_url(
            self.database,
            user=endpoints.SUPERUSER,
            password=endpoints.SUPERUSER_PASSWORD,
            driver="asyncpg",
        )


@dataclass(frozen=True)
class Outcome:
    """What one upload ended with, as the client saw it."""

    sha256: str
    status: int | str  # the final HTTP status, or the transport error that ended it
    retries: tuple[str, ...]  # why each retry happened: a status or an error class
    latency: float  # seconds from the first attempt to the final answer
    waited: float  # seconds it was due before a client was free to send it (the backlog)
    asset_id: str | None
    target: str


@dataclass(frozen=True)
class Upload:
    """One file of the stream, numbered, and when the fixed pace made it due."""

    index: int
    name: str
    content: bytes
    due: float  # time.monotonic()


@dataclass(frozen=True)
class Invariant:
    """One checked property of the run: whether it holds and the numbers behind it."""

    name: str
    ok: bool
    detail: str


@dataclass
class Run:
    """One run's live state: where uploads go, copies that joined, when the fault happened."""

    fault: str
    targets: list[str]
    joined: list[ServiceProcess] = field(default_factory=list)
    fault_window: tuple[float, float] | None = None  # seconds into the stream


@dataclass
class RunResult:
    """A finished run: client outcomes and invariants."""

    fault: str
    outcomes: list[Outcome]
    invariants: list[Invariant]
    settle_seconds: float
    fault_window: tuple[float, float] | None

    @property
    def ok(self) -> bool:
        """Whether every invariant held."""
        return all(invariant.ok for invariant in self.invariants)

    @property
    def created(self) -> int:
        """Uploads that ended in 201."""
        return sum(1 for outcome in self.outcomes if outcome.status == 201)


# --------------------------------------------------------------------------- faults


def _stack_server(kind: type[Server]) -> Server:
    return kind(load_settings())


def restart_server(kind: type[Server], down_for: float) -> None:
    """Stop a stack server, keep it down, start it again and wait until it is healthy.

    Holds the stack's up/down lock so a concurrent ``stack.py up`` cannot start it early.
    """
    server = _stack_server(kind)
    with exclusive_lock(server.settings.state):
        server.stop()
        try:
            time.sleep(down_for)
        finally:
            server.start_healthy()


def hang_store(seconds: float) -> None:
    """SIGSTOP the SeaweedFS process (it keeps its sockets but answers nothing), then SIGCONT."""
    pid = _stack_server(SeaweedFS).pid()
    if pid is None:
        raise RuntimeError("SeaweedFS is not running")
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


def metric_sum(url: str, name: str, *labels: str) -> float:
    """Sum of a Prometheus metric's samples whose label set contains every given label."""
    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{") and all(label in line for label in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


def second_copy(cluster: Cluster, name: str) -> ServiceProcess:
    """Start another process of a service in the same consumer group, on its own port."""
    port = cluster.services[name].port + SECOND_COPY_PORT_OFFSET
    folder = cluster.run_dir / f"{name}2"
    proc = ServiceProcess(
        name,
        env={**cluster.env, SERVICES[name][1]: str(port)},
        log_dir=folder,
        run_dir=folder,
    )
    proc.start()
    # It has joined once the group gave it partitions.
    deadline = time.monotonic() + 60
    while metric_sum(proc.url, "conveyor_consumer_partitions_assigned") <= 0:
        if time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"the second {name} got no partitions within 60 s")
        time.sleep(0.5)
    return proc


async def inject(cluster: Cluster, run: Run, options: Options) -> None:
    """Inject the run's fault and return once the system is whole again."""
    fault = run.fault
    if fault in KILLS:
        proc = cluster.services[fault.removeprefix("kill-")]
        proc.kill()
        await asyncio.sleep(1)
        await asyncio.to_thread(proc.start)
    elif fault == "kafka-restart":
        await asyncio.to_thread(restart_server, Kafka, 0.0)
    elif fault == "postgres-down":
        await asyncio.to_thread(restart_server, Postgres, options.outage)
    elif fault == "store-hang":
        await asyncio.to_thread(hang_store, options.outage)
    elif fault in JOINS:
        name = fault.removeprefix("second-")
        proc = await asyncio.to_thread(second_copy, cluster, name)
        run.joined.append(proc)
        if name == "ingest":
            run.targets.append(proc.url)
    elif fault != "none":
        raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")


# --------------------------------------------------------------------------- the client


async def upload_one(
    client: httpx.AsyncClient, run: Run, slug: str, upload: Upload, give_up: float
) -> Outcome:
    """Upload one file until it is answered for good; a retry is safe (same bytes, same asset).

    Uploads (and each retry) take turns over the ingest processes the run knows.
    """
    sha = hashlib.sha256(upload.content).hexdigest()
    retries: list[str] = []
    started = time.monotonic()
    backoff = 0.2

    def outcome(status: int | str, asset_id: str | None = None) -> Outcome:
        latency = time.monotonic() - started
        return Outcome(sha, status, tuple(retries), latency, started - upload.due, asset_id, target)

    while True:
        target = run.targets[(upload.index + len(retries)) % len(run.targets)]
        wait = backoff
        try:
            response = await client.post(
                f"{target}/v1/datasets/{slug}/assets",
                files=[("files", (upload.name, upload.content))],
            )
        except httpx.TransportError as exc:
            cause: str = type(exc).__name__
            backoff = min(backoff * 2, 2.0)
        else:
            if response.status_code == 201:
                return outcome(201, str(response.json()["items"][0]["id"]))
            if response.status_code not in RETRY_STATUSES:
                return outcome(response.status_code)
            cause = str(response.status_code)
            with contextlib.suppress(ValueError):
                wait = min(float(response.headers.get("Retry-After", wait)), 5.0)
        if time.monotonic() - started + wait > give_up:
            return outcome(cause)
        retries.append(cause)
        await asyncio.sleep(wait)


async def stream(
    cluster: Cluster, run: Run, slug: str, files: list[tuple[str, bytes]], options: Options
) -> list[Outcome]:
    """Send the files at a fixed rate from a few clients; inject the fault part-way through."""
    queue: asyncio.Queue[Upload | None] = asyncio.Queue()
    outcomes: list[Outcome] = []
    began = time.monotonic()
    fault_after = max(1, int(len(files) * options.fault_at))
    released = asyncio.Event()

    async def pace() -> None:
        for index, (name, content) in enumerate(files):
            due = began + index / options.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            queue.put_nowait(Upload(index, name, content, due))
            if index + 1 == fault_after:
                released.set()
        for _ in range(options.clients):
            queue.put_nowait(None)  # one end mark per client

    async def fault() -> None:
        if run.fault == "none":
            return
        await released.wait()
        start = time.monotonic() - began
        await inject(cluster, run, options)
        run.fault_window = (start, time.monotonic() - began)

    async with httpx.AsyncClient(
        headers={"X-API-Key": cluster.admin_key}, timeout=httpx.Timeout(30.0)
    ) as client:

        async def upload() -> None:
            while (item := await queue.get()) is not None:
                outcomes.append(await upload_one(client, run, slug, item, options.give_up))

        workers = [upload() for _ in range(options.clients)]
        await asyncio.gather(pace(), fault(), *workers)
    return outcomes


# --------------------------------------------------------------------------- invariants


async def dead_letters() -> int:
    """How many messages the dead-letter topic holds (sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.KAFKA_BOOTSTRAP_SERVERS)
    await consumer.start()
    try:
        partitions = [TopicPartition(DEAD_LETTERS.name, p) for p in range(DEAD_LETTERS.partitions)]
        ends = await consumer.end_offsets(partitions)
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Snapshot:
    """What the database holds about a run's dataset (read as the superuser)."""

    assets: dict[str, tuple[str, str, str]]  # sha256 -> (asset id, bucket, key)
    reports: set[str]  # asset ids with a quality report
    audit: dict[tuple[str, str], int]  # (subject, type) -> records
    duplicate_event_ids: int
    pending_outbox: int

    def verdicts(self, asset_id: str) -> int:
        """Verdict records (cleaned or rejected) the audit log holds for an asset."""
        return sum(self.audit.get((asset_id, kind), 0) for kind in VERDICT_TYPES)

    def settled(self) -> bool:
        """Every asset judged and recorded, nothing waiting in an outbox."""
        ids = [asset_id for asset_id, _, _ in self.assets.values()]
        return (
            self.pending_outbox == 0
            and all(asset_id in self.reports for asset_id in ids)
            and all(self.verdicts(asset_id) >= 1 for asset_id in ids)
            and all(self.audit.get((asset_id, INGESTED_TYPE), 0) >= 1 for asset_id in ids)
        )


async def snapshot(cluster: Cluster, slug: str) -> Snapshot:
    """Read the run's assets, reports, audit records and pending outbox rows."""
    engine = create_async_engine(cluster.dsn, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT a.id::text, a.sha256, a.bucket, a.object_key FROM ingest.assets a "
                        "JOIN ingest.datasets d ON d.id = a.dataset_id WHERE d.slug = :slug"
                    ),
                    {"slug": slug},
                )
            ).all()
            ids = [row[0] for row in rows]
            reports = (
                await conn.execute(
                    text(
                        "SELECT asset_id::text FROM clean.quality_reports "
                        "WHERE asset_id::text = ANY(CAST(:ids AS text[]))"
                    ),
                    {"ids": ids},
                )
            ).all()
            audit = (
                await conn.execute(
                    text(
                        "SELECT subject, type, count(*) FROM audit.audit_records "
                        "WHERE subject = ANY(CAST(:ids AS text[])) GROUP BY subject, type"
                    ),
                    {"ids": ids},
                )
            ).all()
            duplicates = await conn.scalar(
                text(
                    "SELECT count(*) FROM (SELECT event_id FROM audit.audit_records "
                    "GROUP BY event_id HAVING count(*) > 1) AS d"
                )
            )
            pending = await conn.scalar(
                text(
                    "SELECT (SELECT count(*) FROM ingest.outbox WHERE sent_at IS NULL)"
                    " + (SELECT count(*) FROM clean.outbox WHERE sent_at IS NULL)"
                )
            )
    finally:
        await engine.dispose()
    return Snapshot(
        assets={sha: (asset_id, bucket, key) for asset_id, sha, bucket, key in rows},
        reports={row[0] for row in reports},
        audit={(subject, kind): int(n) for subject, kind, n in audit},
        duplicate_event_ids=int(duplicates or 0),
        pending_outbox=int(pending or 0),
    )


async def settle(cluster: Cluster, slug: str, within: float) -> tuple[Snapshot, float]:
    """Wait until the pipeline has caught up with the run, for at most ``within`` seconds."""
    began = time.monotonic()
    while True:
        state = await snapshot(cluster, slug)
        if state.settled() or time.monotonic() - began > within:
            return state, time.monotonic() - began
        await asyncio.sleep(1)


def blob_exists(bucket: str, key: str) -> bool:
    """Whether the object store holds an object."""
    try:
        minio_client().stat_object(bucket, key)
    except S3Error as exc:
        if exc.code in {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}:
            return False
        raise
    return True


def count_blobs(state: Snapshot, sent: list[str]) -> tuple[int, int]:
    """Assets whose blob is missing, and sent files stored in conveyor-raw without an asset."""
    missing = sum(1 for _, bucket, key in state.assets.values() if not blob_exists(bucket, key))
    orphans = sum(
        1
        for sha in sent
        if sha not in state.assets and blob_exists(RAW_BUCKET, content_address(sha))
    )
    return missing, orphans


async def verify_chain(cluster: Cluster) -> dict[str, object]:
    """The audit service's own verification of the whole hash chain."""
    async with httpx.AsyncClient(
        base_url=cluster.services["audit"].url,
        headers={"X-API-Key": cluster.admin_key},
        timeout=120,
    ) as client:
        response = await client.post("/v1/audit/verify")
        response.raise_for_status()
        return dict(response.json())


async def check(
    cluster: Cluster,
    run: Run,
    outcomes: list[Outcome],
    state: Snapshot,
    dlq_before: int,
) -> list[Invariant]:
    """Every invariant of the run, each with the numbers it was decided on."""
    acknowledged = {o.sha256: o.asset_id for o in outcomes if o.status == 201}
    sent = {o.sha256 for o in outcomes}
    lost = sum(1 for sha in acknowledged if sha not in state.assets)
    mismatched = sum(
        1
        for sha, asset_id in acknowledged.items()
        if sha in state.assets and state.assets[sha][0] != asset_id
    )
    strangers = sum(1 for sha in state.assets if sha not in sent)
    unacknowledged = sum(1 for sha in state.assets if sha in sent and sha not in acknowledged)
    assets_detail = f"{len(state.assets)} assets / {len(acknowledged)} 201s"
    if lost or mismatched or strangers:
        assets_detail += f" ({lost} lost, {mismatched} other id, {strangers} unknown)"
    if unacknowledged:
        assets_detail += f" (+{unacknowledged} never acknowledged)"

    ids = [asset_id for asset_id, _, _ in state.assets.values()]
    unjudged = sum(1 for i in ids if i not in state.reports or state.verdicts(i) == 0)
    judged_twice = sum(1 for i in ids if state.verdicts(i) > 1)
    ingested = [state.audit.get((i, INGESTED_TYPE), 0) for i in ids]
    unrecorded = sum(1 for n in ingested if n == 0)
    recorded_twice = sum(1 for n in ingested if n > 1)

    chain = await verify_chain(cluster)
    missing, orphans = await asyncio.to_thread(count_blobs, state, sorted(sent))
    dlq_after = await dead_letters()

    invariants = [
        Invariant("asset per 201", not (lost or mismatched or strangers), assets_detail),
        Invariant(
            "one verdict",
            unjudged == 0 and judged_twice == 0,
            f"{len(ids) - unjudged}/{len(ids)} judged, {judged_twice} twice",
        ),
        Invariant(
            "audit once",
            state.duplicate_event_ids == 0 and unrecorded == 0 and recorded_twice == 0,
            f"{state.duplicate_event_ids} dup ids, {unrecorded} unrecorded, {recorded_twice} twice",
        ),
        Invariant(
            "chain verifies",
            chain.get("ok") is True,
            f"{chain.get('records_checked')} records"
            + ("" if chain.get("ok") else f", broken at {chain.get('first_broken')}"),
        ),
        Invariant("outbox drained", state.pending_outbox == 0, f"{state.pending_outbox} pending"),
        Invariant("blobs", missing == 0 and orphans == 0, f"{missing} missing, {orphans} orphaned"),
        Invariant("DLQ unchanged", dlq_after == dlq_before, f"{dlq_before} -> {dlq_after}"),
    ]
    for proc in run.joined:
        if proc.name == "ingest":
            share = sum(1 for o in outcomes if o.target == proc.url and o.status == 201)
            took_part = f"served {share} uploads"
        else:
            share = int(metric_sum(proc.url, "conveyor_events_consumed_total", 'outcome="ok"'))
            took_part = f"handled {share} events"
        invariants.append(Invariant("second copy took part", share > 0, took_part))
    return invariants


# --------------------------------------------------------------------------- runs


def make_files(count: int) -> list[tuple[str, bytes]]:
    """Unique generated images (random pixels: no two alike)."""
    return [(f"chaos-{i:05}.jpg", image(width=64, height=48)) for i in range(count)]


async def create_dataset(cluster: Cluster, fault: str) -> str:
    """A new dataset for one run (its assets are the run's own)."""
    slug = f"chaos-{fault}-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(
        base_url=cluster.services["ingest"].url,
        headers={"X-API-Key": cluster.admin_key},
        timeout=30,
    ) as client:
        response = await client.post("/v1/datasets", json={"slug": slug, "name": slug})
        response.raise_for_status()
    # Clean learns the dataset from its event; an upload before that would still be judged
    # later, but starting from a known dataset keeps the run's latencies about the fault.
    await asyncio.sleep(1)
    return slug


async def run_fault(cluster: Cluster, fault: str, options: Options) -> RunResult:
    """One run: stream uploads with the fault injected, settle, check every invariant."""
    for proc in cluster.services.values():
        await asyncio.to_thread(proc.wait_ready, 90)
    files = await asyncio.to_thread(make_files, options.uploads)
    slug = await create_dataset(cluster, fault)
    dlq_before = await dead_letters()
    run = Run(fault, targets=[cluster.services["ingest"].url])
    try:
        outcomes = await stream(cluster, run, slug, files, options)
        state, settled_in = await settle(cluster, slug, options.settle)
        invariants = await check(cluster, run, outcomes, state, dlq_before)
    finally:
        for proc in run.joined:
            await asyncio.to_thread(proc.stop)
    return RunResult(fault, outcomes, invariants, settled_in, run.fault_window)


# --------------------------------------------------------------------------- the table


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def table(results: list[RunResult]) -> str:
    """One markdown table: client outcomes per run, then each invariant."""
    names = list(dict.fromkeys(i.name for r in results for i in r.invariants))
    header = [
        "fault",
        "sent",
        "201",
        "retries",
        "errors",
        "p50 s",
        "p95 s",
        "max s",
        "max wait s",
        "settle s",
        *names,
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        latencies = [o.latency for o in result.outcomes if o.status == 201]
        retry_causes = collections.Counter(c for o in result.outcomes for c in o.retries)
        errors = collections.Counter(str(o.status) for o in result.outcomes if o.status != 201)
        by_name = {i.name: i for i in result.invariants}
        cells = [
            result.fault,
            str(len(result.outcomes)),
            str(result.created),
            _counted(retry_causes),
            _counted(errors),
            f"{percentile(latencies, 0.5):.2f}",
            f"{percentile(latencies, 0.95):.2f}",
            f"{max(latencies, default=0.0):.2f}",
            f"{max((o.waited for o in result.outcomes), default=0.0):.1f}",
            f"{result.settle_seconds:.0f}",
            *(
                f"{'PASS' if by_name[n].ok else 'FAIL'} {by_name[n].detail}" if n in by_name else ""
                for n in names
            ),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _counted(counter: collections.Counter[str]) -> str:
    total = sum(counter.values())
    if not total:
        return "0"
    return f"{total} (" + ", ".join(f"{k}: {v}" for k, v in counter.most_common()) + ")"


# --------------------------------------------------------------------------- the command


@contextlib.contextmanager
def session_lock() -> Iterator[None]:
    """The lock test sessions take: one user of the shared stack and service ports at a time."""
    with open(STACK_SESSION_LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("waiting for the running test session to finish...", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def own_cluster(run_dir: Path) -> Iterator[Cluster]:
    """Fresh database, topics and consumer groups, and this harness's own service processes."""
    reset(CHAOS_DB)
    run_id = uuid.uuid4().hex[:8]
    env = {
        "CONVEYOR_DATABASE_URL": endpoints.postgres_url(CHAOS_DB, driver="asyncpg"),
        "CONVEYOR_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CONVEYOR_INGEST_CONSUMER_GROUP": f"conveyor-ingest-chaos-{run_id}",
        "CONVEYOR_CLEAN_CONSUMER_GROUP": f"conveyor-clean-chaos-{run_id}",
        "CONVEYOR_AUDIT_CONSUMER_GROUP": f"conveyor-audit-chaos-{run_id}",
        "CONVEYOR_LOG_LEVEL": "INFO",
    }
    procs = {
        name: ServiceProcess(name, env=env, log_dir=run_dir, run_dir=run_dir) for name in SERVICES
    }
    stop_running(tuple(procs), say=True)
    try:
        for proc in procs.values():
            proc.start()
        yield Cluster(procs, env, CHAOS_DB, run_dir, ADMIN_KEY)
    finally:
        for proc in procs.values():
            proc.stop()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # A plain SIGTERM would skip the finally blocks that restart Postgres or SIGCONT the store.
    raise SystemExit(128 + signum)


def parse_args(argv: list[str] | None) -> tuple[list[str], Options]:
    """Faults and options from the command line."""
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m deploy.chaos",
        description=(__doc__ or "").split("\n\n")[0],
        epilog=f"faults: {', '.join(FAULTS)} (or 'all'; 'none' is a run without a fault)",
    )
    parser.add_argument("--faults", default="all", help="comma-separated faults, one run each")
    parser.add_argument("--uploads", type=int, default=defaults.uploads, help="uploads per run")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="uploads per second")
    parser.add_argument("--clients", type=int, default=defaults.clients, help="concurrent clients")
    parser.add_argument(
        "--outage", type=float, default=defaults.outage, help="seconds Postgres/store are out"
    )
    parser.add_argument(
        "--fault-at", type=float, default=defaults.fault_at, help="fraction sent before the fault"
    )
    parser.add_argument(
        "--settle", type=float, default=defaults.settle, help="seconds allowed to catch up"
    )
    args = parser.parse_args(argv)
    faults = list(FAULTS) if args.faults == "all" else args.faults.split(",")
    unknown = [f for f in faults if f not in (*FAULTS, "none")]
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(unknown)}")
    options = Options(
        uploads=args.uploads,
        rate=args.rate,
        clients=args.clients,
        outage=args.outage,
        fault_at=args.fault_at,
        settle=args.settle,
    )
    return faults, options


def main(argv: list[str] | None = None) -> int:
    """Run each fault once on this harness's own services; print the table; 1 if any failed."""
    faults, options = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = ROOT / ".stack" / "chaos" / stamp
    results: list[RunResult] = []
    with session_lock(), own_cluster(run_dir) as cluster:
        print(f"chaos: logs in {run_dir}", flush=True)
        for fault in faults:
            print(f"chaos: {fault}: {options.uploads} uploads at {options.rate:g}/s", flush=True)
            result = asyncio.run(run_fault(cluster, fault, options))
            results.append(result)
            window = result.fault_window
            during = f"fault {window[0]:.0f}-{window[1]:.0f} s" if window else "no fault"
            verdict = "ok" if result.ok else "INVARIANT FAILED"
            print(
                f"chaos: {fault}: {result.created}/{len(result.outcomes)} 201, {during}, {verdict}",
                flush=True,
            )
    print()
    print(table(results))
    failed = [(r.fault, i) for r in results for i in r.invariants if not i.ok]
    for fault, invariant in failed:
        print(f"FAIL {fault}: {invariant.name}: {invariant.detail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
