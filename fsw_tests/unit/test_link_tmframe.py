"""TM transfer frames (132.0-B): golden header, spacepackets' decoder agrees, packets spanning
frames, idle fill, and the ground deframer's gap and corruption handling."""

from __future__ import annotations

import fastcrc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spacepackets.ccsds.spacepacket import SpacePacketHeader
from spacepackets.ccsds.tm_frame import TmTransferFrame

from flight.link.spacepacket import IDLE_APID, SpacePacket, packet_length
from flight.link.tmframe import (
    FHP_IDLE,
    FHP_NO_PACKET,
    IDLE_VCID,
    TmDeframer,
    TmFrame,
    TmFrameError,
    TmFramer,
    peek_header,
)


def packet(apid: int, size: int, fill: int = 0xA5, count: int = 0) -> bytes:
    return SpacePacket(apid, count, bytes([fill]) * (size - 6)).encode()


def test_golden_header():
    raw = TmFrame(scid=0x2AB, vcid=1, mc_count=7, vc_count=9, fhp=0x123, data=bytes(10)).encode()
    # 00 1010101011 001 0 | 00000111 | 00001001 | 0 0 0 11 00100100011
    assert raw[:6] == bytes.fromhex("2AB2 07 09 1923")
    assert raw[-2:] == fastcrc.crc16.ibm_3740(raw[:-2]).to_bytes(2, "big")
    assert peek_header(raw) == (0x2AB, 1)


@given(
    scid=st.integers(0, 0x3FF),
    vcid=st.integers(0, 7),
    mc=st.integers(0, 255),
    vc=st.integers(0, 255),
    fhp=st.integers(0, 0x7FF),
)
def test_spacepackets_decodes_our_frames(scid, vcid, mc, vc, fhp):
    data = bytes(range(48))
    frame = TmFrame(scid, vcid, mc, vc, fhp, data)
    raw = frame.encode()
    theirs = TmTransferFrame.unpack(raw, len(raw), has_error_control_field=True)
    h = theirs.primary_header
    assert h.master_channel_id.transfer_frame_version == 0
    assert h.master_channel_id.spacecraft_id == scid
    assert h.vc_id == vcid
    assert not h.ocf_flag
    assert (h.master_ch_frame_count, h.vc_frame_count) == (mc, vc)
    status = h.frame_datafield_status
    assert not status.secondary_header_flag and not status.sync_flag
    assert not status.packet_order_flag
    assert status.segment_len_id == 0b11
    assert status.first_header_pointer == fhp
    assert theirs.data_field == data
    if fhp < 48:
        assert TmFrame.decode(raw, frame_length=len(raw)) == frame


def test_decode_refuses_bad_frames():
    raw = TmFrame(1, 0, 0, 0, 0, bytes(20)).encode()
    with pytest.raises(TmFrameError, match="expected"):
        TmFrame.decode(raw, frame_length=len(raw) + 1)
    bad = bytearray(raw)
    bad[10] ^= 0x10
    with pytest.raises(TmFrameError, match="CRC"):
        TmFrame.decode(bytes(bad), frame_length=len(raw))
    bad = bytearray(raw)
    bad[1] |= 1  # OCF flag: we never send one
    with pytest.raises(TmFrameError, match="header"):
        TmFrame.decode(bytes(bad), frame_length=len(raw))
    far = TmFrame(1, 0, 0, 0, 25, bytes(20)).encode()
    with pytest.raises(TmFrameError, match="beyond"):
        TmFrame.decode(far, frame_length=len(far))


def test_framer_packs_packets_across_frames_with_first_header_pointers():
    framer = TmFramer(scid=5, frame_length=64)  # 56 data bytes per frame
    assert framer.data_len == 56
    big = packet(0x100, 120)
    framer.add_packet(0, big)
    framer.add_packet(0, packet(0x101, 10))
    frames = []
    while (f := framer.next_frame(0)) is not None:
        frames.append(TmFrame.decode(f, frame_length=64))
    assert [f.fhp for f in frames] == [0, FHP_NO_PACKET, 120 - 112]
    assert [f.vc_count for f in frames] == [0, 1, 2]
    assert [f.mc_count for f in frames] == [0, 1, 2]
    # The packet after the big one starts where the FHP says; spacepackets reads its header.
    header = SpacePacketHeader.unpack(frames[2].data[frames[2].fhp :])
    assert header.apid == 0x101
    assert framer.pending(0) == 0


def test_fhp_points_at_the_next_packet_and_idle_fill_follows():
    framer = TmFramer(scid=5, frame_length=64)
    framer.add_packet(0, packet(0x100, 20))
    raw = framer.next_frame(0)
    frame = TmFrame.decode(raw, frame_length=64)
    assert frame.fhp == 0
    assert SpacePacketHeader.unpack(frame.data).apid == 0x100
    idle = SpacePacketHeader.unpack(frame.data[20:])
    assert idle.apid == IDLE_APID
    assert 20 + idle.packet_len == 56
    assert framer.next_frame(0) is None


def test_idle_fill_shorter_than_a_packet_spills_into_the_next_frame():
    framer = TmFramer(scid=5, frame_length=64)
    framer.add_packet(0, packet(0x100, 53))  # 3 bytes left: too few for an idle packet
    first = TmFrame.decode(framer.next_frame(0), frame_length=64)
    assert framer.pending(0) == 0
    assert framer.next_frame(0) is None  # only idle bytes left: nothing to send
    framer.add_packet(0, packet(0x102, 10))
    second = TmFrame.decode(framer.next_frame(0), frame_length=64)
    assert second.fhp == 4  # the idle packet's 7 - 3 = 4 remaining bytes come first
    assert SpacePacketHeader.unpack(second.data[4:]).apid == 0x102
    deframer = TmDeframer(frame_length=64)
    got = deframer.feed_frame(first.encode()) + deframer.feed_frame(second.encode())
    assert [SpacePacket.decode(p).apid for _, p in got] == [0x100, 0x102]


def test_idle_frames_are_on_vc7_with_fhp_0x7fe_and_carry_nothing():
    framer = TmFramer(scid=5, frame_length=64)
    raw = framer.idle_frame()
    frame = TmFrame.decode(raw, frame_length=64)
    assert (frame.vcid, frame.fhp) == (IDLE_VCID, FHP_IDLE)
    deframer = TmDeframer(frame_length=64)
    assert deframer.feed_frame(raw) == []
    assert deframer.stats.idle_frames == 1


packet_sizes = st.lists(
    st.tuples(st.sampled_from([0, 1]), st.integers(7, 400)), min_size=1, max_size=25
)


@settings(max_examples=60, deadline=None)
@given(packet_sizes, st.sampled_from([32, 64, 256, 1115]), st.randoms(use_true_random=False))
def test_every_packet_comes_back_in_order_per_channel(specs, frame_length, rnd):
    framer = TmFramer(scid=9, frame_length=frame_length)
    deframer = TmDeframer(frame_length=frame_length, scid=9)
    sent: dict[int, list[bytes]] = {0: [], 1: []}
    got: dict[int, list[bytes]] = {0: [], 1: []}
    for i, (vcid, size) in enumerate(specs):
        p = packet(0x100 + i, size, fill=i & 0xFF, count=i)
        sent[vcid].append(p)
        framer.add_packet(vcid, p)
        # Drain a random channel now and then, so frames of the two channels interleave.
        if rnd.random() < 0.5:
            v = rnd.choice([0, 1])
            if (raw := framer.next_frame(v)) is not None:
                for vc, q in deframer.feed_frame(raw):
                    got[vc].append(q)
    for v in (0, 1):
        while (raw := framer.next_frame(v)) is not None:
            for vc, q in deframer.feed_frame(raw):
                got[vc].append(q)
    assert got == sent
    assert deframer.stats.vc_gaps == deframer.stats.mc_gaps == deframer.stats.sync_errors == 0


@settings(max_examples=40, deadline=None)
@given(packet_sizes, st.integers(0, 0x3FF))
def test_framer_headers_are_what_tm_frame_encodes(specs, scid):
    """The framer packs headers itself (it is on the telemetry path); TmFrame is the reference."""
    framer = TmFramer(scid=scid, frame_length=64)
    frames = [framer.idle_frame()]
    for i, (vcid, size) in enumerate(specs):
        framer.add_packet(vcid, packet(0x100 + i, size, count=i))
        frames.append(framer.next_frame(vcid))
    for raw in filter(None, frames):
        frame = TmFrame.decode(raw, frame_length=64)
        assert frame.scid == scid
        assert TmFrame(frame.scid, frame.vcid, frame.mc_count, frame.vc_count, frame.fhp,
                       frame.data).encode() == raw  # fmt: skip


def frames_for(sizes, frame_length=64):
    framer = TmFramer(scid=9, frame_length=frame_length)
    packets = [packet(0x100 + i, s, count=i) for i, s in enumerate(sizes)]
    for p in packets:
        framer.add_packet(0, p)
    frames = []
    while (raw := framer.next_frame(0)) is not None:
        frames.append(raw)
    return packets, frames


def test_a_lost_frame_is_counted_and_only_the_packets_it_cut_are_lost():
    packets, frames = frames_for([30, 100, 30, 30, 60])
    deframer = TmDeframer(frame_length=64)
    got = []
    for i, raw in enumerate(frames):
        if i == 1:
            continue  # lost in transit: it held the middle of packet 1
        got += [p for _, p in deframer.feed_frame(raw)]
    assert deframer.stats.vc_gaps == 1
    assert deframer.stats.mc_gaps == 1
    assert deframer.stats.partial_dropped == 1
    # Stream offsets: p1 spans 30..130 and frame 1 carried 56..112; frame 2 resyncs at 130.
    assert got == [packets[0], *packets[2:]]


def test_corrupted_frames_are_counted_and_dropped():
    _, frames = frames_for([30, 30])
    bad = bytearray(frames[0])
    bad[20] ^= 0xFF
    deframer = TmDeframer(frame_length=64)
    assert deframer.feed_frame(bytes(bad)) == []
    assert deframer.stats.frames_bad == 1


def test_foreign_spacecraft_and_wrong_length_are_refused():
    _, frames = frames_for([30])
    deframer = TmDeframer(frame_length=64, scid=10)
    assert deframer.feed_frame(frames[0]) == []
    assert deframer.feed_frame(frames[0][:-1]) == []
    assert deframer.stats.frames_bad == 2


def test_starting_mid_stream_waits_for_a_packet_header():
    packets, frames = frames_for([150, 20])
    deframer = TmDeframer(frame_length=64)
    got = []
    for raw in frames[1:]:  # joined after the first frame: FHP 0x7FF frames are skipped
        got += [p for _, p in deframer.feed_frame(raw)]
    assert got == [packets[1]]
    assert packet_length(got[0]) == 20


def test_fhp_disagreeing_with_the_packet_stream_resyncs_at_the_next_good_frame():
    framer = TmFramer(scid=9, frame_length=64)
    framer.add_packet(0, packet(0x100, 40))
    framer.add_packet(0, packet(0x101, 40))
    first = TmFrame.decode(framer.next_frame(0), frame_length=64)
    second = TmFrame.decode(framer.next_frame(0), frame_length=64)
    framer.add_packet(0, packet(0x102, 30))
    third = framer.next_frame(0)
    lying = TmFrame(9, 0, second.mc_count, second.vc_count, second.fhp + 2, second.data)
    deframer = TmDeframer(frame_length=64)
    got = deframer.feed_frame(first.encode()) + deframer.feed_frame(lying.encode())
    assert deframer.stats.sync_errors >= 1
    assert [SpacePacket.decode(p).apid for _, p in got] == [0x100, 0x101]
    got = deframer.feed_frame(third)
    assert [SpacePacket.decode(p).apid for _, p in got] == [0x102]


@given(st.binary(min_size=64, max_size=64))
def test_deframer_survives_any_frame_sized_input(raw):
    deframer = TmDeframer(frame_length=64)
    deframer.feed_frame(raw)


def test_framer_refuses_bad_configuration_and_input():
    with pytest.raises(ValueError):
        TmFramer(scid=0x400)
    with pytest.raises(ValueError):
        TmFramer(scid=1, frame_length=10)
    framer = TmFramer(scid=1)
    with pytest.raises(ValueError):
        framer.add_packet(8, packet(0x100, 10))
    with pytest.raises(ValueError):
        framer.add_packet(0, packet(0x100, 10) + b"x")
    with pytest.raises(ValueError):
        framer.emitted(-1)


def test_a_packet_has_left_once_the_stream_emitted_reaches_its_end():
    framer = TmFramer(scid=1)
    end = framer.add_packet(0, packet(0x100, framer.data_len + 6))  # 6 bytes spill over
    assert end == framer.data_len + 6
    framer.next_frame(0)
    assert framer.emitted(0) == framer.data_len < end
    framer.next_frame(0)  # the tail, then idle fill
    assert framer.emitted(0) == 2 * framer.data_len >= end
