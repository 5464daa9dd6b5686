"""File discovery for ``conveyor upload``: recursion, hidden entries, symlinks, special files."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from conveyor_cli.upload import MissingPathError, discover


def _write(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _rel(root: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_walks_folders_recursively_in_sorted_order(tmp_path: Path) -> None:
    _write(tmp_path / "b.jpg", b"bb")
    _write(tmp_path / "a" / "z.png", b"zzz")
    _write(tmp_path / "a" / "deep" / "deeper" / "c.mp4", b"c")
    _write(tmp_path / "a" / "m.jpg")

    found = discover([tmp_path])

    assert _rel(tmp_path, [f.path for f in found.files]) == [
        "a/deep/deeper/c.mp4",
        "a/m.jpg",
        "a/z.png",
        "b.jpg",
    ]
    assert {f.path.name: f.size for f in found.files}["z.png"] == 3
    assert found.total_bytes == 2 + 3 + 1 + 1
    assert found.skipped == []


def test_hidden_files_and_folders_are_skipped_and_reported(tmp_path: Path) -> None:
    _write(tmp_path / "keep.jpg")
    _write(tmp_path / ".DS_Store")
    _write(tmp_path / ".git" / "objects" / "blob")
    _write(tmp_path / "sub" / ".hidden.jpg")
    _write(tmp_path / "sub" / "ok.jpg")

    found = discover([tmp_path])

    assert _rel(tmp_path, [f.path for f in found.files]) == ["keep.jpg", "sub/ok.jpg"]
    skipped = {s.path.relative_to(tmp_path).as_posix(): s.reason for s in found.skipped}
    # A hidden folder is reported once and never entered.
    assert skipped == {".DS_Store": "hidden", ".git": "hidden", "sub/.hidden.jpg": "hidden"}


def test_explicit_paths_are_honoured_even_if_hidden_or_dot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hidden = _write(tmp_path / ".explicit.jpg")
    _write(tmp_path / "dir" / "a.jpg")
    monkeypatch.chdir(tmp_path / "dir")

    found = discover([hidden, Path(".")])

    assert [f.path.name for f in found.files] == [".explicit.jpg", "a.jpg"]


def test_symlink_loop_terminates_and_each_file_is_listed_once(tmp_path: Path) -> None:
    _write(tmp_path / "root" / "a.jpg")
    _write(tmp_path / "root" / "sub" / "b.jpg")
    # sub/loop -> root: following it naively would recurse forever.
    os.symlink(tmp_path / "root", tmp_path / "root" / "sub" / "loop")
    os.symlink("..", tmp_path / "root" / "sub" / "up")

    found = discover([tmp_path / "root"])

    assert sorted(f.path.name for f in found.files) == ["a.jpg", "b.jpg"]
    reasons = {s.path.name: s.reason for s in found.skipped}
    assert set(reasons) == {"loop", "up"}
    assert all("already visited" in r for r in reasons.values())


def test_symlinked_file_and_folder_are_followed_but_deduplicated(tmp_path: Path) -> None:
    real = _write(tmp_path / "data" / "img.jpg", b"12345")
    other = tmp_path / "other"
    other.mkdir()
    os.symlink(real, other / "alias.jpg")  # same file through a symlink
    os.link(real, other / "hard.jpg")  # and through a hard link
    os.symlink(tmp_path / "data", other / "datalink")  # folder reached twice

    found = discover([tmp_path / "data", other])

    assert [f.path for f in found.files] == [real]
    reasons = sorted(s.reason.split(" ")[0] for s in found.skipped)
    assert reasons == ["directory", "same", "same"]


def test_broken_symlinks_and_special_files_are_reported(tmp_path: Path) -> None:
    _write(tmp_path / "ok.jpg")
    os.symlink(tmp_path / "missing.jpg", tmp_path / "dangling.jpg")
    os.mkfifo(tmp_path / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock_path = tmp_path / "s.sock"
    try:
        sock.bind(str(sock_path))
        found = discover([tmp_path])
    finally:
        sock.close()

    assert [f.path.name for f in found.files] == ["ok.jpg"]
    reasons = {s.path.name: s.reason for s in found.skipped}
    assert reasons == {
        "dangling.jpg": "broken symlink",
        "pipe": "not a regular file (named pipe)",
        "s.sock": "not a regular file (socket)",
    }


def test_explicit_broken_symlink_and_fifo_are_skipped_not_fatal(tmp_path: Path) -> None:
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    os.mkfifo(tmp_path / "pipe")

    found = discover([tmp_path / "dangling", tmp_path / "pipe"])

    assert found.files == []
    assert [s.reason for s in found.skipped] == [
        "broken symlink",
        "not a regular file (named pipe)",
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any folder")
def test_unreadable_folder_is_reported(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    _write(locked / "a.jpg")
    locked.chmod(0)
    try:
        found = discover([tmp_path])
    finally:
        locked.chmod(0o755)
    assert found.files == []
    assert found.skipped[0].reason.startswith("cannot read folder")


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(MissingPathError, match="does-not-exist"):
        discover([tmp_path / "does-not-exist"])


def test_many_files_are_listed_without_opening_them(tmp_path: Path) -> None:
    for i in range(1000):
        _write(tmp_path / f"d{i % 10}" / f"f{i:04d}.jpg", b"")
    fds_before = len(os.listdir("/proc/self/fd"))

    found = discover([tmp_path])

    assert len(found.files) == 1000
    # other threads of the test process may hold a few descriptors; 1000 would show
    assert len(os.listdir("/proc/self/fd")) - fds_before < 10
