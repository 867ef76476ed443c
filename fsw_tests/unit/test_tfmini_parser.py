"""TFmini Plus frame parser: golden bytes, resync rules, and properties over arbitrary streams."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hal.drivers.tfmini import (
    Frame,
    Response,
    TFminiParser,
    checksum,
    encode_command,
    encode_frame,
    temperature_c,
)

# 5.00 m, strength 2000, 30 degC: 59 59 | F4 01 | D0 07 | F0 08 | sum(...) & 0xFF = 0x76
GOLDEN = bytes.fromhex("5959f401d007f00876")


def counters_consistent(p: TFminiParser) -> bool:
    return p.bytes_in == 9 * p.frames_ok + p.response_bytes + p.bytes_skipped + p.pending


# --- golden bytes ---------------------------------------------------------------------------------
def test_frame_golden_bytes():
    assert encode_frame(500, 2000, 2288) == GOLDEN
    assert TFminiParser().feed(GOLDEN) == [Frame(500, 2000, 2288)]
    assert temperature_c(2288) == 30.0


def test_command_golden_bytes():
    assert encode_command(0x01) == bytes.fromhex("5a04015f")  # get version
    assert encode_command(0x02) == bytes.fromhex("5a040260")  # system reset
    assert encode_command(0x03, (100).to_bytes(2, "little")) == bytes.fromhex("5a06036400c7")
    assert checksum(b"\xff\x02") == 0x01


# --- resync rules ---------------------------------------------------------------------------------
def test_header_bytes_inside_a_payload_are_data():
    frame = Frame(0x5959, 0x5959, 0x5959)
    p = TFminiParser()
    assert p.feed(b"\x59" + frame.encode() * 2) == [frame, frame]
    assert (p.bytes_skipped, p.pending) == (1, 0)


def test_bad_checksum_advances_one_byte_not_a_frame():
    # A false header two bytes before a real frame: skipping 9 bytes would lose the real one.
    real = Frame(1234, 500, 2300)
    stream = b"\x59\x59" + real.encode()
    p = TFminiParser()
    assert p.feed(stream) == [real]
    assert p.checksum_errors == 2  # at offsets 0 and 1
    assert p.bytes_skipped == 2


def test_a_corrupted_frame_is_counted_and_the_next_one_recovered():
    bad = bytearray(GOLDEN)
    bad[8] ^= 0xFF
    p = TFminiParser()
    assert p.feed(bytes(bad) + GOLDEN) == [Frame(500, 2000, 2288)]
    assert p.checksum_errors == 1
    assert counters_consistent(p)


def test_frames_split_byte_by_byte():
    p = TFminiParser()
    out: list[Frame] = []
    for b in GOLDEN * 3:
        out += p.feed(bytes([b]))
    assert out == [Frame(500, 2000, 2288)] * 3
    assert p.pending == 0


def test_buffer_stays_bounded_on_a_long_random_stream():
    rng = random.Random(7)
    p = TFminiParser()
    for _ in range(200):
        p.feed(bytes(rng.randrange(256) for _ in range(997)))
        assert p.pending < 9
    assert counters_consistent(p)


def test_responses_are_parsed_only_when_asked_for():
    reply = encode_command(0x03, (50).to_bytes(2, "little"))
    plain = TFminiParser()
    assert plain.feed(reply + GOLDEN) == [Frame(500, 2000, 2288)]
    assert list(plain.responses) == []
    asking = TFminiParser(accept_responses=True)
    assert asking.feed(reply[:3]) == []
    assert asking.feed(reply[3:] + GOLDEN) == [Frame(500, 2000, 2288)]
    assert list(asking.responses) == [Response(0x03, b"\x32\x00")]
    assert counters_consistent(asking)


# --- properties -----------------------------------------------------------------------------------
u16 = st.one_of(st.integers(0, 0xFFFF), st.sampled_from([0x5959, 0x0059, 0x5900, 0x5A59, 0]))
frames = st.builds(Frame, u16, u16, u16)
garbage = st.one_of(
    st.binary(max_size=24),
    st.lists(st.sampled_from([0x59, 0x5A, 0x00, 0xFF, 0x09]), max_size=12).map(bytes),
)
segments = st.lists(st.one_of(frames, garbage), max_size=25)


def build(parts: list[Frame | bytes]) -> tuple[bytes, list[tuple[int, Frame]]]:
    stream = bytearray()
    placed: list[tuple[int, Frame]] = []
    for part in parts:
        if isinstance(part, Frame):
            placed.append((len(stream), part))
            stream += part.encode()
        else:
            stream += part
    return bytes(stream), placed


def valid_window(stream: bytes, q: int) -> bool:
    window = stream[q : q + 9]
    return len(window) == 9 and window[:2] == b"\x59\x59" and checksum(window[:8]) == window[8]


def feed_in_chunks(parser: TFminiParser, stream: bytes, cuts: list[int]) -> list[Frame]:
    out: list[Frame] = []
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    for a, b in itertools.pairwise(bounds):
        out += parser.feed(stream[a:b])
    return out


@settings(max_examples=300, deadline=None)
@given(segments, st.lists(st.integers(0, 10_000), max_size=12))
def test_every_intact_frame_is_recovered_in_order(parts, cuts):
    stream, placed = build(parts)
    parser = TFminiParser()
    got = feed_in_chunks(parser, stream, cuts)

    # Chunking never changes the result.
    assert got == TFminiParser().feed(stream)
    # Counters add up, and nothing is invented: every frame is a valid window of the stream.
    assert parser.frames_ok == len(got)
    assert counters_consistent(parser)
    assert parser.pending < 9
    assert all(f.encode() in stream for f in got)
    # Every inserted frame comes out, in order, unless garbage before it happens to form a
    # checksum-valid frame overlapping its first bytes (then no parser can tell which is real).
    starts = {p for p, _ in placed}
    expected = [
        f
        for p, f in placed
        if not any(valid_window(stream, q) and q not in starts for q in range(max(0, p - 8), p))
    ]
    it = iter(got)
    assert all(any(g == f for g in it) for f in expected), (expected, got)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(frames, st.binary(max_size=24)), max_size=25))
def test_garbage_without_header_bytes_loses_nothing(parts):
    parts = [p.replace(b"\x59", b"\x58") if isinstance(p, bytes) else p for p in parts]
    stream, placed = build(parts)
    parser = TFminiParser()
    assert parser.feed(stream) == [f for _, f in placed]
    assert parser.checksum_errors == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20), st.booleans())
def test_parser_never_raises_on_arbitrary_bytes(chunks, accept):
    parser = TFminiParser(accept_responses=accept)
    for chunk in chunks:
        parser.feed(chunk)
    assert counters_consistent(parser)
    assert parser.pending < 16
