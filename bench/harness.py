"""What the service benchmarks share: their own processes on a reset database and topics.

Every benchmark that starts services stops those ``make run`` started (they hold the ports and
would replay the reset topics into their own database), empties its own database and the
``conveyor.*`` topics, and runs its processes with fresh consumer groups and quiet logs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from deploy.sandbox import reset
from deploy.services import SERVICES, ServiceProcess, stop_running
from shared import endpoints

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "cvk_bench_admin"


def fresh_services(
    names: Sequence[str],
    database: str,
    tag: str,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, ServiceProcess]:
    """The processes ``names`` (not started) on a freshly reset ``database`` and topics.

    ``tag`` names their consumer groups (``bench-<tag>-<service>-<time>``) and their log folder
    (``.stack/bench-<tag>``).
    """
    stop_running(tuple(SERVICES), say=True)
    print("resetting database and topics...", flush=True)
    reset(database)
    run_dir = ROOT / ".stack" / f"bench-{tag}"
    stamp = int(time.time())
    env = {
        "CONVEYOR_DATABASE_URL": endpoints.postgres_url(database, driver="asyncpg"),
        "CONVEYOR_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CONVEYOR_LOG_LEVEL": "WARNING",
        **{f"CONVEYOR_{n.upper()}_CONSUMER_GROUP": f"bench-{tag}-{n}-{stamp}" for n in names},
        **(extra_env or {}),
    }
    return {n: ServiceProcess(n, env=env, log_dir=run_dir, run_dir=run_dir) for n in names}
