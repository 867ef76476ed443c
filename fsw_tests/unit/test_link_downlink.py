"""The downlink: holds its byte rate under a simulated clock, sends responses and events before
housekeeping, bounds its queues, and shares the link fairly between realtime and playback."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flight.clock import SimClock
from flight.events import EventLog
from flight.link.downlink import Downlink, Priority
from flight.link.ground import TelemetryDecoder
from flight.link.tmframe import TmFramer
from flight.messages import Message, MessageKind

SCID = 0x33
FRAME = 256
WIRE = FRAME + 4


class Rig:
    def __init__(self, rate=2500.0, **kw):
        self.clock = SimClock()
        self.events = EventLog(now=self.clock.monotonic)
        self.writes: list[bytes] = []
        self.writes_at: list[float] = []
        self.down = Downlink(
            framer=TmFramer(scid=SCID, frame_length=FRAME),
            transport_write=self.write,
            byte_rate=rate,
            now=self.clock.monotonic,
            events=self.events,
            **kw,
        )
        self.decoder = TelemetryDecoder(scid=SCID, frame_length=FRAME)

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.writes_at.append(self.clock.monotonic())

    def run(self, seconds: float, tick: float = 0.1, each_tick=None) -> None:
        for _ in range(round(seconds / tick)):
            if each_tick:
                each_tick()
            self.down.tick()
            self.clock.advance(tick)

    def received(self):
        out = []
        for w in self.writes:
            out += self.decoder.feed_packets(w)
        self.writes.clear()
        return out


def tlm(i: int, size: int = 150) -> Message:
    return Message(MessageKind.TELEMETRY, 0x20, float(i), {"v": [i], "pad": b"x" * size})


def event(i: int) -> Message:
    return Message(MessageKind.EVENT, 0x0700, float(i), {"sev": 2, "args": {}, "text": f"e{i}"})


def response(i: int) -> Message:
    return Message(MessageKind.COMMAND_RESPONSE, 1, float(i), {"seq": i, "status": 0})


def test_a_saturated_downlink_holds_its_byte_rate():
    rig = Rig(rate=2500.0)
    n = [0]

    def flood():
        for _ in range(5):  # ~850 B per 0.1 s tick: far above 2500 B/s
            rig.down.send(tlm(n[0]))
            n[0] += 1

    rig.run(60.0, each_tick=flood)
    sent = rig.down.stats.bytes_sent
    assert sent == sum(len(w) for w in rig.writes)
    assert 2500 * 60 - WIRE <= sent <= 2500 * 60 + 2 * WIRE
    # No 10-second window exceeds the rate by more than the burst allowance.
    for start in range(0, 50, 5):
        window = sum(
            len(w)
            for w, t in zip(rig.writes, rig.writes_at, strict=True)
            if start <= t < start + 10
        )
        assert window <= 2500 * 10 + 2 * WIRE
    assert rig.down.stats.drops["telemetry"] > 0
    assert all(len(w) == WIRE for w in rig.writes)


def test_responses_and_events_overtake_queued_housekeeping():
    rig = Rig(rate=2600.0)
    for i in range(40):
        rig.down.send(tlm(i))
    rig.run(0.5)  # telemetry is flowing
    rig.received()
    rig.down.send(event(1000))
    rig.down.send(response(2000))
    rig.run(1.0)
    kinds = [r.message.kind for r in rig.received()]
    # At most the rest of the packet and frame already in progress precedes them.
    assert kinds.index(MessageKind.COMMAND_RESPONSE) <= 2
    assert kinds.index(MessageKind.EVENT) <= 3
    assert kinds.index(MessageKind.COMMAND_RESPONSE) < kinds.index(MessageKind.EVENT)
    assert rig.down.queued(Priority.TELEMETRY) > 0


def test_full_telemetry_queue_drops_the_oldest():
    rig = Rig(telemetry_limit=4)
    for i in range(10):
        rig.down.send(tlm(i, size=10))
    assert rig.down.stats.drops["telemetry"] == 6
    rig.run(2.0)
    assert [r.message.time for r in rig.received()] == [6.0, 7.0, 8.0, 9.0]
    assert rig.events.count(0x0610) == 1  # one overflow report, from tick


def test_events_are_not_dropped_for_telemetry_load():
    rig = Rig(rate=5000.0, telemetry_limit=8)
    for i in range(200):
        rig.down.send(tlm(i))
        rig.down.send(event(i))
    rig.run(30.0)
    got = [r.message for r in rig.received()]
    assert [m.time for m in got if m.kind is MessageKind.EVENT] == [float(i) for i in range(200)]
    assert rig.down.stats.drops["event"] == 0


def test_event_queue_hard_bound_keeps_the_first_events():
    rig = Rig(priority_limit=3)
    for i in range(5):
        rig.down.send(event(i))
    assert rig.down.stats.drops["event"] == 2
    rig.run(1.0)
    assert [r.message.time for r in rig.received() if r.message.kind is MessageKind.EVENT][:3] == [
        0.0,
        1.0,
        2.0,
    ]


def test_sequence_counts_reveal_dropped_telemetry_to_the_ground():
    rig = Rig(telemetry_limit=2)
    for i in range(5):
        rig.down.send(tlm(i, size=10))
    rig.run(1.0)
    assert [r.seq_count for r in rig.received()] == [3, 4]


def playback(i: int) -> Message:
    return Message(MessageKind.TELEMETRY, 0x21, float(i), {"v": [i], "pad": b"p" * 150})


def saturate_both(rig: Rig, seconds: float):
    n = [0]

    def feed():
        for _ in range(5):
            rig.down.send(tlm(n[0]))
            n[0] += 1
        while rig.down.playback_room() > 0:
            assert rig.down.send_playback(playback(n[0]))
            n[0] += 1

    rig.run(seconds, each_tick=feed)


@pytest.mark.parametrize("share", [0.5, 0.25, 0.75])
def test_playback_gets_its_share_when_realtime_is_busy(share):
    rig = Rig(playback_share=share)
    saturate_both(rig, 60.0)
    s = rig.down.stats
    frames = s.playback_frames + s.realtime_frames
    assert frames > 500
    assert abs(s.playback_frames / frames - share) < 0.02


def test_playback_takes_the_whole_link_when_realtime_is_idle_and_yields_it_back():
    rig = Rig(playback_share=0.25)

    def only_playback():
        while rig.down.playback_room() > 0:
            rig.down.send_playback(playback(0))

    rig.run(10.0, each_tick=only_playback)
    s = rig.down.stats
    assert s.realtime_frames == 0
    assert s.bytes_sent >= 2500 * 10 - WIRE
    got = rig.received()
    assert got and all(r.playback and r.vcid == 1 for r in got)
    assert got[0].message == playback(0)
    # Now realtime wakes up: it is served at once, not starved by the playback backlog.
    rig.down.send(response(1))
    rig.run(0.5, each_tick=only_playback)
    assert any(r.message.kind is MessageKind.COMMAND_RESPONSE for r in rig.received())


def test_realtime_only_uses_the_whole_link_and_a_full_playback_queue_refuses():
    rig = Rig(playback_limit=2, playback_share=0.0)
    assert rig.down.send_playback(playback(1)) and rig.down.send_playback(playback(2))
    assert not rig.down.send_playback(playback(3))
    n = [0]

    def flood():
        for _ in range(5):
            rig.down.send(tlm(n[0]))
            n[0] += 1

    rig.run(10.0, each_tick=flood)
    assert rig.down.stats.playback_frames == 0  # share 0: playback waits for an idle realtime
    rig.run(10.0)  # the telemetry backlog drains, then playback goes
    assert rig.down.stats.playback_frames >= 1


def test_a_playback_packet_counts_as_sent_once_the_frame_with_its_tail_is_out():
    """What the link's saved playback cursor relies on: never ahead of what the ground can have."""
    rig = Rig(rate=WIRE * 10, burst_frames=1)  # one frame per 0.1 s tick
    for i in range(5):  # about 170 bytes each: most straddle two frames of 248 data bytes
        assert rig.down.send_playback(playback(i))
    decoded, counts = 0, []
    for _ in range(6):
        rig.down.tick()
        rig.clock.advance(0.1)
        decoded += sum(r.playback for r in rig.received())
        assert rig.down.playback_sent == decoded
        counts.append(decoded)
    assert counts == [1, 2, 4, 5, 5, 5]  # the third packet and the fourth end in frame 3


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 700), min_size=1, max_size=40),
    frames_per_tick=st.integers(1, 3),
    realtime=st.booleans(),
)
def test_playback_sent_never_runs_ahead_of_what_the_ground_decoded(
    sizes: list[int], frames_per_tick: int, realtime: bool
) -> None:
    rig = Rig(rate=WIRE * 10 * frames_per_tick, burst_frames=frames_per_tick)
    waiting = [
        Message(MessageKind.TELEMETRY, 0x21, float(i), {"pad": b"p" * n})
        for i, n in enumerate(sizes)
    ]
    decoded = 0
    for _ in range(200):
        while waiting and rig.down.playback_room() > 0:
            assert rig.down.send_playback(waiting.pop(0))
        if realtime:
            rig.down.send(tlm(0, size=40))
        rig.down.tick()
        rig.clock.advance(0.1)
        decoded += sum(r.playback for r in rig.received())
        assert rig.down.playback_sent == decoded
    assert decoded == len(sizes)


def test_dropped_playback_packets_are_not_counted_and_part_framed_ones_still_go():
    rig = Rig(rate=WIRE * 10, burst_frames=1)
    for i in range(5):
        assert rig.down.send_playback(playback(i))
    rig.down.tick()  # frame 1: packet 0 and the head of packet 1; 2..4 still queued
    assert rig.down.drop_playback() == 3
    rig.run(1.0)
    assert [r.message for r in rig.received()] == [playback(0), playback(1)]
    assert rig.down.playback_sent == 2 and rig.down.idle()


def test_idle_only_once_every_queue_and_part_frame_is_out():
    """What a caller waits on before it stops ticking the link (the simulator's time warp): a
    message already queued for playback, or half a packet in the framer, is not idle."""
    rig = Rig()
    assert rig.down.idle()
    assert rig.down.send_playback(playback(1))
    assert rig.down.queued() == 0 and not rig.down.idle()  # queued() is realtime only
    rig.run(1.0)
    assert rig.down.idle()
    rig.down.send(tlm(2, size=800))  # over the two-frame burst: its tail waits a tick
    rig.down.tick()
    assert rig.down.queued() == 0 and not rig.down.idle()
    rig.run(1.0)
    assert rig.down.idle()
    assert [r.message.time for r in rig.received()] == [1.0, 2.0]


def test_nothing_queued_sends_nothing_unless_idle_frames_are_on():
    quiet = Rig()
    quiet.run(5.0)
    assert quiet.writes == []
    busy = Rig(rate=1000.0, idle_frames=True)
    busy.run(5.0)
    assert busy.down.stats.idle_frames == len(busy.writes) > 0
    assert 1000 * 5 - WIRE <= busy.down.stats.bytes_sent <= 1000 * 5 + 2 * WIRE
    assert busy.received() == []
    assert busy.decoder.deframer.stats.idle_frames == busy.down.stats.idle_frames


def test_write_errors_are_counted_not_raised():
    def broken(data):
        raise OSError("link down")

    clock = SimClock()
    down = Downlink(
        framer=TmFramer(scid=1), transport_write=broken, byte_rate=1000, now=clock.monotonic
    )
    down.send(response(1))
    down.tick()
    assert down.stats.write_errors == 1 and down.stats.frames_sent == 0


def test_a_message_that_cannot_be_encoded_is_counted_not_raised():
    rig = Rig()
    rig.down.send(Message(MessageKind.TELEMETRY, 0x20, 0.0, object()))
    assert not rig.down.send_playback(Message(MessageKind.TELEMETRY, 0x10000, 0.0, 1))
    assert rig.down.stats.encode_errors == 2


def test_no_asm_for_packetised_transports():
    rig = Rig(asm=False)
    rig.down.send(response(1))
    rig.run(0.2)
    assert len(rig.writes[0]) == FRAME
    decoder = TelemetryDecoder(scid=SCID, frame_length=FRAME, asm=False)
    assert decoder.feed(rig.writes[0]) == [response(1)]


def test_rate_and_share_commands():
    rig = Rig()
    spec = {s.name: s for s in rig.down.commands()}
    spec["link.DOWNLINK_RATE_SET"].handler(bytes_per_s=520.0)
    assert rig.down.byte_rate == 520.0
    spec["link.DOWNLINK_PLAYBACK_SHARE_SET"].handler(share=0.1)
    assert rig.down.playback_share == 0.1
    assert rig.events.count(0x0611) == 2
    for s in rig.down.commands():
        assert 0x0600 <= s.opcode <= 0x06FF
    n = [0]

    def flood():
        rig.down.send(tlm(n[0]))
        n[0] += 1

    rig.writes.clear()
    rig.run(20.0, each_tick=flood)
    assert 520 * 20 - WIRE <= sum(len(w) for w in rig.writes) <= 520 * 20 + 2 * WIRE


@pytest.mark.parametrize(
    "kw",
    [{"byte_rate": 0}, {"byte_rate": -5}, {"playback_share": 1.5}, {"telemetry_limit": 0}],
)
def test_bad_configuration_is_refused(kw):
    args = {"byte_rate": 100.0} | kw
    with pytest.raises(ValueError):
        Downlink(framer=TmFramer(scid=1), transport_write=lambda d: None, now=lambda: 0.0, **args)
