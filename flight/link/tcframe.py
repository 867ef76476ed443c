"""CCSDS TC transfer frames (232.0-B): what carries commands up.

Primary header, five bytes, big-endian::

    bits  2  version (0)        1  bypass flag        1  control command flag    2  spare (0)
         10  spacecraft id      6  virtual channel id
         10  frame length = total length - 1           8  frame sequence number

then the data field, then the 2-byte frame error control field: CRC-16/CCITT-FALSE over
everything before it. A frame is at most 1024 bytes.

The flight software does not run COP-1 (no FARM, no CLCW in the downlink): every frame is sent as
type BD (bypass flag set, control command flag clear), the frame sequence number is informative
only, and replay protection comes from the SDLS anti-replay counter instead (:mod:`.sdls`).
"""

from __future__ import annotations

from dataclasses import dataclass

from flight.link.crc import CRC_LEN, append_crc, crc_ok

__all__ = [
    "HEADER_LEN",
    "MAX_FRAME_LEN",
    "MIN_FRAME_LEN",
    "TcCrcError",
    "TcFrame",
    "TcFrameError",
    "header_length",
]

HEADER_LEN = 5
MAX_FRAME_LEN = 1024
#: Header, at least one data byte, FECF.
MIN_FRAME_LEN = HEADER_LEN + 1 + CRC_LEN
MAX_SCID = 0x3FF
MAX_VCID = 0x3F


class TcFrameError(ValueError):
    """A TC frame that is malformed, fails its CRC, or cannot be built from the given fields."""


class TcCrcError(TcFrameError):
    """The frame's header is sane but its FECF does not match: a corrupted frame."""


def header_length(header: bytes | bytearray | memoryview) -> int | None:
    """The total frame length a TC header announces, or ``None`` if the header is not sane.

    Sane means: version 0, spare bits 0, and a length between :data:`MIN_FRAME_LEN` and
    :data:`MAX_FRAME_LEN`. The frame finder uses this to decide how many bytes to wait for.
    """
    if len(header) < HEADER_LEN:
        return None
    if header[0] >> 6 != 0 or header[0] & 0x0C:
        return None
    length = (((header[2] & 0x03) << 8) | header[3]) + 1
    if not MIN_FRAME_LEN <= length <= MAX_FRAME_LEN:
        return None
    return length


@dataclass(frozen=True, slots=True)
class TcFrame:
    """One TC transfer frame; ``data`` is the whole frame data field (security header included)."""

    scid: int
    vcid: int
    seq: int
    data: bytes
    bypass: bool = True
    control: bool = False

    def header(self) -> bytes:
        """The five header bytes for this frame's fields and data length.

        Raises:
            TcFrameError: a field out of range or a frame longer than 1024 bytes.
        """
        if not 0 <= self.scid <= MAX_SCID:
            raise TcFrameError(f"spacecraft id {self.scid} outside 0..{MAX_SCID}")
        if not 0 <= self.vcid <= MAX_VCID:
            raise TcFrameError(f"virtual channel {self.vcid} outside 0..{MAX_VCID}")
        if not 0 <= self.seq <= 0xFF:
            raise TcFrameError(f"frame sequence number {self.seq} outside 0..255")
        total = HEADER_LEN + len(self.data) + CRC_LEN
        if not MIN_FRAME_LEN <= total <= MAX_FRAME_LEN:
            raise TcFrameError(f"frame of {total} bytes outside {MIN_FRAME_LEN}..{MAX_FRAME_LEN}")
        word0 = (int(self.bypass) << 13) | (int(self.control) << 12) | self.scid
        word1 = (self.vcid << 10) | (total - 1)
        return word0.to_bytes(2, "big") + word1.to_bytes(2, "big") + bytes([self.seq])

    def encode(self) -> bytes:
        """Header, data field and FECF.

        Raises:
            TcFrameError: as :meth:`header`.
        """
        return append_crc(self.header() + bytes(self.data))

    @classmethod
    def decode(cls, raw: bytes | bytearray | memoryview) -> TcFrame:
        """Check and parse one complete frame.

        Raises:
            TcFrameError: the header is not sane, the length field disagrees with ``raw``, or the
                CRC fails. The message says which; it never quotes the frame's contents.
        """
        raw = bytes(raw)
        if len(raw) < MIN_FRAME_LEN:
            raise TcFrameError(f"{len(raw)} bytes is shorter than the smallest TC frame")
        length = header_length(raw)
        if length is None:
            raise TcFrameError("bad TC header (version, spare bits or length field)")
        if length != len(raw):
            raise TcFrameError(f"length field says {length} bytes, got {len(raw)}")
        if not crc_ok(raw):
            raise TcCrcError("CRC mismatch")
        word0 = int.from_bytes(raw[0:2], "big")
        return cls(
            scid=word0 & MAX_SCID,
            vcid=raw[2] >> 2,
            seq=raw[4],
            data=raw[HEADER_LEN:-CRC_LEN],
            bypass=bool(word0 & 0x2000),
            control=bool(word0 & 0x1000),
        )
