"""A bench may lack the mission's optional devices; it may not lack any other polled device."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from flight.app import FlightSoftware, MissionDefinition
from flight.clock import SimClock
from flight.missions.mars.definition import MARS
from hal.assembly import build, sim_bench_map
from hal.devmap import DeviceMap


def _software(
    devmap: DeviceMap, tmp_path: Path, mission: MissionDefinition = MARS
) -> FlightSoftware:
    clock = SimClock()
    bench = build(devmap, clock=clock)
    return FlightSoftware(
        clock=clock, devices=bench.devices, mission=mission, state_dir=tmp_path, met_at_start=0.0
    )


def _without(devmap: DeviceMap, *names: str) -> DeviceMap:
    return dataclasses.replace(
        devmap, devices=tuple(d for d in devmap.devices if d.name not in names)
    )


def test_mars_declares_its_landing_altimeters_optional() -> None:
    assert MARS.optional_devices == {"altimeter", "lidar"}


def test_absent_optional_devices_are_not_polled_and_warned_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="flight.app"):
        fsw = _software(sim_bench_map(), tmp_path)  # has "lidar", lacks "altimeter"
    warnings = [r.getMessage() for r in caplog.records if "optional device" in r.getMessage()]
    assert warnings == ["optional device(s) altimeter not in the device map: not polled"]
    assert fsw.polling.rate("lidar", "EDL") == 50.0  # present: polled as the table says
    with pytest.raises(KeyError):
        fsw.polling.poller("altimeter")


def test_bench_without_either_altimeter_still_assembles(tmp_path: Path) -> None:
    fsw = _software(_without(sim_bench_map(), "lidar"), tmp_path)
    fsw.start()
    for _ in range(60):
        fsw.step()
    fsw.stop()
    assert fsw.machine.mode == "CRUISE"


def test_missing_required_device_still_fails(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="imu"):
        _software(_without(sim_bench_map(), "imu"), tmp_path)


def test_missing_device_fails_when_the_mission_does_not_call_it_optional(tmp_path: Path) -> None:
    strict = dataclasses.replace(MARS, optional_devices=frozenset())
    with pytest.raises(ValueError, match="altimeter"):
        _software(sim_bench_map(), tmp_path, mission=strict)
