"""Finding transfer frames in a byte stream that may hold garbage, gaps and partial frames.

On our byte-stream transports (serial radio modem, TCP, UDP) every frame, TC and TM alike, is
preceded by the 4-byte attached sync marker 0x1ACFFC1D. CCSDS puts the ASM only on TM (131.0-B)
and wraps TC frames in CLTUs instead; CLTUs exist for BCH coding on a bit-synchronous RF link,
which a modem that already delivers bytes does not need, so both directions use the ASM
convention here. The ASM can be switched off when a transport delivers whole frames (one frame per
UDP datagram, say); the finder then tries every byte offset.

A candidate is accepted only if the ASM is followed by a sane header (version, spacecraft id,
length) and the frame's CRC checks. Anything else is skipped one byte at a time, so after noise
the finder resumes at the next good frame: garbage costs bytes, never frames that follow it. A
corrupted length field can make the finder wait for bytes that belong to the next frame; when
they arrive the CRC fails and the finder rescans from just after the bad ASM, so that next frame
is recovered too, only later. If the link then goes quiet those bytes never come; with a clock
the finder abandons an incomplete candidate once no byte has arrived for ``stall_s`` and rescans.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flight.link import tcframe, tmframe
from flight.link.crc import crc_ok

__all__ = ["ASM", "FrameSync", "FrameSyncStats", "tc_frame_sync", "tm_frame_sync"]

#: The attached sync marker of CCSDS 131.0-B.
ASM = bytes.fromhex("1ACFFC1D")

#: Header bytes -> total frame length, or ``None`` when the header cannot start a frame.
LengthFn = Callable[[bytes], int | None]


@dataclass
class FrameSyncStats:
    frames_ok: int = 0
    #: Candidates (ASM found) whose header was not sane.
    bad_headers: int = 0
    #: Candidates with a sane header whose CRC failed.
    crc_errors: int = 0
    #: Candidates abandoned because the rest of the frame did not arrive within ``stall_s``.
    stalled: int = 0
    #: Bytes discarded: garbage between frames and the remains of bad candidates.
    bytes_skipped: int = 0


class FrameSync:
    """Splits a byte stream into CRC-checked frames.

    Args:
        header_len: bytes of header ``frame_length`` needs to see.
        frame_length: maps a header to the total frame length (FECF included), or ``None``.
        asm: the sync marker before each frame; ``b""`` to search by header and CRC alone.
        now: a clock; with it, when no byte at all has arrived for ``stall_s`` an incomplete
            candidate is abandoned and the buffer rescanned. Without that, a frame cut short by
            a dropout, then one good command, then silence would hold the command until enough
            later bytes arrived.
        stall_s: the inter-byte timeout (several frame times on the radio).
    """

    def __init__(
        self,
        *,
        header_len: int,
        frame_length: LengthFn,
        asm: bytes = ASM,
        now: Callable[[], float] | None = None,
        stall_s: float = 2.0,
    ) -> None:
        self._header_len = header_len
        self._frame_length = frame_length
        self._asm = bytes(asm)
        self._buf = bytearray()
        self._now = now
        self._stall_s = stall_s
        self._last_rx: float | None = None
        self.stats = FrameSyncStats()

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)

    def _skip(self, n: int) -> None:
        del self._buf[:n]
        self.stats.bytes_skipped += n

    def _take(self, start: int, n: int) -> bytes:
        frame = bytes(self._buf[start : start + n])
        del self._buf[: start + n]
        self.stats.frames_ok += 1
        return frame

    def feed(self, data: bytes | bytearray) -> list[bytes]:
        """Add ``data`` to the stream and return every complete, CRC-checked frame (no ASM).

        Call it on every tick, with ``b""`` when nothing arrived, so a stalled candidate is
        abandoned on time.
        """
        self._buf += data
        out = self._scan()
        if self._now is None:
            return out
        now = self._now()
        if data:
            self._last_rx = now
        elif self._last_rx is not None and now - self._last_rx >= self._stall_s:
            # Nothing has arrived for stall_s: what is buffered will never complete. Abandon the
            # candidate and rescan the rest (a loop, not recursion: the buffer may hold many).
            while len(self._buf) >= len(self._asm) + self._header_len:
                self.stats.stalled += 1
                self._skip(1)
                out += self._scan()
            self._skip(len(self._buf))
        return out

    def _scan(self) -> list[bytes]:
        return self._scan_asm() if self._asm else self._scan_headers()

    def _scan_asm(self) -> list[bytes]:
        out: list[bytes] = []
        buf, asm = self._buf, self._asm
        a = len(asm)
        while True:
            i = buf.find(asm)
            if i < 0:
                # Keep a possible partial ASM at the end; the rest is garbage.
                self._skip(max(0, len(buf) - (a - 1)))
                return out
            if i:
                self._skip(i)
            if len(buf) < a + self._header_len:
                return out
            n = self._frame_length(bytes(buf[a : a + self._header_len]))
            if n is None:
                self.stats.bad_headers += 1
                self._skip(1)
                continue
            if len(buf) < a + n:
                return out
            if not crc_ok(memoryview(buf)[a : a + n]):
                self.stats.crc_errors += 1
                self._skip(1)
                continue
            out.append(self._take(a, n))

    def _scan_headers(self) -> list[bytes]:
        out: list[bytes] = []
        buf = self._buf
        while len(buf) >= self._header_len:
            n = self._frame_length(bytes(buf[: self._header_len]))
            if n is None:
                self._skip(1)
                continue
            if len(buf) < n:
                return out
            if not crc_ok(memoryview(buf)[:n]):
                self.stats.crc_errors += 1
                self._skip(1)
                continue
            out.append(self._take(0, n))
        return out


def tc_frame_sync(
    *,
    scid: int | None = None,
    asm: bytes = ASM,
    now: Callable[[], float] | None = None,
    stall_s: float = 2.0,
) -> FrameSync:
    """A finder for TC frames, optionally only those addressed to ``scid``."""

    def length(header: bytes) -> int | None:
        n = tcframe.header_length(header)
        if n is None or (scid is not None and ((header[0] & 0x03) << 8 | header[1]) != scid):
            return None
        return n

    return FrameSync(
        header_len=tcframe.HEADER_LEN, frame_length=length, asm=asm, now=now, stall_s=stall_s
    )


def tm_frame_sync(
    *,
    frame_length: int,
    scid: int | None = None,
    asm: bytes = ASM,
    now: Callable[[], float] | None = None,
    stall_s: float = 2.0,
) -> FrameSync:
    """A finder for fixed-length TM frames, optionally only those from ``scid``."""

    def length(header: bytes) -> int | None:
        fields = tmframe.peek_header(header)
        if fields is None or (scid is not None and fields[0] != scid):
            return None
        return frame_length

    return FrameSync(
        header_len=tmframe.HEADER_LEN, frame_length=length, asm=asm, now=now, stall_s=stall_s
    )
