"""Parameters: validation, persistence that survives corruption, pool mirror, commands."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from flight import codec
from flight.clock import SimClock, SpacecraftTime
from flight.commands import ArgType, CommandStatus, ValidationError
from flight.datapool import DataPool
from flight.dispatcher import Dispatcher
from flight.events import EventLog, Severity
from flight.parameters import ParameterStore, ParamSpec
from flight.telemetry import TelemetryManager

SPECS = (
    ParamSpec(0x1001, "edl.chute_mach", ArgType.FLOAT, 1.8, 1.0, 2.5, units="Mach"),
    ParamSpec(0x1002, "edl.retries", ArgType.INT, 3, 0, 10),
    ParamSpec(0x1003, "edl.radar_on", ArgType.BOOL, True),
    ParamSpec(0x1004, "edl.site", ArgType.ENUM, "UTOPIA", choices=("UTOPIA", "ISIDIS", "ELYSIUM")),
    ParamSpec(0x1005, "edl.callsign", ArgType.STR, "TW1"),
)


class Rig:
    def __init__(self, path: Path | None) -> None:
        self.clock = SimClock()
        self.time = SpacecraftTime(self.clock)
        self.events = EventLog(now=self.time.met)
        self.pool = DataPool()
        self.store = ParameterStore(
            path=path, events=self.events, pool=self.pool, now=self.time.met
        )
        self.store.register_all(SPECS)

    def event_names(self) -> list[str]:
        return [e.name for e in self.events.recent]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "params.cbor"


# -- specs and values ------------------------------------------------------------------------


def test_defaults_after_register(path: Path) -> None:
    rig = Rig(path)
    assert rig.store.values() == {
        "edl.chute_mach": 1.8,
        "edl.retries": 3,
        "edl.radar_on": True,
        "edl.site": "UTOPIA",
        "edl.callsign": "TW1",
    }


@pytest.mark.parametrize(
    "spec",
    [
        ParamSpec(1, "a.f", ArgType.FLOAT, 5.0, 0.0, 1.0),
        ParamSpec(2, "a.i", ArgType.INT, 1.5),
        ParamSpec(3, "a.e", ArgType.ENUM, "X", choices=("A",)),
        ParamSpec(4, "a.b", ArgType.BOOL, 0),
    ],
)
def test_invalid_default_refused(spec: ParamSpec) -> None:
    store = ParameterStore(path=None, events=EventLog(now=lambda: 0.0), now=lambda: 0.0)
    with pytest.raises(ValueError, match="default"):
        store.register(spec)


def test_bad_spec_types_refused() -> None:
    with pytest.raises(ValueError):
        ParamSpec(1, "a.b", ArgType.BYTES, b"")
    with pytest.raises(ValueError):
        ParamSpec(1, "a.e", ArgType.ENUM, "A")
    with pytest.raises(ValueError):
        ParamSpec(1, "*", ArgType.INT, 0)


def test_duplicates_refused() -> None:
    rig = Rig(None)
    with pytest.raises(ValueError):
        rig.store.register(ParamSpec(0x1001, "edl.other", ArgType.INT, 0))
    with pytest.raises(ValueError):
        rig.store.register(ParamSpec(0x1999, "edl.retries", ArgType.INT, 0))


def test_set_validates(path: Path) -> None:
    rig = Rig(path)
    assert rig.store.set("edl.retries", 5) == 5
    assert rig.store.set("edl.site", 1) == "ISIDIS"
    for name, bad in [
        ("edl.retries", 11),
        ("edl.retries", True),
        ("edl.chute_mach", math.nan),
        ("edl.radar_on", "yes"),
        ("edl.site", "GALE"),
    ]:
        with pytest.raises(ValidationError):
            rig.store.set(name, bad)
    assert rig.store.get("edl.retries") == 5
    with pytest.raises(KeyError):
        rig.store.set("edl.nope", 1)
    with pytest.raises(KeyError):
        rig.store.get("edl.nope")


def test_values_mirrored_in_pool(path: Path) -> None:
    rig = Rig(path)
    assert rig.pool.value("prm.edl.retries") == 3
    rig.clock.advance(5.0)
    rig.store.set("edl.retries", 4)
    sample = rig.pool.get("prm.edl.retries")
    assert sample is not None and (sample.value, sample.time) == (4, 5.0)


def test_subscribers_hear_changes_only(path: Path) -> None:
    rig = Rig(path)
    heard: list[Any] = []
    rig.store.subscribe("edl.retries", heard.append)
    rig.store.set("edl.retries", 3)  # unchanged
    rig.store.set("edl.retries", 7)
    rig.store.reset("edl.retries")
    assert heard == [7, 3]
    assert rig.event_names().count("prm.CHANGED") == 2
    with pytest.raises(KeyError):
        rig.store.subscribe("edl.typo", heard.append)


def test_failing_subscriber_does_not_stop_the_change(path: Path) -> None:
    rig = Rig(path)

    def broken(_: Any) -> None:
        raise RuntimeError("component bug")

    rig.store.subscribe("edl.retries", broken)
    rig.store.set("edl.retries", 9)
    assert rig.store.get("edl.retries") == 9


# -- persistence -----------------------------------------------------------------------------


def test_save_then_load_in_a_new_store(path: Path) -> None:
    rig = Rig(path)
    rig.store.set("edl.chute_mach", 2.1)
    rig.store.set("edl.site", "ELYSIUM")
    rig.store.save()
    assert codec.decode(path.read_bytes())["edl.chute_mach"] == 2.1
    again = Rig(path)
    again.store.load()
    assert again.store.get("edl.chute_mach") == 2.1
    assert again.store.get("edl.site") == "ELYSIUM"
    assert again.pool.value("prm.edl.site") == "ELYSIUM"
    assert "prm.LOADED" in again.event_names()


def test_missing_file_gives_defaults(path: Path) -> None:
    rig = Rig(path)
    rig.store.load()
    assert rig.store.get("edl.retries") == 3
    assert rig.event_names() == ["prm.NO_FILE"]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\x00garbage",
        codec.encode([1, 2, 3]),
        codec.encode({1: 2}),
        codec.encode({"edl.retries": 4})[:-1],
    ],
)
def test_corrupt_file_is_kept_aside_and_defaults_used(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    rig = Rig(path)
    rig.store.load()
    assert rig.store.get("edl.retries") == 3
    (event,) = rig.events.recent
    assert event.name == "prm.FILE_CORRUPT" and event.severity is Severity.WARNING_HI
    corrupt = path.with_name("params.cbor.corrupt")
    assert corrupt.read_bytes() == content
    assert not path.exists()
    # The next save works and a second corrupt file does not overwrite the first.
    rig.store.save()
    path.write_bytes(b"\x00\x01 more garbage")
    Rig(path).store.load()
    assert corrupt.read_bytes() == content
    assert path.with_name("params.cbor.corrupt.1").read_bytes() == b"\x00\x01 more garbage"


def test_unreadable_file_keeps_defaults(path: Path) -> None:
    path.mkdir()  # reading a directory fails with an OSError other than "missing"
    rig = Rig(path)
    rig.store.load()
    assert rig.event_names() == ["prm.FILE_UNREADABLE"]
    assert rig.store.get("edl.retries") == 3


def test_stored_value_that_no_longer_validates_falls_back(path: Path) -> None:
    path.write_bytes(codec.encode({"edl.retries": 99, "edl.site": "GALE", "edl.chute_mach": 2.0}))
    rig = Rig(path)
    rig.store.load()
    assert rig.store.get("edl.retries") == 3
    assert rig.store.get("edl.site") == "UTOPIA"
    assert rig.store.get("edl.chute_mach") == 2.0
    rejected = [e for e in rig.events.recent if e.name == "prm.VALUE_REJECTED"]
    assert {e.args["name"] for e in rejected} == {"edl.retries", "edl.site"}
    loaded = next(e for e in rig.events.recent if e.name == "prm.LOADED")
    assert loaded.args["count"] == 1


def test_unknown_stored_names_survive_a_save(path: Path) -> None:
    path.write_bytes(codec.encode({"rover.speed": 0.05, "edl.retries": 2}))
    rig = Rig(path)
    rig.store.load()
    rig.store.save()
    assert codec.decode(path.read_bytes())["rover.speed"] == 0.05
    # Registered later (another component starting after the load): the stored value applies.
    rig.store.register(ParamSpec(0x2001, "rover.speed", ArgType.FLOAT, 0.1, 0.0, 0.2))
    assert rig.store.get("rover.speed") == 0.05


def test_load_notifies_subscribers(path: Path) -> None:
    path.write_bytes(codec.encode({"edl.retries": 8}))
    rig = Rig(path)
    heard: list[Any] = []
    rig.store.subscribe("edl.retries", heard.append)
    rig.store.load()
    assert heard == [8]


def test_leftover_temp_file_removed_on_load(path: Path) -> None:
    leftover = path.with_name(".params.cbor.x1y2.tmp")
    leftover.write_bytes(b"half")
    Rig(path).store.load()
    assert not leftover.exists()


def test_in_memory_store_load_and_save_are_no_ops() -> None:
    rig = Rig(None)
    rig.store.load()
    rig.store.save()
    assert rig.events.recent == []


# -- telemetry -------------------------------------------------------------------------------


def test_channels_and_packet_feed_telemetry(path: Path) -> None:
    rig = Rig(path)
    tlm = TelemetryManager(pool=rig.pool, events=rig.events, now=rig.time.met)
    for channel in rig.store.channels():
        tlm.register_channel(channel)
    (packet,) = rig.store.packets()
    tlm.register_packet(packet)
    assert packet.name == "prm.PARAMS" and packet.on_change
    (msg,) = tlm.sample("CRUISE")
    assert msg.body == [1.8, 3, True, "UTOPIA", "TW1"]
    assert [c.type for c in rig.store.channels()] == ["float", "int", "bool", "str", "str"]
    rig.clock.advance(1.0)
    assert tlm.sample("CRUISE") == []
    rig.store.set("edl.retries", 6)
    rig.clock.advance(1.0)
    (msg,) = tlm.sample("CRUISE")
    assert msg.body[1] == 6


def test_no_packet_without_parameters() -> None:
    store = ParameterStore(path=None, events=EventLog(now=lambda: 0.0), now=lambda: 0.0)
    assert store.packets() == [] and store.channels() == []


# -- commands --------------------------------------------------------------------------------


@pytest.fixture
def wired(path: Path) -> tuple[Rig, Dispatcher]:
    rig = Rig(path)
    dispatcher = Dispatcher(events=rig.events, now=rig.time.met)
    dispatcher.register_all(rig.store.commands())
    return rig, dispatcher


def _send(dispatcher: Dispatcher, opcode: int, args: list[Any]) -> Any:
    return dispatcher.dispatch_bytes(codec.encode([1, opcode, args]))


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("edl.chute_mach", "2.25", 2.25),
        ("edl.chute_mach", " 2 ", 2.0),
        ("edl.retries", "7", 7),
        ("edl.retries", "0x0a", 10),
        ("edl.retries", "010", 10),
        ("edl.radar_on", "false", False),
        ("edl.radar_on", "ON", True),
        ("edl.site", "ISIDIS", "ISIDIS"),
        ("edl.site", "2", "ELYSIUM"),
        ("edl.callsign", "HX-1", "HX-1"),
    ],
)
def test_set_command_parses_by_parameter_type(
    wired: tuple[Rig, Dispatcher], name: str, text: str, value: Any
) -> None:
    rig, dispatcher = wired
    assert _send(dispatcher, 0x0200, [name, text]).status is CommandStatus.OK
    got = rig.store.get(name)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("edl.chute_mach", "fast"),
        ("edl.chute_mach", "nan"),
        ("edl.chute_mach", "inf"),
        ("edl.chute_mach", "3.0"),
        ("edl.retries", "2.5"),
        ("edl.retries", "11"),
        ("edl.radar_on", "maybe"),
        ("edl.site", "GALE"),
        ("edl.site", "3"),
        ("edl.nope", "1"),
    ],
)
def test_set_command_rejects_bad_values(
    wired: tuple[Rig, Dispatcher], name: str, text: str
) -> None:
    rig, dispatcher = wired
    before = rig.store.values()
    resp = _send(dispatcher, 0x0200, [name, text])
    assert resp.status is CommandStatus.VALIDATION_ERROR
    assert rig.store.values() == before


def test_set_command_with_non_string_value_is_rejected(wired: tuple[Rig, Dispatcher]) -> None:
    _, dispatcher = wired
    assert _send(dispatcher, 0x0200, ["edl.retries", 4]).status is CommandStatus.VALIDATION_ERROR


def test_save_and_reset_commands(wired: tuple[Rig, Dispatcher], path: Path) -> None:
    rig, dispatcher = wired
    _send(dispatcher, 0x0200, ["edl.retries", "9"])
    _send(dispatcher, 0x0200, ["edl.site", "ISIDIS"])
    assert _send(dispatcher, 0x0201, []).status is CommandStatus.OK
    assert codec.decode(path.read_bytes())["edl.retries"] == 9
    assert _send(dispatcher, 0x0202, ["edl.retries"]).status is CommandStatus.OK
    assert rig.store.get("edl.retries") == 3
    assert _send(dispatcher, 0x0202, ["*"]).status is CommandStatus.OK
    assert rig.store.get("edl.site") == "UTOPIA"
    assert _send(dispatcher, 0x0202, ["edl.nope"]).status is CommandStatus.VALIDATION_ERROR


def test_save_failure_is_an_execution_error(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "missing_dir" / "params.cbor")
    dispatcher = Dispatcher(events=rig.events, now=rig.time.met)
    dispatcher.register_all(rig.store.commands())
    resp = _send(dispatcher, 0x0201, [])
    assert resp.status is CommandStatus.EXECUTION_ERROR
    assert "prm.SAVE_FAILED" in rig.event_names()


def test_save_without_file_is_an_execution_error() -> None:
    rig = Rig(None)
    dispatcher = Dispatcher(events=rig.events, now=rig.time.met)
    dispatcher.register_all(rig.store.commands())
    assert _send(dispatcher, 0x0201, []).status is CommandStatus.EXECUTION_ERROR


def test_declared_ids_in_parameter_range() -> None:
    rig = Rig(None)
    assert [c.opcode for c in rig.store.commands()] == [0x0200, 0x0201, 0x0202]
    assert all(0x0200 <= e.id <= 0x02FF for e in rig.store.events())
