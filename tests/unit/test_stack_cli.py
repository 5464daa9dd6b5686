"""deploy/stack/stack.py as `make stack-down` runs it, and what `up` checks before starting."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.stack import kafka, stack
from deploy.stack.config import REPO, StackError, load_settings
from deploy.stack.kafka import Kafka
from deploy.stack.postgres import Postgres
from deploy.stack.seaweedfs import SeaweedFS

SCRIPT = REPO / "deploy" / "stack" / "stack.py"

# Runs stack.py as python would, with the venv's packages made unimportable (as with the
# system python3 that `make stack-down` falls back to); an attempt to import one is reported.
WITHOUT_VENV_PACKAGES = """
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"aiokafka", "minio", "urllib3", "asyncpg", "pydantic"}:
            print(f"import of {name} attempted", file=sys.stderr)
            raise ImportError(name)
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_without_venv_packages(command: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CONVEYOR_STACK_DIR": str(state),
        "CONVEYOR_STACK_PORT_OFFSET": "300",  # nothing of the real stack is touched
    }
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_VENV_PACKAGES, str(SCRIPT), command],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_down_and_status_run_without_the_venv_packages(tmp_path: Path) -> None:
    state = tmp_path / "state"
    down = run_without_venv_packages("down", state)
    assert (down.returncode, down.stderr) == (0, "")
    assert down.stdout.splitlines() == [
        "[stack] kafka: not running",
        "[stack] seaweedfs: not running",
        "[stack] postgres: not running",
        "[stack] labelstudio: not running",
        "[stack] jaeger: not running",
    ]
    assert (state / "stack.lock").exists()
    status = run_without_venv_packages("status", state)
    assert (status.returncode, status.stderr) == (1, "")
    assert status.stdout.splitlines() == [
        "kafka        stopped  -        127.0.0.1:19392 (controller 127.0.0.1:19393)",
        "seaweedfs    stopped  -        s3 http://127.0.0.1:18633 (filer 19188, master 19633, "
        "volume 18380)",
        "postgres     stopped  -        127.0.0.1:55732",
        "labelstudio  stopped  -        http://127.0.0.1:8380 (admin admin@conveyor.local)",
        "jaeger       not built -        not built (`make run` builds it, needs Go)",
    ]


def test_health_checks_say_they_cannot_check_without_their_client_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "aiokafka.errors", None)
    monkeypatch.setitem(sys.modules, "minio.error", None)
    settings = load_settings({})
    assert Kafka(settings).health() == (
        "cannot check: aiokafka is not installed (run with .venv/bin/python)"
    )
    assert SeaweedFS(settings).health() == (
        "cannot check: minio is not installed (run with .venv/bin/python)"
    )


def test_up_names_every_missing_prerequisite_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kafka.shutil, "which", lambda tool: None)
    settings = load_settings(
        {"CONVEYOR_STACK_DIR": str(tmp_path / "state"), "CONVEYOR_STACK_PORT_OFFSET": "300"}
    )
    monkeypatch.setattr(type(settings), "pg_bin", property(lambda self: tmp_path / "no-pg"))
    with pytest.raises(StackError) as failure:
        stack.cmd_up(settings)
    message = str(failure.value)
    assert message.startswith("missing prerequisites:\n  - java (a JDK/JRE 17 or newer)")
    assert "mvn (Apache Maven) is not on PATH" in message
    for tool in ("initdb", "pg_ctl", "pg_isready", "psql"):
        assert f"{tmp_path / 'no-pg' / tool} is missing" in message
    assert not (tmp_path / "state").exists()


def test_the_postgres_fallback_home_of_the_usual_stack_is_keyed_by_the_repository() -> None:
    # As before the split, so a cluster already kept under /var/tmp is found again.
    digest = hashlib.sha256(str(REPO).encode()).hexdigest()[:10]
    usual = Postgres(load_settings({}))
    assert usual.fallback_home() == Path(f"/var/tmp/conveyor-pg-{digest}")
    scratch = Postgres(load_settings({"CONVEYOR_STACK_DIR": "/tmp/elsewhere/.stack"}))
    assert scratch.fallback_home() != usual.fallback_home()
