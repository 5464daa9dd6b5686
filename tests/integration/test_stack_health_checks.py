"""The stack's health checks (aiokafka, minio, psql) against the running servers."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

from deploy.stack.config import REPO, load_settings
from deploy.stack.kafka import Kafka
from deploy.stack.labelstudio import LabelStudio
from deploy.stack.postgres import Postgres
from deploy.stack.seaweedfs import SeaweedFS


def test_status_reports_every_server_of_the_running_stack_healthy(stack: None) -> None:
    status = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "stack" / "stack.py"), "status"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    # the trace viewer's line is information only (tests do not need it; make run builds it)
    lines = [line for line in status.stdout.splitlines() if not line.startswith("jaeger")]
    assert [line.split()[:2] for line in lines] == [
        ["kafka", "running"],
        ["seaweedfs", "running"],
        ["postgres", "running"],
        ["labelstudio", "running"],
    ]
    assert all(line.endswith("  healthy") for line in lines), lines


def test_health_checks_pass_against_the_running_servers(stack: None) -> None:
    settings = load_settings({})
    assert Kafka(settings).health() is None
    assert SeaweedFS(settings).health() is None
    assert Postgres(settings).health() is None
    assert LabelStudio(settings).health() is None


def test_the_s3_check_uses_the_configured_keys(stack: None) -> None:
    settings = load_settings({})
    wrong_secret = SeaweedFS(dataclasses.replace(settings, s3_secret_key="not-the-secret"))
    assert wrong_secret.health() == "S3 ListBuckets answered HTTP 403 SignatureDoesNotMatch"
    unknown_key = SeaweedFS(dataclasses.replace(settings, s3_access_key="nobody"))
    assert unknown_key.health() == "S3 ListBuckets answered HTTP 403 InvalidAccessKeyId"


def test_the_kafka_check_wants_this_stacks_cluster_id(stack: None, tmp_path: Path) -> None:
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "cluster.id").write_text("some-other-cluster\n")
    other = Kafka(dataclasses.replace(load_settings({}), state=tmp_path))
    assert (other.health() or "").endswith("expected 'some-other-cluster'")


def test_nothing_listening_is_reported_at_once_not_after_retries(stack: None) -> None:
    settings = load_settings({"CONVEYOR_STACK_PORT_OFFSET": "400"})
    began = time.monotonic()
    assert (Kafka(settings).health() or "").startswith("metadata request failed:")
    assert (SeaweedFS(settings).health() or "").startswith("S3 request failed:")
    assert (Postgres(settings).health() or "").startswith("pg_isready exit")
    assert time.monotonic() - began < 5


def test_label_studio_is_unhealthy_when_it_listens_on_another_port(stack: None) -> None:
    # Label Studio takes the next free port when its own is busy: the check must notice.
    settings = load_settings({})
    moved = LabelStudio(dataclasses.replace(settings, ports=settings.ports.shifted(400)))
    wanted, actual = moved.port, settings.ports.label_studio
    assert moved.health() == (
        f"listens on port {actual}, not {wanted} (was {wanted} busy at its start?)"
    )
