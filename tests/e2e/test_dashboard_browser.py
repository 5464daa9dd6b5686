"""The dashboard's page in a real headless Chromium: files uploaded through the ingest API show
up on it (funnel counts, the rejected-image grid, the asset's audit timeline and chain state),
a new upload appears without a reload, and a refused key brings the key form back.

Screenshots of every tab go to the session's run directory (``screenshots/``), and to
docs/dashboard-screenshots/ when CONVEYOR_SAVE_SCREENSHOTS=1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.browser import chromium
from tests.conftest import ADMIN_KEY, ROOT
from tests.e2e.test_clean_pipeline import encode, photo, upload
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")

DOCS_SHOTS = ROOT / "docs" / "dashboard-screenshots"
VIEWPORT = {"width": 1280, "height": 800}
# Upper bound of every auto-waiting expect(): the pipeline runs between upload and page.
expect.set_options(timeout=45_000)


@dataclass(frozen=True)
class Uploaded:
    """A dataset whose uploads went through cleaning, by file name."""

    slug: str
    ids: dict[str, str]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def shots(run_dir: Path) -> Iterator[Path]:
    """Where screenshots go; copied into the docs at the end when asked to."""
    folder = run_dir / "screenshots"
    folder.mkdir(exist_ok=True)
    yield folder
    if os.environ.get("CONVEYOR_SAVE_SCREENSHOTS") == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        for png in sorted(folder.glob("*.png")):
            shutil.copyfile(png, DOCS_SHOTS / png.name)


@pytest.fixture(scope="module")
def board(dashboard_url: str, viewer_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dashboard_url, headers={"X-API-Key": viewer_key}, timeout=30) as c:
        yield c


def stage_counts(board: httpx.Client, slug: str) -> dict[str, int]:
    response = board.get("/v1/funnel", params={"dataset": slug})
    assert response.status_code == 200, response.text
    return {s["stage"]: s["count"] for s in response.json()["stages"]}


@pytest.fixture(scope="module")
def uploaded(uploader: httpx.Client, auditor: httpx.Client, board: httpx.Client) -> Uploaded:
    """Two good photos, a very dark one, a truncated JPEG and a PNG copy of the first photo's
    pixels, through cleaning and into the dashboard's projections and the audit log."""
    slug = f"ds-{uuid.uuid4().hex[:10]}"
    created = uploader.post("/v1/datasets", json={"slug": slug, "name": f"Browser {slug}"})
    assert created.status_code == 201, created.text
    good = photo(11)
    jpeg = encode(good, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 92)
    files = {
        "street.jpg": jpeg,
        "harbour.jpg": encode(photo(12)),
        "night.jpg": encode((photo(13) * 0.08).astype(np.uint8)),
        "cut-off.jpg": encode(photo(14))[:3000],
        "street-copy.png": encode(cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1), ".png"),
    }
    ids = {name: upload(uploader, slug, name, content) for name, content in files.items()}
    eventually(lambda: stage_counts(board, slug)["cleaned"] == 2, timeout=90)
    eventually(lambda: stage_counts(board, slug)["rejected"] == 3, timeout=90)

    def audited(asset_id: str) -> bool:
        items = auditor.get(f"/v1/audit/assets/{asset_id}/timeline").json()["items"]
        return any(r["type"] == "conveyor.asset.rejected.v1" for r in items)

    eventually(lambda: audited(ids["night.jpg"]), timeout=60)
    return Uploaded(slug, ids)


@pytest.fixture
def page(browser: Browser, dashboard_url: str, viewer_key: str) -> Iterator[Page]:
    """A page already holding the viewer key (as the key form would leave it), failing the
    test on any script error."""
    context = browser.new_context(viewport=VIEWPORT, base_url=dashboard_url)
    context.add_init_script(f"sessionStorage.setItem('conveyor.apiKey', {json.dumps(viewer_key)})")
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.on("console", lambda msg: _console_error(msg, errors))
    yield p
    context.close()
    assert errors == [], errors


def _console_error(msg: ConsoleMessage, errors: list[str]) -> None:
    # A 404 of a thumbnail that cannot be made is expected (the page shows a placeholder).
    if msg.type == "error" and "404" not in msg.text:
        errors.append(msg.text)


def open_tab(page: Page, hash_: str) -> None:
    """Open a view and wait until its data has been fetched once."""
    page.goto(f"/{hash_}")
    expect(page.locator("#updated")).to_have_text(re.compile(r"^updated \d\d:\d\d:\d\d$"))


def stage(page: Page, name: str) -> Any:
    return page.locator(f'#funnel-stats [data-stage="{name}"] .n')


def test_the_page_asks_for_a_key_and_a_refused_key_brings_the_form_back(
    browser: Browser, dashboard_url: str, viewer_key: str, shots: Path
) -> None:
    context = browser.new_context(viewport=VIEWPORT, base_url=dashboard_url)
    page = context.new_page()
    page.goto("/")
    form = page.locator("#login")
    expect(form).to_be_visible()
    page.screenshot(path=shots / "00-api-key.png")

    page.fill("#login-key", "cvk_not_a_real_key")
    page.click("#login-form button")
    expect(form).to_be_visible()
    expect(page.locator("#login-msg")).to_contain_text("refused (401)")

    page.fill("#login-key", viewer_key)
    page.click("#login-form button")
    expect(form).to_be_hidden()
    expect(page.locator("#view-funnel")).to_be_visible()
    expect(page.locator("#updated")).to_contain_text("updated")
    # The key is kept for the tab's session: a reload does not ask again.
    page.reload()
    expect(page.locator("#updated")).to_contain_text("updated")
    expect(form).to_be_hidden()
    context.close()


def test_funnel_shows_the_datasets_stored_cleaned_and_rejected_counts_and_why(
    page: Page, uploaded: Uploaded, shots: Path
) -> None:
    open_tab(page, f"#funnel?dataset={uploaded.slug}")
    expect(page.locator("#f-dataset")).to_have_value(uploaded.slug)
    expect(stage(page, "uploaded")).to_have_text("5")
    expect(stage(page, "stored")).to_have_text("5")
    expect(stage(page, "cleaned")).to_have_text("2")
    expect(stage(page, "rejected")).to_have_text("3")
    stages = page.locator("#p-funnel-table .tabulator-row")
    expect(stages.filter(has_text="rejected").first).to_contain_text("3")
    losses = page.locator("#p-funnel-losses")
    cleaning = losses.locator(".tabulator-row", has_text="cleaning")
    expect(cleaning).to_contain_text("60.0 %")
    expect(cleaning).to_contain_text("exact_duplicate")
    expect(cleaning).to_contain_text("dark")
    expect(cleaning).to_contain_text("truncated")
    page.screenshot(path=shots / "01-funnel.png", full_page=True)

    # A wide screen shows the same view (and the picture for the docs).
    page.set_viewport_size({"width": 1920, "height": 1080})
    expect(stage(page, "stored")).to_have_text("5")
    page.screenshot(path=shots / "01-funnel-wide.png", full_page=True)


def test_cleaning_page_shows_each_rejected_image_with_its_reason(
    page: Page, uploaded: Uploaded, shots: Path
) -> None:
    open_tab(page, f"#cleaning?dataset={uploaded.slug}")
    grid = page.locator("#p-rejected .cards")
    expect(grid.locator(".card")).to_have_count(3)
    night = grid.locator(f'.card[data-asset="{uploaded.ids["night.jpg"]}"]')
    expect(night.locator(".name")).to_have_text("night.jpg")
    expect(night.locator(".reasons .code", has_text="dark")).to_be_visible()
    # The thumbnail was fetched with the key and is shown from a blob: URL.
    expect(night.locator(".thumb img")).to_have_attribute("src", re.compile(r"^blob:"))
    cut = grid.locator(f'.card[data-asset="{uploaded.ids["cut-off.jpg"]}"]')
    expect(cut.locator(".name")).to_have_text("cut-off.jpg")
    expect(cut.locator(".reasons .code", has_text="truncated")).to_be_visible()
    expect(cut.locator(".thumb img, .thumb.placeholder")).to_have_count(1)
    # Good photos are not in the grid.
    expect(grid.locator(".card", has_text="street.jpg")).to_have_count(0)

    totals = page.locator("#p-reasons-table")
    expect(totals.locator(".tabulator-row", has_text="dark")).to_contain_text("1")
    expect(page.locator("#p-histograms .mini").first).to_be_visible()
    # The copy sits next to its original, each with its thumbnail.
    group = page.locator("#p-duplicates .dupe-group")
    expect(group).to_have_count(1)
    original = group.locator(".card.original")
    expect(original.locator(".name")).to_have_text("street.jpg")
    expect(original.locator(".thumb img")).to_have_attribute("src", re.compile(r"^blob:"))
    copy = group.locator(".card.copy")
    expect(copy.locator(".name")).to_have_text("street-copy.png")
    expect(copy).to_contain_text("exact_duplicate")
    page.screenshot(path=shots / "04-cleaning.png", full_page=True)


def test_asset_page_shows_the_audit_timeline_the_chain_state_and_the_trace_link(
    page: Page, uploaded: Uploaded, shots: Path
) -> None:
    asset_id = uploaded.ids["night.jpg"]
    open_tab(page, f"#asset?dataset={uploaded.slug}")
    page.fill("#search-q", asset_id)
    page.click("#search-form button")
    # One match: the page opens it (the hash names the asset, so the view can be linked).
    expect(page).to_have_url(re.compile(rf"#asset/{asset_id}"))
    detail = page.locator("#asset-detail")
    expect(detail.locator(".asset-id")).to_have_text(asset_id)
    expect(detail.locator(".kv.facts")).to_contain_text("night.jpg")
    expect(detail.locator(".verdict")).to_have_text("rejected")
    timeline = page.locator("#p-timeline .tabulator-row")
    expect(timeline.filter(has_text="conveyor.asset.ingested.v1")).to_have_count(1)
    expect(timeline.filter(has_text="conveyor.asset.rejected.v1")).to_have_count(1)
    chain = detail.locator(".chain")
    expect(chain).to_have_attribute("data-state", "ok")
    expect(chain).to_contain_text("verified")
    expect(detail.locator("a.trace")).to_have_attribute("href", re.compile(r"/trace/[0-9a-f]{32}"))
    expect(page.locator("#p-quality")).to_contain_text("dark")
    page.screenshot(path=shots / "06-asset.png", full_page=True)

    # The link reloads the same view.
    page.reload()
    expect(page.locator("#p-timeline .tabulator-row")).not_to_have_count(0)
    expect(detail.locator(".chain")).to_have_attribute("data-state", "ok")


def test_every_other_tab_loads_its_panels_without_errors(
    page: Page, uploaded: Uploaded, labeling_url: str, shots: Path
) -> None:
    vendor = f"browser-vendor-{uuid.uuid4().hex[:6]}"
    body = {"name": vendor, "kind": "webhook", "url": "http://127.0.0.1:9/hook", "capacity": 7}
    created = httpx.post(
        f"{labeling_url}/v1/vendors", json=body, headers={"X-API-Key": ADMIN_KEY}, timeout=30
    )
    assert created.status_code == 201, created.text
    for number, tab in (
        ("02", "throughput"),
        ("03", "backlog"),
        ("05", "vendors"),
        ("07", "health"),
    ):
        open_tab(page, f"#{tab}?dataset={uploaded.slug}")
        view = page.locator(f"#view-{tab}")
        expect(view).to_be_visible()
        expect(page.locator(f"#tabs a[data-tab={tab}]")).to_have_class(re.compile(r"\bactive\b"))
        expect(view.locator(".msg.error")).to_have_count(0)
        if tab == "throughput":
            expect(page.locator("#p-throughput canvas")).to_be_visible()
        if tab == "backlog":
            expect(page.locator("#p-lag .tabulator-row").first).to_contain_text("conveyor-")
        if tab == "vendors":
            # Narrowed to a dataset, only vendors that worked on it are listed.
            expect(page.locator("#p-vendors-table .msg")).to_contain_text("this dataset")
            page.select_option("#f-dataset", "")
            expect(page).to_have_url(re.compile(r"#vendors$"))
            row = page.locator("#p-vendors-table .tabulator-row", has_text=vendor)
            expect(row).to_contain_text("webhook")
            expect(row.locator('[tabulator-field="capacity"]')).to_have_text("7")
        if tab == "health":
            ingest = page.locator("#p-services .tabulator-row", has_text="ingest")
            expect(ingest.locator('[tabulator-field="up"]')).to_have_text("yes")
            expect(ingest.locator('[tabulator-field="ready"]')).to_have_text("yes")
            expect(page.locator("#p-servers .tabulator-row", has_text="postgres")).to_be_visible()
        page.screenshot(path=shots / f"{number}-{tab}.png", full_page=True)


def test_a_new_upload_shows_up_in_the_open_funnel_without_a_reload(
    page: Page, uploader: httpx.Client, dataset: str, shots: Path
) -> None:
    open_tab(page, f"#funnel?dataset={dataset}")
    expect(stage(page, "stored")).to_have_text("0")
    expect(page.locator("#p-funnel-chart .msg")).to_have_text("no uploads in this window yet")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.evaluate("window.__sameDocument = true")

    upload(uploader, dataset, "late.jpg", encode(photo(21)))

    expect(stage(page, "stored")).to_have_text("1")
    expect(stage(page, "cleaned")).to_have_text("1")
    expect(page.locator("#p-funnel-chart .msg")).to_be_hidden()
    assert page.evaluate("window.__sameDocument") is True
    assert navigations == []
    page.screenshot(path=shots / "08-funnel-live.png", full_page=True)
