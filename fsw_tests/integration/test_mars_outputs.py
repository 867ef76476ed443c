"""A control output the PWM board refuses is reported and sent again; it never ends the tick.

These run the Mars flight software on its simulated chips (no world model, no ground): the
commands go straight to the dispatcher, and the PWM chip's own registers say what the vehicle
would do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flight.app import FlightSoftware
from flight.clock import SimClock
from flight.events import Event
from flight.missions.mars.actuators import Channel
from flight.missions.mars.sim.harness import BASE_HZ, build_reference_software
from hal.sim.smbus import BusFault

PWM_ADDRESS = 0x40


@pytest.fixture
def fsw(tmp_path: Path) -> Iterator[FlightSoftware]:
    fsw = build_reference_software(tmp_path)
    fsw.start()
    yield fsw
    fsw.stop()
    fsw.close_devices()


def run(fsw: FlightSoftware, seconds: float) -> None:
    clock = fsw.clock
    assert isinstance(clock, SimClock)
    for _ in range(round(seconds * BASE_HZ)):
        fsw.step()
        clock.advance(1.0 / BASE_HZ)


def command(fsw: FlightSoftware, name: str, *args: object) -> None:
    spec = fsw.dispatcher.lookup(name)
    assert spec is not None
    response = fsw.dispatcher.dispatch(1, spec.opcode, list(args))
    assert response.status.name == "OK", response.reason


def test_a_refused_burn_cutoff_keeps_trying_until_the_engine_is_off(
    fsw: FlightSoftware,
) -> None:
    seen: list[Event] = []
    fsw.events.subscribe(seen.append)
    engine = fsw.bench.models["pwm"]  # type: ignore[attr-defined]
    bus = fsw.bench.sim_buses[1]  # type: ignore[attr-defined]
    run(fsw, 1.0)
    assert fsw.machine.state == "CRUISE"
    command(fsw, "cmd.ARM", "mars.ENGINE_BURN")
    command(fsw, "mars.ENGINE_BURN", 2.0)
    run(fsw, 1.5)
    assert engine.duty(Channel.MAIN_ENGINE) == 1.0

    bus.inject(PWM_ADDRESS, BusFault("no_ack"))  # refuses everything over the cutoff
    run(fsw, 1.5)
    assert engine.duty(Channel.MAIN_ENGINE) == 1.0  # still burning: the board took nothing
    failed = [e for e in seen if e.name == "mars.OUTPUT_FAILED"]
    assert failed and all(e.args["output"] == "main engine off" for e in failed)
    assert not [e for e in seen if e.name == "mars.BURN"]  # not reported complete

    bus.clear_fault(PWM_ADDRESS)
    run(fsw, 0.1)
    assert engine.duty(Channel.MAIN_ENGINE) == 0.0
    burns = [e for e in seen if e.name == "mars.BURN"]
    assert len(burns) == 1
    assert burns[0].args["duration_s"] == pytest.approx(3.0, abs=0.1)  # as long as it burned
    assert not [e for e in seen if e.name == "sched.TASK_ERROR" and e.args["task"] == "mission"]
