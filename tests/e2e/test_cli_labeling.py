"""The `conveyor` labeling commands (ontologies, vendors, jobs, deliveries) against the real
labeling-dispatch service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")


def conveyor(labeling_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONVEYOR_API_KEY": ADMIN_KEY}
    return subprocess.run(
        [sys.executable, "-m", "conveyor_cli.main", "--labeling-url", labeling_url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def as_json(labeling_url: str, *args: str) -> Any:
    result = conveyor(labeling_url, "--json", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_cli_creates_versions_lists_and_shows_an_ontology(
    tmp_path: Path, labeling_url: str
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "ontology.json"
    classes: list[dict[str, Any]] = [
        {
            "name": "car",
            "shape": "bbox",
            "attributes": [
                {"name": "color", "type": "enum", "values": ["red", "blue"], "required": True}
            ],
        }
    ]
    spec.write_text(json.dumps({"name": name, "classes": classes}))

    created = conveyor(labeling_url, "ontologies", "create", "--file", str(spec))
    assert created.returncode == 0, created.stdout + created.stderr
    assert f"{name} version 1" in created.stdout and "color: enum [red, blue]" in created.stdout

    spec.write_text(json.dumps({"classes": [*classes, {"name": "road", "shape": "polygon"}]}))
    second = as_json(labeling_url, "ontologies", "version", name, "--file", str(spec))
    assert second["version"] == 2

    listed = as_json(labeling_url, "ontologies", "list", "--limit", "1000")
    assert any(o["name"] == name and o["latest_version"] == 2 for o in listed["items"])

    shown = conveyor(labeling_url, "ontologies", "show", name)
    assert shown.returncode == 0, shown.stderr
    assert "version 2" in shown.stdout and "road" in shown.stdout and "Versions" in shown.stdout
    first = as_json(labeling_url, "ontologies", "show", name, "--version", "1")
    assert [c["name"] for c in first["classes"]] == ["car"]


def test_cli_reports_every_problem_of_a_refused_ontology(tmp_path: Path, labeling_url: str) -> None:
    spec = tmp_path / "bad.json"
    spec.write_text(
        json.dumps(
            {
                "name": f"bad-{uuid.uuid4().hex[:8]}",
                "classes": [
                    {"name": "car", "shape": "bbox"},
                    {"name": "car", "shape": "bbox"},
                ],
            }
        )
    )
    refused = conveyor(labeling_url, "ontologies", "create", "--file", str(spec))
    assert refused.returncode == 1
    assert "validation_error" in refused.stderr and "class names repeat" in refused.stderr
    missing = conveyor(labeling_url, "ontologies", "show", "no-such-ontology")
    assert missing.returncode == 1 and "ontology_not_found" in missing.stderr


def test_cli_runs_a_job_through_its_states(tmp_path: Path, labeling_url: str, dataset: str) -> None:
    ontology = f"cli-{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "ontology.json"
    spec.write_text(json.dumps({"classes": [{"name": "car", "shape": "bbox"}]}))
    assert (
        as_json(labeling_url, "ontologies", "create", "--file", str(spec), "--name", ontology)[
            "version"
        ]
        == 1
    )

    vendor_name = f"vendor-{uuid.uuid4().hex[:8]}"
    made = conveyor(
        labeling_url, "vendors", "create", vendor_name, "--url", "http://127.0.0.1:9/hook"
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert "cvv_" in made.stdout and "shown only this once" in made.stderr
    vendors = as_json(labeling_url, "vendors", "list", "--limit", "1000")["items"]
    vendor_id = next(v["id"] for v in vendors if v["name"] == vendor_name)

    def create_job() -> subprocess.CompletedProcess[str] | None:
        # labeling learns of the dataset from ingest's event, a moment after it is created
        result = conveyor(
            labeling_url, "--json", "jobs", "create", "cli-job", "--dataset", dataset,
            "--ontology", ontology, "--vendor", vendor_id,
        )  # fmt: skip
        return result if result.returncode == 0 else None

    job = json.loads(eventually(create_job).stdout)
    assert job["state"] == "open" and job["vendor_ids"] == [vendor_id]

    status = conveyor(labeling_url, "jobs", "status", job["id"])
    assert status.returncode == 0, status.stderr
    assert "Tasks per vendor" in status.stdout and "total" in status.stdout
    assert as_json(labeling_url, "jobs", "pause", job["id"])["state"] == "paused"
    assert as_json(labeling_url, "jobs", "resume", job["id"])["state"] == "open"
    assert as_json(labeling_url, "jobs", "cancel", job["id"])["state"] == "cancelled"
    again = conveyor(labeling_url, "jobs", "resume", job["id"])
    assert again.returncode == 1 and "illegal_job_transition" in again.stderr

    listed = as_json(labeling_url, "jobs", "list", "--dataset", dataset)
    assert [j["id"] for j in listed["items"]] == [job["id"]]
    deliveries = as_json(labeling_url, "deliveries", "list", "--job", job["id"])
    assert deliveries["items"] == []  # the dataset has no images: nothing was sent
    assert as_json(labeling_url, "tasks", "list", "--job", job["id"])["items"] == []
    table = conveyor(labeling_url, "tasks", "list", "--job", job["id"], "--state", "queued")
    assert table.returncode == 0 and "Tasks" in table.stdout, table.stderr
    assert conveyor(labeling_url, "tasks", "list", "--job", "not-an-id").returncode == 2
