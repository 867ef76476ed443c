"""The ground's command encoder and telemetry decoder, end to end with the flight side."""

from __future__ import annotations

import pytest

from flight import codec
from flight.clock import SimClock
from flight.events import EventLog
from flight.link.downlink import Downlink
from flight.link.framesync import ASM
from flight.link.ground import ArsnExhaustedError, CommandEncoder, TelemetryDecoder
from flight.link.sdls import MAX_ARSN, FileCounterStore, KeyRing, MemoryCounterStore, SecuredData
from flight.link.spacepacket import Apid, PacketType, SpacePacket
from flight.link.tcframe import TcFrame
from flight.link.tmframe import TmFramer
from flight.link.uplink import UplinkProcessor
from flight.messages import Message, MessageKind

KEY = bytes(range(32))


def test_command_frame_layout():
    enc = CommandEncoder(key=KEY, spi=3, scid=0x123, counters=MemoryCounterStore())
    raw = enc.encode_command(42, 0x0601, [3, True])
    assert raw[:4] == ASM
    frame = TcFrame.decode(raw[4:])
    assert (frame.scid, frame.vcid, frame.seq, frame.bypass, frame.control) == (
        0x123,
        0,
        0,
        True,
        False,
    )
    sec = SecuredData(frame.data)
    assert (sec.spi, sec.arsn) == (3, 0)
    sec.verify(KEY, raw[4:9])
    packet = SpacePacket.decode(sec.data)
    assert (packet.apid, packet.packet_type) == (Apid.COMMAND, PacketType.TC)
    assert codec.decode(packet.data) == [42, 0x0601, [3, True]]
    second = TcFrame.decode(enc.encode_command(43, 1, [])[4:])
    assert second.seq == 1
    assert SecuredData(second.data).arsn == 1


def test_arsn_persists_across_console_restarts(tmp_path):
    path = tmp_path / "ground-arsn.json"
    CommandEncoder(key=KEY, spi=1, scid=1, counters=path).encode_command(1, 1, [])
    again = CommandEncoder(key=KEY, spi=1, scid=1, counters=str(path))
    assert again.last_arsn == 0
    raw = again.encode_command(2, 1, [])
    assert SecuredData(TcFrame.decode(raw[4:]).data).arsn == 1
    assert FileCounterStore(path).get(1) == 1


def test_exhausted_arsn_refuses_to_encode():
    enc = CommandEncoder(key=KEY, spi=1, scid=1, counters=MemoryCounterStore({1: MAX_ARSN}))
    with pytest.raises(ArsnExhaustedError):
        enc.encode_command(1, 1, [])


def test_encoder_takes_its_key_from_a_key_ring_or_refuses_a_bad_key():
    enc = CommandEncoder(key=KeyRing({4: KEY}), spi=4, scid=1, counters=MemoryCounterStore())
    plain = CommandEncoder(key=KEY, spi=4, scid=1, counters=MemoryCounterStore())
    assert enc.encode_command(1, 1, []) == plain.encode_command(1, 1, [])
    with pytest.raises(ValueError):
        CommandEncoder(key=b"short", spi=1, scid=1, counters=MemoryCounterStore())


def test_flight_and_ground_round_trip():
    clock = SimClock()
    events = EventLog(now=clock.monotonic)
    got: list[bytes] = []
    uplink = UplinkProcessor(
        keyring=KeyRing({1: KEY}),
        spacecraft_id=77,
        counter_store=MemoryCounterStore(),
        events=events,
        on_command=got.append,
        now=clock.monotonic,
    )
    enc = CommandEncoder(key=KEY, spi=1, scid=77, counters=MemoryCounterStore())
    for i in range(3):
        uplink.feed(enc.encode_command(i, 2, [i]))
    assert [codec.decode(d) for d in got] == [[i, 2, [i]] for i in range(3)]

    wire: list[bytes] = []
    down = Downlink(
        framer=TmFramer(scid=77), transport_write=wire.append, byte_rate=5000, now=clock.monotonic
    )
    sent = [
        Message(MessageKind.COMMAND_RESPONSE, 2, 1.0, {"seq": 0, "status": 0}),
        Message(MessageKind.EVENT, 0x0600, 1.5, {"sev": 4, "args": {}, "text": "x"}),
        Message(MessageKind.TELEMETRY, 0x20, 2.0, [1.25, None, "ok"]),
        Message(MessageKind.TELEMETRY, 0x0710, 2.0, [1]),
    ]
    for m in sent:
        down.send(m)
    archived = Message(MessageKind.TELEMETRY, 0x20, -5.0, [0])
    assert down.send_playback(archived)
    for _ in range(20):
        down.tick()
        clock.advance(0.1)
    decoder = TelemetryDecoder(scid=77)
    received = decoder.feed_packets(b"".join(wire))
    assert [r.message for r in received if not r.playback] == sent
    assert [r.message for r in received if r.playback] == [archived]
    assert decoder.stats.packet_errors == 0


def test_decoder_counts_bad_packets_instead_of_raising():
    framer = TmFramer(scid=5)
    framer.add_packet(0, SpacePacket(0x100, 0, b"\xff").encode())  # not CBOR
    framer.add_packet(0, SpacePacket(Apid.TIME, 0, b"\x01").encode())  # no message
    decoder = TelemetryDecoder(scid=5)
    assert decoder.feed(ASM + framer.next_frame(0)) == []
    assert decoder.stats.packet_errors == 2
