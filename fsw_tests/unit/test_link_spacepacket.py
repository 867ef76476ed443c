"""Space packets (133.0-B): golden headers, cross-checks with spacepackets, strict decoding, and
the mapping of flight messages onto APIDs and CBOR data fields."""

from __future__ import annotations

import contextlib
import math
import struct
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from spacepackets.ccsds.spacepacket import SpacePacketHeader

from flight import codec
from flight.link.spacepacket import (
    IDLE_APID,
    MAX_TELEMETRY_ID,
    Apid,
    PacketError,
    Packetizer,
    PacketType,
    SequenceCounters,
    SequenceFlags,
    SpacePacket,
    idle_packet,
    message_to_packet,
    packet_length,
    packet_to_message,
    playback_packet,
    split_packets,
)
from flight.messages import Message, MessageKind

# -- wire format -------------------------------------------------------------------------------


def test_golden_tm_packet():
    raw = SpacePacket(0x123, 5, b"\x01\x02").encode()
    # version 0, TM, no secondary header, APID 0x123 | unsegmented, count 5 | length - 1 = 1
    assert raw == bytes.fromhex("0123 C005 0001 0102")


def test_golden_tc_packet():
    raw = SpacePacket(Apid.COMMAND, 0x3FFF, b"\xaa", packet_type=PacketType.TC).encode()
    assert raw == bytes.fromhex("1010 FFFF 0000 AA")


@given(
    apid=st.integers(0, 0x7FF),
    count=st.integers(0, 0x3FFF),
    data=st.binary(min_size=1, max_size=300),
    ptype=st.sampled_from(PacketType),
    flags=st.sampled_from(SequenceFlags),
    sec=st.booleans(),
)
def test_round_trip_and_spacepackets_agrees(apid, count, data, ptype, flags, sec):
    pkt = SpacePacket(apid, count, data, ptype, sec, flags)
    raw = pkt.encode()
    assert SpacePacket.decode(raw) == pkt
    theirs = SpacePacketHeader.unpack(raw)
    assert theirs.ccsds_version == 0
    assert theirs.apid == apid
    assert theirs.seq_count == count
    assert int(theirs.packet_type) == int(ptype)
    assert int(theirs.seq_flags) == int(flags)
    assert theirs.sec_header_flag == sec
    assert theirs.packet_len == len(raw)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"apid": 0x800, "seq_count": 0, "data": b"x"}, "APID"),
        ({"apid": -1, "seq_count": 0, "data": b"x"}, "APID"),
        ({"apid": 1, "seq_count": 0x4000, "data": b"x"}, "sequence count"),
        ({"apid": 1, "seq_count": 0, "data": b""}, "data field"),
        ({"apid": 1, "seq_count": 0, "data": bytes(0x10001)}, "data field"),
    ],
)
def test_encode_refuses_out_of_range_fields(kwargs, reason):
    with pytest.raises(PacketError, match=reason):
        SpacePacket(**kwargs).encode()


def test_largest_packet_encodes():
    raw = SpacePacket(1, 0, bytes(0x10000)).encode()
    assert raw[4:6] == b"\xff\xff"
    assert packet_length(raw) == len(raw) == 0x10006


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "shorter"),
        (bytes.fromhex("0123C00500"), "shorter"),
        (bytes.fromhex("2123C005000001"), "version"),
        (bytes.fromhex("0123C005000101"), "length field"),
        (bytes.fromhex("0123C00500000102"), "length field"),
    ],
)
def test_decode_refuses_malformed_packets(raw, reason):
    with pytest.raises(PacketError, match=reason):
        SpacePacket.decode(raw)


@given(st.binary(max_size=40))
def test_decode_of_garbage_raises_only_packet_error(raw):
    with contextlib.suppress(PacketError):
        SpacePacket.decode(raw)


def test_split_packets_finds_each_and_refuses_a_cut_one():
    a = SpacePacket(1, 0, b"abc").encode()
    b = SpacePacket(2, 1, b"d").encode()
    assert [p.apid for p in split_packets(a + b)] == [1, 2]
    with pytest.raises(PacketError, match="needs"):
        list(split_packets(a + b[:-1]))


def test_idle_packet_has_the_idle_apid_and_exact_length():
    raw = idle_packet(7)
    assert len(raw) == 7
    assert SpacePacket.decode(raw).apid == IDLE_APID == 0x7FF
    with pytest.raises(PacketError):
        idle_packet(6)


def test_sequence_counters_are_per_apid_and_wrap_at_14_bits():
    c = SequenceCounters()
    assert [c.next(5) for _ in range(3)] == [0, 1, 2]
    assert c.next(6) == 0
    for _ in range(0x4000 - 3):
        c.next(5)
    assert c.next(5) == 0


def test_apid_table_is_fixed():
    assert Apid.COMMAND == 0x010
    assert Apid.COMMAND_RESPONSE == 0x011
    assert Apid.EVENT == 0x012
    assert Apid.PLAYBACK == 0x013
    assert Apid.FILE == 0x014
    assert Apid.TIME == 0x015
    assert Apid.TELEMETRY_BASE == 0x100
    assert len({a.value for a in Apid}) == len(Apid)


# -- messages ----------------------------------------------------------------------------------

bodies = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.binary(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=10,
)
times = st.floats(min_value=0, max_value=1e9, allow_nan=False)


@st.composite
def messages(draw):
    kind = draw(st.sampled_from(MessageKind))
    if kind is MessageKind.TELEMETRY:
        ident = draw(st.integers(0, 0xFFFF))
    else:
        ident = draw(st.integers(-1, 0xFFFF))
    return Message(kind, ident, draw(times), draw(bodies))


@given(messages())
def test_message_round_trip(msg):
    raw = message_to_packet(msg, SequenceCounters())
    assert packet_to_message(raw) == msg


@given(messages())
def test_playback_round_trip_gives_the_archived_message(msg):
    raw = playback_packet(msg, SequenceCounters())
    assert SpacePacket.decode(raw).apid == Apid.PLAYBACK
    assert packet_to_message(raw) == msg


_APID_OF_KIND = {
    MessageKind.TELEMETRY: Apid.TELEMETRY_EXTENDED,
    MessageKind.EVENT: Apid.EVENT,
    MessageKind.COMMAND_RESPONSE: Apid.COMMAND_RESPONSE,
    MessageKind.FILE: Apid.FILE,
}


numeric_types = st.lists(st.sampled_from(["float", "int"]), min_size=1, max_size=8)


def _fitting(kind: str) -> st.SearchStrategy[Any]:
    return st.floats(allow_nan=False) if kind == "float" else st.integers(0, 2**32 - 1)


@st.composite
def fixed_cases(draw):
    """Layouts for a few packet ids (one of them extended), and messages that mostly fit them:
    the values of the channel types, sometimes one missing, negative or of another type, or one
    too few; and now and then any message at all."""
    ids = draw(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=3, unique=True))
    ids.append(draw(st.integers(MAX_TELEMETRY_ID + 1, 0xFFFF).filter(lambda i: i not in ids)))
    layouts = {ident: draw(numeric_types) for ident in ids}
    msgs = []
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.integers(0, 4)) == 0:
            msgs.append(draw(messages()))
            continue
        ident = draw(st.sampled_from(ids))
        body = [draw(_fitting(kind)) for kind in layouts[ident]]
        spoil = draw(
            st.sampled_from(["none", "none", "none", "missing", "negative", "str", "short"])
        )
        slot = draw(st.integers(0, len(body) - 1))
        if spoil == "missing":
            body[slot] = None
        elif spoil == "negative":
            body[slot] = -1
        elif spoil == "str":
            body[slot] = "x"
        elif spoil == "short":
            body.pop()
        msgs.append(Message(MessageKind.TELEMETRY, ident, draw(times), body))
    return layouts, msgs


def _reference_field(msg: Message, array: codec.FixedArray | None) -> bytes:
    """The data field as the module docstring defines it, from the codec's reference encoders."""
    extended = msg.kind is not MessageKind.TELEMETRY or msg.id > MAX_TELEMETRY_ID
    if array is not None and isinstance(msg.body, list):
        with contextlib.suppress(codec.CodecError):  # it does not fit: canonical, below
            values = array.encode(msg.body)
            ident = codec.encode(msg.id) if extended else b""
            return (
                (b"\x83" if extended else b"\x82")
                + b"\xfb"
                + struct.pack(">d", msg.time)
                + ident
                + values
            )
    if extended:
        return codec.encode([msg.time, msg.id, msg.body])
    return codec.encode([msg.time, msg.body])


@given(st.lists(messages(), min_size=1, max_size=6), st.booleans(), fixed_cases())
def test_packetizer_bytes_are_the_reference_encoding(msgs, shared_time, fixed):
    """The packetizer's shortcuts (a cached time stamp, a struct-packed header, one struct for a
    fixed layout) change nothing: each packet is SpacePacket.encode over the documented data
    field, in the fixed layout's form where the packet has one and its values fit."""
    layouts, fixed_msgs = fixed
    msgs = msgs + fixed_msgs
    if shared_time:  # one tick's telemetry: every message carries the same time object
        msgs = [m._replace(time=msgs[0].time) for m in msgs]
    packetizer = Packetizer()
    for ident, types in layouts.items():
        assert packetizer.fix_layout(ident, types)
    reference = SequenceCounters()
    for msg in msgs:
        raw = packetizer.realtime(msg)
        if msg.kind is MessageKind.TELEMETRY and msg.id <= MAX_TELEMETRY_ID:
            apid = Apid.TELEMETRY_BASE + msg.id
        else:
            apid = _APID_OF_KIND[msg.kind]
        array = (
            codec.FixedArray.of(layouts[msg.id])
            if msg.kind is MessageKind.TELEMETRY and msg.id in layouts
            else None
        )
        expected = SpacePacket(apid, reference.next(apid), _reference_field(msg, array)).encode()
        assert raw == expected
        assert packet_to_message(raw) == msg


@given(fixed_cases())
def test_a_packet_whose_values_fit_its_layout_has_the_layouts_length(fixed):
    layouts, msgs = fixed
    packetizer = Packetizer()
    for ident, types in layouts.items():
        packetizer.fix_layout(ident, types)
    fitting = 0
    for msg in msgs:
        raw = packetizer.realtime(msg)
        if msg.kind is not MessageKind.TELEMETRY or msg.id not in layouts:
            continue
        array = codec.FixedArray.of(layouts[msg.id])
        assert array is not None
        try:
            array.encode(msg.body)
        except codec.CodecError:
            continue  # does not fit: any length
        fitting += 1
        assert len(raw) == packetizer.fixed_length(msg.id)
    assume(fitting)


def test_fixed_layout_golden_packet():
    packetizer = Packetizer()
    assert packetizer.fix_layout(0x23, ["float", "int"])
    raw = packetizer.realtime(Message(MessageKind.TELEMETRY, 0x23, 2.5, [1.5, 7]))
    assert raw == bytes.fromhex(
        "0123c0000018"  # APID 0x123, unsegmented, count 0, 25 data bytes
        "82fb4004000000000000"  # [2.5 as a float64,
        "82fb3ff80000000000001a00000007"  # [1.5, 7]] in fixed widths
    )
    assert packetizer.fixed_length(0x23) == len(raw)


def test_a_body_that_does_not_fit_goes_canonical_and_the_next_that_fits_is_fixed_again():
    packetizer = Packetizer()
    packetizer.fix_layout(0x0710, ["int", "float"])  # an extended id: [time, id, body]
    bodies = [[3, 0.5], [None, 0.5], [-4, 0.5], [3, 0.5], [3], [5, 0.25]]
    packets = [packetizer.realtime(Message(MessageKind.TELEMETRY, 0x0710, 9.0, b)) for b in bodies]
    fixed = packetizer.fixed_length(0x0710)
    assert [len(p) == fixed for p in packets] == [True, False, False, True, False, True]
    assert [SpacePacket.decode(p).seq_count for p in packets] == list(range(len(bodies)))
    assert [packet_to_message(p).body for p in packets] == bodies


def test_only_numeric_packets_get_a_fixed_layout():
    packetizer = Packetizer()
    assert not packetizer.fix_layout(0x20, ["str", "float"])
    assert not packetizer.fix_layout(0x21, ["bool"])
    assert packetizer.fixed_length(0x20) is None
    with pytest.raises(PacketError, match="outside"):
        packetizer.fix_layout(0x10000, ["int"])
    raw = packetizer.realtime(Message(MessageKind.TELEMETRY, 0x20, 1.0, ["SAFE", 1.0]))
    assert SpacePacket.decode(raw).data == codec.encode([1.0, ["SAFE", 1.0]])


def test_packetizer_stamp_follows_the_time_value_not_just_the_object():
    packetizer = Packetizer()
    first = packetizer.realtime(Message(MessageKind.TELEMETRY, 1, 1.0, [1]))
    again = packetizer.realtime(Message(MessageKind.TELEMETRY, 1, 2.0, [1]))
    assert codec.decode(SpacePacket.decode(first).data) == [1.0, [1]]
    assert codec.decode(SpacePacket.decode(again).data) == [2.0, [1]]


def test_packetizer_refuses_what_cannot_be_encoded_and_keeps_working():
    packetizer = Packetizer()
    with pytest.raises(PacketError, match="cannot encode"):
        packetizer.realtime(Message(MessageKind.TELEMETRY, 1, 1.0, [object()]))
    with pytest.raises(PacketError, match="cannot encode"):
        packetizer.playback(Message(MessageKind.EVENT, 1, 1.0, {1, 2, object()}))
    raw = packetizer.realtime(Message(MessageKind.TELEMETRY, 1, 1.0, [2.5]))
    assert SpacePacket.decode(raw).seq_count == 0  # the refusal took no count
    assert codec.decode(SpacePacket.decode(raw).data) == [1.0, [2.5]]


def test_apids_follow_the_message_kind():
    c = SequenceCounters()

    def apid(kind, ident):
        return SpacePacket.decode(message_to_packet(Message(kind, ident, 1.0, None), c)).apid

    assert apid(MessageKind.TELEMETRY, 0) == 0x100
    assert apid(MessageKind.TELEMETRY, 0x20) == 0x120
    assert apid(MessageKind.TELEMETRY, MAX_TELEMETRY_ID) == 0x7FE
    assert apid(MessageKind.TELEMETRY, MAX_TELEMETRY_ID + 1) == Apid.TELEMETRY_EXTENDED
    assert apid(MessageKind.TELEMETRY, 0x0710) == Apid.TELEMETRY_EXTENDED
    assert apid(MessageKind.EVENT, 0x0600) == Apid.EVENT
    assert apid(MessageKind.COMMAND_RESPONSE, 1) == Apid.COMMAND_RESPONSE
    assert apid(MessageKind.FILE, 3) == Apid.FILE


def test_data_field_layout():
    c = SequenceCounters()
    tlm = SpacePacket.decode(message_to_packet(Message(MessageKind.TELEMETRY, 7, 2.5, [1]), c))
    assert codec.decode(tlm.data) == [2.5, [1]]
    ev = SpacePacket.decode(message_to_packet(Message(MessageKind.EVENT, 0x601, 3.0, "x"), c))
    assert codec.decode(ev.data) == [3.0, 0x601, "x"]
    pb = SpacePacket.decode(playback_packet(Message(MessageKind.EVENT, 9, 4.0, 1), c))
    assert codec.decode(pb.data) == [int(MessageKind.EVENT), 9, 4.0, 1]
    assert tlm.packet_type is PacketType.TM and not tlm.sec_header


def test_packets_count_per_apid_and_refusals_leave_no_gap():
    c = SequenceCounters()
    msg = Message(MessageKind.EVENT, 1, 0.0, None)
    assert SpacePacket.decode(message_to_packet(msg, c)).seq_count == 0
    with pytest.raises(PacketError):
        message_to_packet(Message(MessageKind.EVENT, 2, 0.0, object()), c)
    with pytest.raises(PacketError):
        message_to_packet(Message(MessageKind.TELEMETRY, 0x10000, 0.0, None), c)
    assert SpacePacket.decode(message_to_packet(msg, c)).seq_count == 1


@pytest.mark.parametrize(
    ("apid", "ptype", "value", "reason"),
    [
        (0x105, PacketType.TC, [1.0, None], "TC packet"),
        (IDLE_APID, PacketType.TM, [1.0, None], "idle"),
        (0x105, PacketType.TM, [1.0], "2-element"),
        (0x105, PacketType.TM, ["t", None], "time"),
        (0x105, PacketType.TM, [math.inf, None], "finite"),
        (Apid.EVENT, PacketType.TM, [1.0, "id", None], "id"),
        (Apid.EVENT, PacketType.TM, [1.0, True, None], "id"),
        (Apid.EVENT, PacketType.TM, [1.0, 0x10000, None], "id"),
        (Apid.PLAYBACK, PacketType.TM, [99, 1, 1.0, None], "kind"),
        (Apid.PLAYBACK, PacketType.TM, [1, -1, 1.0, None], "telemetry packet id"),
        (Apid.COMMAND, PacketType.TM, [1, 2, []], "no downlink message"),
        (Apid.TIME, PacketType.TM, [1.0], "no downlink message"),
    ],
)
def test_ground_decode_refuses_wrong_shapes(apid, ptype, value, reason):
    raw = SpacePacket(apid, 0, codec.encode(value), ptype).encode()
    with pytest.raises(PacketError, match=reason):
        packet_to_message(raw)


def test_ground_decode_refuses_bad_cbor():
    raw = SpacePacket(0x100, 0, b"\xff\xff").encode()
    with pytest.raises(PacketError, match="data field"):
        packet_to_message(raw)


@given(st.integers(0, 0x7FF), st.binary(min_size=1, max_size=60))
def test_ground_decode_of_any_data_raises_only_packet_error(apid, data):
    raw = SpacePacket(apid, 0, data).encode()
    try:
        msg = packet_to_message(raw)
    except PacketError:
        return
    assert isinstance(msg, Message)
