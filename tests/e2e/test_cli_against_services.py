"""The `conveyor` command against the real services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.media import image, video
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")


def conveyor(
    *args: str, ingest_url: str, audit_url: str, clean_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONVEYOR_API_KEY": ADMIN_KEY}
    if clean_url is not None:
        env["CONVEYOR_CLEAN_URL"] = clean_url
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "conveyor_cli.main",
            "--ingest-url",
            ingest_url,
            "--audit-url",
            audit_url,
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_uploads_a_folder_then_skips_everything_on_a_second_run(
    tmp_path: Path, ingest_url: str, audit_url: str, admin: httpx.Client
):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for i in range(6):
        (folder / f"{i}.jpg").write_bytes(image())
    (folder / "sub" / "clip.avi").write_bytes(video("MJPG", ".avi"))
    (folder / "sub" / "notes.txt").write_text("not media")
    (folder / ".hidden.jpg").write_bytes(image())
    slug = f"cli-{tmp_path.name[-8:].lower().replace('_', '-')}"

    first = conveyor(
        "upload",
        str(folder),
        "--dataset",
        slug,
        "--create-dataset",
        ingest_url=ingest_url,
        audit_url=audit_url,
    )
    # notes.txt is refused by the server (415), so the run reports a failure
    assert first.returncode == 1, first.stdout + first.stderr
    assert "notes.txt" in first.stdout
    assets = admin.get(f"/v1/datasets/{slug}/assets").json()["items"]
    assert len(assets) == 7  # 6 JPEGs + the video; the hidden file is skipped
    assert {a["uploaded_by"] for a in assets} == {"bootstrap-admin"}

    (folder / "sub" / "notes.txt").unlink()
    second = conveyor(
        "upload", str(folder), "--dataset", slug, ingest_url=ingest_url, audit_url=audit_url
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(admin.get(f"/v1/datasets/{slug}/assets").json()["items"]) == 7

    verify = conveyor("audit", "verify", ingest_url=ingest_url, audit_url=audit_url)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_cli_shows_the_quality_report_and_summary_of_an_upload(
    tmp_path: Path, ingest_url: str, clean_url: str, audit_url: str
):
    urls = {"ingest_url": ingest_url, "audit_url": audit_url, "clean_url": clean_url}
    (tmp_path / "a.jpg").write_bytes(image())
    slug = f"cli-quality-{uuid.uuid4().hex[:8]}"
    up = conveyor("--json", "upload", str(tmp_path), "--dataset", slug, "--create-dataset", **urls)
    assert up.returncode == 0, up.stdout + up.stderr
    asset_id = json.loads(up.stdout)["uploaded"][0]["asset_id"]

    def report() -> dict | None:
        result = conveyor("--json", "quality", "report", asset_id, **urls)
        return json.loads(result.stdout) if result.returncode == 0 else None

    assert eventually(report, timeout=60, interval=1.0)["asset_id"] == asset_id
    table = conveyor("quality", "report", asset_id, **urls)
    assert table.returncode == 0, table.stdout + table.stderr
    assert f"Quality report of asset {asset_id}" in table.stdout
    summary = conveyor("quality", "summary", "--dataset", slug, **urls)
    assert summary.returncode == 0, summary.stdout + summary.stderr
    assert f"Quality of dataset {slug}" in summary.stdout


def test_cli_reports_a_bad_key_in_one_line(ingest_url: str, audit_url: str):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "conveyor_cli.main",
            "--ingest-url",
            ingest_url,
            "--api-key",
            "cvk_wrong",
            "datasets",
            "list",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "invalid_api_key" in result.stderr
    assert "Traceback" not in result.stderr
