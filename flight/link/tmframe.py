"""CCSDS TM transfer frames (132.0-B): what carries space packets down.

Primary header, six bytes, big-endian::

    bits  2  version (0)     10  spacecraft id     3  virtual channel id     1  OCF flag (0)
          8  master channel frame count             8  virtual channel frame count
          1  secondary header flag (0)   1  sync flag (0)   1  packet order (0)
          2  segment length id (0b11)   11  first header pointer

then a fixed-length data field, then the FECF: CRC-16/CCITT-FALSE over everything before it.
There is no operational control field because the flight software does not run COP-1.

The data field is a continuous stream of space packets per virtual channel: a packet may start in
one frame and end in a later one. The first header pointer (FHP) gives the offset of the first
packet that *starts* in this frame, 0x7FF when none does (the frame holds only the middle of a
long packet) and 0x7FE when the frame holds only idle data. A frame that must go out before it is
full is completed with an idle packet (APID 0x7FF); if fewer than seven bytes (the smallest packet)
remain, the idle packet spills into the next frame, which the FHP then accounts for.

Virtual channels: 0 realtime, 1 playback, 7 idle frames (no data, sent only to keep a link busy).
The frame counts are 8-bit, so the ground (:class:`TmDeframer`) sees a gap as a jump in a
channel's count; a loss of exactly a multiple of 256 frames on one channel cannot be seen.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from dataclasses import dataclass, field

from flight.link.crc import CRC_LEN, append_crc, crc16, crc_ok
from flight.link.spacepacket import HEADER_LEN as PACKET_HEADER_LEN
from flight.link.spacepacket import IDLE_APID, idle_packet, packet_length

__all__ = [
    "DEFAULT_FRAME_LEN",
    "FHP_IDLE",
    "FHP_NO_PACKET",
    "HEADER_LEN",
    "IDLE_VCID",
    "PLAYBACK_VCID",
    "REALTIME_VCID",
    "TmDeframer",
    "TmDeframerStats",
    "TmFrame",
    "TmFrameError",
    "TmFramer",
    "peek_header",
]

HEADER_LEN = 6
#: 256 bytes on the wire (260 with the ASM): about a tenth of a second at the 2.5 kB/s budget.
DEFAULT_FRAME_LEN = 256
MIN_FRAME_LEN = HEADER_LEN + PACKET_HEADER_LEN + 1 + CRC_LEN
#: 132.0-B allows up to 2048 bytes; the 11-bit FHP can address all of it.
MAX_FRAME_LEN = 2048
FHP_NO_PACKET = 0x7FF
FHP_IDLE = 0x7FE
MAX_SCID = 0x3FF
MAX_VCID = 7
REALTIME_VCID = 0
PLAYBACK_VCID = 1
IDLE_VCID = 7
#: Data field status for our frames: no secondary header, packets in order, segment id 0b11.
_STATUS_BITS = 0b0001_1000
_STATUS_MASK = 0b1111_1000
#: Version and ids, master and virtual channel counts, data field status and first header pointer.
_HEADER = struct.Struct(">HBBH")
_MIN_PACKET = PACKET_HEADER_LEN + 1
#: A frame's bytes that are not packet data: the primary header and the FECF.
_OVERHEAD = HEADER_LEN + CRC_LEN
_FECF = struct.Struct(">H")


class TmFrameError(ValueError):
    """A TM frame of the wrong length, with an unexpected header, or a failed CRC."""


def _check_frame_length(frame_length: int) -> None:
    if not MIN_FRAME_LEN <= frame_length <= MAX_FRAME_LEN:
        raise ValueError(f"TM frame length {frame_length} outside {MIN_FRAME_LEN}..{MAX_FRAME_LEN}")


def peek_header(header: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """``(scid, vcid)`` of a header this software could have sent, else ``None``.

    Checks version 0, no OCF, and the data field status bits fixed above.
    """
    if len(header) < HEADER_LEN:
        return None
    if header[0] >> 6 != 0 or header[1] & 0x01 or header[4] & _STATUS_MASK != _STATUS_BITS:
        return None
    return ((header[0] & 0x3F) << 4) | (header[1] >> 4), (header[1] >> 1) & 0x07


@dataclass(frozen=True, slots=True)
class TmFrame:
    scid: int
    vcid: int
    mc_count: int
    vc_count: int
    fhp: int
    data: bytes

    def encode(self) -> bytes:
        """Raises: TmFrameError: a field out of range."""
        if not 0 <= self.scid <= MAX_SCID:
            raise TmFrameError(f"spacecraft id {self.scid} outside 0..{MAX_SCID}")
        if not 0 <= self.vcid <= MAX_VCID:
            raise TmFrameError(f"virtual channel {self.vcid} outside 0..{MAX_VCID}")
        if not (0 <= self.mc_count <= 0xFF and 0 <= self.vc_count <= 0xFF):
            raise TmFrameError("frame counts are 8-bit")
        if not 0 <= self.fhp <= FHP_NO_PACKET:
            raise TmFrameError(f"first header pointer {self.fhp} outside 0..0x7FF")
        header = bytes(
            [
                self.scid >> 4,
                ((self.scid & 0x0F) << 4) | (self.vcid << 1),
                self.mc_count,
                self.vc_count,
                _STATUS_BITS | (self.fhp >> 8),
                self.fhp & 0xFF,
            ]
        )
        return append_crc(header + bytes(self.data))

    @classmethod
    def decode(cls, raw: bytes | bytearray | memoryview, *, frame_length: int) -> TmFrame:
        """Raises: TmFrameError: wrong length, unexpected header bits, or a failed CRC."""
        raw = bytes(raw)
        if len(raw) != frame_length:
            raise TmFrameError(f"frame of {len(raw)} bytes, expected {frame_length}")
        ids = peek_header(raw)
        if ids is None:
            raise TmFrameError("unexpected TM header (version, OCF or data field status)")
        if not crc_ok(raw):
            raise TmFrameError("CRC mismatch")
        fhp = ((raw[4] & 0x07) << 8) | raw[5]
        data = raw[HEADER_LEN:-CRC_LEN]
        if fhp < FHP_IDLE and fhp >= len(data):
            raise TmFrameError(f"first header pointer {fhp} beyond the {len(data)}-byte data field")
        return cls(ids[0], ids[1], raw[2], raw[3], fhp, data)


@dataclass(slots=True)
class _VcOut:
    buf: bytearray = field(default_factory=bytearray)
    #: Stream offsets at which packets start, relative to the first byte ever queued, in
    #: order. A list rather than a deque: a frame drops the ones it covers with one bisect and
    #: one slice deletion, and few packets wait at a time.
    starts: list[int] = field(default_factory=list)
    #: Stream offset of ``buf[0]``.
    base: int = 0
    #: Bytes at the end of ``buf`` that are idle fill, not data anyone is waiting for.
    idle_tail: int = 0
    count: int = 0


class TmFramer:
    """Packs space packets into fixed-length TM frames, per virtual channel.

    Raises (on construction):
        ValueError: spacecraft id or frame length out of range.
    """

    def __init__(self, *, scid: int, frame_length: int = DEFAULT_FRAME_LEN) -> None:
        if not 0 <= scid <= MAX_SCID:
            raise ValueError(f"spacecraft id {scid} outside 0..{MAX_SCID}")
        _check_frame_length(frame_length)
        self.scid = scid
        self.frame_length = frame_length
        self._vcs = [_VcOut() for _ in range(MAX_VCID + 1)]
        self._mc_count = 0
        self._idle_seq = 0

    @property
    def data_len(self) -> int:
        """Bytes of packet data each frame carries."""
        return self.frame_length - _OVERHEAD

    def add_packet(self, vcid: int, packet: bytes) -> int:
        """Queue one encoded space packet on ``vcid``.

        Returns:
            The packet's end as an offset in the channel's byte stream: it has left once
            :meth:`emitted` reaches this.

        Raises:
            ValueError: no such virtual channel, or not a whole packet.
        """
        # The channel check and packet_length() written out: this runs for every packet.
        if not 0 <= vcid <= MAX_VCID:
            raise ValueError(f"virtual channel {vcid} outside 0..{MAX_VCID}")
        size = len(packet)
        if size <= PACKET_HEADER_LEN or size != (packet[4] << 8 | packet[5]) + _MIN_PACKET:
            raise ValueError("add_packet takes exactly one encoded space packet")
        vc = self._vcs[vcid]
        buf = vc.buf
        vc.starts.append(vc.base + len(buf))
        buf += packet
        vc.idle_tail = 0
        return vc.base + len(buf)

    def emitted(self, vcid: int) -> int:
        """Bytes of ``vcid``'s stream (idle fill included) that have gone out in frames."""
        if not 0 <= vcid <= MAX_VCID:
            raise ValueError(f"virtual channel {vcid} outside 0..{MAX_VCID}")
        return self._vcs[vcid].base

    def pending(self, vcid: int) -> int:
        """Bytes of real packets waiting on ``vcid`` (idle fill left over not counted)."""
        if not 0 <= vcid <= MAX_VCID:  # written out, not a helper: runs around every frame
            raise ValueError(f"virtual channel {vcid} outside 0..{MAX_VCID}")
        vc = self._vcs[vcid]
        return len(vc.buf) - vc.idle_tail

    def _pad(self, vc: _VcOut) -> None:
        room = self.data_len - len(vc.buf)
        if room <= 0:
            return
        size = max(room, PACKET_HEADER_LEN + 1)
        vc.starts.append(vc.base + len(vc.buf))
        vc.buf += idle_packet(size, self._idle_seq)
        self._idle_seq += 1
        vc.idle_tail += size

    def next_frame(self, vcid: int) -> bytes | None:
        """The next frame on ``vcid``, padded with an idle packet if short; ``None`` if nothing
        real is waiting."""
        if not 0 <= vcid <= MAX_VCID:  # as in pending()
            raise ValueError(f"virtual channel {vcid} outside 0..{MAX_VCID}")
        vc = self._vcs[vcid]
        buf = vc.buf
        if len(buf) == vc.idle_tail:
            return None  # nothing real waiting
        n = self.frame_length - _OVERHEAD
        if len(buf) < n:
            self._pad(vc)
        base = vc.base
        end = base + n
        starts = vc.starts
        covered = bisect_left(starts, end)  # the packets that start in this frame
        if covered:
            fhp = starts[0] - base
            del starts[:covered]
        else:
            fhp = FHP_NO_PACKET
        data = buf[:n]
        del buf[:n]
        vc.base = end
        if vc.idle_tail > len(buf):
            vc.idle_tail = len(buf)
        return self._emit(vcid, fhp, data)

    def idle_frame(self) -> bytes:
        """An all-idle frame on the idle virtual channel (FHP 0x7FE)."""
        return self._emit(IDLE_VCID, FHP_IDLE, b"\x55" * self.data_len)

    def _emit(self, vcid: int, fhp: int, data: bytes | bytearray) -> bytes:
        # Every field is in range by construction, so this packs the header directly rather than
        # going through TmFrame.encode's checks (the same bytes; a test holds them equal).
        vc = self._vcs[vcid]
        ids = (self.scid << 4) | (vcid << 1)
        frame = _HEADER.pack(ids, self._mc_count, vc.count, (_STATUS_BITS << 8) | fhp) + data
        self._mc_count = (self._mc_count + 1) & 0xFF
        vc.count = (vc.count + 1) & 0xFF
        return frame + _FECF.pack(crc16(frame))


@dataclass
class TmDeframerStats:
    frames_ok: int = 0
    #: Wrong length, unexpected header, foreign spacecraft id, bad FHP or failed CRC.
    frames_bad: int = 0
    idle_frames: int = 0
    #: Frames missing according to the per-channel and master channel counts.
    vc_gaps: int = 0
    mc_gaps: int = 0
    #: Packets lost because a gap cut them, and packet streams that did not line up with the FHP.
    partial_dropped: int = 0
    sync_errors: int = 0
    packets: int = 0


@dataclass
class _VcIn:
    buf: bytearray = field(default_factory=bytearray)
    synced: bool = False
    expected: int | None = None


class TmDeframer:
    """Reassembles space packets from TM frames (ground side); never raises on bad input.

    Args:
        frame_length: the fixed frame length the spacecraft uses.
        scid: if given, frames from other spacecraft are counted bad and ignored.
    """

    def __init__(self, *, frame_length: int = DEFAULT_FRAME_LEN, scid: int | None = None) -> None:
        _check_frame_length(frame_length)
        self.frame_length = frame_length
        self.scid = scid
        self.stats = TmDeframerStats()
        self._vcs = [_VcIn() for _ in range(MAX_VCID + 1)]
        self._mc_expected: int | None = None

    def feed_frame(self, raw: bytes) -> list[tuple[int, bytes]]:
        """``(vcid, packet)`` for every packet completed by this frame; idle packets dropped."""
        try:
            frame = TmFrame.decode(raw, frame_length=self.frame_length)
        except TmFrameError:
            self.stats.frames_bad += 1
            return []
        if self.scid is not None and frame.scid != self.scid:
            self.stats.frames_bad += 1
            return []
        self.stats.frames_ok += 1
        if self._mc_expected is not None:
            self.stats.mc_gaps += (frame.mc_count - self._mc_expected) & 0xFF
        self._mc_expected = (frame.mc_count + 1) & 0xFF
        vc = self._vcs[frame.vcid]
        if vc.expected is not None and frame.vc_count != vc.expected:
            self.stats.vc_gaps += (frame.vc_count - vc.expected) & 0xFF
            self._desync(vc)
        vc.expected = (frame.vc_count + 1) & 0xFF
        if frame.fhp == FHP_IDLE:
            self.stats.idle_frames += 1
            return []
        packets = self._assemble(vc, frame)
        self.stats.packets += len(packets)
        return [(frame.vcid, p) for p in packets]

    def _desync(self, vc: _VcIn) -> None:
        if vc.buf:
            self.stats.partial_dropped += 1
        vc.buf.clear()
        vc.synced = False

    def _assemble(self, vc: _VcIn, frame: TmFrame) -> list[bytes]:
        data, fhp = frame.data, frame.fhp
        out: list[bytes] = []
        if not vc.synced:
            if fhp == FHP_NO_PACKET:
                return out
            vc.buf += data[fhp:]
            vc.synced = True
        elif fhp == FHP_NO_PACKET:
            vc.buf += data
        else:
            # The bytes before the FHP must complete the packet in progress exactly.
            vc.buf += data[:fhp]
            out += self._extract(vc)
            if vc.synced and vc.buf:
                self.stats.sync_errors += 1
                self._desync(vc)
            vc.synced = True
            vc.buf += data[fhp:]
        out += self._extract(vc)
        return out

    def _extract(self, vc: _VcIn) -> list[bytes]:
        out: list[bytes] = []
        buf = vc.buf
        pos = 0
        while len(buf) - pos >= PACKET_HEADER_LEN:
            if buf[pos] >> 5 != 0:
                self.stats.sync_errors += 1
                self._desync(vc)
                return out
            n = packet_length(buf[pos : pos + PACKET_HEADER_LEN])
            if len(buf) - pos < n:
                break
            if ((buf[pos] & 0x07) << 8 | buf[pos + 1]) != IDLE_APID:
                out.append(bytes(buf[pos : pos + n]))
            pos += n
        del buf[:pos]
        return out
