"""Built-in commands: time correlation, event filter and throttle reset."""

from __future__ import annotations

from typing import Any

import pytest

from flight import codec
from flight.builtins import EventControl, TimeService
from flight.clock import SimClock, SpacecraftTime
from flight.commands import CommandStatus
from flight.dispatcher import Dispatcher
from flight.events import EventLog, EventSpec, Severity

NOISY = EventSpec(0x1001, "test.NOISY", Severity.WARNING_LO, "noise {n}", throttle=2)
CHATTY = EventSpec(0x1002, "test.CHATTY", Severity.ACTIVITY_LO, "chat", throttle=1)


class Rig:
    def __init__(self) -> None:
        self.clock = SimClock()
        self.time = SpacecraftTime(self.clock, met_at_start=1000.0)
        self.events = EventLog(now=self.time.met)
        self.dispatcher = Dispatcher(events=self.events, now=self.time.met)
        for component in (TimeService(self.time, self.events), EventControl(self.events)):
            self.dispatcher.register_all(component.commands())

    def send(self, opcode: int, args: list[Any]) -> Any:
        return self.dispatcher.dispatch_bytes(codec.encode([1, opcode, args]))


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_time_set_correlates_met_and_utc(rig: Rig) -> None:
    assert rig.time.utc() is None
    resp = rig.send(0x0010, [1_700_000_000.0, 1000.0])
    assert resp.status is CommandStatus.OK
    assert rig.time.utc() == pytest.approx(1_700_000_000.0)
    rig.clock.advance(60.0)
    assert rig.time.utc() == pytest.approx(1_700_000_060.0)
    event = next(e for e in rig.events.recent if e.name == "cmd.TIME_CORRELATED")
    assert event.args["met_s"] == 1000.0


def test_time_set_reports_the_offset_change(rig: Rig) -> None:
    rig.send(0x0010, [1_700_000_000.0, 1000.0])
    rig.send(0x0010, [1_700_000_002.5, 1000.0])
    events = [e for e in rig.events.recent if e.name == "cmd.TIME_CORRELATED"]
    assert events[-1].args["delta_s"] == pytest.approx(2.5)


@pytest.mark.parametrize(
    "args",
    [
        [-1.0, 10.0],
        [1.7e12, 10.0],  # milliseconds by mistake
        [1_700_000_000.0, -5.0],
        [float("nan"), 10.0],
        ["1700000000", 10.0],
        [1_700_000_000.0],
    ],
)
def test_time_set_rejects_bad_values(rig: Rig, args: list[Any]) -> None:
    assert rig.send(0x0010, args).status is CommandStatus.VALIDATION_ERROR
    assert rig.time.utc() is None


def test_event_filter_by_name_and_index(rig: Rig) -> None:
    assert rig.send(0x0011, ["WARNING_LO"]).status is CommandStatus.OK
    assert rig.events.min_severity is Severity.WARNING_LO
    assert rig.events.emit(CHATTY) is None
    assert rig.events.emit(NOISY, n=1) is not None
    filter_event = next(e for e in rig.events.recent if e.name == "cmd.EVENT_FILTER_SET")
    assert filter_event.args == {"old": "DIAGNOSTIC", "new": "WARNING_LO"}
    assert rig.send(0x0011, [int(Severity.ACTIVITY_LO)]).status is CommandStatus.OK
    assert rig.events.min_severity is Severity.ACTIVITY_LO


@pytest.mark.parametrize("value", ["LOUD", 7, -1, True, 3.0])
def test_event_filter_rejects_unknown_severity(rig: Rig, value: Any) -> None:
    assert rig.send(0x0011, [value]).status is CommandStatus.VALIDATION_ERROR
    assert rig.events.min_severity is Severity.DIAGNOSTIC


def test_throttle_reset_one_event(rig: Rig) -> None:
    for n in range(4):
        rig.events.emit(NOISY, n=n)
        rig.events.emit(CHATTY)
    assert rig.events.emit(NOISY, n=9) is None
    assert rig.send(0x0012, [NOISY.id]).status is CommandStatus.OK
    assert rig.events.emit(NOISY, n=10) is not None
    assert rig.events.emit(CHATTY) is None


def test_throttle_reset_all(rig: Rig) -> None:
    for n in range(3):
        rig.events.emit(NOISY, n=n)
        rig.events.emit(CHATTY)
    assert rig.send(0x0012, [-1]).status is CommandStatus.OK
    assert rig.events.emit(NOISY, n=10) is not None
    assert rig.events.emit(CHATTY) is not None


@pytest.mark.parametrize("value", [-2, "all", 1.0, None])
def test_throttle_reset_rejects_bad_ids(rig: Rig, value: Any) -> None:
    assert rig.send(0x0012, [value]).status is CommandStatus.VALIDATION_ERROR


def test_declared_ids_in_builtin_range() -> None:
    rig = Rig()
    components = (TimeService(rig.time, rig.events), EventControl(rig.events))
    opcodes = [c.opcode for comp in components for c in comp.commands()]
    assert opcodes == [0x0010, 0x0011, 0x0012]
    assert all(e.id <= 0x00FF for comp in components for e in comp.events())
