"""TC transfer frames (232.0-B): golden header bits, round trips, strict decoding.

spacepackets 0.32 has no TC transfer frame decoder, so the header is checked field by field
against values worked out by hand from the standard's bit layout.
"""

from __future__ import annotations

import contextlib

import fastcrc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flight.link.tcframe import (
    MAX_FRAME_LEN,
    TcCrcError,
    TcFrame,
    TcFrameError,
    header_length,
)


def test_golden_frame():
    raw = TcFrame(scid=0x2AB, vcid=5, seq=0x42, data=b"\x11\x22\x33").encode()
    # 00 1 0 00 1010101011 | 000101 0000001001 | 01000010
    # ver bypass ctrl spare SCID | VCID length-1=9 | FSN
    assert raw[:5] == bytes.fromhex("22AB 1409 42")
    assert raw[5:8] == b"\x11\x22\x33"
    assert raw[8:] == fastcrc.crc16.ibm_3740(raw[:8]).to_bytes(2, "big")
    assert len(raw) == 10


def test_control_frame_flags():
    raw = TcFrame(scid=1, vcid=0, seq=0, data=b"\x00", bypass=False, control=True).encode()
    assert raw[0] >> 4 == 0b0001


@given(
    scid=st.integers(0, 0x3FF),
    vcid=st.integers(0, 0x3F),
    seq=st.integers(0, 255),
    data=st.binary(min_size=1, max_size=MAX_FRAME_LEN - 7),
    bypass=st.booleans(),
    control=st.booleans(),
)
def test_round_trip(scid, vcid, seq, data, bypass, control):
    frame = TcFrame(scid, vcid, seq, data, bypass, control)
    raw = frame.encode()
    assert len(raw) == 5 + len(data) + 2
    assert header_length(raw) == len(raw)
    assert TcFrame.decode(raw) == frame


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"scid": 0x400, "vcid": 0, "seq": 0, "data": b"x"}, "spacecraft"),
        ({"scid": 1, "vcid": 0x40, "seq": 0, "data": b"x"}, "virtual channel"),
        ({"scid": 1, "vcid": 0, "seq": 256, "data": b"x"}, "sequence"),
        ({"scid": 1, "vcid": 0, "seq": 0, "data": b""}, "outside"),
        ({"scid": 1, "vcid": 0, "seq": 0, "data": bytes(MAX_FRAME_LEN - 6)}, "outside"),
    ],
)
def test_encode_refuses_bad_fields(kwargs, reason):
    with pytest.raises(TcFrameError, match=reason):
        TcFrame(**kwargs).encode()


def test_largest_frame_is_1024_bytes():
    assert len(TcFrame(1, 0, 0, bytes(MAX_FRAME_LEN - 7)).encode()) == 1024


def good() -> bytes:
    return TcFrame(0x2AB, 5, 1, b"hello").encode()


def test_decode_refuses_a_crc_error():
    raw = bytearray(good())
    raw[6] ^= 0x01
    with pytest.raises(TcCrcError):
        TcFrame.decode(bytes(raw))


def test_decode_refuses_length_mismatch():
    with pytest.raises(TcFrameError, match="length field"):
        TcFrame.decode(good() + b"\x00")


@pytest.mark.parametrize("bits", [0x40, 0x80, 0x04, 0x08])
def test_decode_refuses_version_and_spare_bits(bits):
    raw = bytearray(good())
    raw[0] |= bits
    with pytest.raises(TcFrameError, match="bad TC header"):
        TcFrame.decode(bytes(raw))


def test_decode_refuses_short_input():
    with pytest.raises(TcFrameError, match="shorter"):
        TcFrame.decode(b"\x00" * 7)


@given(st.binary(max_size=64))
def test_decode_of_garbage_raises_only_frame_errors(raw):
    with contextlib.suppress(TcFrameError):
        TcFrame.decode(raw)


def test_header_length_refuses_insane_headers():
    assert header_length(b"\x00\x00\x00") is None
    assert header_length(bytes.fromhex("0000 0000 00")) is None  # total length 1
    assert header_length(bytes.fromhex("0000 0007 00")) == 8
