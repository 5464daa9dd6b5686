"""The dashboard's pure parts for the cleaning and asset pages: declared image sizes,
thumbnail sizing, histogram bins, reason series and duplicate groups."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from services.dashboard.domain.cleaning import duplicate_groups, histogram, reason_series
from services.dashboard.domain.thumbnails import (
    NoThumbnail,
    declared_size,
    fitted,
    image_thumbnail,
    reduced_read_flag,
    thumbnail_key,
)

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _encoded(ext: str, width: int = 40, height: int = 30) -> bytes:
    pixels = np.random.default_rng(1).integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode(ext, pixels)
    assert ok
    return bytes(data.tobytes())


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".bmp"])
def test_declared_size_reads_the_header_of_each_format(ext: str) -> None:
    assert declared_size(_encoded(ext, 40, 30)) == (40, 30)


def test_declared_size_is_none_for_unknown_or_cut_headers() -> None:
    assert declared_size(b"") is None
    assert declared_size(b"hello, not an image") is None
    assert declared_size(_encoded(".jpg")[:20]) is None
    assert declared_size(_encoded(".png")[:18]) is None


def test_a_png_declaring_a_huge_raster_is_refused_before_decoding() -> None:
    png = bytearray(_encoded(".png"))
    struct.pack_into(">II", png, 16, 50_000, 50_000)  # 2.5 gigapixels, CRC left wrong
    with pytest.raises(NoThumbnail, match="too many"):
        image_thumbnail(bytes(png), 256)


def test_thumbnail_longest_side_is_the_asked_size() -> None:
    thumb = image_thumbnail(_encoded(".jpg", 1200, 300), 256)
    pixels = cv2.imdecode(np.frombuffer(thumb, np.uint8), cv2.IMREAD_COLOR)
    assert pixels.shape[:2] == (64, 256)
    assert fitted(100, 3000, 256) == (9, 256)
    assert fitted(3000, 1, 256) == (256, 1)  # never zero pixels


def test_undecodable_image_has_no_thumbnail() -> None:
    with pytest.raises(NoThumbnail):
        image_thumbnail(_encoded(".jpg")[:200], 256)


def test_reduced_reads_keep_at_least_the_thumbnail_size() -> None:
    assert reduced_read_flag(4000, 3000, 256) == cv2.IMREAD_REDUCED_COLOR_8
    assert reduced_read_flag(1000, 800, 256) == cv2.IMREAD_REDUCED_COLOR_2
    assert reduced_read_flag(600, 400, 256) == cv2.IMREAD_REDUCED_COLOR_2
    assert reduced_read_flag(500, 400, 256) == cv2.IMREAD_COLOR
    assert thumbnail_key("ab" * 32, 256) == f"thumbnails/{'ab' * 32}/256.jpg"


def test_histogram_fills_empty_bins_and_closes_the_last_one() -> None:
    h = histogram("blur", 6, 0.0, 10.0, 5, {1: 2, 5: 4})
    assert [b["count"] for b in h["bins"]] == [2, 0, 0, 0, 4]
    assert (h["bins"][0]["low"], h["bins"][0]["high"]) == (0.0, 2.0)
    assert h["bins"][-1]["high"] == 10.0
    assert sum(b["count"] for b in h["bins"]) == h["count"]


def test_histogram_of_a_constant_metric_is_one_bin() -> None:
    h = histogram("side", 3, 64.0, 64.0, 30, {})
    assert h["bins"] == [{"low": 64.0, "high": 64.0, "count": 3}]


def test_reason_series_totals_each_kind_and_code() -> None:
    later = T0 + timedelta(minutes=5)
    totals, series = reason_series(
        [
            ("rejected", "dark", later, 2),
            ("rejected", "dark", T0, 1),
            ("rejected", "blurry", T0, 4),
            ("flagged", "dark", T0, 1),
        ]
    )
    assert totals == [
        {"kind": "flagged", "code": "dark", "count": 1},
        {"kind": "rejected", "code": "blurry", "count": 4},
        {"kind": "rejected", "code": "dark", "count": 3},
    ]
    dark = next(s for s in series if (s["kind"], s["code"]) == ("rejected", "dark"))
    assert [p["t"] for p in dark["points"]] == [T0, later]


def test_duplicate_groups_name_files_and_sort_copies_nearest_first() -> None:
    groups = duplicate_groups(
        [
            {
                "original": "a",
                "copies": [
                    {"asset_id": "c", "kind": "near_duplicate", "distance": 6},
                    {"asset_id": "b", "kind": "exact_duplicate", "distance": 0},
                ],
            }
        ],
        {"a": "a.jpg", "b": "b.png"},
    )
    (group,) = groups
    assert group["original"] == {
        "asset_id": "a",
        "filename": "a.jpg",
        "thumbnail_url": "/v1/assets/a/thumbnail",
    }
    assert [(c["asset_id"], c["filename"], c["code"]) for c in group["copies"]] == [
        ("b", "b.png", "exact_duplicate"),
        ("c", None, "near_duplicate"),
    ]
