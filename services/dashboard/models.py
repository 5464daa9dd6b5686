"""The dashboard's projections (schema ``dashboard``), filled only from events.

Every row can be rebuilt by replaying the topics: times are the events' own times, never the
time the dashboard happened to read them, and each projection merges its events whatever
order they arrive in (an asset's verdict may be read before its upload: the topics are
consumed side by side).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.inbox import inbox_table

SCHEMA = "dashboard"

metadata = MetaData(schema=SCHEMA)
inbox = inbox_table(metadata)


def _at(name: str, nullable: bool = True) -> Column[datetime]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


datasets = Table(
    "datasets",
    metadata,
    Column("dataset_id", Uuid, primary_key=True),
    Column("slug", String(63), nullable=False),
    Column("name", Text, nullable=False),
    _at("created_at"),
)

# One row per asset: where it is in the pipeline, and when it got there.
assets = Table(
    "assets",
    metadata,
    Column("asset_id", Uuid, primary_key=True),
    Column("dataset_id", Uuid),
    Column("filename", Text),
    Column("sha256", String(64)),
    Column("media_type", Text),
    Column("size_bytes", BigInteger),
    Column("source", String(20)),
    Column("parent_asset_id", Uuid),
    Column("uploaded_by", Text),
    Column("bucket", Text),
    Column("object_key", Text),
    # the W3C trace id of the upload, for a link to the trace viewer
    Column("trace_id", String(32)),
    _at("uploaded_at"),
    # clean's latest verdict: 'cleaned' or 'rejected'
    Column("verdict", String(10)),
    _at("verdict_at"),
    Column("reasons", JSONB),
    Column("flags", JSONB),
    Column("metrics", JSONB),
    Column("tasks", Integer, nullable=False, server_default="0"),
    _at("first_task_at"),
    _at("first_dispatched_at"),
    Column("submissions", Integer, nullable=False, server_default="0"),
    _at("first_submitted_at"),
    # QC's latest decision: 'accepted', 'rejected' or 'rework'
    Column("decision", String(10)),
    _at("decided_at"),
    Column("decided_by", Text),
)

# The funnel's counters: assets per dataset, upload hour and mark (a stage such as "cleaned",
# or "reason:<code>" per blocking reason); kept with the asset rows, see domain/funnel.py.
funnel_hours = Table(
    "funnel_hours",
    metadata,
    Column("dataset_id", Uuid, primary_key=True),
    Column("hour", DateTime(timezone=True), primary_key=True),
    Column("mark", Text, primary_key=True),
    Column("assets", Integer, nullable=False),
)

# What each asset counts for in funnel_hours, as last added there (no row: nothing). A unit of
# work that writes an asset row moves the counters from this to the row's new standing. A
# narrow table of its own: it changes with nearly every event, and kept in the wide asset row
# each change wrote a new version of the row and its five indexes (catch-up 2 241 -> 1 772
# events/s in bench/dashboard.py, against 1 956-2 001 with this table).
funnel_assets = Table(
    "funnel_assets",
    metadata,
    Column("asset_id", Uuid, primary_key=True),
    Column("dataset_id", Uuid, nullable=False),
    Column("hour", DateTime(timezone=True), nullable=False),
    Column("marks", ARRAY(Text), nullable=False),
)

# Objects dropped into the landing bucket that never became assets.
drops = Table(
    "drops",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("bucket", Text, nullable=False),
    Column("key", Text, nullable=False),
    # the dataset slug the key starts with (landing keys are <dataset-slug>/<file>)
    Column("dataset_slug", Text),
    Column("reason", Text, nullable=False),
    Column("message", Text, nullable=False),
    _at("at", nullable=False),
)

# Events per stage per minute per dataset: the throughput chart.
stage_minutes = Table(
    "stage_minutes",
    metadata,
    Column("dataset_id", Uuid, primary_key=True),
    Column("stage", String(20), primary_key=True),
    Column("minute", DateTime(timezone=True), primary_key=True),
    Column("events", Integer, nullable=False),
)

vendors = Table(
    "vendors",
    metadata,
    Column("vendor_id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("capacity", Integer, nullable=False),
    _at("created_at"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("dataset_id", Uuid, nullable=False),
    Column("state", String(20), nullable=False),
    _at("created_at"),
)

# A labeling task's latest known state: queued (created, expired), dispatched (with a
# vendor), answered.
tasks = Table(
    "tasks",
    metadata,
    Column("task_id", Uuid, primary_key=True),
    Column("job_id", Uuid),
    Column("asset_id", Uuid),
    Column("vendor_id", Uuid),
    Column("state", String(12), nullable=False),
    Column("gold", Boolean),
    _at("state_at", nullable=False),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("original_topic", Text, nullable=False),
    Column("original_partition", Integer, nullable=False),
    Column("original_offset", BigInteger, nullable=False),
    Column("original_event_id", Text),
    Column("original_type", Text),
    Column("consumer_group", Text, nullable=False),
    Column("error", Text, nullable=False),
    _at("at", nullable=False),
)

versions = Table(
    "dataset_versions",
    metadata,
    Column("dataset_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("item_count", Integer, nullable=False),
    Column("shape_count", Integer, nullable=False),
    Column("created_by", Text, nullable=False),
    _at("created_at", nullable=False),
)

# One row: how many events the projections applied, and when they last changed (the page
# polls it to refresh without reloading).
progress = Table(
    "progress",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("events_applied", BigInteger, nullable=False),
    _at("changed_at"),
)

# Every projection table, in the order a rebuild empties them.
PROJECTIONS = (
    datasets,
    assets,
    funnel_assets,
    funnel_hours,
    drops,
    stage_minutes,
    vendors,
    jobs,
    tasks,
    dead_letters,
    versions,
)
