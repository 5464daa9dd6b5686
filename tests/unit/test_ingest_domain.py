"""Pure ingest rules: media sniffing, file names, landing keys, filer notifications, digests.

Media bytes are real files encoded by OpenCV (``tests.media``); where a container cannot be
written on this machine, its minimal header is built by hand instead.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import itertools
import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.ingest.domain import (
    SNIFF_BYTES,
    Digest,
    FileRejected,
    LandingObject,
    clean_tags,
    dataset_of_landing_key,
    detect_media_type,
    inspect_chunks,
    parse_filer_notification,
    sanitize_filename,
)
from tests import media

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


# ---- media bytes ------------------------------------------------------------------------------


def ebml_header(doctype: bytes) -> bytes:
    """The start of a Matroska/WebM file: an EBML header naming ``doctype``, then a Segment."""
    body = (
        b"\x42\x86\x81\x01"  # EBMLVersion 1
        b"\x42\xf7\x81\x01"  # EBMLReadVersion 1
        b"\x42\xf2\x81\x04"  # EBMLMaxIDLength 4
        b"\x42\xf3\x81\x08"  # EBMLMaxSizeLength 8
        + b"\x42\x82"
        + bytes([0x80 | len(doctype)])
        + doctype  # DocType
        + b"\x42\x87\x81\x04"  # DocTypeVersion 4
        + b"\x42\x85\x81\x02"  # DocTypeReadVersion 2
    )
    return (
        b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(body)]) + body + b"\x18\x53\x80\x67\x01" + b"\0" * 7
    )


QUICKTIME_HEADER = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  \x00\x00\x00\x08wide"


@functools.cache
def real_video(fourcc: str, ext: str, fallback: bytes) -> bytes:
    """A video OpenCV writes, or the hand-built container header if this codec is missing."""
    try:
        return media.video(fourcc, ext, frames=3)
    except AssertionError:
        return fallback


@functools.cache
def jpeg() -> bytes:
    return media.image(ext=".jpg", seed=7)


def sniff(content: bytes) -> str | None:
    """Detect as ingest does: from the first SNIFF_BYTES only."""
    return detect_media_type(content[:SNIFF_BYTES])


# ---- detect_media_type ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "expected"),
    [
        (".jpg", "image/jpeg"),
        (".png", "image/png"),
        (".webp", "image/webp"),
        (".tiff", "image/tiff"),
        (".bmp", "image/bmp"),
    ],
)
def test_detect_media_type_recognizes_images_encoded_by_opencv(ext: str, expected: str) -> None:
    assert sniff(media.image(ext=ext, seed=1)) == expected


@pytest.mark.parametrize(
    ("fourcc", "ext", "fallback", "expected"),
    [
        ("mp4v", ".mp4", b"\x00\x00\x00\x1cftypisom\x00\x00\x02\x00isomiso2mp41", "video/mp4"),
        ("MJPG", ".avi", b"RIFF\xfc\x1a\x00\x00AVI LIST\xec\x11\x00\x00hdrl", "video/x-msvideo"),
        ("mp4v", ".mov", QUICKTIME_HEADER, "video/quicktime"),
        ("MJPG", ".mkv", ebml_header(b"matroska"), "video/x-matroska"),
        ("VP80", ".webm", ebml_header(b"webm"), "video/webm"),
    ],
    ids=["mp4", "avi", "mov", "mkv", "webm"],
)
def test_detect_media_type_recognizes_videos_written_by_opencv(
    fourcc: str, ext: str, fallback: bytes, expected: str
) -> None:
    assert sniff(real_video(fourcc, ext, fallback)) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (ebml_header(b"webm"), "video/webm"),
        (ebml_header(b"matroska"), "video/x-matroska"),
        (QUICKTIME_HEADER, "video/quicktime"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "video/mp4"),
        (b"MM\x00*\x00\x00\x00\x08" + b"\x00" * 8, "image/tiff"),
    ],
    ids=["ebml-webm", "ebml-matroska", "ftyp-qt", "ftyp-mp42", "tiff-big-endian"],
)
def test_detect_media_type_recognizes_hand_built_container_headers(
    head: bytes, expected: str
) -> None:
    assert detect_media_type(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"hello, world\nthis is a plain text file\n",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 20,
        b"GIF89a\x40\x00\x30\x00\xf7\x00\x00",
        b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
        b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1",
        b"\xff\xd8",  # truncated JPEG marker
        b"BM",  # too short to be a BMP header
    ],
    ids=["empty", "text", "pdf", "zip", "gif", "wav", "heic", "avif", "short-jpeg", "short-bmp"],
)
def test_detect_media_type_returns_none_for_unsupported_content(head: bytes) -> None:
    assert detect_media_type(head) is None


def test_detect_media_type_trusts_bytes_not_the_name_so_a_jpeg_named_png_is_jpeg() -> None:
    # The only input is the leading bytes: a name like "photo.png" cannot reach the decision.
    assert list(inspect.signature(detect_media_type).parameters) == ["head"]
    jpeg_saved_as_png = jpeg()
    assert sanitize_filename("photo.png") == "photo.png"
    assert sniff(jpeg_saved_as_png) == "image/jpeg"
    assert inspect_chunks([jpeg_saved_as_png], 10**6).media_type == "image/jpeg"


def test_detect_media_type_does_not_take_text_starting_with_bm_for_a_bitmap() -> None:
    assert detect_media_type(b"BMW owners club newsletter, spring edition\n") is None


@pytest.mark.parametrize(
    "head",
    [
        b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom\x00\x00\x00\x00",
        b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom",
    ],
    ids=["m4a-audio", "cr3-raw"],
)
def test_detect_media_type_does_not_call_non_video_iso_bmff_files_mp4(head: bytes) -> None:
    assert detect_media_type(head) is None


# ---- sanitize_filename ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("/abs/path/cat.jpg", "cat.jpg"),
        ("C:\\Users\\bob\\Pictures\\cat.jpg", "cat.jpg"),
        ("..\\..\\windows\\system32\\evil.dll", "evil.dll"),
        ("mixed/dirs\\cat.jpg", "cat.jpg"),
    ],
)
def test_sanitize_filename_keeps_only_the_last_path_component(raw: str, expected: str) -> None:
    assert sanitize_filename(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("cat\n.jpg", "cat.jpg"),
        ("a\r\nb\tc.jpg", "abc.jpg"),
        ("nul\x00byte\x7f.png", "nulbyte.png"),
        ("\u202egpj.exe", "gpj.exe"),  # right-to-left override (category Cf)
        ("  padded.jpg \n", "padded.jpg"),
    ],
    ids=["newline", "crlf-tab", "nul-del", "rtl-override", "surrounding-space"],
)
def test_sanitize_filename_removes_control_and_format_characters(raw: str, expected: str) -> None:
    assert sanitize_filename(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(".bashrc", "bashrc"), ("...hidden.jpg", "hidden.jpg"), ("dir/.env", "env")],
)
def test_sanitize_filename_strips_leading_dots(raw: str, expected: str) -> None:
    assert sanitize_filename(raw) == expected


@pytest.mark.parametrize("raw", [None, "", ".", "..", "dir/", "\n\x00", "   ", "../"])
def test_sanitize_filename_falls_back_to_unnamed_when_nothing_is_left(raw: str | None) -> None:
    assert sanitize_filename(raw) == "unnamed"


def test_sanitize_filename_keeps_unicode_and_normalizes_it_to_nfc() -> None:
    decomposed = "cafe\u0301 \u732b.jpg"  # e + combining acute, then a CJK character
    result = sanitize_filename(decomposed)
    assert result == "caf\u00e9 \u732b.jpg"
    assert len(result) == 10
    assert sanitize_filename("\u00fcber-\U0001f600.png") == "\u00fcber-\U0001f600.png"


def test_sanitize_filename_caps_the_result_at_255_characters() -> None:
    assert sanitize_filename("a" * 254 + ".jpg") == "a" * 254 + "."
    assert len(sanitize_filename("\u732b" * 400)) == 255
    assert sanitize_filename("b" * 251 + ".jpg") == "b" * 251 + ".jpg"


def test_sanitize_filename_output_is_nfc_even_after_removing_a_control_character() -> None:
    result = sanitize_filename("e\x00\u0301.jpg")
    assert unicodedata.is_normalized("NFC", result)
    assert result == "\u00e9.jpg"


# ---- landing keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("cars/a/b.jpg", "cars"),
        ("cars/b.jpg", "cars"),
        ("front-cam/2024/06/01/x.mp4", "front-cam"),
        ("b.jpg", None),
        ("/x", None),
        ("cars/", None),
        ("", None),
    ],
)
def test_dataset_of_landing_key_is_the_first_folder_when_a_file_is_below_it(
    key: str, expected: str | None
) -> None:
    assert dataset_of_landing_key(key) == expected


# ---- parse_filer_notification -----------------------------------------------------------------


@pytest.fixture
def webhook() -> dict[str, Any]:
    """A webhook body captured from the SeaweedFS filer (a create in the landing bucket)."""
    path = FIXTURES / "seaweedfs_webhook_create.json"
    if not path.exists():
        pytest.skip("captured SeaweedFS webhook fixture not present")
    body: dict[str, Any] = json.loads(path.read_text())
    return body


def test_parse_filer_notification_reads_bucket_key_size_of_the_captured_create(
    webhook: dict[str, Any],
) -> None:
    assert parse_filer_notification(webhook) == LandingObject(
        bucket="conveyor-landing",
        key="demo/cat.jpg",
        size_bytes=1127,
        etag="49bY7JXexbGZ9+cvRECCpg==",
        version="1795611971",
    )


def test_parse_filer_notification_uses_the_body_key_when_no_parent_path_is_given(
    webhook: dict[str, Any],
) -> None:
    del webhook["message"]["new_parent_path"]
    obj = parse_filer_notification(webhook)
    assert obj is not None
    assert (obj.bucket, obj.key, obj.size_bytes) == ("conveyor-landing", "demo/cat.jpg", 1127)


def test_parse_filer_notification_treats_an_overwrite_as_a_creation(
    webhook: dict[str, Any],
) -> None:
    webhook["event_type"] = "update"
    webhook["message"]["old_entry"] = copy.deepcopy(webhook["message"]["new_entry"])
    webhook["message"]["new_entry"]["attributes"]["file_size"] = 2048
    obj = parse_filer_notification(webhook)
    assert obj is not None
    assert (obj.key, obj.size_bytes) == ("demo/cat.jpg", 2048)


def test_parse_filer_notification_resolves_a_rename_to_the_new_key(
    webhook: dict[str, Any],
) -> None:
    webhook["event_type"] = "rename"
    webhook["key"] = "/buckets/conveyor-landing/tmp/upload-123"
    webhook["message"]["old_entry"] = copy.deepcopy(webhook["message"]["new_entry"])
    webhook["message"]["old_entry"]["name"] = "upload-123"
    webhook["message"]["new_entry"]["name"] = "dog.jpg"
    webhook["message"]["new_parent_path"] = "/buckets/conveyor-landing/pets/"
    obj = parse_filer_notification(webhook)
    assert obj is not None
    assert (obj.bucket, obj.key) == ("conveyor-landing", "pets/dog.jpg")


def test_parse_filer_notification_ignores_directory_entries(webhook: dict[str, Any]) -> None:
    webhook["key"] = "/buckets/conveyor-landing/demo"
    webhook["message"]["new_parent_path"] = "/buckets/conveyor-landing"
    webhook["message"]["new_entry"] = {"name": "demo", "is_directory": True, "attributes": {}}
    assert parse_filer_notification(webhook) is None


def test_parse_filer_notification_ignores_filer_internal_system_paths(
    webhook: dict[str, Any],
) -> None:
    webhook["key"] = "/buckets/.system/log/2025-01-01/00-00.abc"
    webhook["message"]["new_parent_path"] = "/buckets/.system/log/2025-01-01"
    webhook["message"]["new_entry"]["name"] = "00-00.abc"
    assert parse_filer_notification(webhook) is None


def test_parse_filer_notification_ignores_multipart_staging_parts(
    webhook: dict[str, Any],
) -> None:
    webhook["key"] = "/buckets/conveyor-landing/.uploads/8f1d2c3b/0001_3f2a.part"
    webhook["message"]["new_parent_path"] = "/buckets/conveyor-landing/.uploads/8f1d2c3b"
    webhook["message"]["new_entry"]["name"] = "0001_3f2a.part"
    assert parse_filer_notification(webhook) is None


def test_parse_filer_notification_ignores_deletions(webhook: dict[str, Any]) -> None:
    webhook["event_type"] = "delete"
    webhook["message"]["old_entry"] = webhook["message"].pop("new_entry")
    del webhook["message"]["new_parent_path"]
    assert parse_filer_notification(webhook) is None


def test_parse_filer_notification_ignores_an_unknown_event_type(webhook: dict[str, Any]) -> None:
    webhook["event_type"] = "truncate"
    assert parse_filer_notification(webhook) is None


@pytest.mark.parametrize(
    ("key", "parent"),
    [
        ("/etc/passwd", "/etc"),
        ("/topics/.system/log/x", "/topics/.system/log"),
        ("/bucketsX/conveyor-landing/demo/cat.jpg", "/bucketsX/conveyor-landing/demo"),
        ("/buckets/conveyor-landing", "/buckets"),
    ],
    ids=["etc", "topics", "prefix-lookalike", "bucket-itself"],
)
def test_parse_filer_notification_ignores_paths_that_are_not_objects_in_a_bucket(
    webhook: dict[str, Any], key: str, parent: str
) -> None:
    webhook["key"] = key
    webhook["message"]["new_parent_path"] = parent
    webhook["message"]["new_entry"]["name"] = key.rsplit("/", 1)[-1]
    assert parse_filer_notification(webhook) is None


@pytest.mark.parametrize("body", [{}, {"event_type": "create"}, {"message": {"new_entry": None}}])
def test_parse_filer_notification_ignores_bodies_without_a_new_entry(body: dict[str, Any]) -> None:
    assert parse_filer_notification(body) is None


def test_parse_filer_notification_leaves_size_and_etag_unknown_when_not_reported() -> None:
    body = {
        "event_type": "create",
        "key": "/buckets/conveyor-landing/cars/x.jpg",
        "message": {"new_entry": {"name": "x.jpg"}},
    }
    assert parse_filer_notification(body) == LandingObject(
        bucket="conveyor-landing", key="cars/x.jpg", size_bytes=None, etag=None, version=None
    )


# ---- Digest and inspect_chunks ----------------------------------------------------------------


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


@pytest.mark.parametrize("chunk_size", [1, 7, SNIFF_BYTES - 1, SNIFF_BYTES, SNIFF_BYTES + 1, 10**9])
def test_digest_hash_size_and_head_do_not_depend_on_chunking(chunk_size: int) -> None:
    content = jpeg()
    digest = Digest()
    for chunk in chunked(content, chunk_size):
        digest.feed(chunk)
        digest.feed(b"")  # empty reads change nothing
    assert digest.sha256 == hashlib.sha256(content).hexdigest()
    assert digest.size == len(content)
    assert digest.head == content[:SNIFF_BYTES]
    assert digest.media_type == "image/jpeg"


def test_digest_of_nothing_is_the_empty_sha256() -> None:
    digest = Digest()
    assert digest.sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert (digest.size, digest.head, digest.media_type) == (0, b"", None)


@pytest.mark.parametrize("chunk_size", [1, 13, 4096])
def test_inspect_chunks_reports_type_size_and_whole_file_sha256(chunk_size: int) -> None:
    content = media.image(ext=".png", seed=3)
    inspected = inspect_chunks(chunked(content, chunk_size), max_bytes=len(content))
    assert inspected.media_type == "image/png"
    assert inspected.size == len(content)
    assert inspected.sha256 == hashlib.sha256(content).hexdigest()


def test_inspect_chunks_refuses_a_file_one_byte_over_the_limit_with_413() -> None:
    content = jpeg()
    with pytest.raises(FileRejected) as caught:
        inspect_chunks(chunked(content, 100), max_bytes=len(content) - 1)
    assert (caught.value.status, caught.value.code) == (413, "file_too_large")
    assert str(len(content) - 1) in caught.value.message


def test_inspect_chunks_stops_reading_an_endless_stream_once_over_the_limit() -> None:
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        head = jpeg()[:SNIFF_BYTES]
        for i in itertools.count():
            pulled += 1
            yield head if i == 0 else b"\0" * 1000

    with pytest.raises(FileRejected) as caught:
        inspect_chunks(endless(), max_bytes=10_000)
    assert caught.value.status == 413
    # 64 + 10 * 1000 bytes is the first total over 10 000: exactly 11 chunks were read.
    assert pulled == 11


@pytest.mark.parametrize(
    "content",
    [b"just some text, not an image\n" * 10, b"%PDF-1.4\n" + b"x" * 100],
    ids=["text", "pdf"],
)
def test_inspect_chunks_refuses_unknown_content_with_415(content: bytes) -> None:
    with pytest.raises(FileRejected) as caught:
        inspect_chunks(chunked(content, 16), max_bytes=10**6)
    assert (caught.value.status, caught.value.code) == (415, "unsupported_media_type")


def test_inspect_chunks_names_an_empty_file_as_such() -> None:
    with pytest.raises(FileRejected) as caught:
        inspect_chunks(iter([b"", b""]), max_bytes=10**6)
    assert (caught.value.status, caught.value.code) == (422, "empty")


def test_tags_are_trimmed_deduplicated_and_sorted() -> None:
    assert clean_tags([" night", "day", "night ", "", "  "]) == ["day", "night"]
    assert clean_tags(["wet road", "café", "cam:3"]) == ["café", "cam:3", "wet road"]


@pytest.mark.parametrize(
    ("tags", "code"),
    [
        (["ok", "bad\x00tag"], "validation_error"),
        (["tab\tinside"], "validation_error"),
        (["x" * 65], "validation_error"),
        ([f"t{i}" for i in range(51)], "too_many_tags"),
        (["{}"], "validation_error"),
        (["[1]"], "validation_error"),
    ],
    ids=["nul", "control", "too-long", "too-many", "object", "array"],
)
def test_unfit_tags_are_refused_before_anything_is_stored(tags: list[str], code: str) -> None:
    with pytest.raises(FileRejected) as caught:
        clean_tags(tags)
    assert (caught.value.status, caught.value.code) == (422, code)
