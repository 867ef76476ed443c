"""CRC-16/CCITT-FALSE, the frame error control field of CCSDS TC (232.0-B) and TM (132.0-B) frames.

Polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR; the check value of the nine
ASCII bytes ``123456789`` is 0x29B1. The standard library's :func:`binascii.crc_hqx` computes
exactly this polynomial with a caller-chosen initial value, table-driven in C, which matters
because the CRC runs over every frame in both directions (and over every candidate position when
the frame finder resynchronises on a noisy line).

Because there is no final XOR, the CRC of a frame *including* its big-endian FECF is zero: that is
how :func:`crc_ok` checks a received frame without slicing it.
"""

from __future__ import annotations

import binascii

__all__ = ["CRC_LEN", "append_crc", "crc16", "crc_ok"]

#: Bytes of the frame error control field.
CRC_LEN = 2
_INIT = 0xFFFF


def crc16(data: bytes | bytearray | memoryview, crc: int = _INIT) -> int:
    """CRC-16/CCITT-FALSE of ``data``; pass a previous result as ``crc`` to continue it."""
    return binascii.crc_hqx(data, crc)


def append_crc(data: bytes | bytearray) -> bytes:
    """``data`` followed by its CRC, big-endian (the FECF layout of both frame types)."""
    return bytes(data) + crc16(data).to_bytes(CRC_LEN, "big")


def crc_ok(frame: bytes | bytearray | memoryview) -> bool:
    """Whether ``frame`` ends with the correct CRC of everything before it."""
    return len(frame) >= CRC_LEN and crc16(frame) == 0
