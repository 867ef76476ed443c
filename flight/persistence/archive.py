"""The telemetry archive: every downlink message, kept on board until the link can carry it.

A Mars spacecraft talks to Earth a few hours a day; what it produces in between is appended here
and played back when the link returns. The archive is a directory of segment files
(``seg-00000001.log``, ...), each at most ``segment_bytes`` long; when there are more than
``max_segments`` the oldest is deleted (counted), so the archive's size is bounded and the newest
data always wins.

Record format (big-endian)::

    magic  2 bytes  0xFA 0x5E
    length 4 bytes  payload length (at most 64 KiB)
    crc    4 bytes  CRC-32 (zlib) of the payload
    payload         canonical CBOR of [kind, id, time, body]   (a flight.messages.Message)

Durability guarantee: every :meth:`Archive.append` hands the whole record to the operating system
in one ``write`` before it returns, so killing the process (SIGKILL, a crash, the systemd watchdog)
loses nothing that was appended. ``fsync`` is what protects against a power cut, and it costs
milliseconds on an SD card, so by default it runs every ``sync_every`` records or when
``sync_interval_s`` has passed since the last one (checked on append and on :meth:`Archive.tick`):
a power cut loses at most that unsynced window. ``sync_every=1`` syncs every record; both ``None``
sync only on :meth:`Archive.sync` and :meth:`Archive.close`.

Recovery: a power cut can leave a torn record at the end of the newest segment. Opening the
archive scans that segment and truncates everything after the last intact record (counted in
:attr:`Archive.truncated_bytes`), then appends after it. Damage inside older data (bit rot) is
skipped by readers, which resynchronise on the next intact record, and counted.
"""

from __future__ import annotations

import logging
import math
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from flight import codec
from flight.clock import Clock
from flight.datapool import DataPool
from flight.events import EventLog, EventSpec, Severity
from flight.messages import Message, MessageKind
from flight.telemetry import ChannelSpec

__all__ = ["Archive", "Cursor", "decode_record", "encode_record"]

log = logging.getLogger(__name__)

MAGIC = b"\xfa\x5e"
_HEADER = struct.Struct(">2sII")
HEADER_SIZE = _HEADER.size
#: Largest payload accepted (the codec's decode limit: anything larger could not be read back).
MAX_PAYLOAD = codec.MAX_DECODE_BYTES
_SEGMENT_RE = re.compile(r"^seg-(\d{8})\.log$")

EV_TRUNCATED = EventSpec(
    0x0740,
    "archive.TAIL_TRUNCATED",
    Severity.WARNING_LO,
    "archive segment {segment}: torn tail of {bytes} byte(s) removed",
    description="The newest segment ended in a partial record (power cut); it was cut off.",
)
EV_SEGMENT_DROPPED = EventSpec(
    0x0741,
    "archive.SEGMENT_DROPPED",
    Severity.WARNING_LO,
    "archive full: oldest segment {segment} ({bytes} bytes) deleted",
    throttle=20,
    description="The archive reached max_segments; the oldest data was deleted unsent.",
)
EV_WRITE_FAILED = EventSpec(
    0x0742,
    "archive.WRITE_FAILED",
    Severity.WARNING_HI,
    "archive write failed: {error}",
    throttle=10,
    description="A record could not be written (disk full or I/O error); it is lost.",
)


class Cursor(NamedTuple):
    """A position in the archive: the byte ``offset`` in segment number ``segment``."""

    segment: int
    offset: int


def encode_record(msg: Message) -> bytes:
    """The on-disk bytes of one message (header and CBOR payload).

    Raises:
        flight.codec.CodecError: the body cannot be encoded, or the payload exceeds 64 KiB.
    """
    payload = codec.encode([int(msg.kind), int(msg.id), float(msg.time), msg.body])
    if len(payload) > MAX_PAYLOAD:
        raise codec.CodecError(f"archive record of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_record(payload: bytes) -> Message:
    """The message in one record payload.

    Raises:
        flight.codec.CodecError: not CBOR, or not a ``[kind, id, time, body]`` message.
    """
    item = codec.decode(payload)
    if not isinstance(item, list) or len(item) != 4:
        raise codec.CodecError("archive record is not [kind, id, time, body]")
    kind, ident, time, body = item
    if isinstance(ident, bool) or not isinstance(ident, int):
        raise codec.CodecError(f"archive record id {ident!r} is not an int")
    if isinstance(time, bool) or not isinstance(time, int | float):
        raise codec.CodecError(f"archive record time {time!r} is not a number")
    try:
        message_kind = MessageKind(kind)
    except ValueError as exc:
        raise codec.CodecError(f"archive record kind {kind!r} unknown") from exc
    return Message(message_kind, ident, float(time), body)


def _record_at(data: bytes, pos: int) -> bytes | None:
    """The payload of an intact record starting at ``pos``, else None."""
    if len(data) - pos < HEADER_SIZE:
        return None
    magic, length, crc = _HEADER.unpack_from(data, pos)
    end = pos + HEADER_SIZE + length
    if magic != MAGIC or length > MAX_PAYLOAD or end > len(data):
        return None
    payload = data[pos + HEADER_SIZE : end]
    return payload if zlib.crc32(payload) == crc else None


def _scan(data: bytes, start: int = 0) -> Iterator[tuple[int, int, bytes | None]]:
    """``(offset, end, payload)`` for each intact record, ``(offset, end, None)`` for each
    damaged span between them (resynchronised on the next intact record)."""
    pos = start
    while pos < len(data):
        payload = _record_at(data, pos)
        if payload is not None:
            end = pos + HEADER_SIZE + len(payload)
            yield pos, end, payload
            pos = end
            continue
        nxt = data.find(MAGIC, pos + 1)
        while nxt != -1 and _record_at(data, nxt) is None:
            nxt = data.find(MAGIC, nxt + 1)
        end = len(data) if nxt == -1 else nxt
        yield pos, end, None
        pos = end


class Archive:
    """Append-only, size-bounded, crash-safe message archive in one directory.

    Args:
        directory: where the segments live (created if missing).
        now: monotonic seconds, for the sync interval (or give ``clock`` instead).
        clock: a :class:`~flight.clock.Clock` whose ``monotonic`` is used as ``now``.
        segment_bytes: a segment is closed before a record would take it past this size (a single
            record larger than this gets a segment of its own).
        max_segments: the oldest segments beyond this many are deleted.
        sync_every: fsync after this many unsynced records (``None``: no count limit).
        sync_interval_s: fsync when this long has passed since the last sync and a record is
            unsynced (``None``: no time limit).
        events: if given, truncations, deletions and write failures are raised as events.

    Raises:
        OSError: the directory cannot be created, listed or the newest segment opened.
        ValueError: a bound that is not positive, or neither ``now`` nor ``clock`` given.
    """

    def __init__(
        self,
        directory: Path,
        *,
        now: Callable[[], float] | None = None,
        clock: Clock | None = None,
        segment_bytes: int = 1 << 20,
        max_segments: int = 64,
        sync_every: int | None = 64,
        sync_interval_s: float | None = 1.0,
        events: EventLog | None = None,
    ) -> None:
        if now is None:
            if clock is None:
                raise ValueError("Archive needs now= or clock=")
            now = clock.monotonic
        if segment_bytes < HEADER_SIZE + 1 or max_segments < 1:
            raise ValueError("segment_bytes and max_segments must be positive")
        if sync_every is not None and sync_every < 1:
            raise ValueError(f"sync_every must be >= 1 or None, got {sync_every}")
        if sync_interval_s is not None and not (
            math.isfinite(sync_interval_s) and sync_interval_s >= 0
        ):
            raise ValueError(f"sync_interval_s must be >= 0 or None, got {sync_interval_s}")
        self.directory = Path(directory)
        self._now = now
        self.segment_bytes = segment_bytes
        self.max_segments = max_segments
        self.sync_every = sync_every
        self.sync_interval_s = sync_interval_s
        self._events = events
        # Counters (telemetry).
        self.records_appended = 0
        self.truncated_bytes = 0
        self.segments_deleted = 0
        self.bytes_deleted = 0
        self.write_errors = 0
        self.syncs = 0
        self.cursor_gaps = 0
        self._unsynced = 0
        self._last_sync = now()
        self._sizes: dict[int, int] = {}
        #: Time span of each closed segment once scanned (None: it holds no readable record).
        self._time_range: dict[int, tuple[float, float] | None] = {}
        self._corrupt: set[tuple[int, int]] = set()
        self._fd: int | None = None
        self._current = 1
        self.directory.mkdir(parents=True, exist_ok=True)
        self._open()

    # -- opening and recovery ---------------------------------------------------------------

    def _path(self, segment: int) -> Path:
        return self.directory / f"seg-{segment:08d}.log"

    def _open(self) -> None:
        for entry in self.directory.iterdir():
            match = _SEGMENT_RE.match(entry.name)
            if match and entry.is_file():
                self._sizes[int(match.group(1))] = entry.stat().st_size
        if not self._sizes:
            self._sizes[1] = 0
        self._current = max(self._sizes)
        self._recover(self._current)
        self._fd = os.open(self._path(self._current), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._fsync_directory()
        self._enforce_bound()

    def _recover(self, segment: int) -> None:
        path = self._path(segment)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        good_end = 0
        damaged: list[int] = []
        for offset, end, payload in _scan(data):
            if payload is not None:
                good_end = end
            else:
                damaged.append(offset)
        # Damage followed by intact records is bit rot (readers skip it); damage at the very end
        # is a torn write and is cut off.
        self._corrupt.update((segment, offset) for offset in damaged if offset < good_end)
        if good_end < len(data):
            cut = len(data) - good_end
            with open(path, "r+b") as handle:
                handle.truncate(good_end)
                handle.flush()
                os.fsync(handle.fileno())
            self.truncated_bytes += cut
            log.warning("archive %s: truncated a torn tail of %d bytes", path.name, cut)
            if self._events is not None:
                self._events.emit(EV_TRUNCATED, segment=segment, bytes=cut)
        self._sizes[segment] = good_end

    def _fsync_directory(self) -> None:
        try:
            fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    # -- writing ----------------------------------------------------------------------------

    def append(self, msg: Message) -> bool:
        """Write one message; True once the OS has it, False if the write failed (counted).

        Raises:
            flight.codec.CodecError: the message cannot be encoded (a software bug in its
                producer, raised so it is fixed rather than silently dropped).
            ValueError: the archive is closed.
        """
        record = encode_record(msg)
        if self._fd is None:
            raise ValueError(f"archive {self.directory} is closed")
        try:
            size = self._sizes[self._current]
            if size and size + len(record) > self.segment_bytes:
                self._rotate()
            self._write_all(record)
        except OSError as exc:
            self._write_failed(exc)
            return False
        self._sizes[self._current] += len(record)
        self.records_appended += 1
        self._unsynced += 1
        if self.sync_every is not None and self._unsynced >= self.sync_every:
            self.sync()
        else:
            self.tick()
        return True

    def _write_all(self, record: bytes) -> None:
        assert self._fd is not None
        start = self._sizes[self._current]
        view = memoryview(record)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError:
            # Undo a partial record (disk full mid-write) so the next one starts clean.
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                log.warning("archive: cannot remove a partial record; readers will skip it")
            raise

    def _write_failed(self, exc: OSError) -> None:
        self.write_errors += 1
        log.error("archive %s: write failed: %s", self.directory, exc)
        if self._events is not None:
            self._events.emit(EV_WRITE_FAILED, error=str(exc))

    def _rotate(self) -> None:
        """Start the next segment. Raises OSError (nothing changed) if it cannot be created."""
        assert self._fd is not None
        segment = self._current + 1
        fd = os.open(self._path(segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        old, self._fd, self._current = self._fd, fd, segment
        self._sizes[segment] = 0
        try:
            os.fsync(old)
            self.syncs += 1
        except OSError as exc:
            self._write_failed(exc)
        os.close(old)
        self._unsynced = 0
        self._last_sync = self._now()
        self._fsync_directory()
        self._enforce_bound()

    def _enforce_bound(self) -> None:
        while len(self._sizes) > self.max_segments:
            oldest = min(self._sizes)
            size = self._sizes.pop(oldest)
            self._time_range.pop(oldest, None)
            try:
                self._path(oldest).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.error("archive: cannot delete %s: %s", self._path(oldest), exc)
            self.segments_deleted += 1
            self.bytes_deleted += size
            if self._events is not None:
                self._events.emit(EV_SEGMENT_DROPPED, segment=oldest, bytes=size)

    def sync(self) -> None:
        """fsync the current segment now (errors are logged and counted, not raised)."""
        if self._fd is None:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._write_failed(exc)
            return
        self.syncs += 1
        self._unsynced = 0
        self._last_sync = self._now()

    def tick(self) -> None:
        """Sync if records are waiting and the sync interval has passed (call at ~1 Hz)."""
        if (
            self._unsynced
            and self.sync_interval_s is not None
            and self._now() - self._last_sync >= self.sync_interval_s
        ):
            self.sync()

    def close(self) -> None:
        """Sync and close; further appends raise ValueError."""
        if self._fd is None:
            return
        self.sync()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------

    @property
    def segments(self) -> list[int]:
        """Segment numbers on disk, oldest first."""
        return sorted(self._sizes)

    @property
    def total_bytes(self) -> int:
        return sum(self._sizes.values())

    def start_cursor(self) -> Cursor:
        """The oldest position still on disk."""
        return Cursor(min(self._sizes), 0)

    def end_cursor(self) -> Cursor:
        """The position after the newest record: playback from here sends only new data."""
        return Cursor(self._current, self._sizes[self._current])

    def _read_segment(self, segment: int) -> bytes:
        try:
            data = self._path(segment).read_bytes()
        except FileNotFoundError:
            return b""
        # Ignore anything past what this archive wrote (it is not there unless another writer).
        return data[: self._sizes.get(segment, len(data))]

    def _records(self, segment: int, start: int) -> Iterator[tuple[int, Message]]:
        """``(end offset, message)`` of each readable record of one segment from ``start``."""
        data = self._read_segment(segment)
        low, high = math.inf, -math.inf
        for offset, end, payload in _scan(data, start):
            if payload is None:
                if offset != start or start == 0:  # not merely a cursor inside a record
                    self._corrupt.add((segment, offset))
                continue
            try:
                msg = decode_record(payload)
            except codec.CodecError as exc:
                self._corrupt.add((segment, offset))
                log.warning("archive segment %d: unreadable record: %s", segment, exc)
                continue
            low, high = min(low, msg.time), max(high, msg.time)
            yield end, msg
        # Only closed segments are cached: the current one grows while it is being read.
        if start == 0 and segment != self._current:
            self._time_range[segment] = (low, high) if low <= high else None

    def read(self, t_start: float = -math.inf, t_end: float = math.inf) -> Iterator[Message]:
        """Messages with ``t_start <= time <= t_end``, oldest segment first, in write order."""
        for segment in self.segments:
            known = self._time_range.get(segment, (-math.inf, math.inf))
            if known is None or known[1] < t_start or known[0] > t_end:
                continue
            for _, msg in self._records(segment, 0):
                if t_start <= msg.time <= t_end:
                    yield msg

    def read_since(self, cursor: Cursor | None = None) -> Iterator[tuple[Cursor, Message]]:
        """Messages after ``cursor`` (from the oldest if None), each with the cursor after it.

        Store the cursor of the last message the ground received and resume from it. A cursor
        whose segment has been deleted resumes at the oldest data (counted in
        :attr:`cursor_gaps`); one pointing inside a record resumes at the next intact record.
        """
        if cursor is None:
            cursor = self.start_cursor()
        oldest = min(self._sizes)
        if cursor.segment < oldest:
            self.cursor_gaps += 1
            cursor = Cursor(oldest, 0)
        for segment in self.segments:
            if segment < cursor.segment:
                continue
            start = cursor.offset if segment == cursor.segment else 0
            for end, msg in self._records(segment, max(0, start)):
                yield Cursor(segment, end), msg

    # -- telemetry --------------------------------------------------------------------------

    @property
    def corrupt_spans(self) -> int:
        """Damaged spans found inside the data so far (each counted once)."""
        return len(self._corrupt)

    def counters(self) -> dict[str, Any]:
        return {
            "records": self.records_appended,
            "bytes": self.total_bytes,
            "segments": len(self._sizes),
            "segments_deleted": self.segments_deleted,
            "truncated_bytes": self.truncated_bytes,
            "corrupt_spans": self.corrupt_spans,
            "write_errors": self.write_errors,
            "syncs": self.syncs,
        }

    def publish(self, pool: DataPool, now: float) -> None:
        """Write :meth:`counters` into ``pool`` as ``archive.<name>``."""
        for name, value in self.counters().items():
            pool.set(f"archive.{name}", value, now)

    def channels(self) -> list[ChannelSpec]:
        return [
            ChannelSpec(0x0748 + i, f"archive.{name}", "int", units="B" if "bytes" in name else "")
            for i, name in enumerate(self.counters())
        ]

    def events(self) -> list[EventSpec]:
        return [EV_TRUNCATED, EV_SEGMENT_DROPPED, EV_WRITE_FAILED]
