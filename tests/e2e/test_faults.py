"""Faults in the middle of a stream of uploads lose nothing and double nothing.

The small version of ``make chaos``: the harness's own runs (deploy/chaos.py), on this
session's services, with a few hundred uploads per fault and a shorter Postgres outage.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from deploy.chaos import Cluster, Options, RunResult, run_fault, table
from deploy.services import ServiceProcess
from tests.conftest import ADMIN_KEY, TEST_DB

pytestmark = pytest.mark.slow

OPTIONS = Options(uploads=250, rate=25.0, clients=4, outage=12.0, fault_at=0.25, settle=120.0)


@pytest.fixture(scope="module")
def cluster(
    services: dict[str, ServiceProcess], service_env: dict[str, str], run_dir: Path
) -> Cluster:
    """The session's services, as the harness drives them."""
    return Cluster(services, service_env, TEST_DB, run_dir, ADMIN_KEY)


def run(cluster: Cluster, fault: str, options: Options = OPTIONS) -> RunResult:
    result = asyncio.run(run_fault(cluster, fault, options))
    print(table([result]))
    return result


def assert_whole(result: RunResult) -> None:
    """Every invariant held and every upload was eventually accepted."""
    failed = [f"{i.name}: {i.detail}" for i in result.invariants if not i.ok]
    assert not failed, table([result])
    assert result.created == len(result.outcomes), table([result])
    assert result.fault_window is not None


def test_kill_9_of_clean_mid_stream_judges_every_asset_exactly_once(cluster: Cluster) -> None:
    assert_whole(run(cluster, "kill-clean"))


def test_postgres_down_mid_stream_delays_uploads_with_503_and_loses_none(
    cluster: Cluster,
) -> None:
    result = run(cluster, "postgres-down")
    assert_whole(result)
    # The outage was seen by the clients as retried answers, not as failures.
    assert any(outcome.retries for outcome in result.outcomes)


@pytest.mark.parametrize("fault", ["kill-ingest", "kill-audit"])
def test_kill_9_mid_stream_leaves_one_asset_and_one_record_per_upload(
    cluster: Cluster, fault: str
) -> None:
    assert_whole(run(cluster, fault, Options(uploads=150, rate=25.0, settle=120.0)))


@pytest.mark.parametrize("fault", ["second-clean", "second-audit"])
def test_a_second_copy_joining_mid_stream_takes_part_and_changes_no_count(
    cluster: Cluster, fault: str
) -> None:
    # Joining takes several seconds (start-up, then a rebalance): the stream must outlast it.
    result = run(cluster, fault, Options(uploads=400, rate=20.0, fault_at=0.02, settle=120.0))
    assert_whole(result)
    assert any(i.name == "second copy took part" for i in result.invariants)
