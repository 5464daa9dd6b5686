"""QC dataset versions and exports in process on the real Postgres and object store: freezing,
immutability of old versions byte for byte, COCO through pycocotools, YOLO against COCO."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycocotools.coco import COCO  # type: ignore[import-untyped]

from services.qc.context import Qc
from services.qc.models import AcceptedLabels, JudgedAnnotation, KnownAsset, KnownDataset
from services.qc.models import OntologyVersion as QcOntologyVersion
from services.qc.use_cases import exports, versions
from services.qc.use_cases.exports import ExportView
from services.qc.use_cases.versions import export_name, merged_classes
from shared.auth import Principal, Role
from shared.errors import ApiError
from shared.storage import EXPORTS_BUCKET, RAW_BUCKET, content_address

UPLOADER = Principal("uploader-key", "ml-engineer", Role.uploader)
CLASSES = ["car", "person", "sign"]

# pycocotools 2.0.11 still passes copy=False to a numpy 2 __array__ when decoding masks.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def box(cls: str, x: float, y: float, w: float, h: float) -> dict[str, Any]:
    return {"class": cls, "type": "bbox", "bbox": {"x": x, "y": y, "width": w, "height": h}}


class Dataset:
    """A dataset in QC's mirrors, with images whose bytes are in the raw bucket."""

    def __init__(self, qc: Qc) -> None:
        self.qc = qc
        self.id = uuid.uuid4()
        self.slug = f"cars-{self.id.hex[:8]}"
        self.ontology_id = uuid.uuid4()
        self.assets: list[uuid.UUID] = []

    async def create(self) -> Dataset:
        async with self.qc.units.begin() as uow:
            uow.session.add(KnownDataset(id=self.id, slug=self.slug))
            uow.session.add(
                QcOntologyVersion(
                    ontology_id=self.ontology_id, version=1, name="roads", classes=CLASSES
                )
            )
        return self

    async def accept(
        self, shapes: list[dict[str, Any]], *, filename: str = "frame.jpg", stored: bool = True
    ) -> uuid.UUID:
        """An image (its bytes in the raw bucket unless ``stored`` is False) with accepted
        labels."""
        asset_id = uuid.uuid4()
        content = f"image {asset_id}".encode() * 50
        sha256 = hashlib.sha256(content).hexdigest()
        if stored:
            await self.qc.store.put_stream(
                RAW_BUCKET, content_address(sha256), io.BytesIO(content), len(content), "image/jpeg"
            )
        async with self.qc.units.begin() as uow:
            uow.session.add(
                KnownAsset(
                    id=asset_id,
                    dataset_id=self.id,
                    sha256=sha256,
                    filename=filename,
                    media_type="image/jpeg",
                    width=640,
                    height=480,
                )
            )
            uow.session.add(
                AcceptedLabels(
                    asset_id=asset_id,
                    dataset_id=self.id,
                    job_id=uuid.uuid4(),
                    ontology_id=self.ontology_id,
                    ontology_version=1,
                    shapes=shapes,
                    annotation_ids=[uuid.uuid4()],
                    accepted_by="qc",
                    accepted_at=datetime.now(UTC),
                )
            )
        self.assets.append(asset_id)
        return asset_id


async def exported(qc: Qc, slug: str, number: int, fmt: str, images: str) -> ExportView:
    """Request an export, build it as the background loop would, and read it back."""
    view = await exports.request_export(qc, UPLOADER, slug, number, fmt, images)  # type: ignore[arg-type]
    assert view.export.state == "queued" and view.export.total > 0
    assert await exports.build_next(qc)
    return await exports.get_export(qc, UPLOADER, view.export.id)


def download(view: ExportView) -> bytes:
    assert view.export.state == "done", view.export.error
    assert view.download_url is not None
    body = httpx.get(view.download_url, timeout=30).content
    assert hashlib.sha256(body).hexdigest() == view.export.sha256
    assert len(body) == view.export.size
    return body


def members(body: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def check_manifest(files: dict[str, bytes]) -> None:
    manifest = json.loads(files.pop("manifest.json"))
    listed = {f["path"]: (f["sha256"], f["size"]) for f in manifest["files"]}
    assert listed == {p: (hashlib.sha256(b).hexdigest(), len(b)) for p, b in files.items()}


async def test_freezing_twice_without_change_returns_the_same_version(qc: Qc) -> None:
    ds = await Dataset(qc).create()
    await ds.accept([box("car", 1, 2, 3, 4)])
    await ds.accept([box("person", 5, 6, 7, 8), box("sign", 9, 10, 11, 12)])
    first = await versions.freeze(qc, UPLOADER, ds.slug)
    assert first.created and first.version.number == 1
    assert (first.version.item_count, first.version.shape_count) == (2, 3)
    assert first.version.classes == CLASSES and first.version.created_by == "ml-engineer"
    again = await versions.freeze(qc, UPLOADER, str(ds.id))
    assert not again.created
    assert again.version.id == first.version.id
    assert again.version.manifest_hash == first.version.manifest_hash
    page, cursor = await versions.list_versions(qc, UPLOADER, ds.slug, 10, None)
    assert [v.version.number for v in page] == [1] and cursor is None


async def test_accepting_one_more_asset_makes_a_new_version_and_the_old_export_stays_byte_for_byte(
    qc: Qc,
) -> None:
    ds = await Dataset(qc).create()
    await ds.accept([box("car", 10.5, 20.25, 30, 40)], filename="a.jpg")
    await ds.accept([box("person", 1, 1, 5, 5)], filename="b.jpg")
    v1 = await versions.freeze(qc, UPLOADER, ds.slug)
    before = await exported(qc, ds.slug, 1, "coco", "include")
    first_bytes = download(before)

    await ds.accept([box("sign", 100, 100, 50, 50)], filename="c.jpg")
    v2 = await versions.freeze(qc, UPLOADER, ds.slug)
    assert v2.created and v2.version.number == 2 and v2.version.item_count == 3
    assert v2.version.manifest_hash != v1.version.manifest_hash
    assert (await versions.get_version(qc, UPLOADER, ds.slug, 1)).version.item_count == 2

    after = await exported(qc, ds.slug, 1, "coco", "include")
    assert after.export.id != before.export.id
    assert after.export.sha256 == before.export.sha256
    assert download(after) == first_bytes
    newer = await exported(qc, ds.slug, 2, "coco", "include")
    assert newer.export.sha256 != before.export.sha256
    assert newer.export.annotation_count == 3 and newer.export.done == newer.export.total == 3
    page, cursor = await versions.list_versions(qc, UPLOADER, ds.slug, 1, None)
    assert [v.version.number for v in page] == [1] and cursor is not None
    page, cursor = await versions.list_versions(qc, UPLOADER, ds.slug, 1, cursor)
    assert [v.version.number for v in page] == [2] and cursor is None


async def test_coco_export_loads_with_pycocotools_and_round_trips_boxes(
    qc: Qc, tmp_path: Path
) -> None:
    ds = await Dataset(qc).create()
    boxes = {
        await ds.accept(
            [box("car", 10.25, 20.5, 100.125, 50.0625), box("sign", 0.333, 1.777, 2.5, 3.01)],
            filename="../../etc/passwd?.jpg",
        ): 2,
        await ds.accept([box("person", 600.5, 400.25, 39.5, 79.75)], filename="x.y.z.PNG"): 1,
        await ds.accept([], filename="empty.jpg"): 0,
    }
    await versions.freeze(qc, UPLOADER, ds.slug)
    view = await exported(qc, ds.slug, 1, "coco", "include")
    files = members(download(view))
    check_manifest(files)
    names = sorted(f for f in files if f.startswith("images/"))
    assert len(names) == 3 and all("/" not in n.removeprefix("images/") for n in names)
    assert not any(".." in n for n in names)
    (tmp_path / "instances.json").write_bytes(files["annotations/instances.json"])
    coco = COCO(str(tmp_path / "instances.json"))
    assert [c["name"] for c in coco.loadCats(sorted(coco.getCatIds()))] == CLASSES
    images = coco.loadImgs(coco.getImgIds())
    assert sorted(f"images/{i['file_name']}" for i in images) == names
    assert all((i["width"], i["height"]) == (640, 480) for i in images)
    assert sorted(len(coco.getAnnIds(imgIds=[i["id"]])) for i in images) == sorted(boxes.values())
    by_box = sorted(tuple(a["bbox"]) for a in coco.loadAnns(coco.getAnnIds()))
    expected = sorted(
        [(10.25, 20.5, 100.125, 50.0625), (0.333, 1.777, 2.5, 3.01), (600.5, 400.25, 39.5, 79.75)]
    )
    for got, want in zip(by_box, expected, strict=True):
        assert got == pytest.approx(want, abs=0.01)
    # the images are the bytes the raw bucket holds under each frozen sha256
    for name in names:
        sha12 = name.removeprefix("images/")[:12]
        assert hashlib.sha256(files[name]).hexdigest().startswith(sha12)


async def test_yolo_export_agrees_with_coco_box_for_box(qc: Qc, tmp_path: Path) -> None:
    ds = await Dataset(qc).create()
    await ds.accept([box("car", 10.25, 20.5, 100.125, 50.0625), box("sign", 3, 4, 5, 6)])
    await ds.accept([box("person", 600.5, 400.25, 39.5, 79.75)], filename="frame.png")
    await versions.freeze(qc, UPLOADER, ds.slug)
    coco_files = members(download(await exported(qc, ds.slug, 1, "coco", "links")))
    yolo_files = members(download(await exported(qc, ds.slug, 1, "yolo", "links")))
    check_manifest(yolo_files)
    assert yolo_files["data.yaml"].decode().count(":") >= 3
    (tmp_path / "instances.json").write_bytes(coco_files["annotations/instances.json"])
    coco = COCO(str(tmp_path / "instances.json"))
    for image in coco.loadImgs(coco.getImgIds()):
        w, h = image["width"], image["height"]
        stem = image["file_name"].rsplit(".", 1)[0]
        rows = [line.split() for line in yolo_files[f"labels/{stem}.txt"].decode().splitlines()]
        got = []
        for index, cx, cy, bw, bh in rows:
            width, height = float(bw) * w, float(bh) * h
            got.append(
                (int(index), [float(cx) * w - width / 2, float(cy) * h - height / 2, width, height])
            )
        expected = [
            (a["category_id"] - 1, a["bbox"]) for a in coco.loadAnns(coco.getAnnIds([image["id"]]))
        ]
        assert [g[0] for g in got] == [e[0] for e in expected]
        for (_, g), (_, e) in zip(got, expected, strict=True):
            assert g == pytest.approx(e, abs=0.01)
    # links: each presigned URL serves the image's bytes
    links = [json.loads(line) for line in yolo_files["links.jsonl"].decode().splitlines()]
    assert len(links) == 2
    for link in links:
        body = httpx.get(link["url"], timeout=30).content
        assert hashlib.sha256(body).hexdigest() == link["sha256"]


async def test_gold_answers_never_appear_in_exports(qc: Qc) -> None:
    ds = await Dataset(qc).create()
    asset_id = await ds.accept([box("car", 1, 1, 10, 10)])
    async with qc.units.begin() as uow:
        # a vendor's answer to a gold task on the same asset: judged, never accepted
        uow.session.add(
            JudgedAnnotation(
                id=uuid.uuid4(),
                task_id=uuid.uuid4(),
                job_id=uuid.uuid4(),
                asset_id=asset_id,
                dataset_id=ds.id,
                vendor_id=uuid.uuid4(),
                annotator_id="gold-answerer",
                replica=0,
                gold=True,
                shapes=[box("person", 123.456, 234.567, 77, 88)],
                version=1,
                live=True,
                findings=[],
                received_at=datetime.now(UTC),
            )
        )
    await versions.freeze(qc, UPLOADER, ds.slug)
    files = members(download(await exported(qc, ds.slug, 1, "coco", "links")))
    document = json.loads(files["annotations/instances.json"])
    assert [a["bbox"] for a in document["annotations"]] == [[1.0, 1.0, 10.0, 10.0]]
    assert b"123.456" not in b"".join(files.values())


async def test_an_image_missing_from_the_store_fails_the_export_with_its_error(qc: Qc) -> None:
    ds = await Dataset(qc).create()
    await ds.accept([box("car", 1, 1, 10, 10)], stored=False)
    await versions.freeze(qc, UPLOADER, ds.slug)
    view = await exported(qc, ds.slug, 1, "coco", "include")
    assert view.export.state == "failed" and view.download_url is None
    assert view.export.error and "NoSuch" in view.export.error
    assert view.export.finished_at is not None
    assert not await exports.build_next(qc)  # recorded, not retried forever


async def test_refusals(qc: Qc) -> None:
    with pytest.raises(ApiError) as unknown:
        await versions.freeze(qc, UPLOADER, "no-such-dataset")
    assert (unknown.value.status, unknown.value.code) == (404, "dataset_not_found")
    ds = await Dataset(qc).create()
    with pytest.raises(ApiError) as empty:
        await versions.freeze(qc, UPLOADER, ds.slug)
    assert (empty.value.status, empty.value.code) == (409, "nothing_accepted")
    await ds.accept([box("car", 1, 1, 10, 10)])
    scoped = Principal("k", "other", Role.uploader, frozenset({str(uuid.uuid4())}))
    with pytest.raises(ApiError) as hidden:
        await versions.freeze(qc, scoped, ds.slug)
    assert hidden.value.status == 404
    await versions.freeze(qc, UPLOADER, ds.slug)
    with pytest.raises(ApiError) as no_version:
        await exports.request_export(qc, UPLOADER, ds.slug, 2, "coco", "links")
    assert (no_version.value.status, no_version.value.code) == (404, "version_not_found")
    view = await exports.request_export(qc, UPLOADER, ds.slug, 1, "coco", "links")
    with pytest.raises(ApiError) as not_theirs:
        await exports.get_export(qc, scoped, view.export.id)
    assert not_theirs.value.status == 404


def test_export_names_are_flat_unique_and_keep_the_extension() -> None:
    taken: set[str] = set()
    sha = "ab" * 32
    first, second = uuid.uuid4(), uuid.uuid4()
    assert export_name(sha, "dir/sub/cat photo.JPG", taken, first) == f"{sha[:12]}_cat_photo.JPG"
    again = export_name(sha, "other/Cat-Photo.png", taken, second)
    assert again == f"{sha[:12]}_Cat-Photo.png"
    third = export_name(sha, "cat photo.jpeg", taken, second)
    assert third == f"{sha[:12]}_cat_photo_{second.hex[:8]}.jpeg"
    assert export_name(sha, "", set(), first) == f"{sha[:12]}_image"
    assert export_name(sha, "..\\..\\x.y.z", set(), first) == f"{sha[:12]}_x_y.z"


def test_categories_of_several_ontology_versions_follow_the_newest() -> None:
    o = uuid.uuid4()
    assert merged_classes({(o, 1): ["car", "bus"], (o, 2): ["person", "car"]}) == [
        "person",
        "car",
        "bus",
    ]


async def test_exports_bucket_holds_the_zip_under_the_dataset_and_version(qc: Qc) -> None:
    ds = await Dataset(qc).create()
    await ds.accept([box("car", 1, 1, 10, 10)])
    await versions.freeze(qc, UPLOADER, ds.slug)
    view = await exported(qc, ds.slug, 1, "yolo", "include")
    key = view.export.object_key
    assert key is not None and key.startswith(f"{ds.slug}/v1/")
    info = await qc.store.stat(EXPORTS_BUCKET, key)
    assert info is not None and info.size == view.export.size
