"""Figures 2 and 3: the flight loop's CPU cost in EDL, and how fast the simulator flies.

The mission simulator is driven tick by tick here (the same calls as ``MissionSim.run``, without
its closing of the bench), so the cost of each part can be separated:

* world physics: :meth:`MissionSim._world_step`, timed around the call;
* register models: every transfer on the simulated I2C buses and every byte produced by the
  simulated serial chips, timed inside ``fsw.step`` by wrapping those objects' entry points;
* the flight loop: the CPU time of ``fsw.step`` minus the register models' time within it.

Two passes: an uninstrumented one for the speed figures and an instrumented one for the costs
(the wrappers cost a little, which would otherwise be charged to the simulator's speed).
"""

from __future__ import annotations

import functools
import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flight.missions.mars.sim.harness import DT, MissionSim, SimOptions
from hal.sim.serial import SimSerialPort

from .common import Figure

__all__ = ["flight_figures"]

_BUS_METHODS = (
    "read_byte_data",
    "write_byte_data",
    "read_word_data",
    "write_word_data",
    "read_i2c_block_data",
    "write_i2c_block_data",
    "i2c_rdwr",
)


@dataclass
class _Flight:
    mission_met_s: float = 0.0
    mission_wall_s: float = 0.0
    edl_met_s: float = 0.0
    edl_wall_s: float = 0.0
    edl_ticks: int = 0
    step_cpu_s: float = 0.0
    chip_s: float = 0.0
    world_cpu_s: float = 0.0
    survived: bool | None = None


class _Meter:
    def __init__(self) -> None:
        self.total = 0.0
        self.on = False

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.on:
                return fn(*args, **kwargs)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.total += time.perf_counter() - t0

        return timed


def _fly(instrument: bool) -> _Flight:
    result = _Flight()
    with tempfile.TemporaryDirectory(prefix="fsw-perf-") as tmp:
        sim = MissionSim(SimOptions(progress=False, out=io.StringIO()), Path(tmp))
        world = sim.world
        chips = _Meter()
        if instrument:
            for bus in sim.bench.sim_buses.values():
                for name in _BUS_METHODS:
                    setattr(bus, name, chips.wrap(getattr(bus, name)))
            for model in sim.bench.models.values():
                if isinstance(model, SimSerialPort):
                    model.produce = chips.wrap(model.produce)  # type: ignore[method-assign]
                    model.on_host_write = chips.wrap(  # type: ignore[method-assign]
                        model.on_host_write
                    )
            world_step = sim._world_step
            fsw_step = sim.fsw.step

            def timed_world() -> None:
                in_edl = sim.fsw.machine.state.startswith("EDL")
                c0 = time.process_time()
                world_step()
                if in_edl:
                    result.world_cpu_s += time.process_time() - c0

            def timed_step() -> None:
                in_edl = sim.fsw.machine.state.startswith("EDL")
                chips.on = in_edl
                c0 = time.process_time()
                fsw_step()
                if in_edl:
                    result.step_cpu_s += time.process_time() - c0
                    result.edl_ticks += 1
                chips.on = False

            sim._world_step = timed_world  # type: ignore[method-assign]
            sim.fsw.step = timed_step  # type: ignore[method-assign]
        entry_wall = entry_met = None
        wall0 = time.perf_counter()
        try:
            while not sim._stop:
                sim._skip_quiet()
                sim._tick()
                if entry_wall is None and world._entry_time is not None:
                    entry_wall, entry_met = time.perf_counter(), world.time
                if entry_wall is not None and world._touchdown is not None and not result.edl_met_s:
                    result.edl_wall_s = time.perf_counter() - entry_wall
                    assert entry_met is not None
                    result.edl_met_s = world._touchdown.time_s - world._entry_time  # type: ignore[operator]
                    result.survived = world._touchdown.survived
            result.mission_wall_s = time.perf_counter() - wall0
            result.mission_met_s = sim.clock.monotonic()
        finally:
            sim.fsw.stop()
            sim.bench.close()
    result.chip_s = chips.total
    return result


def flight_figures() -> list[Figure]:
    plain = _fly(instrument=False)
    timed = _fly(instrument=True)
    flight_s = timed.edl_ticks * DT
    loop = max(0.0, timed.step_cpu_s - timed.chip_s) / flight_s
    sim_cost = (timed.world_cpu_s + timed.chip_s) / flight_s
    edl_speed = plain.edl_met_s / plain.edl_wall_s if plain.edl_wall_s else 0.0
    mission_speed = plain.mission_met_s / plain.mission_wall_s
    detail = {
        "edl_ticks": timed.edl_ticks,
        "flight_s": flight_s,
        "fsw_step_cpu_s": timed.step_cpu_s,
        "register_models_s": timed.chip_s,
        "world_physics_cpu_s": timed.world_cpu_s,
    }
    return [
        Figure(
            "flight_loop.edl_cpu",
            loop,
            "CPU s / flight s",
            sim_cost,
            "<= 0.05 (5 % of one core)",
            0.05,
            loop <= 0.05,
            "every EDL tick (50 Hz, full Mars device suite on register models, link and archive "
            "on); register-model time inside fsw.step subtracted; baseline = the simulator's own "
            "cost (world physics + register models) per flight second",
            detail,
        ),
        Figure(
            "sim.edl_speed",
            edl_speed,
            "x real time",
            None,
            ">= 50",
            50.0,
            edl_speed >= 50.0,
            f"entry interface to touchdown: {plain.edl_met_s:.0f} s of flight in "
            f"{plain.edl_wall_s:.2f} s wall (uninstrumented pass; landed "
            f"{'safely' if plain.survived else 'NOT safely'})",
        ),
        Figure(
            "sim.mission_speed",
            mission_speed,
            "x real time",
            None,
            "informative",
            None,
            True,
            f"launch to end of surface ops: MET {plain.mission_met_s / 86400:.1f} d in "
            f"{plain.mission_wall_s:.1f} s wall (quiet stretches compressed)",
        ),
    ]
