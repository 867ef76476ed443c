"""Atomic replacement of persisted files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from flight.persistence.atomic import atomic_write, read_bytes_or_none, remove_stale_temps


def test_write_creates_file_with_content(tmp_path: Path) -> None:
    target = tmp_path / "state.cbor"
    atomic_write(target, b"\x01\x02\x03")
    assert target.read_bytes() == b"\x01\x02\x03"


def test_write_replaces_previous_content_completely(tmp_path: Path) -> None:
    target = tmp_path / "state.cbor"
    atomic_write(target, b"a much longer old content" * 10)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"


def test_replacement_is_a_new_inode_so_open_readers_keep_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "state.cbor"
    atomic_write(target, b"old")
    with target.open("rb") as reader:
        atomic_write(target, b"new")
        assert reader.read() == b"old"
    assert target.read_bytes() == b"new"


def test_no_temporary_file_is_left_after_success(tmp_path: Path) -> None:
    target = tmp_path / "state.cbor"
    atomic_write(target, b"x")
    atomic_write(target, b"y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.cbor"]


def test_default_mode_is_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    atomic_write(target, b"k")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_mode_option(tmp_path: Path) -> None:
    target = tmp_path / "public"
    atomic_write(target, b"k", mode=0o644)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_leftover_temp_from_a_crash_does_not_break_writes_or_reads(tmp_path: Path) -> None:
    target = tmp_path / "params.cbor"
    atomic_write(target, b"good")
    # What a power cut between writing the temporary file and renaming it leaves behind.
    leftover = tmp_path / ".params.cbor.abc123.tmp"
    leftover.write_bytes(b"half-writ")
    assert read_bytes_or_none(target) == b"good"
    atomic_write(target, b"better")
    assert read_bytes_or_none(target) == b"better"
    assert leftover.exists()
    assert remove_stale_temps(target) == 1
    assert not leftover.exists()
    assert target.read_bytes() == b"better"


def test_remove_stale_temps_leaves_other_files_alone(tmp_path: Path) -> None:
    target = tmp_path / "a.cbor"
    other_temp = tmp_path / ".b.cbor.xyz.tmp"
    other_temp.write_bytes(b"")
    (tmp_path / "a.cbor.corrupt").write_bytes(b"")
    assert remove_stale_temps(target) == 0
    assert other_temp.exists()


def test_failed_write_leaves_target_unchanged_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "state.cbor"
    atomic_write(target, b"old")

    # A directory where the file should be makes os.replace fail after the temp file is written.
    blocked = tmp_path / "dir_target"
    blocked.mkdir()
    (blocked / "inside").write_bytes(b"")
    with pytest.raises(OSError):
        atomic_write(blocked, b"data")
    assert target.read_bytes() == b"old"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_missing_directory_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        atomic_write(tmp_path / "no" / "such" / "file", b"x")


def test_read_bytes_or_none_missing(tmp_path: Path) -> None:
    assert read_bytes_or_none(tmp_path / "absent") is None


def test_read_bytes_or_none_raises_for_other_errors(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        read_bytes_or_none(tmp_path)
