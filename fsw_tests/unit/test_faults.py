"""Fault protection: persistence, one trip per excursion, responses, staleness, enabling."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from flight.clock import SimClock
from flight.commands import Arg, ArgType, CommandError, CommandSpec, CommandStatus
from flight.datapool import DataPool
from flight.dispatcher import Dispatcher
from flight.events import EventLog, Severity
from flight.faults import (
    EV_CLEARED,
    EV_OVERRIDE,
    EV_OVERRIDE_KEPT,
    EV_RESPONSE_FAILED,
    DeviceOfflineMonitor,
    FaultProtection,
    LimitMonitor,
    Response,
    StaleMonitor,
)
from flight.persistence.state import StateStore
from flight.sequences import SequenceEngine, encode_sequence

SAFE = Response("mode", "enter_safe")


class Rig:
    def __init__(self, store: StateStore | None = None) -> None:
        self.store = store
        self.clock = SimClock()
        self.pool = DataPool()
        self.events = EventLog(now=self.clock.monotonic)
        self.mode_requests: list[tuple[str, str]] = []
        self.sequences: list[str] = []
        self.fp = FaultProtection(
            pool=self.pool,
            events=self.events,
            now=self.clock.monotonic,
            request_mode=lambda target, cause: self.mode_requests.append((target, cause)),
            start_sequence=self.sequences.append,
            store=store,
        )

    def feed(self, channel: str, values, *, dt: float = 0.1) -> None:
        for value in values:
            self.pool.set(channel, value, self.clock.monotonic())
            self.fp.tick()
            self.clock.advance(dt)


def battery_monitor(**kw) -> LimitMonitor:
    args = dict(
        id=0x0510,
        name="battery_low",
        channel="eps.bus_v",
        low=6.5,
        high=None,
        persistence=3,
        response=SAFE,
    )
    args.update(kw)
    return LimitMonitor(**args)


def test_a_limit_trips_only_after_persistence_consecutive_violations():
    rig = Rig()
    rig.fp.add(battery_monitor())
    rig.fp.set_enabled(["battery_low"])
    rig.feed("eps.bus_v", [7.0, 6.0, 6.1, 7.2, 6.0, 6.2])  # two, reset, two: no trip
    assert rig.mode_requests == []
    rig.feed("eps.bus_v", [6.3])  # third in a row
    assert rig.mode_requests == [("enter_safe", "fp.battery_low")]
    assert rig.fp.trips("battery_low") == 1
    assert rig.pool.value("fp.battery_low.trips") == 1
    trip = rig.events.recent[-1]
    assert trip.id == 0x0510 and trip.name == "fp.battery_low"
    assert trip.severity is Severity.WARNING_HI
    assert "eps.bus_v = 6.3" in trip.text and "mode enter_safe" in trip.text


def test_one_trip_per_excursion_then_rearm():
    rig = Rig()
    rig.fp.add(battery_monitor(persistence=1))
    rig.fp.set_enabled(["battery_low"])
    rig.feed("eps.bus_v", [6.0] * 10)
    assert len(rig.mode_requests) == 1  # not one request per tick
    rig.feed("eps.bus_v", [7.0])
    assert rig.events.count(EV_CLEARED.id) == 1
    assert rig.fp.tripped() == []
    rig.feed("eps.bus_v", [5.0])
    assert len(rig.mode_requests) == 2
    assert rig.pool.value("fp.battery_low.trips") == 2


@pytest.mark.parametrize(
    ("low", "high", "value", "trips"),
    [
        (None, 80.0, 81.0, True),
        (None, 80.0, 80.0, False),
        (-20.0, None, -21.0, True),
        (-20.0, 60.0, 10.0, False),
        (-20.0, 60.0, math.nan, True),  # a sensor returning NaN is a fault, not a pass
        (-20.0, 60.0, math.inf, True),
        (-20.0, 60.0, 10**30, True),
    ],
)
def test_limit_bounds(low, high, value, trips):
    rig = Rig()
    rig.fp.add(battery_monitor(low=low, high=high, persistence=1, response=Response("event")))
    rig.fp.set_enabled(["battery_low"])
    rig.feed("eps.bus_v", [value])
    assert rig.fp.trips("battery_low") == int(trips)


def test_missing_invalid_and_non_numeric_values_are_not_limit_checked():
    rig = Rig()
    rig.fp.add(battery_monitor(persistence=2))
    rig.fp.set_enabled(["battery_low"])
    rig.fp.tick()  # never written
    rig.feed("eps.bus_v", [6.0])
    rig.pool.invalidate("eps.bus_v", rig.clock.monotonic())
    rig.fp.tick()  # invalid: not evaluated, the count stays
    rig.feed("eps.bus_v", ["six", None, True])
    assert rig.fp.trips("battery_low") == 0
    rig.feed("eps.bus_v", [6.0])  # second numeric violation in a row
    assert rig.fp.trips("battery_low") == 1


def test_stale_monitor_counts_from_enable_and_rearms_on_fresh_data():
    rig = Rig()
    rig.fp.add(StaleMonitor(0x0520, "imu_stale", "imu.accel_z_mps2", 0.5, Response("event")))
    rig.clock.advance(100.0)
    rig.fp.set_enabled(["imu_stale"])
    for _ in range(5):
        rig.fp.tick()
        rig.clock.advance(0.1)
    assert rig.fp.trips("imu_stale") == 0  # 0.4 s after enabling: within the grace
    rig.clock.advance(0.2)
    rig.fp.tick()
    assert rig.fp.trips("imu_stale") == 1
    rig.feed("imu.accel_z_mps2", [9.8] * 5)
    assert rig.events.count(EV_CLEARED.id) == 1
    rig.clock.advance(0.6)
    rig.fp.tick()
    assert rig.fp.trips("imu_stale") == 2


def test_stale_monitor_trips_at_once_on_invalidated_data():
    rig = Rig()
    rig.fp.add(StaleMonitor(0x0520, "imu_stale", "imu.accel_z_mps2", 5.0, Response("event")))
    rig.fp.set_enabled(["imu_stale"])
    rig.feed("imu.accel_z_mps2", [9.8])
    rig.pool.invalidate("imu", rig.clock.monotonic())
    rig.fp.tick()
    assert rig.fp.trips("imu_stale") == 1
    assert "invalid" in rig.events.recent[-1].text


def test_device_offline_monitor_starts_a_sequence():
    rig = Rig()
    rig.fp.add(
        DeviceOfflineMonitor(0x0530, "lidar_lost", "lidar", Response("sequence", "lidar_recover"))
    )
    rig.fp.set_enabled(["lidar_lost"])
    rig.fp.tick()  # no poller result yet: nothing to say
    rig.feed("dev.lidar.online", [True, True, False, False])
    assert rig.sequences == ["lidar_recover"]
    rig.feed("dev.lidar.online", [True])
    assert rig.fp.tripped() == []


def test_a_failing_response_is_reported_and_the_other_monitors_still_run():
    clock = SimClock()
    pool = DataPool()
    events = EventLog(now=clock.monotonic)

    def broken(target: str, cause: str) -> None:
        raise RuntimeError("mode machine exploded")

    fp = FaultProtection(
        pool=pool,
        events=events,
        now=clock.monotonic,
        request_mode=broken,
        start_sequence=lambda name: None,
    )
    fp.add(battery_monitor(persistence=1))
    fp.add(LimitMonitor(0x0511, "hot", "eps.temp_c", None, 70.0, 1, Response("event")))
    fp.set_enabled(["battery_low", "hot"])
    pool.set("eps.bus_v", 1.0, 0.0)
    pool.set("eps.temp_c", 90.0, 0.0)
    fp.tick()
    assert events.count(EV_RESPONSE_FAILED.id) == 1
    assert "exploded" in next(e for e in events.recent if e.id == EV_RESPONSE_FAILED.id).text
    assert fp.trips("hot") == 1


def test_only_enabled_monitors_run_and_disabling_resets_them():
    rig = Rig()
    rig.fp.add(battery_monitor(persistence=2))
    rig.fp.add(LimitMonitor(0x0511, "hot", "eps.temp_c", None, 70.0, 1, SAFE))
    rig.fp.set_enabled(["hot"])
    rig.feed("eps.bus_v", [1.0, 1.0, 1.0])
    assert rig.fp.trips("battery_low") == 0
    rig.fp.set_enabled(["battery_low"])
    rig.feed("eps.bus_v", [1.0])
    rig.fp.set_enabled([])  # mode change in between: the count starts over
    rig.fp.set_enabled(["battery_low"])
    rig.feed("eps.bus_v", [1.0])
    assert rig.fp.trips("battery_low") == 0
    rig.feed("eps.bus_v", [1.0])
    assert rig.fp.trips("battery_low") == 1
    with pytest.raises(ValueError, match="unknown monitor"):
        rig.fp.set_enabled(["battery_low", "nope"])
    assert rig.fp.enabled() == ["battery_low"]


def test_ground_overrides_win_over_the_mode_table_until_auto():
    rig = Rig()
    rig.fp.add(battery_monitor(persistence=1))
    dispatcher = Dispatcher(events=rig.events, now=rig.clock.monotonic)
    dispatcher.register_all(rig.fp.commands())
    rig.fp.set_enabled(["battery_low"])
    assert dispatcher.dispatch(1, 0x0501, ["battery_low"]).status is CommandStatus.OK
    rig.fp.set_enabled(["battery_low"])  # a mode change does not undo the ground's decision
    rig.feed("eps.bus_v", [1.0])
    assert rig.fp.trips("battery_low") == 0
    assert dispatcher.dispatch(2, 0x0502, ["battery_low"]).status is CommandStatus.OK
    rig.feed("eps.bus_v", [1.0])
    assert rig.fp.trips("battery_low") == 1
    rig.fp.set_enabled([])
    assert dispatcher.dispatch(3, 0x0500, ["battery_low"]).status is CommandStatus.OK
    assert rig.fp.enabled() == ["battery_low"]
    assert rig.events.count(EV_OVERRIDE.id) == 3
    assert dispatcher.dispatch(4, 0x0500, ["nope"]).status is CommandStatus.VALIDATION_ERROR


def _booted(state: Path) -> Rig:
    """The fault protection of one boot, over the state file every boot shares."""
    rig = Rig(StateStore(state))
    rig.fp.add(battery_monitor(persistence=1))
    rig.fp.add(battery_monitor(id=0x0511, name="battery_high", low=None, high=9.0))
    rig.fp.set_enabled(["battery_low", "battery_high"])  # what the mode table says
    return rig


def _command(rig: Rig, name: str, monitor: str) -> None:
    {spec.name: spec for spec in rig.fp.commands()}[name].handler(monitor=monitor)


def test_an_override_holds_across_a_restart_until_auto(tmp_path):
    state = tmp_path / "state.cbor"
    first = _booted(state)
    _command(first, "fp.DISABLE", "battery_low")
    assert first.fp.enabled() == ["battery_high"]

    second = _booted(state)
    assert second.fp.enabled() == ["battery_high"]
    second.feed("eps.bus_v", [1.0])  # the drifting sensor no longer sends it to safe mode
    assert second.mode_requests == []
    kept = [e for e in second.events.recent if e.id == EV_OVERRIDE_KEPT.id]
    assert [e.args["monitor"] for e in kept] == ["battery_low"]
    _command(second, "fp.AUTO", "battery_low")

    third = _booted(state)
    assert third.fp.enabled() == ["battery_low", "battery_high"]
    assert third.events.count(EV_OVERRIDE_KEPT.id) == 0


def test_an_enable_override_holds_against_the_mode_table_after_a_restart(tmp_path):
    state = tmp_path / "state.cbor"
    _command(_booted(state), "fp.ENABLE", "battery_high")
    again = _booted(state)
    again.fp.set_enabled([])  # a mode whose table runs neither
    assert again.fp.enabled() == ["battery_high"]


def test_an_override_that_cannot_be_committed_is_not_applied(tmp_path):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    rig = _booted(state_dir / "state.cbor")
    shutil.rmtree(state_dir)
    with pytest.raises(CommandError, match="durable"):
        _command(rig, "fp.DISABLE", "battery_low")
    assert rig.fp.enabled() == ["battery_low", "battery_high"]
    state_dir.mkdir()
    assert rig.store is not None
    rig.store.commit()  # the storage is back: the refused change must not be waiting in it
    assert rig.store.last_commit_ok
    assert _booted(state_dir / "state.cbor").fp.enabled() == ["battery_low", "battery_high"]


@pytest.mark.parametrize("saved", [["battery_low"], {"battery_low": "off"}, {"gone": False}])
def test_saved_overrides_that_are_malformed_or_unknown_change_nothing(tmp_path, saved):
    store = StateStore(tmp_path / "state.cbor")
    store.set("fp.overrides", saved)
    store.commit()
    rig = _booted(tmp_path / "state.cbor")
    assert rig.fp.enabled() == ["battery_low", "battery_high"]


def test_a_trip_runs_a_real_stored_sequence(tmp_path):
    clock = SimClock()
    events = EventLog(now=clock.monotonic)
    dispatcher = Dispatcher(events=events, now=clock.monotonic)
    heater: list[bool] = []
    dispatcher.register(
        CommandSpec(0x7100, "test.HEATER", lambda on: heater.append(on), (Arg("on", ArgType.BOOL),))
    )
    engine = SequenceEngine(
        dispatcher=dispatcher,
        events=events,
        now=clock.monotonic,
        state=StateStore(tmp_path / "state.cbor"),
    )
    engine.load(encode_sequence("warm_up", [("rel", 0.0, 0x7100, [True])]))
    pool = DataPool()
    fp = FaultProtection(
        pool=pool,
        events=events,
        now=clock.monotonic,
        request_mode=lambda t, c: None,
        start_sequence=engine.start,
    )
    fp.add(
        LimitMonitor(0x0512, "cold", "eps.temp_c", -10.0, None, 2, Response("sequence", "warm_up"))
    )
    fp.set_enabled(["cold"])
    for value in (-15.0, -16.0, -17.0):
        pool.set("eps.temp_c", value, clock.monotonic())
        fp.tick()
        engine.tick()
        clock.advance(0.02)
    assert heater == [True]


def test_bad_declarations_are_refused():
    with pytest.raises(ValueError):
        Response("reboot")
    with pytest.raises(ValueError):
        Response("mode")
    with pytest.raises(ValueError):
        battery_monitor(low=None, high=None)
    with pytest.raises(ValueError):
        battery_monitor(low=5.0, high=1.0)
    with pytest.raises(ValueError):
        battery_monitor(persistence=0)
    with pytest.raises(ValueError):
        StaleMonitor(0x0520, "s", "x", 0.0, Response("event"))
    rig = Rig()
    rig.fp.add(battery_monitor())
    with pytest.raises(ValueError, match="already added"):
        rig.fp.add(battery_monitor())
    with pytest.raises(ValueError, match="already used"):
        rig.fp.add(battery_monitor(name="other"))
    with pytest.raises(ValueError, match="reserved"):
        rig.fp.add(battery_monitor(name="third", id=0x0501))


def test_dictionary_declares_each_monitor():
    rig = Rig()
    rig.fp.add(battery_monitor())
    rig.fp.add(DeviceOfflineMonitor(0x0530, "lidar_lost", "lidar", Response("event")))
    assert {c.name for c in rig.fp.channels()} == {"fp.battery_low.trips", "fp.lidar_lost.trips"}
    assert [m.name for m in rig.fp.monitors] == ["battery_low", "lidar_lost"]
    ids = [e.id for e in rig.fp.events()]
    assert 0x0510 in ids and 0x0530 in ids and len(ids) == len(set(ids))
