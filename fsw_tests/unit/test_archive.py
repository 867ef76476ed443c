"""Telemetry archive: record format, segments and their bound, torn-tail recovery, playback."""

from __future__ import annotations

import contextlib
import errno
import os
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flight import codec
from flight.clock import SimClock
from flight.events import EventLog
from flight.messages import Message, MessageKind
from flight.persistence.archive import (
    EV_SEGMENT_DROPPED,
    EV_TRUNCATED,
    EV_WRITE_FAILED,
    HEADER_SIZE,
    Archive,
    Cursor,
    decode_record,
    encode_record,
)


def tm(n: int, t: float | None = None) -> Message:
    return Message(MessageKind.TELEMETRY, 7, float(n) if t is None else t, {"n": n})


def numbers(messages) -> list[int]:
    return [m.body["n"] for m in messages]


def open_archive(path, clock=None, **kwargs) -> Archive:
    clock = clock or SimClock()
    return Archive(path, now=clock.monotonic, **kwargs)


def test_record_golden_bytes():
    record = encode_record(Message(MessageKind.TELEMETRY, 5, 1.5, {"v": [1]}))
    payload = bytes.fromhex("840105f93e00a161768101")  # [1, 5, 1.5 (half float), {"v": [1]}]
    assert zlib.crc32(payload) == 0xDAACA3D0
    assert record == bytes.fromhex("fa5e0000000bdaaca3d0") + payload


@given(
    kind=st.sampled_from(list(MessageKind)),
    ident=st.integers(min_value=0, max_value=0xFFFF),
    time=st.floats(min_value=-1e9, max_value=1e12, allow_nan=False),
    body=st.recursive(
        st.none() | st.integers(-(2**31), 2**31) | st.floats(allow_nan=False) | st.text(max_size=8),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
        max_leaves=8,
    ),
)
def test_any_message_round_trips_through_a_record(kind, ident, time, body):
    msg = Message(kind, ident, time, body)
    record = encode_record(msg)
    assert decode_record(record[HEADER_SIZE:]) == msg


@given(st.binary(max_size=300))
def test_garbage_payloads_are_refused_cleanly(data):
    with contextlib.suppress(codec.CodecError):
        decode_record(data)


def test_append_and_read_back_in_order_with_time_ranges(tmp_path):
    archive = open_archive(tmp_path / "arch")
    for n in range(20):
        assert archive.append(tm(n))
    assert numbers(archive.read()) == list(range(20))
    assert numbers(archive.read(5.0, 9.0)) == [5, 6, 7, 8, 9]
    assert numbers(archive.read(t_start=18.0)) == [18, 19]
    event = Message(MessageKind.EVENT, 0x0400, 3.5, {"sev": 5, "args": {}, "text": "x"})
    archive.append(event)
    assert list(archive.read(3.5, 3.5)) == [event]
    archive.close()
    reopened = open_archive(tmp_path / "arch")
    assert numbers(m for m in reopened.read() if m.kind is MessageKind.TELEMETRY) == list(range(20))


def test_segments_rotate_at_the_size_bound_and_oldest_are_deleted(tmp_path):
    events = EventLog(now=lambda: 0.0)
    record_size = len(encode_record(tm(100)))
    archive = open_archive(
        tmp_path / "arch", segment_bytes=10 * record_size, max_segments=3, events=events
    )
    for n in range(100, 150):
        archive.append(tm(n))
    files = sorted(p.name for p in (tmp_path / "arch").iterdir())
    assert files == ["seg-00000003.log", "seg-00000004.log", "seg-00000005.log"]
    assert all((tmp_path / "arch" / f).stat().st_size <= 10 * record_size for f in files)
    assert archive.segments_deleted == 2
    assert events.count(EV_SEGMENT_DROPPED.id) == 2
    assert numbers(archive.read()) == list(range(120, 150))  # newest data wins
    assert archive.total_bytes == 30 * record_size


def test_a_torn_tail_is_truncated_and_appending_continues_after_it(tmp_path):
    directory = tmp_path / "arch"
    archive = open_archive(directory)
    for n in range(10):
        archive.append(tm(n))
    archive.close()
    segment = directory / "seg-00000001.log"
    good_size = segment.stat().st_size
    torn = encode_record(tm(10))[:-3]  # power cut in the middle of the write
    with open(segment, "ab") as handle:
        handle.write(torn)
    events = EventLog(now=lambda: 0.0)
    reopened = open_archive(directory, events=events)
    assert reopened.truncated_bytes == len(torn)
    assert events.count(EV_TRUNCATED.id) == 1
    assert segment.stat().st_size == good_size
    reopened.append(tm(10))
    reopened.append(tm(11))
    assert numbers(reopened.read()) == list(range(12))
    assert reopened.corrupt_spans == 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=0, max_value=10 * len(encode_record(tm(0)))))
def test_a_cut_at_any_byte_keeps_every_complete_record(tmp_path, cut):
    directory = tmp_path / f"cut{cut}"
    archive = open_archive(directory)
    sizes = []
    for n in range(10):
        archive.append(tm(n))
        sizes.append(archive.total_bytes)
    archive.close()
    os.truncate(directory / "seg-00000001.log", cut)
    reopened = open_archive(directory)
    complete = sum(1 for end in sizes if end <= cut)
    assert numbers(reopened.read()) == list(range(complete))
    assert reopened.total_bytes == (sizes[complete - 1] if complete else 0)


def test_bit_rot_inside_old_data_is_skipped_and_counted(tmp_path):
    directory = tmp_path / "arch"
    record_size = len(encode_record(tm(0)))
    archive = open_archive(directory, segment_bytes=5 * record_size)
    for n in range(15):
        archive.append(tm(n))
    first = directory / "seg-00000001.log"
    data = bytearray(first.read_bytes())
    data[2 * record_size + HEADER_SIZE + 2] ^= 0xFF  # inside record 2's payload
    first.write_bytes(bytes(data))
    assert numbers(archive.read()) == [0, 1, *range(3, 15)]
    assert archive.corrupt_spans == 1
    list(archive.read())
    assert archive.corrupt_spans == 1  # counted once, however often it is read


def test_damage_in_the_middle_of_the_newest_segment_is_not_truncated(tmp_path):
    directory = tmp_path / "arch"
    archive = open_archive(directory)
    for n in range(6):
        archive.append(tm(n))
    archive.close()
    segment = directory / "seg-00000001.log"
    data = bytearray(segment.read_bytes())
    data[1] ^= 0x01  # record 0's magic
    segment.write_bytes(bytes(data))
    reopened = open_archive(directory)
    assert reopened.truncated_bytes == 0
    assert numbers(reopened.read()) == [1, 2, 3, 4, 5]
    assert reopened.corrupt_spans == 1


def test_playback_resumes_from_a_cursor(tmp_path):
    record_size = len(encode_record(tm(0)))
    archive = open_archive(tmp_path / "arch", segment_bytes=4 * record_size)
    for n in range(10):
        archive.append(tm(n))
    sent: list[int] = []
    cursor = None
    for position, msg in archive.read_since(None):
        sent.append(msg.body["n"])
        cursor = position
        if len(sent) == 6:
            break
    assert sent == [0, 1, 2, 3, 4, 5]
    assert cursor == Cursor(2, 2 * record_size)
    for n in range(10, 13):
        archive.append(tm(n))
    rest = list(archive.read_since(cursor))
    assert numbers(m for _, m in rest) == list(range(6, 13))
    assert rest[-1][0] == archive.end_cursor()
    assert list(archive.read_since(archive.end_cursor())) == []


def test_a_cursor_into_deleted_data_resumes_at_the_oldest(tmp_path):
    record_size = len(encode_record(tm(0)))
    archive = open_archive(tmp_path / "arch", segment_bytes=2 * record_size, max_segments=2)
    for n in range(10):
        archive.append(tm(n))
    assert numbers(m for _, m in archive.read_since(Cursor(1, record_size))) == [6, 7, 8, 9]
    assert archive.cursor_gaps == 1


def test_a_cursor_inside_a_record_resumes_at_the_next_one(tmp_path):
    archive = open_archive(tmp_path / "arch")
    for n in range(5):
        archive.append(tm(n))
    record_size = len(encode_record(tm(0)))
    assert numbers(m for _, m in archive.read_since(Cursor(1, record_size + 3))) == [2, 3, 4]
    assert archive.corrupt_spans == 0


def test_sync_policy_every_n_records(tmp_path):
    archive = open_archive(tmp_path / "arch", sync_every=4, sync_interval_s=None)
    for n in range(10):
        archive.append(tm(n))
    assert archive.syncs == 2
    archive.close()
    assert archive.syncs == 3


def test_sync_policy_every_record(tmp_path):
    archive = open_archive(tmp_path / "arch", sync_every=1)
    for n in range(5):
        archive.append(tm(n))
    assert archive.syncs == 5


def test_sync_policy_by_clock_time(tmp_path):
    clock = SimClock()
    archive = open_archive(tmp_path / "arch", clock, sync_every=None, sync_interval_s=1.0)
    for n in range(10):
        archive.append(tm(n))
        clock.advance(0.3)
    assert archive.syncs == 2  # at 1.2 s and 2.4 s of clock time
    archive.append(tm(10))
    clock.advance(5.0)
    archive.tick()  # the idle tick syncs what is waiting
    assert archive.syncs == 3
    archive.tick()
    assert archive.syncs == 3  # nothing waiting


def test_a_clock_can_stand_in_for_now(tmp_path):
    clock = SimClock()
    archive = Archive(tmp_path / "arch", clock=clock, sync_every=None, sync_interval_s=2.0)
    archive.append(tm(0))
    clock.advance(2.0)
    archive.append(tm(1))
    assert archive.syncs == 1
    with pytest.raises(ValueError, match="now= or clock="):
        Archive(tmp_path / "other")


def test_sync_only_on_close(tmp_path):
    archive = open_archive(tmp_path / "arch", sync_every=None, sync_interval_s=None)
    for n in range(100):
        archive.append(tm(n))
    assert archive.syncs == 0
    archive.close()
    assert archive.syncs == 1
    with pytest.raises(ValueError, match="closed"):
        archive.append(tm(0))


def test_a_failed_write_is_counted_and_leaves_no_partial_record(tmp_path, monkeypatch):
    events = EventLog(now=lambda: 0.0)
    archive = open_archive(tmp_path / "arch", events=events)
    archive.append(tm(0))
    real_write = os.write

    def disk_full(fd, data):
        real_write(fd, bytes(data)[:5])  # the kernel took a few bytes, then ENOSPC
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    assert archive.append(tm(1)) is False
    monkeypatch.undo()
    assert archive.write_errors == 1
    assert events.count(EV_WRITE_FAILED.id) == 1
    assert archive.append(tm(2))
    assert numbers(archive.read()) == [0, 2]
    assert archive.corrupt_spans == 0


def test_unencodable_messages_are_refused(tmp_path):
    archive = open_archive(tmp_path / "arch")
    with pytest.raises(codec.CodecError):
        archive.append(Message(MessageKind.TELEMETRY, 1, 0.0, {"x": object()}))
    with pytest.raises(codec.CodecError):
        archive.append(Message(MessageKind.FILE, 1, 0.0, b"\x00" * 70_000))
    assert archive.records_appended == 0


def test_unrelated_files_in_the_directory_are_ignored(tmp_path):
    directory = tmp_path / "arch"
    directory.mkdir()
    (directory / "notes.txt").write_text("hello")
    (directory / "seg-1.log").write_text("not ours")
    archive = open_archive(directory)
    archive.append(tm(0))
    assert archive.segments == [1]
    assert numbers(archive.read()) == [0]


def test_counters_for_telemetry(tmp_path):
    from flight.datapool import DataPool

    archive = open_archive(tmp_path / "arch")
    archive.append(tm(0))
    pool = DataPool()
    archive.publish(pool, 1.0)
    assert pool.value("archive.records") == 1
    assert pool.value("archive.bytes") == len(encode_record(tm(0)))
    assert {c.name for c in archive.channels()} == {f"archive.{k}" for k in archive.counters()}
