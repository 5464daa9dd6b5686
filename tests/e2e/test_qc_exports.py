"""Dataset versions and exports through the running services: an upload two vendors label
alike is accepted by QC, frozen into version 1 over HTTP, exported as COCO with the image in
the zip, and the zip downloaded through its presigned URL holds the uploaded bytes and the
consensus box."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_labeling_dispatch import (  # noqa: F401 (fixtures)
    Scene,
    labeling,
    ontology,
    other_vendor,
    scene,
    vendor,
)
from tests.e2e.test_qc_pipeline import ACCEPTED, answer_overlap_two, records_of_job
from tests.vendor_simulator import VendorSimulator
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")


@pytest.fixture
def qc(qc_url: str, uploader_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=qc_url, headers={"X-API-Key": uploader_key}, timeout=60) as c:
        yield c


def finished(qc: httpx.Client, export_id: str) -> dict[str, Any] | None:
    response = qc.get(f"/v1/exports/{export_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    assert 0 <= found["done"] <= found["total"]
    return found if found["state"] in ("done", "failed") else None


def test_an_accepted_asset_is_frozen_and_exported_with_its_image_and_consensus_box(
    scene: Scene,  # noqa: F811
    other_vendor: VendorSimulator,  # noqa: F811
    auditor: httpx.Client,
    qc: httpx.Client,
    qc_url: str,
    uploader_key: str,
    tmp_path: Path,
) -> None:
    job_id = answer_overlap_two(scene, other_vendor, 100, 104)
    [accepted] = eventually(lambda: records_of_job(auditor, ACCEPTED, job_id), timeout=60)
    asset = scene.uploader.get(f"/v1/assets/{accepted['payload']['asset_id']}").json()

    created = qc.post(f"/v1/datasets/{scene.dataset}/versions")
    assert created.status_code == 201, created.text
    version = created.json()
    assert (version["number"], version["item_count"], version["shape_count"]) == (1, 1, 1)
    again = qc.post(f"/v1/datasets/{scene.dataset}/versions")
    assert again.status_code == 200, again.text
    assert again.json()["id"] == version["id"]
    listed = qc.get(f"/v1/datasets/{scene.dataset}/versions").json()
    assert [v["number"] for v in listed["items"]] == [1]

    requested = qc.post(
        f"/v1/datasets/{scene.dataset}/versions/1/exports",
        json={"format": "coco", "images": "include"},
    )
    assert requested.status_code == 202, requested.text
    assert requested.json()["state"] == "queued" and requested.json()["download_url"] is None
    export = eventually(lambda: finished(qc, requested.json()["id"]), timeout=60)
    assert export["state"] == "done", export["error"]
    assert export["done"] == export["total"] == 1 and export["annotation_count"] == 1

    body = httpx.get(export["download_url"], timeout=60).content
    assert hashlib.sha256(body).hexdigest() == export["sha256"]
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    [image_path] = [p for p in files if p.startswith("images/")]
    assert hashlib.sha256(files[image_path]).hexdigest() == asset["sha256"]
    coco = json.loads(files["annotations/instances.json"])
    [image] = coco["images"]
    assert f"images/{image['file_name']}" == image_path
    [annotation] = coco["annotations"]
    assert annotation["bbox"] == pytest.approx([102, 40, 120, 80], abs=0.01)
    assert [c["name"] for c in coco["categories"]][annotation["category_id"] - 1] == "car"
    manifest = json.loads(files.pop("manifest.json"))
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == {
        p: hashlib.sha256(b).hexdigest() for p, b in files.items()
    }

    # the CLI: the same version exported as YOLO, followed and downloaded
    zip_path = tmp_path / "v1-yolo.zip"
    command = ["--qc-url", qc_url, "--json", "datasets", "export", scene.dataset, "1"]
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "conveyor_cli.main",
            *command,
            "--format",
            "yolo",
            "-o",
            str(zip_path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CONVEYOR_API_KEY": uploader_key},
        timeout=120,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert json.loads(cli.stdout)["state"] == "done"
    with zipfile.ZipFile(zip_path) as zf:
        [label] = [n for n in zf.namelist() if n.startswith("labels/")]
        index, *box = zf.read(label).decode().split()
    assert int(index) == annotation["category_id"] - 1
    assert float(box[2]) * image["width"] == pytest.approx(120, abs=0.01)


def test_version_and_export_refusals(qc: httpx.Client, dataset: str) -> None:
    assert qc.post("/v1/datasets/no-such-dataset/versions").status_code == 404
    missing = qc.get("/v1/exports/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "export_not_found"
    bad = qc.post(f"/v1/datasets/{dataset}/versions/1/exports", json={"format": "voc"})
    assert bad.status_code == 422
    anonymous = httpx.post(f"{qc.base_url}/v1/datasets/{dataset}/versions")
    assert anonymous.status_code == 401
