"""The dictionary: collection from components, consistency checks, JSON round trip."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from flight.builtins import EventControl, TimeService
from flight.clock import SimClock, SpacecraftTime
from flight.commands import Arg, ArgType, CommandError, CommandSpec, ValidationError
from flight.datapool import DataPool
from flight.dictionary import Dictionary, GroundDictionary, from_json_dict
from flight.dispatcher import Dispatcher
from flight.events import EventLog, EventSpec, Severity
from flight.parameters import ParameterStore, ParamSpec
from flight.telemetry import ChannelSpec, PacketSpec, TelemetryManager


class Thruster:
    """A component declaring one of everything, with limits, units and enum arguments."""

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                0x1001,
                "prop.FIRE",
                lambda duration_s, mode: None,
                (
                    Arg("duration_s", ArgType.FLOAT, "s", minimum=0.0, maximum=120.0),
                    Arg("mode", ArgType.ENUM, choices=("PULSE", "STEADY")),
                ),
                hazardous=True,
                description="Fire the main engine.",
            ),
            CommandSpec(
                0x1002,
                "prop.LOAD",
                lambda table: None,
                (Arg("table", ArgType.BYTES, max_length=64),),
            ),
        ]

    def channels(self) -> list[ChannelSpec]:
        return [
            ChannelSpec(0x1001, "prop.tank_kpa", "float", "kPa", yellow=(100.0, 2000.0),
                        red=(50.0, None), description="Tank pressure."),
            ChannelSpec(0x1002, "prop.valve_open", "bool", source="pca.ch3_on"),
            ChannelSpec(0x1003, "prop.fires", "int"),
        ]  # fmt: skip

    def packets(self) -> list[PacketSpec]:
        return [
            PacketSpec(0x1001, "prop.HK", ("prop.tank_kpa", "prop.valve_open", "prop.fires"),
                       {"CRUISE": 0.1, "MOI": 5.0, "*": 1.0}, description="Propulsion."),
        ]  # fmt: skip

    def events(self) -> list[EventSpec]:
        return [EventSpec(0x1001, "prop.FIRED", Severity.ACTIVITY_HI, "fired {s} s", throttle=5)]

    def parameters(self) -> list[ParamSpec]:
        return [ParamSpec(0x1001, "prop.max_burn_s", ArgType.FLOAT, 60.0, 0.0, 600.0, units="s")]


def build() -> Dictionary:
    clock = SimClock()
    time = SpacecraftTime(clock)
    events = EventLog(now=time.met)
    pool = DataPool()
    dispatcher = Dispatcher(events=events, now=time.met, pool=pool)
    tlm = TelemetryManager(pool=pool, events=events, now=time.met)
    params = ParameterStore(path=None, events=events, pool=pool, now=time.met)
    params.register(ParamSpec(0x0201, "tlm.hk_scale", ArgType.INT, 1, 1, 10))
    params.register(ParamSpec(0x0202, "edl.site", ArgType.ENUM, "A", choices=("A", "B")))
    d = Dictionary()
    for component in (
        dispatcher,
        tlm,
        params,
        TimeService(time, events),
        EventControl(events),
        Thruster(),
    ):
        d.add_component(component)
    return d


def test_collects_every_component() -> None:
    d = build()
    names = {c.name for c in d.commands}
    assert {"cmd.NOOP", "cmd.ARM", "tlm.RATE_SET", "prm.SET", "cmd.TIME_SET"} <= names
    assert {"cmd.EVENT_FILTER", "prop.FIRE"} <= names
    assert {p.name for p in d.packets} == {"cmd.STATUS", "prm.PARAMS", "prop.HK"}
    assert "prm.tlm.hk_scale" in {c.name for c in d.channels}
    assert {p.name for p in d.parameters} == {"tlm.hk_scale", "edl.site", "prop.max_burn_s"}
    d.check()


def test_telemetry_manager_registrations_are_not_listed_twice() -> None:
    d = Dictionary()
    events = EventLog(now=lambda: 0.0)
    tlm = TelemetryManager(pool=DataPool(), events=events, now=lambda: 0.0)
    for c in Thruster().channels():
        tlm.register_channel(c)
    d.add_component(Thruster())
    d.add_component(tlm)
    d.check()
    assert len(d.channels) == 3


def test_json_has_the_five_lists_sorted_by_id() -> None:
    doc = build().to_json_dict()
    assert set(doc) == {"commands", "telemetry", "packets", "events", "parameters"}
    assert all(isinstance(v, list) for v in doc.values())
    opcodes = [c["opcode"] for c in doc["commands"]]
    assert opcodes == sorted(opcodes)
    tank = next(c for c in doc["telemetry"] if c["name"] == "prop.tank_kpa")
    assert tank == {
        "id": 0x1001,
        "name": "prop.tank_kpa",
        "type": "float",
        "units": "kPa",
        "source": None,
        "yellow": [100.0, 2000.0],
        "red": [50.0, None],
        "description": "Tank pressure.",
    }
    fired = next(e for e in doc["events"] if e["name"] == "prop.FIRED")
    assert fired["severity"] == "ACTIVITY_HI" and fired["format"] == "fired {s} s"
    fire = next(c for c in doc["commands"] if c["name"] == "prop.FIRE")
    assert fire["hazardous"] is True and fire["args"][0]["units"] == "s"
    assert json.loads(json.dumps(doc)) == doc


def test_round_trip_through_json_text() -> None:
    d = build()
    ground = GroundDictionary.from_json_dict(json.loads(d.to_json()))
    assert sorted(ground.commands, key=lambda c: c.opcode) == sorted(
        d.commands, key=lambda c: c.opcode
    )
    assert sorted(ground.channels, key=lambda c: c.id) == sorted(d.channels, key=lambda c: c.id)
    assert sorted(ground.packets, key=lambda p: p.id) == sorted(d.packets, key=lambda p: p.id)
    assert sorted(ground.events, key=lambda e: e.id) == sorted(d.events, key=lambda e: e.id)
    assert sorted(ground.parameters, key=lambda p: p.id) == sorted(d.parameters, key=lambda p: p.id)
    # And the ground's view exports again to the same document.
    again = Dictionary()
    again.add_component(ground_as_component(ground))
    assert again.to_json_dict() == d.to_json_dict()
    assert Dictionary.from_json_dict(d.to_json_dict()).commands == ground.commands
    assert from_json_dict(d.to_json_dict()).packets == ground.packets


def ground_as_component(g: GroundDictionary) -> Any:
    class View:
        def commands(self) -> list[CommandSpec]:
            return list(g.commands)

        def channels(self) -> list[ChannelSpec]:
            return list(g.channels)

        def packets(self) -> list[PacketSpec]:
            return list(g.packets)

        def events(self) -> list[EventSpec]:
            return list(g.events)

        def parameters(self) -> list[ParamSpec]:
            return list(g.parameters)

    return View()


def test_ground_lookups() -> None:
    g = from_json_dict(build().to_json_dict())
    assert g.command("prop.FIRE").opcode == 0x1001
    assert g.command(0x0002).name == "cmd.PING"
    assert [c.name for c in g.packet_channels(0x1001)] == [
        "prop.tank_kpa",
        "prop.valve_open",
        "prop.fires",
    ]
    assert g.packet("prop.HK").rates_hz["MOI"] == 5.0
    assert g.channel("prop.tank_kpa").red == (50.0, None)
    assert g.event(0x1001).severity is Severity.ACTIVITY_HI
    assert g.parameter("edl.site").choices == ("A", "B")
    for lookup, key in [
        (g.command, "nope"),
        (g.packet, 0x7777),
        (g.channel, "nope"),
        (g.event, 0x7777),
        (g.parameter, "nope"),
    ]:
        with pytest.raises(KeyError):
            lookup(key)


def test_ground_prepares_commands_with_flight_validation() -> None:
    g = from_json_dict(build().to_json_dict())
    assert g.prepare("prop.FIRE", [12, 1]) == (0x1001, [12.0, "STEADY"])
    with pytest.raises(ValidationError):
        g.prepare("prop.FIRE", [500.0, "PULSE"])
    with pytest.raises(ValidationError):
        g.prepare("prop.FIRE", [1.0])
    with pytest.raises(CommandError):
        g.command("cmd.NOOP").handler()


def test_ground_unpacks_packet_bodies() -> None:
    g = from_json_dict(build().to_json_dict())
    assert g.unpack(0x1001, [1500.0, None, 3]) == {
        "prop.tank_kpa": 1500.0,
        "prop.valve_open": None,
        "prop.fires": 3,
    }
    for body in [[1.0], [1, 2, 3, 4], {"v": [1.0, None, 3]}, (1.0, None, 3), None]:
        with pytest.raises(ValueError):
            g.unpack(0x1001, body)


# -- consistency -----------------------------------------------------------------------------


class Clasher:
    """Reuses ids and names already taken by Thruster, and names a channel nobody declares."""

    def commands(self) -> list[CommandSpec]:
        return [CommandSpec(0x1001, "prop.OTHER", lambda: None)]

    def channels(self) -> list[ChannelSpec]:
        return [ChannelSpec(0x1009, "prop.fires", "int")]

    def packets(self) -> list[PacketSpec]:
        return [PacketSpec(0x1002, "prop.HK", ("prop.ghost",), {"*": 1.0})]

    def events(self) -> list[EventSpec]:
        return [EventSpec(0x1001, "prop.OTHER", Severity.DIAGNOSTIC, "x")]

    def parameters(self) -> list[ParamSpec]:
        return [ParamSpec(0x1002, "prop.max_burn_s", ArgType.INT, 1)]


def test_check_lists_every_problem() -> None:
    d = Dictionary()
    d.add_component(Thruster())
    d.add_component(Clasher())
    with pytest.raises(ValueError) as info:
        d.check()
    text = str(info.value)
    for fragment in [
        "command: opcode 0x1001",
        "channel: name prop.fires",
        "packet: name prop.HK",
        "event: id 0x1001",
        "parameter: name prop.max_burn_s",
        "prop.ghost",
    ]:
        assert fragment in text
    assert text.count("\n") == 6
    with pytest.raises(ValueError):
        d.to_json_dict()


def test_components_without_declarations_are_fine() -> None:
    d = Dictionary()
    d.add_component(object())
    d.check()
    assert d.to_json_dict() == {
        "commands": [],
        "telemetry": [],
        "packets": [],
        "events": [],
        "parameters": [],
    }


# -- hostile or broken files -----------------------------------------------------------------


def _mutated(path: list[Any], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(build().to_json_dict())
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        (["commands"], _DELETE, "commands"),
        (["events"], {}, "events"),
        (["commands", 0], "x", "commands[0]"),
        (["commands", 0, "opcode"], "1", "commands[0]"),
        (["commands", 0, "opcode"], True, "commands[0]"),
        (["commands", 1, "args", 0, "type"], "complex", "commands[1]"),
        (["commands", 1, "args", 0], 5, "commands[1]"),
        (["telemetry", 0, "type"], "double", "telemetry[0]"),
        (["telemetry", 0, "yellow"], [1], "telemetry[0]"),
        (["telemetry", 0, "id"], None, "telemetry[0]"),
        (["packets", 0, "rates_hz"], {"*": -1}, "packets[0]"),
        (["packets", 0, "channels"], [1, 2], "packets[0]"),
        (["packets", 0, "channels"], ["no.such"], "no.such"),
        (["events", 0, "severity"], "LOUD", "events[0]"),
        (["events", 0, "format"], _DELETE, "events[0]"),
        (["parameters", 0, "type"], "bytes", "parameters[0]"),
        (["parameters", 0, "choices"], [1], "parameters[0]"),
        (["events", 1, "id"], 0x0001, "event: id 0x0001"),
    ],
)
def test_malformed_exports_are_refused_with_a_location(
    path: list[Any], value: Any, fragment: str
) -> None:
    with pytest.raises(ValueError) as info:
        from_json_dict(_mutated(path, value))
    assert fragment in str(info.value)


@pytest.mark.parametrize("doc", [None, [], "commands", 3])
def test_non_object_export_refused(doc: Any) -> None:
    with pytest.raises(ValueError):
        from_json_dict(doc)


def test_export_without_packets_key_is_accepted() -> None:
    doc = build().to_json_dict()
    del doc["packets"]
    assert from_json_dict(doc).packets == ()
