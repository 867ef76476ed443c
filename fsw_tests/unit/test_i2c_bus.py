"""hal.i2c.I2CBus when transfers fail: errno mapping, bounded retries, messages, chaining.

The bus sits on a simulated SMBus (hal.sim) whose faults fail exactly as the Linux kernel does
(OSError with errno 121, 110 or 5). Errnos the simulator does not inject (6 ENXIO, none at all)
come from a small fake that raises a scripted sequence of OSErrors before handing over.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

import pytest

from flight.clock import SimClock
from hal.errors import BusError, BusIOError, BusTimeoutError, ConfigError, HALError, NoAckError
from hal.i2c import I2CBus
from hal.sim import BusFault, Environment, RegisterModel, SimSMBus

ADDR = 0x76


@pytest.fixture
def sim() -> SimSMBus:
    smbus = SimSMBus(1, seed=3)
    model = smbus.attach(ADDR, RegisterModel(Environment(), clock=SimClock()))
    model.regs[0xD0] = 0x60
    return smbus


def make_bus(smbus: Any, retries: int = 2) -> I2CBus:
    return I2CBus(smbus, name="i2c-1", retries=retries)


class ScriptedSMBus:
    """Each transfer takes the next script entry: an OSError is raised, ``None`` passes through
    to the simulated bus (as does everything once the script runs out). Calls are logged."""

    def __init__(self, inner: SimSMBus, script: list[OSError | None]) -> None:
        self.inner = inner
        self.script = list(script)
        self.log: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        target = getattr(self.inner, name)

        def call(*args: Any) -> Any:
            self.log.append((name, args))
            step = self.script.pop(0) if self.script else None
            if step is not None:
                raise step
            return target(*args)

        return call


ERRNO_CASES = [
    ("no_ack", errno.EREMOTEIO, NoAckError, "no acknowledge"),
    ("timeout", errno.ETIMEDOUT, BusTimeoutError, "bus timeout"),
    ("io", errno.EIO, BusIOError, "I/O error"),
]


@pytest.mark.parametrize(("kind", "code", "error", "words"), ERRNO_CASES)
def test_kernel_errno_maps_to_the_hal_error_with_part_address_and_cause(
    sim: SimSMBus, kind: str, code: int, error: type[BusError], words: str
) -> None:
    bus = make_bus(sim)
    sim.inject(ADDR, BusFault(kind))
    with pytest.raises(error) as info:
        bus.read_u8(ADDR, 0xD0, part="BME280")
    exc = info.value
    assert type(exc) is error
    assert isinstance(exc, BusError) and isinstance(exc, OSError) and isinstance(exc, HALError)
    assert exc.errno == code
    assert str(exc).startswith(f"BME280 at i2c-1:0x76: {words}")
    assert isinstance(exc.__cause__, OSError) and exc.__cause__.errno == code


def test_timeout_is_also_a_builtin_timeout_error(sim: SimSMBus) -> None:
    sim.inject(ADDR, BusFault("timeout"))
    with pytest.raises(TimeoutError):
        make_bus(sim).write_u8(ADDR, 0xF4, 0x27, part="BME280")


def test_enxio_is_no_ack(sim: SimSMBus) -> None:
    fake = ScriptedSMBus(sim, [OSError(errno.ENXIO, "No such device or address")] * 3)
    with pytest.raises(NoAckError, match=r"PCA9685 at i2c-1:0x76: no acknowledge") as info:
        make_bus(fake).read_u8(ADDR, 0, part="PCA9685")
    assert info.value.errno == errno.ENXIO


def test_oserror_without_errno_is_an_io_error_naming_what_happened(sim: SimSMBus) -> None:
    bus = make_bus(ScriptedSMBus(sim, [OSError("adapter vanished")] * 3))
    with pytest.raises(BusIOError, match="adapter vanished") as info:
        bus.read_u8(ADDR, 0)
    assert info.value.errno is None
    assert (bus.stats.failures, bus.stats.errors_by_errno) == (1, {})


def test_bare_timeout_error_from_below_is_a_bus_timeout(sim: SimSMBus) -> None:
    fake = ScriptedSMBus(sim, [TimeoutError("clock stretched too long")] * 3)
    with pytest.raises(BusTimeoutError, match="clock stretched"):
        make_bus(fake).read_u8(ADDR, 0)


def test_transient_fault_is_retried_and_counted(sim: SimSMBus) -> None:
    bus = make_bus(sim, retries=2)
    sim.inject(ADDR, BusFault("no_ack", count=2))
    assert bus.read_u8(ADDR, 0xD0) == 0x60
    assert bus.stats.transfers == 3
    assert bus.stats.retries == 2
    assert bus.stats.failures == 0
    assert bus.stats.errors_by_errno == {errno.EREMOTEIO: 2}


def test_fault_outlasting_the_retries_fails_once_after_every_attempt(sim: SimSMBus) -> None:
    bus = make_bus(sim, retries=2)
    sim.inject(ADDR, BusFault("io", count=3))
    with pytest.raises(BusIOError):
        bus.read_u8(ADDR, 0xD0)
    assert (bus.stats.transfers, bus.stats.retries, bus.stats.failures) == (3, 2, 1)
    assert bus.stats.errors_by_errno == {errno.EIO: 3}
    assert bus.read_u8(ADDR, 0xD0) == 0x60  # the fault has cleared: the bus is still usable
    assert bus.stats.transfers == 4


def test_no_retries_means_one_attempt(sim: SimSMBus) -> None:
    bus = make_bus(sim, retries=0)
    sim.inject(ADDR, BusFault("timeout", count=1))
    with pytest.raises(BusTimeoutError):
        bus.read_u8(ADDR, 0xD0)
    assert (bus.stats.transfers, bus.stats.retries, bus.stats.failures) == (1, 0, 1)


def test_mixed_errnos_are_counted_separately_and_the_last_one_is_raised(sim: SimSMBus) -> None:
    failures = [OSError(errno.EIO, "eio"), OSError(errno.ETIMEDOUT, "slow"),
                OSError(errno.EREMOTEIO, "nak")]  # fmt: skip
    bus = make_bus(ScriptedSMBus(sim, failures))
    with pytest.raises(NoAckError):
        bus.read_u8(ADDR, 0)
    assert bus.stats.errors_by_errno == {errno.EIO: 1, errno.ETIMEDOUT: 1, errno.EREMOTEIO: 1}


def test_hal_error_from_below_passes_through_without_retry(sim: SimSMBus) -> None:
    fake = ScriptedSMBus(sim, [NoAckError("already mapped", errno.EREMOTEIO)])
    bus = make_bus(fake, retries=5)
    with pytest.raises(NoAckError, match="already mapped"):
        bus.read_u8(ADDR, 0)
    assert len(fake.log) == 1
    assert bus.stats.retries == 0


def test_absent_device_does_not_ack(sim: SimSMBus) -> None:
    with pytest.raises(NoAckError, match="0x55"):
        make_bus(sim).read_block(0x55, 0, 4, part="INA219")


def test_each_block_of_a_split_read_is_retried_on_its_own(sim: SimSMBus) -> None:
    sim.devices[ADDR].regs[0x80:0xC0] = bytes(range(64))
    fake = ScriptedSMBus(sim, [None, OSError(errno.EREMOTEIO, "nak")])
    bus = make_bus(fake, retries=1)
    assert bus.read_block(ADDR, 0x80, 64) == bytes(range(64))
    assert [(name, args[1], args[2]) for name, args in fake.log] == [
        ("read_i2c_block_data", 0x80, 32),
        ("read_i2c_block_data", 0xA0, 32),
        ("read_i2c_block_data", 0xA0, 32),
    ]
    assert (bus.stats.transfers, bus.stats.retries, bus.stats.failures) == (3, 1, 0)


def test_out_of_range_byte_is_refused_before_any_transfer(sim: SimSMBus) -> None:
    bus = make_bus(sim)
    with pytest.raises(ConfigError, match=r"BME280 at i2c-1:0x76: byte value 256"):
        bus.write_u8(ADDR, 0xF4, 256, part="BME280")
    assert bus.stats.transfers == 0


def test_negative_retries_are_a_config_error(sim: SimSMBus) -> None:
    with pytest.raises(ConfigError, match="retries"):
        I2CBus(sim, name="i2c-1", retries=-1)


def test_closed_bus_fails_as_an_io_error(sim: SimSMBus) -> None:
    bus = make_bus(sim)
    bus.close()
    with pytest.raises(BusIOError) as info:
        bus.read_u8(ADDR, 0xD0)
    assert info.value.errno == errno.EBADF


def test_combined_transfer_faults_are_mapped_too(sim: SimSMBus) -> None:
    bus = make_bus(sim, retries=0)
    sim.inject(ADDR, BusFault("no_ack"))
    with pytest.raises(NoAckError, match="LIS3MDL at i2c-1:0x76"):
        bus.write_read(ADDR, bytes([0xA8]), 6, part="LIS3MDL")
    sim.clear_fault(ADDR)
    assert bus.write_read(ADDR, bytes([0xD0]), 1) == b"\x60"


def test_random_faults_are_hidden_by_retries_and_visible_in_stats(sim: SimSMBus) -> None:
    bus = make_bus(sim, retries=5)
    sim.inject(ADDR, BusFault("io", rate=0.2))
    values = [bus.read_u8(ADDR, 0xD0) for _ in range(200)]
    assert set(values) == {0x60}
    assert bus.stats.retries > 20
    assert bus.stats.transfers == 200 + bus.stats.retries
    assert bus.stats.errors_by_errno == {errno.EIO: bus.stats.retries}
