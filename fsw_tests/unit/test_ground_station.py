"""GroundStation over real frames: commands by name, responses by seq, telemetry, events, log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flight.ground.records import Limit
from flight.ground.station import CommandRefusedError, GroundStation, LinkDownError
from flight.link.ground import CommandEncoder, TelemetryDecoder
from flight.messages import Message, MessageKind
from fsw_tests.ground_support import KEY, SCID, SPI, FlightSide, SteppingClock, make_link


@pytest.fixture
def link(tmp_path: Path):
    flight, clock, pipe, encoder, decoder = make_link(tmp_path)
    station = GroundStation(
        dictionary=flight.ground_dictionary(),
        encoder=encoder,
        decoder=decoder,
        transport=pipe,
        clock=clock,
        log_path=tmp_path / "ground.jsonl",
    )
    yield flight, station
    station.close()


def test_ping_travels_as_frames_and_its_response_is_matched_by_seq(link) -> None:
    flight, station = link
    seq = station.send("cmd.PING", 42)
    response = station.wait_response(seq, 5.0)
    assert (response.status, response.reason, response.command) == ("OK", "pong 42", "cmd.PING")
    assert flight.uplink.counters["frames_ok"] == 1


def test_sequence_numbers_are_the_persisted_anti_replay_numbers(link, tmp_path: Path) -> None:
    flight, station = link
    first = station.send("cmd.NOOP")
    second = station.send("cmd.NOOP")
    assert second == first + 1
    station.wait_response(second, 5.0)
    # A restarted console continues from the counter file, so the spacecraft takes its commands.
    encoder = CommandEncoder(key=KEY, spi=SPI, scid=SCID, counters=tmp_path / "ground.arsn")
    station.encoder = encoder
    third = station.send("cmd.PING", 1)
    assert third == second + 1
    assert station.wait_response(third, 5.0).ok
    assert flight.uplink.counters["replays"] == 0


def test_bad_argument_is_refused_before_anything_is_sent(link) -> None:
    flight, station = link
    before = station.next_seq
    with pytest.raises(ValueError, match=r"cmd\.PING: token: -1 below minimum"):
        station.send("cmd.PING", -1)
    with pytest.raises(CommandRefusedError, match="takes 1 argument"):
        station.send("cmd.PING")
    flight.step()
    assert station.next_seq == before
    assert flight.uplink.counters["frames_ok"] == 0
    assert station.sent == {}


def test_unknown_command_suggests_close_names(link) -> None:
    _, station = link
    with pytest.raises(CommandRefusedError, match=r"unknown command 'cmd\.PNG'.*cmd\.PING"):
        station.send("cmd.PNG", 1)


def test_link_down_refuses_without_using_a_sequence_number(link) -> None:
    _, station = link
    before = station.next_seq
    station.transport.set_connected(False)
    with pytest.raises(LinkDownError, match="link is down"):
        station.send("cmd.NOOP")
    assert station.next_seq == before


def test_hazardous_command_needs_the_arm(link) -> None:
    _flight, station = link
    refused = station.wait_response(station.send("test.BURN", 2.0), 5.0)
    assert refused.status == "VALIDATION_ERROR"
    assert "not armed" in refused.reason
    assert station.wait_response(station.send("cmd.ARM", "test.BURN"), 5.0).ok
    mark = station.event_count
    assert station.wait_response(station.send("test.BURN", 2.0), 5.0).ok
    assert station.wait_event("test.BURN_DONE", 5.0, since=mark).text == "burn of 2.0 s done"


def test_execution_error_is_reported_with_its_reason(link) -> None:
    _, station = link
    response = station.wait_response(station.send("test.FAIL"), 5.0)
    assert (response.status, response.reason) == ("EXECUTION_ERROR", "always fails")


def test_channels_keep_latest_value_units_and_limit_state(link) -> None:
    _flight, station = link
    voltage = "test.bus_voltage_v"
    assert station.wait_telemetry(voltage, lambda v: v == 28.0, 5.0).limit is Limit.OK
    for volts, state in ((33.0, Limit.YELLOW), (36.0, Limit.RED), (27.0, Limit.OK)):
        station.wait_response(station.send("test.SET_VOLTAGE", volts), 5.0)
        value = station.wait_telemetry(voltage, lambda v, x=volts: v == x, 5.0)
        assert (value.units, value.limit) == ("V", state)
    assert station.channels["test.mode"].limit is None


def test_typed_arguments_reach_the_handler(link) -> None:
    _, station = link
    seq = station.send("test.CONFIGURE", 1, True, b"\x01\xff", "bench")
    assert station.wait_response(seq, 5.0).reason == "NOMINAL True 01ff bench"


def test_sequence_is_validated_loaded_and_runs(link) -> None:
    _, station = link
    entries = [("rel", 1.0, "cmd.PING", [3]), ("abs", 5.0, "test.SET_VOLTAGE", [30])]
    load = station.wait_response(station.send_sequence("check", entries), 5.0)
    assert (load.command, load.status) == ("seq.LOAD", "OK")
    mark = station.event_count
    assert station.wait_response(station.send("seq.START", "check"), 5.0).ok
    assert "2 command" in station.wait_event("seq.COMPLETED", 10.0, since=mark).text
    assert station.wait_telemetry("test.bus_voltage_v", lambda v: v == 30.0, 2.0).units == "V"


@pytest.mark.parametrize(
    ("entries", "options", "message"),
    [
        ([("rel", 1.0, "cmd.PING", [-5])], {}, r"entry 0: cmd\.PING: token"),
        ([("rel", 0, "cmd.NOOP", []), ("rel", 1, "cmd.NOPE", [])], {}, "entry 1: unknown"),
        ([("soon", 1.0, "cmd.NOOP", [])], {}, "time kind"),
        ([("rel", 1.0, "cmd.NOOP", [])], {"on_reboot": "retry"}, "on_reboot"),
        ([], {}, "non-empty"),
    ],
)
def test_bad_sequence_is_refused_naming_the_entry(link, entries, options, message) -> None:
    _flight, station = link
    with pytest.raises(CommandRefusedError, match=message):
        station.send_sequence("bad", entries, **options)
    assert station.sent == {}


def test_bad_sequence_name_is_refused(link) -> None:
    _, station = link
    with pytest.raises(CommandRefusedError, match="name"):
        station.send_sequence("no spaces", [("rel", 1.0, "cmd.NOOP", [])])


def test_log_holds_every_item_sent_and_received_as_json_lines(link, tmp_path: Path) -> None:
    _, station = link
    station.wait_response(station.send("test.CONFIGURE", "SAFE", False, b"\xab", "x"), 5.0)
    station.close()
    entries = [json.loads(line) for line in (tmp_path / "ground.jsonl").read_text().splitlines()]
    kinds = {e["kind"] for e in entries}
    assert {"COMMAND", "COMMAND_RESPONSE", "EVENT", "TELEMETRY"} <= kinds
    sent = next(e for e in entries if e["kind"] == "COMMAND")
    assert sent["args"] == ["SAFE", False, "ab", "x"]  # bytes as hex
    assert all(isinstance(e.get("rx", e.get("tx")), float) for e in entries)
    power = next(e for e in entries if e.get("packet") == "test.POWER")
    assert power["values"]["test.bus_voltage_v"] == 28.0


def test_wait_response_times_out_naming_the_command(tmp_path: Path) -> None:
    flight, clock, pipe, encoder, decoder = make_link(tmp_path)
    station = GroundStation(
        dictionary=flight.ground_dictionary(),
        encoder=encoder,
        decoder=decoder,
        transport=pipe,
        clock=SteppingClock(clock.sim),  # the flight side never runs
    )
    seq = station.send("cmd.PING", 1)
    with pytest.raises(TimeoutError, match=r"cmd\.PING seq 0 within 2 s"):
        station.wait_response(seq, 2.0)
    assert clock.monotonic() == pytest.approx(2.0)


def test_garbage_and_unknown_packets_are_counted_not_raised(tmp_path: Path) -> None:
    flight, clock, pipe, encoder, decoder = make_link(tmp_path)
    exported = json.loads(flight.dictionary().to_json())
    exported["packets"] = [p for p in exported["packets"] if p["name"] != "test.POWER"]
    from flight.dictionary import GroundDictionary

    station = GroundStation(
        dictionary=GroundDictionary.from_json_dict(exported),
        encoder=encoder,
        decoder=decoder,
        transport=pipe,
        clock=clock,
    )
    flight.transport.write(b"\x00\xff garbage \x1a\xcf")
    seq = station.send("cmd.PING", 9)
    assert station.wait_response(seq, 5.0).reason == "pong 9"
    assert station.stats.unknown_packets >= 1
    assert "test.bus_voltage_v" not in station.channels
    assert station.link_stats()["bytes_skipped"] > 0


def test_older_playback_never_overwrites_newer_values(link) -> None:
    flight, station = link
    station.wait_telemetry("test.bus_voltage_v", lambda v: v == 28.0, 5.0)
    old = Message(MessageKind.TELEMETRY, 0x1F, -100.0, [1.0, "SAFE"])
    assert flight.downlink.send_playback(old)
    flight.downlink.send_playback(
        Message(MessageKind.EVENT, 0x1F00, -100.0, {"sev": 2, "args": {}, "text": "old burn"})
    )
    station.wait_until(lambda: any(e.playback for e in station.events) or None, 5.0)
    assert station.channels["test.bus_voltage_v"].value == 28.0
    assert [e.text for e in station.events if e.playback] == ["old burn"]
    with pytest.raises(TimeoutError):
        station.wait_event("test.BURN_DONE", 0.5)  # playback events do not satisfy waits


def test_an_event_played_back_after_arriving_live_is_kept_once(link) -> None:
    """After a lost carrier the spacecraft replays from where the ground was last heard, so some
    of what it plays back may have arrived live already."""
    flight, station = link
    burn = Message(MessageKind.EVENT, 0x1F00, 5.0, {"sev": 2, "args": {}, "text": "burn done"})
    other = Message(MessageKind.EVENT, 0x1F00, 5.0, {"sev": 2, "args": {}, "text": "burn 2 done"})
    flight.downlink.send(burn)
    station.wait_until(lambda: station.events or None, 5.0)
    assert flight.downlink.send_playback(burn)
    assert flight.downlink.send_playback(other)  # same id and time, different event: kept
    station.wait_until(lambda: any(e.playback for e in station.events) or None, 5.0)
    assert [(e.text, e.playback) for e in station.events if e.id == 0x1F00] == [
        ("burn done", False),
        ("burn 2 done", True),
    ]
    assert station.stats.repeated_events == 1


def test_station_works_with_a_flight_side_built_separately(tmp_path: Path) -> None:
    """The dictionary, not the Python objects, is all the ground shares with the flight side."""
    from flight.clock import SimClock
    from flight.link.transports import MemoryPipe

    ground_end, flight_end = MemoryPipe.pair()
    sim = SimClock(1000.0)
    flight = FlightSide(flight_end, sim, tmp_path)
    exported = json.dumps(flight.dictionary().to_json_dict())
    from flight.dictionary import from_json_dict

    station = GroundStation(
        dictionary=from_json_dict(json.loads(exported)),
        encoder=CommandEncoder(key=KEY, spi=SPI, scid=SCID, counters=tmp_path / "c.json"),
        decoder=TelemetryDecoder(scid=SCID),
        transport=ground_end,
        clock=SteppingClock(sim, flight),
    )
    assert station.wait_response(station.send("cmd.PING", 5), 1.0).time >= 1000.0
