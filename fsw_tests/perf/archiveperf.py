"""Figure 8: archive append rate with its crash-safety policy on, and playback read rate."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from flight.clock import WallClock
from flight.messages import Message, MessageKind
from flight.persistence.archive import Archive

from .common import Figure

__all__ = ["archive_figures"]

#: 20 messages per 50 Hz tick: several times what the Mars flight software emits in EDL.
APPEND_TARGET = 1000.0
#: Ten times the packet rate of the fastest downlink measured here (115200 baud, ~60 B packets).
PLAYBACK_TARGET = 2000.0


def _message(n: int) -> Message:
    values = [n * 0.1 + i for i in range(10)] + [n, True, "NOMINAL"]
    return Message(MessageKind.TELEMETRY, 0x1010 + n % 8, n * 0.02, values)


def archive_figures(seconds: float) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="fsw-perf-", dir=Path.home()) as tmp:
        # The default sync policy; a size bound no run reaches (at 120,000 records/s five
        # seconds pass the default 64 MiB, and the oldest segments going would leave fewer
        # records to read back than were appended).
        archive = Archive(Path(tmp) / "archive", clock=WallClock(), max_segments=100_000)
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for _ in range(100):
                archive.append(_message(n))
                n += 1
        append_s = time.perf_counter() - t0
        syncs, dropped = archive.syncs, archive.segments_deleted
        archive.close()
        reader = Archive(Path(tmp) / "archive", clock=WallClock(), max_segments=100_000)
        t0 = time.perf_counter()
        read = sum(1 for _ in reader.read())
        read_s = time.perf_counter() - t0
        reader.close()
    append_rate = n / append_s
    read_rate = read / read_s
    note = (
        f"{n} telemetry records, default sync policy (fsync every 64 records or 1 s): "
        f"{syncs} fsyncs; file system of {Path.home()}"
    )
    return [
        Figure(
            "archive.append_rate",
            append_rate,
            "records/s",
            None,
            f">= {APPEND_TARGET:.0f}",
            APPEND_TARGET,
            append_rate >= APPEND_TARGET,
            note,
        ),
        Figure(
            "archive.playback_rate",
            read_rate,
            "records/s",
            None,
            f">= {PLAYBACK_TARGET:.0f}",
            PLAYBACK_TARGET,
            read_rate >= PLAYBACK_TARGET and read == n and dropped == 0,
            f"{read} of {n} records read back in order ({dropped} segments dropped)",
        ),
    ]
