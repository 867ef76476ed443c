"""One simulated chip on one simulated I2C bus, for driver tests: the same wiring every driver
test needs (a SimClock, an Environment, a SimSMBus with the model attached, the shared I2CBus)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flight.clock import SimClock
from hal.i2c import I2CBus
from hal.sim import Environment, SimSMBus

M = TypeVar("M")
D = TypeVar("D")


@dataclass
class ChipRig(Generic[M, D]):
    clock: SimClock
    env: Environment
    smbus: SimSMBus
    bus: I2CBus
    model: M
    driver_class: type[D]
    address: int
    name: str

    def driver(self, **options: Any) -> D:
        return self.driver_class(
            self.bus, self.address, name=self.name, clock=self.clock, **options
        )  # type: ignore[call-arg]

    def raw(self, register: int, length: int = 1) -> bytes:
        return self.bus.read_block(self.address, register, length)


def make_chip_rig(
    model_class: type[M], driver_class: type[D], address: int, name: str, **model_options: Any
) -> ChipRig[M, D]:
    clock = SimClock()
    env = Environment()
    smbus = SimSMBus()
    build: Any = model_class
    model = build(env, clock=clock, **model_options)
    smbus.attach(address, model)
    bus = I2CBus(smbus, name="i2c-1")
    return ChipRig(clock, env, smbus, bus, model, driver_class, address, name)
