"""``python -m services.dashboard [serve|migrate|rebuild]``"""

import asyncio
import sys

from aiokafka.errors import KafkaError

from services.dashboard.app import MIGRATIONS, create_dashboard_app
from services.dashboard.models import SCHEMA
from services.dashboard.settings import DashboardSettings
from services.dashboard.use_cases.rebuild import GroupActive, rebuild
from shared.process import Command, run_service

REBUILD_HELP = (
    "empty the projections and the inbox and reset the consumer group to the earliest "
    "offsets, so the next start replays every topic (stop the service first; a replay covers "
    "only what Kafka still holds, see its retention)"
)


def rebuild_projections(settings: DashboardSettings) -> None:
    """``rebuild``: print what was reset, or why nothing was."""
    try:
        done = asyncio.run(rebuild(settings, MIGRATIONS))
    except GroupActive as exc:
        sys.exit(f"rebuild refused: {exc}")
    except KafkaError as exc:
        sys.exit(f"rebuild failed, Kafka at {settings.kafka_bootstrap_servers}: {exc!r}")
    emptied = ", ".join(f"{table} {rows}" for table, rows in done.emptied.items())
    print(
        f"consumer group {done.group!r} reset to the earliest offsets "
        f"({done.partitions} partitions of {done.topics} topics)\n"
        f"emptied (rows): {emptied}\n"
        "start the service to replay the topics"
    )


run_service(
    DashboardSettings(),
    create_dashboard_app,
    "services.dashboard.app:create_dashboard_app",
    MIGRATIONS,
    SCHEMA,
    commands={"rebuild": Command(REBUILD_HELP, rebuild_projections)},
)
