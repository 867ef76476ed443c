"""CRC-16/CCITT-FALSE: the check value, an independent bitwise reference, and residue checking."""

from __future__ import annotations

import fastcrc  # installed with spacepackets (test-only): an independent implementation
from hypothesis import given
from hypothesis import strategies as st

from flight.link.crc import append_crc, crc16, crc_ok


def bitwise_crc(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def test_check_value_of_123456789_is_0x29b1():
    assert crc16(b"123456789") == 0x29B1


def test_empty_input_is_the_initial_value():
    assert crc16(b"") == 0xFFFF


@given(st.binary(max_size=300))
def test_matches_bitwise_reference_and_fastcrc(data):
    assert crc16(data) == bitwise_crc(data) == fastcrc.crc16.ibm_3740(data)


@given(st.binary(max_size=100), st.binary(max_size=100))
def test_crc_can_be_continued_across_chunks(a, b):
    assert crc16(b, crc16(a)) == crc16(a + b)


@given(st.binary(max_size=200))
def test_appended_crc_is_big_endian_and_checks(data):
    framed = append_crc(data)
    assert framed[-2:] == bitwise_crc(data).to_bytes(2, "big")
    assert crc_ok(framed)


@given(st.binary(min_size=1, max_size=200), st.data())
def test_any_single_bit_flip_is_detected(data, draw):
    framed = bytearray(append_crc(data))
    bit = draw.draw(st.integers(0, len(framed) * 8 - 1))
    framed[bit // 8] ^= 1 << (bit % 8)
    assert not crc_ok(framed)


def test_too_short_to_hold_a_crc_is_not_ok():
    assert not crc_ok(b"\x00")
