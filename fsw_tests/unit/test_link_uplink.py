"""The uplink: only authenticated, fresh command packets reach the consumer, and every refusal
is counted and reported; forged, replayed, mutated and random input never raises."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flight import codec
from flight.clock import SimClock
from flight.commands import CommandError
from flight.events import EventLog, Severity
from flight.link.crc import append_crc
from flight.link.framesync import ASM
from flight.link.ground import CommandEncoder
from flight.link.sdls import FileCounterStore, KeyRing, MemoryCounterStore, protect
from flight.link.spacepacket import Apid, PacketType, SpacePacket
from flight.link.tcframe import TcFrame
from flight.link.uplink import UplinkProcessor

SCID = 0x1A5
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


class Rig:
    def __init__(self, store=None, keyring=None):
        self.clock = SimClock()
        self.events = EventLog(now=self.clock.monotonic)
        self.store = store if store is not None else MemoryCounterStore()
        self.got: list[bytes] = []
        self.keyring = keyring or KeyRing({1: KEY, 2: OTHER_KEY}, enabled=[1])
        self.uplink = self.make()

    def make(self):
        return UplinkProcessor(
            keyring=self.keyring,
            spacecraft_id=SCID,
            counter_store=self.store,
            events=self.events,
            on_command=self.got.append,
            now=self.clock.monotonic,
        )

    def names(self):
        return [e.name for e in self.events.recent]


def encoder(store=None, *, key=KEY, spi=1, scid=SCID):
    return CommandEncoder(key=key, spi=spi, scid=scid, counters=store or MemoryCounterStore())


def secured_frame(data: bytes, *, arsn: int, key=KEY, spi=1, scid=SCID, vcid=0) -> bytes:
    """A correctly authenticated frame around arbitrary data (what a buggy ground could send)."""
    filler = bytes(6 + len(data) + 16)
    header = TcFrame(scid, vcid, 0, filler).header()
    field = protect(key=key, spi=spi, arsn=arsn, tc_header=header, data=data)
    return TcFrame(scid, vcid, 0, field).encode()


def command_packet(payload: bytes) -> bytes:
    return SpacePacket(Apid.COMMAND, 0, payload, packet_type=PacketType.TC).encode()


# -- the good path -----------------------------------------------------------------------------


def test_an_authentic_command_reaches_the_consumer_exactly():
    rig = Rig()
    enc = encoder()
    assert rig.uplink.feed(enc.encode_command(7, 0x0001, [])) == 1
    assert rig.got == [codec.encode([7, 0x0001, []])]
    assert rig.uplink.counters["frames_ok"] == 1
    assert rig.uplink.last_command_time == 0.0
    assert rig.events.recent == []


def test_commands_split_across_reads_and_mixed_with_noise_all_arrive():
    rig = Rig()
    enc = encoder()
    stream = b"\x00noise" + b"".join(enc.encode_command(i, 1, [i]) for i in range(5)) + b"junk"
    for i in range(0, len(stream), 7):
        rig.uplink.feed(stream[i : i + 7])
    assert [codec.decode(d)[0] for d in rig.got] == list(range(5))
    assert rig.uplink.counters["bytes_skipped"] >= len(b"\x00noise")


def test_the_counter_is_committed_before_the_command_is_handed_on():
    store = MemoryCounterStore()
    seen = []
    rig = Rig(store)
    rig.uplink = UplinkProcessor(
        keyring=rig.keyring,
        spacecraft_id=SCID,
        counter_store=store,
        events=rig.events,
        on_command=lambda data: seen.append(store.get(1)),
        now=rig.clock.monotonic,
    )
    enc = encoder()
    rig.uplink.feed(enc.encode_command(1, 1, []))
    rig.uplink.feed(enc.encode_command(2, 1, []))
    assert seen == [0, 1]


# -- refusals ----------------------------------------------------------------------------------


def test_replay_is_refused_and_reported():
    rig = Rig()
    frame = encoder().encode_command(1, 1, [])
    assert rig.uplink.feed(frame) == 1
    assert rig.uplink.feed(frame) == 0
    assert len(rig.got) == 1
    assert rig.uplink.counters["replays"] == 1
    ev = rig.events.recent[-1]
    assert ev.name == "link.UPLINK_REPLAY" and ev.severity is Severity.WARNING_HI


def test_an_older_number_is_refused_after_a_newer_one():
    rig = Rig()
    enc = encoder()
    first, second = enc.encode_command(1, 1, []), enc.encode_command(2, 1, [])
    assert rig.uplink.feed(second) == 1
    assert rig.uplink.feed(first) == 0
    assert rig.uplink.counters["replays"] == 1


def test_replay_is_refused_after_a_restart(tmp_path):
    path = tmp_path / "arsn.json"
    rig = Rig(FileCounterStore(path))
    frame = encoder().encode_command(1, 1, [])
    assert rig.uplink.feed(frame) == 1
    # Reboot: a new processor over a counter store re-read from disk.
    rebooted = Rig(FileCounterStore(path))
    assert rebooted.uplink.feed(frame) == 0
    assert rebooted.got == []
    assert rebooted.uplink.counters["replays"] == 1


def test_wrong_key_fails_authentication():
    rig = Rig()
    assert rig.uplink.feed(encoder(key=OTHER_KEY).encode_command(1, 1, [])) == 0
    assert rig.uplink.counters["auth_failures"] == 1
    assert rig.names() == ["link.UPLINK_AUTH_FAILED"]
    assert rig.events.recent[0].severity is Severity.WARNING_HI
    assert rig.store.get(1) is None  # a forged frame does not advance the counter


def test_unknown_and_disabled_slots_are_refused():
    rig = Rig()
    assert rig.uplink.feed(encoder(spi=9).encode_command(1, 1, [])) == 0
    assert rig.uplink.feed(encoder(key=OTHER_KEY, spi=2).encode_command(1, 1, [])) == 0
    assert rig.uplink.counters["unknown_spi"] == 2
    assert rig.got == []


def test_other_spacecraft_and_virtual_channel_are_refused():
    rig = Rig()
    assert rig.uplink.feed(encoder(scid=SCID + 1).encode_command(1, 1, [])) == 0
    assert not rig.uplink.accept_frame(secured_frame(command_packet(b"\x80"), arsn=1, vcid=3))
    assert rig.uplink.counters["bad_frames"] == 2
    assert rig.got == []


def test_crc_errors_are_counted_on_the_stream_and_on_whole_frames():
    rig = Rig()
    frame = bytearray(encoder().encode_command(1, 1, []))
    frame[12] ^= 0x04
    assert rig.uplink.feed(bytes(frame)) == 0
    assert not rig.uplink.accept_frame(bytes(frame[4:]))
    assert rig.uplink.counters["crc_errors"] == 2
    assert "link.UPLINK_CRC_ERROR" in rig.names()


@pytest.mark.parametrize(
    "data",
    [
        SpacePacket(Apid.COMMAND, 0, b"\x80").encode(),  # a TM packet
        SpacePacket(0x55, 0, b"\x80", packet_type=PacketType.TC).encode(),  # wrong APID
        command_packet(b"\x80") + b"extra",  # trailing bytes
        command_packet(b"\x80")[:-1],  # cut short
        b"\xff" * 10,  # not a packet at all
        command_packet(b"\x80") + command_packet(b"\x80"),  # two packets
    ],
)
def test_an_authentic_frame_without_one_command_packet_is_malformed(data):
    rig = Rig()
    assert not rig.uplink.accept_frame(secured_frame(data, arsn=5))
    assert rig.uplink.counters["malformed"] == 1
    assert rig.got == []
    assert rig.store.get(1) == 5  # the authentic frame still used up its number


def test_too_short_to_hold_a_mac_is_a_bad_frame():
    rig = Rig()
    assert not rig.uplink.accept_frame(TcFrame(SCID, 0, 0, b"\x00\x01" + bytes(10)).encode())
    assert rig.uplink.counters["bad_frames"] == 1


class BrokenStore:
    def __init__(self, fail_get=False):
        self.fail_get = fail_get

    def get(self, spi):
        if self.fail_get:
            raise OSError("disk gone")
        return None

    def set(self, spi, value):
        raise OSError("read-only file system")


@pytest.mark.parametrize("fail_get", [False, True])
def test_a_counter_that_cannot_be_committed_refuses_the_command(fail_get):
    rig = Rig(BrokenStore(fail_get))
    assert rig.uplink.feed(encoder().encode_command(1, 1, [])) == 0
    assert rig.got == []
    assert rig.uplink.counters["store_failures"] == 1
    assert rig.names() == ["link.UPLINK_COUNTER_STORE_FAILED"]


def test_a_consumer_that_raises_does_not_take_the_uplink_down():
    rig = Rig()

    def boom(data):
        raise RuntimeError("bug")

    rig.uplink._on_command = boom
    enc = encoder()
    assert rig.uplink.feed(enc.encode_command(1, 1, [])) == 1
    assert rig.uplink.counters["handler_faults"] == 1
    rig.uplink._on_command = rig.got.append
    assert rig.uplink.feed(enc.encode_command(2, 1, [])) == 1
    assert len(rig.got) == 1


def test_refusal_events_never_quote_frame_contents():
    rig = Rig()
    secret = b"SECRETPAYLOAD"
    rig.uplink.feed(encoder(key=OTHER_KEY).encode_command(1, 1, [secret]))
    rig.uplink.accept_frame(secured_frame(secret, arsn=3))
    for ev in rig.events.recent:
        assert "SECRET" not in ev.text and "SECRET" not in str(ev.args)


# -- properties --------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise_and_never_reach_the_consumer(data):
    rig = Rig()
    rig.uplink.feed(data)
    rig.uplink.feed(ASM + data)
    rig.uplink.accept_frame(data)
    assert rig.got == []


@settings(max_examples=200, deadline=None)
@given(
    scid=st.sampled_from([SCID, 0]),
    spi=st.integers(0, 3),
    arsn=st.integers(0, 2**32 - 1),
    body=st.binary(min_size=23, max_size=200),
)
def test_frames_with_valid_crc_but_no_key_never_get_through(scid, spi, arsn, body):
    # An attacker who knows the format and the CRC, but not the key.
    rig = Rig()
    field = spi.to_bytes(2, "big") + arsn.to_bytes(4, "big") + body
    rig.uplink.feed(ASM + TcFrame(scid, 0, 0, field).encode())
    assert rig.got == []


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from(["flip", "truncate", "replace", "recrc"]))
def test_mutated_authentic_frames_never_get_through(seed, how):
    rnd = random.Random(seed)
    rig = Rig()
    frame = bytearray(encoder().encode_command(rnd.randrange(100), 1, [rnd.random()])[4:])
    original = bytes(frame)
    if how == "flip":
        for _ in range(rnd.randint(1, 8)):
            bit = rnd.randrange(len(frame) * 8)
            frame[bit // 8] ^= 1 << (bit % 8)
    elif how == "truncate":
        del frame[rnd.randrange(len(frame)) :]
    elif how == "replace":
        frame[rnd.randrange(len(frame))] = rnd.randrange(256)
    else:  # tamper with the data field and fix up the CRC, as an attacker could
        pos = rnd.randrange(5, len(frame) - 2)
        frame[pos] ^= rnd.randrange(1, 256)
        frame = bytearray(append_crc(bytes(frame[:-2])))
    if bytes(frame) == original:
        return
    rig.uplink.feed(ASM + bytes(frame))
    rig.uplink.accept_frame(bytes(frame))
    assert rig.got == []


# -- key slot commands -------------------------------------------------------------------------


def specs(rig):
    return {s.name: s for s in rig.uplink.commands()}


def test_key_slot_commands_are_hazardous_and_in_the_link_range():
    rig = Rig()
    for spec in rig.uplink.commands():
        assert spec.hazardous
        assert 0x0600 <= spec.opcode <= 0x06FF
    for ev in rig.uplink.events():
        assert 0x0600 <= ev.id <= 0x06FF
        assert ev.name.startswith("link.")
    assert len({e.id for e in rig.uplink.events()}) == len(rig.uplink.events())


def test_key_slot_set_switches_the_accepted_slot():
    rig = Rig()
    set_slot = specs(rig)["link.KEY_SLOT_SET"]
    set_slot.handler(slot=2)
    assert rig.keyring.enabled == (2,)
    assert rig.uplink.feed(encoder().encode_command(1, 1, [])) == 0
    assert rig.uplink.feed(encoder(key=OTHER_KEY, spi=2).encode_command(1, 1, [])) == 1
    assert "link.KEY_SLOTS_CHANGED" in rig.names()
    with pytest.raises(CommandError, match="no key"):
        set_slot.handler(slot=7)
    assert rig.keyring.enabled == (2,)


def test_key_slot_enable_refuses_to_lock_out_the_uplink():
    rig = Rig()
    enable = specs(rig)["link.KEY_SLOT_ENABLE"]
    with pytest.raises(CommandError, match="last enabled"):
        enable.handler(slot=1, enabled=False)
    enable.handler(slot=2, enabled=True)
    assert rig.keyring.enabled == (1, 2)
    enable.handler(slot=1, enabled=False)
    assert rig.keyring.enabled == (2,)
    with pytest.raises(CommandError):
        enable.handler(slot=5, enabled=True)


def test_a_command_behind_a_cut_off_frame_arrives_once_the_line_is_quiet():
    rig = Rig()
    enc = encoder()
    cut = enc.encode_command(1, 1, [b"x" * 200])[:12]  # a dropout cut this one short
    whole = enc.encode_command(2, 1, [])
    assert rig.uplink.feed(cut + whole) == 0  # the cut header claims bytes that never come
    rig.clock.advance(1.0)
    assert rig.uplink.feed(b"") == 0
    rig.clock.advance(1.0)
    assert rig.uplink.feed(b"") == 1
    assert codec.decode(rig.got[0])[0] == 2
    assert rig.uplink.counters["stalled"] >= 1
