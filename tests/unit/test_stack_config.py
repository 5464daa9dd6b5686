"""deploy/stack/config.py: versions.env, the stack's locations and ports, generated config."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from deploy.stack import config
from deploy.stack.config import Ports, StackError, load_settings, quoted, read_versions
from shared import endpoints


def test_versions_env_lines_are_parsed_without_comments_or_quotes(tmp_path: Path) -> None:
    path = tmp_path / "versions.env"
    path.write_text('# comment\n\nKAFKA_VERSION=4.1.1\n SEAWEEDFS_VERSION = "4.48" \n')
    assert read_versions(path) == {"KAFKA_VERSION": "4.1.1", "SEAWEEDFS_VERSION": "4.48"}
    path.write_text("KAFKA_VERSION 4.1.1\n")
    with pytest.raises(StackError, match="not a KEY=VALUE line"):
        read_versions(path)


def test_versions_are_pinned_only_in_versions_env() -> None:
    versions = read_versions()
    assert set(versions) >= {
        "KAFKA_VERSION",
        "SEAWEEDFS_VERSION",
        "POSTGRES_MAJOR",
        "LABEL_STUDIO_VERSION",
    }
    for module in config.STACK_DIR.glob("*.py"):
        text = module.read_text()
        for name in ("KAFKA_VERSION", "SEAWEEDFS_VERSION", "LABEL_STUDIO_VERSION"):
            assert not re.search(rf"\b{re.escape(versions[name])}\b", text), (
                f"{module.name} repeats {name}={versions[name]}"
            )


def test_defaults_are_the_repository_state_folder_and_the_endpoints_ports() -> None:
    settings = load_settings({})
    assert settings.state == config.REPO / ".stack"
    assert settings.logs == config.REPO / ".stack" / "logs"
    assert settings.ports == Ports(
        kafka=endpoints.KAFKA_PORT,
        kafka_controller=endpoints.KAFKA_CONTROLLER_PORT,
        s3=endpoints.S3_PORT,
        filer=endpoints.SEAWEEDFS_FILER_PORT,
        master=endpoints.SEAWEEDFS_MASTER_PORT,
        volume=endpoints.SEAWEEDFS_VOLUME_PORT,
        postgres=endpoints.POSTGRES_PORT,
        label_studio=endpoints.LABEL_STUDIO_PORT,
    )
    assert settings.label_studio_token == endpoints.LABEL_STUDIO_TOKEN
    assert settings.webhook_url == f"{endpoints.INGEST_URL}/internal/objectstore/events"
    assert (settings.s3_access_key, settings.s3_secret_key) == ("conveyor", "conveyor-dev-secret")


def test_a_scratch_stack_gets_its_own_folder_and_every_port_shifted(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "CONVEYOR_STACK_DIR": str(tmp_path / "state"),
            "CONVEYOR_STACK_PORT_OFFSET": "100",
            "CONVEYOR_S3_SECRET_KEY": "other-secret",
        }
    )
    assert settings.state == tmp_path / "state"
    assert settings.log("kafka") == tmp_path / "state" / "logs" / "kafka.log"
    default = Ports()
    for field in dataclasses.fields(Ports):
        assert getattr(settings.ports, field.name) == getattr(default, field.name) + 100
    assert settings.s3_secret_key == "other-secret"
    with pytest.raises(StackError, match="CONVEYOR_STACK_PORT_OFFSET"):
        load_settings({"CONVEYOR_STACK_PORT_OFFSET": "a lot"})


def test_quoted_values_survive_json_and_toml_strings() -> None:
    value = 'pa"ss\\word\n'
    assert json.loads(f'"{quoted(value)}"') == value
