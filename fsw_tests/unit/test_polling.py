"""Device polling: readings into the pool, offline/online detection with retries, per-mode rates.

The device under test is a tiny I2C thermometer defined here: a driver on the real
:class:`hal.i2c.I2CBus` over a :class:`hal.sim.SimSMBus` register model, so bus faults are the
simulator's own (errno 121/110/5 mapped by the HAL), not mocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from flight.clock import SimClock
from flight.commands import CommandStatus
from flight.datapool import DataPool
from flight.dispatcher import Dispatcher
from flight.events import EventLog
from flight.polling import (
    EV_OFFLINE,
    EV_ONLINE,
    EV_READ_FAILED,
    EV_RESET,
    EV_RESET_FAILED,
    DevicePoller,
    PollManager,
)
from hal.device import I2CDevice, Reading
from hal.errors import DeviceStateError
from hal.i2c import I2CBus
from hal.sim import BusFault, Environment, RegisterModel, SimSMBus

ADDRESS = 0x48


class ThermoModel(RegisterModel):
    """Register 0x00-0x01: temperature in 1/100 degC, big-endian; 0x10: config (reset 0x00)."""

    part = "THERMO"

    def begin_read(self, register: int) -> None:
        self.set_u16_be(0x00, round(self.env.temperature_c * 100))


@dataclass(frozen=True)
class ThermoReading(Reading):
    temperature_c: float


class Thermo(I2CDevice):
    part = "THERMO"

    def probe(self) -> str:
        return "thermo"

    def configure(self) -> None:
        self._write_u8(0x10, 0x01)

    def read(self) -> ThermoReading:
        if self._read_u8(0x10) != 0x01:
            raise DeviceStateError(f"{self.where}: not configured")
        raw = self._read(0x00, 2)
        return ThermoReading(int.from_bytes(raw, "big") / 100.0)


class Rig:
    def __init__(self, *, fail_limit: int = 3, retry_interval_s: float = 5.0) -> None:
        self.clock = SimClock()
        self.env = Environment(temperature_c=21.5)
        self.smbus = SimSMBus(seed=1)
        self.model = self.smbus.attach(ADDRESS, ThermoModel(self.env, clock=self.clock))
        self.bus = I2CBus(self.smbus, name="i2c-1", retries=0)
        self.device = Thermo(self.bus, ADDRESS, name="thermo", clock=self.clock)
        self.device.configure()
        self.pool = DataPool()
        self.events = EventLog(now=self.clock.monotonic)
        self.poller = DevicePoller(
            self.device,
            pool=self.pool,
            events=self.events,
            now=self.clock.monotonic,
            fail_limit=fail_limit,
            retry_interval_s=retry_interval_s,
        )

    def reads(self) -> int:
        return sum(1 for t in self.model.history if t.op == "r" and t.register == 0x00)


def test_a_good_read_writes_every_field_and_online():
    rig = Rig()
    rig.clock.advance(2.0)
    rig.poller.poll()
    sample = rig.pool.get("thermo.temperature_c")
    assert sample is not None and sample.valid
    assert sample.value == pytest.approx(21.5)
    assert sample.time == 2.0
    assert rig.pool.value("dev.thermo.online") is True
    assert rig.poller.online and rig.poller.failures == 0


def test_consecutive_failures_take_the_device_offline_and_invalidate_its_data():
    rig = Rig(fail_limit=3)
    rig.poller.poll()
    rig.smbus.inject(ADDRESS, BusFault("no_ack"))
    rig.poller.poll()
    rig.poller.poll()
    assert rig.poller.online and rig.poller.failures == 2
    assert rig.events.count(EV_READ_FAILED.id) == 2
    assert rig.pool.get("thermo.temperature_c").valid  # not yet: two failures are a glitch
    rig.poller.poll()
    assert not rig.poller.online
    assert rig.events.count(EV_OFFLINE.id) == 1
    assert "no acknowledge" in rig.events.recent[-1].text
    sample = rig.pool.get("thermo.temperature_c")
    assert sample is not None and not sample.valid
    assert sample.value == pytest.approx(21.5)  # last value stays visible, marked invalid
    assert rig.pool.value("dev.thermo.online") is False
    assert rig.pool.value("dev.thermo.errors") == 3


def test_a_success_between_failures_resets_the_count():
    rig = Rig(fail_limit=3)
    for _ in range(5):
        rig.smbus.inject(ADDRESS, BusFault("timeout", count=2))
        rig.poller.poll()
        rig.poller.poll()
        rig.poller.poll()  # the fault is spent: this one succeeds
    assert rig.poller.online
    assert rig.poller.total_errors == 10
    assert rig.events.count(EV_OFFLINE.id) == 0


def test_an_offline_device_is_retried_only_every_retry_interval_then_comes_back():
    rig = Rig(fail_limit=2, retry_interval_s=5.0)
    rig.smbus.inject(ADDRESS, BusFault("io"))
    rig.poller.poll()
    rig.poller.poll()
    assert not rig.poller.online
    attempts = rig.poller.total_errors
    for _ in range(49):  # 4.9 s of 10 Hz polling: no bus traffic for the dead device
        rig.clock.advance(0.1)
        rig.poller.poll()
    assert rig.poller.total_errors == attempts
    rig.clock.advance(0.1)
    rig.poller.poll()  # 5 s after going offline: one retry, still failing
    assert rig.poller.total_errors == attempts + 1
    rig.smbus.clear_fault(ADDRESS)
    rig.clock.advance(1.0)
    rig.poller.poll()
    assert not rig.poller.online  # next retry not due yet
    rig.clock.advance(4.0)
    rig.poller.poll()
    assert rig.poller.online
    assert rig.events.count(EV_ONLINE.id) == 1
    assert rig.pool.get("thermo.temperature_c").valid
    assert rig.pool.value("dev.thermo.online") is True


def test_device_state_errors_and_driver_bugs_count_as_failures():
    rig = Rig(fail_limit=2)
    rig.model.regs[0x10] = 0x00  # the chip lost its configuration (brown-out)
    rig.poller.poll()
    assert rig.poller.failures == 1
    assert "not configured" in rig.poller.last_error

    class Broken(Thermo):
        def read(self) -> ThermoReading:
            raise ZeroDivisionError("driver bug")

    broken = DevicePoller(
        Broken(rig.bus, ADDRESS, name="broken", clock=rig.clock),
        pool=rig.pool,
        events=rig.events,
        now=rig.clock.monotonic,
        fail_limit=1,
    )
    broken.poll()  # must not raise
    assert not broken.online
    assert "ZeroDivisionError" in broken.last_error


def make_manager(rates, *, names=("thermo",)):
    rig = Rig()
    pollers = [rig.poller]
    for name in names[1:]:
        dev = Thermo(rig.bus, ADDRESS, name=name, clock=rig.clock)
        pollers.append(DevicePoller(dev, pool=rig.pool, events=rig.events, now=rig.clock.monotonic))
    return rig, PollManager(pollers, now=rig.clock.monotonic, rates_hz=rates)


def run_ticks(rig: Rig, manager: PollManager, mode: str, seconds: float, base_hz: float = 50.0):
    for _ in range(round(seconds * base_hz)):
        manager.tick(mode)
        rig.clock.advance(1.0 / base_hz)


def test_devices_are_polled_at_their_rate_in_each_mode():
    rig, manager = make_manager(
        {"*": {"thermo": 10.0, "spare": 1.0}, "SAFE": {"thermo": 1.0}, "OFF": {"thermo": 0}},
        names=("thermo", "spare"),
    )
    run_ticks(rig, manager, "CRUISE", 2.0)  # CRUISE not listed: "*" applies
    assert manager.poller("thermo").reads == 20
    assert manager.poller("spare").reads == 2
    run_ticks(rig, manager, "SAFE", 3.0)  # listed mode: thermo at 1 Hz, spare absent = off
    assert manager.poller("thermo").reads == 23
    assert manager.poller("spare").reads == 2
    run_ticks(rig, manager, "OFF", 1.0)
    assert manager.poller("thermo").reads == 23
    assert manager.rate("spare", "SAFE") == 0.0


def test_polling_rate_is_exact_under_base_tick_granularity():
    rig, manager = make_manager({"*": {"thermo": 3.0}})
    run_ticks(rig, manager, "X", 10.0)
    assert manager.poller("thermo").reads == 30


def test_reset_command_reconfigures_and_retries_at_once():
    rig, manager = make_manager({"*": {"thermo": 10.0}})
    dispatcher = Dispatcher(events=rig.events, now=rig.clock.monotonic)
    dispatcher.register_all(manager.commands())
    rig.model.regs[0x10] = 0x00  # unconfigured: every read fails with DeviceStateError
    run_ticks(rig, manager, "X", 1.0)
    assert not rig.poller.online
    response = dispatcher.dispatch(1, 0x0400, ["thermo"])
    assert response.status is CommandStatus.OK
    assert rig.events.count(EV_RESET.id) == 1
    manager.tick("X")  # retried at once, not 5 s later
    assert rig.poller.online


def test_reset_command_failures_are_rejections_not_crashes():
    rig, manager = make_manager({"*": {"thermo": 10.0}})
    dispatcher = Dispatcher(events=rig.events, now=rig.clock.monotonic)
    dispatcher.register_all(manager.commands())
    assert dispatcher.dispatch(1, 0x0400, ["nosuch"]).status is CommandStatus.VALIDATION_ERROR
    rig.smbus.inject(ADDRESS, BusFault("no_ack"))
    response = dispatcher.dispatch(2, 0x0400, ["thermo"])
    assert response.status is CommandStatus.EXECUTION_ERROR
    assert "no acknowledge" in response.reason
    assert rig.events.count(EV_RESET_FAILED.id) == 1


def test_bad_rate_tables_are_refused():
    rig = Rig()
    with pytest.raises(ValueError, match="unknown device"):
        PollManager([rig.poller], now=rig.clock.monotonic, rates_hz={"*": {"nope": 1.0}})
    with pytest.raises(ValueError, match="rate"):
        PollManager([rig.poller], now=rig.clock.monotonic, rates_hz={"*": {"thermo": -1.0}})
    with pytest.raises(ValueError, match="rate"):
        PollManager([rig.poller], now=rig.clock.monotonic, rates_hz={"*": {"thermo": float("nan")}})
    with pytest.raises(ValueError, match="two devices"):
        PollManager([rig.poller, rig.poller], now=rig.clock.monotonic, rates_hz={})


def test_channels_cover_every_device_with_unique_ids():
    _, manager = make_manager({}, names=("thermo", "spare"))
    channels = manager.channels()
    assert {c.name for c in channels} == {
        "dev.thermo.online",
        "dev.thermo.errors",
        "dev.spare.online",
        "dev.spare.errors",
    }
    assert len({c.id for c in channels}) == 4
