"""hal.assembly: a device map becomes shared buses and drivers, real, simulated or both."""

from __future__ import annotations

import ast
import errno
from pathlib import Path
from typing import Any

import pytest

from flight.clock import SimClock
from hal.assembly import build, sim_bench_map
from hal.devmap import Backend, DeviceMap, DeviceMapError, Kind, parse_device_map
from hal.drivers.bme280 import BME280
from hal.drivers.tfmini import TFminiPlus
from hal.errors import BusIOError, NoAckError
from hal.sim import Environment, SimSMBus
from hal.sim.bme280 import BME280Model

REPO = Path(__file__).resolve().parents[2]


def devmap(text: str) -> DeviceMap:
    return parse_device_map(text, source="test.toml")


def i2c(name: str, driver: str, address: int, backend: str, bus: int = 1, extra: str = "") -> str:
    return (
        f'[[device]]\nname = "{name}"\ndriver = "{driver}"\nbus = {bus}\naddress = {address}\n'
        f'backend = "{backend}"\npoll_hz = 10\n{extra}\n'
    )


class NoBus:
    """An smbus factory for a machine without I2C, recording what was asked for."""

    def __init__(self, code: int = errno.ENOENT) -> None:
        self.code = code
        self.opened: list[int] = []

    def __call__(self, number: int) -> Any:
        self.opened.append(number)
        raise OSError(self.code, "No such file or directory")


def test_shipped_sim_bench_is_the_reference_bench() -> None:
    m = sim_bench_map()
    where = {s.name: (s.driver, s.bus, s.address, s.port) for s in m.devices}
    assert where == {
        "baro": ("bme280", 1, 0x76, None),
        "mag": ("lis3mdl", 1, 0x1C, None),
        "imu": ("mpu6050", 1, 0x68, None),
        "power": ("ina219", 1, 0x41, None),
        "pwm": ("pca9685", 1, 0x40, None),
        "lidar": ("tfmini", None, None, "sim://lidar"),
    }
    assert {s.backend for s in m.devices} == {Backend.SIM}


def test_sim_bench_builds_one_shared_bus_and_every_device_answers() -> None:
    clock = SimClock()
    with build(sim_bench_map(), clock=clock) as bench:
        assert list(bench.devices) == ["baro", "mag", "imu", "power", "pwm", "lidar"]
        assert not bench.failed
        assert list(bench.buses) == [1]
        bus = bench.buses[1]
        i2c_devices = [d for n, d in bench.devices.items() if n != "lidar"]
        assert all(d.bus is bus for d in i2c_devices)  # type: ignore[attr-defined]
        assert sorted(bench.sim_buses[1].devices) == [0x1C, 0x40, 0x41, 0x68, 0x76]
        assert set(bench.models) == set(bench.devices)
        assert bench.models["baro"] is bench.sim_buses[1].devices[0x76]
        lidar = bench.devices["lidar"]
        assert isinstance(lidar, TFminiPlus) and lidar.port.name == "sim://lidar"
        for device in bench.devices.values():
            device.probe()
            device.configure()


def test_simulated_chips_read_the_shared_environment() -> None:
    env = Environment(pressure_pa=95_000.0)
    clock = SimClock()
    with build(sim_bench_map(), clock=clock, env=env) as bench:
        assert bench.env is env
        baro = bench.devices["baro"]
        baro.probe()
        baro.configure()
        clock.advance(0.1)
        assert baro.read().as_dict()["pressure_pa"] == pytest.approx(95_000.0, abs=5)
        env.pressure_pa = 80_000.0
        clock.advance(0.1)
        assert baro.read().as_dict()["pressure_pa"] == pytest.approx(80_000.0, abs=5)


def test_driver_options_the_model_shares_reach_it_and_sim_table_overrides() -> None:
    shared = devmap(i2c("power", "ina219", 0x41, "sim", extra="shunt_ohms = 0.05"))
    with build(shared, clock=SimClock()) as bench:
        assert bench.models["power"].shunt_ohms == 0.05
    override = devmap(
        i2c(
            "power",
            "ina219",
            0x41,
            "sim",
            extra="shunt_ohms = 0.05\n[device.sim]\nshunt_ohms = 0.1",
        )
    )
    with build(override, clock=SimClock()) as bench:
        assert bench.models["power"].shunt_ohms == 0.1
        assert bench.devices["power"].shunt_ohms == 0.05  # type: ignore[attr-defined]


def test_unknown_sim_option_is_a_map_error_naming_it() -> None:
    m = devmap(i2c("baro", "bme280", 0x76, "sim", extra="[device.sim]\nflavour = 'mint'"))
    with pytest.raises(DeviceMapError, match=r"device 'baro': field sim\.flavour"):
        build(m, clock=SimClock())


def test_option_values_rejected_by_drivers_are_all_reported_together() -> None:
    m = devmap(
        i2c("pwm", "pca9685", 0x40, "sim", extra="pwm_hz = 5000")
        + i2c("power", "ina219", 0x41, "sim", extra="max_current_a = -1")
    )
    with pytest.raises(DeviceMapError) as info:
        build(m, clock=SimClock())
    problems = info.value.problems
    assert len(problems) == 2
    assert "device 'pwm': driver pca9685 says" in problems[0] and "pwm_hz" in problems[0]
    assert "device 'power'" in problems[1] and "max_current_a" in problems[1]


def test_nothing_is_opened_before_build_and_each_hardware_bus_once() -> None:
    factory = NoBus()
    m = devmap(
        i2c("baro", "bme280", 0x76, "hardware", bus=3)
        + i2c("imu", "mpu6050", 0x68, "hardware", bus=3)
        + i2c("mag", "lis3mdl", 0x1C, "sim", bus=4)
    )
    assert factory.opened == []
    with build(m, clock=SimClock(), smbus_factory=factory):
        assert factory.opened == [3]


def test_unopenable_hardware_bus_fails_its_devices_not_the_bench() -> None:
    m = devmap(
        i2c("baro", "bme280", 0x76, "hardware", bus=7) + i2c("mag", "lis3mdl", 0x1C, "sim", bus=1)
    )
    with build(m, clock=SimClock(), smbus_factory=NoBus()) as bench:
        assert list(bench.devices) == ["mag"]
        failure = bench.failed["baro"]
        assert isinstance(failure, BusIOError) and failure.errno == errno.ENOENT
        assert "i2c-7: cannot open /dev/i2c-7" in str(failure)
        assert "I2C enabled" in str(failure)
        bench.devices["mag"].probe()


def test_permission_denied_hints_at_the_i2c_group() -> None:
    m = devmap(i2c("baro", "bme280", 0x76, "hardware"))
    with build(m, clock=SimClock(), smbus_factory=NoBus(errno.EACCES)) as bench:
        assert "i2c group" in str(bench.failed["baro"])


def test_real_smbus2_on_a_bus_this_machine_lacks() -> None:
    m = devmap(i2c("baro", "bme280", 0x76, "hardware", bus=250))
    assert not Path("/dev/i2c-250").exists()
    with build(m, clock=SimClock()) as bench:
        assert "cannot open /dev/i2c-250" in str(bench.failed["baro"])
        assert bench.devices == {}


def test_half_real_half_simulated_bus_routes_by_address() -> None:
    clock = SimClock()
    real = SimSMBus(1)  # plays the hardware: a BME280 really wired at 0x76
    real.attach(0x76, BME280Model(Environment(), clock=clock))
    m = devmap(i2c("baro", "bme280", 0x76, "hardware") + i2c("imu", "mpu6050", 0x68, "sim"))
    with build(m, clock=clock, smbus_factory=lambda n: real) as bench:
        bus = bench.buses[1]
        baro, imu = bench.devices["baro"], bench.devices["imu"]
        assert isinstance(baro, BME280)
        assert baro.bus is bus and imu.bus is bus  # type: ignore[attr-defined]
        assert bus.name == "i2c-1"
        assert list(bench.sim_buses[1].devices) == [0x68]
        assert set(bench.models) == {"imu"}
        assert "BME280" in baro.probe()
        assert "MPU" in imu.probe().upper()
        assert real.devices[0x76].history  # the baro's transfers went to the "hardware"
        with pytest.raises(NoAckError):
            bus.read_u8(0x55, 0)  # nobody there, real or simulated
    assert real.closed and bench.sim_buses[1].closed


def test_serial_hardware_opens_the_port_or_records_why_not() -> None:
    text = (
        '[[device]]\nname = "lidar"\ndriver = "tfmini"\nport = "{port}"\nbackend = "hardware"\n'
        "poll_hz = 50\n"
    )
    with build(devmap(text.format(port="loop://")), clock=SimClock()) as bench:
        lidar = bench.devices["lidar"]
        assert isinstance(lidar, TFminiPlus)
        assert lidar.port.name == "loop://" and lidar.port.baudrate == 115200
    assert not lidar.port.raw.is_open
    with build(devmap(text.format(port="/dev/ttyNOPE3")), clock=SimClock()) as bench:
        assert "/dev/ttyNOPE3: cannot open" in str(bench.failed["lidar"])


def test_with_backend_runs_a_board_map_in_simulation() -> None:
    board = sim_bench_map().with_backend(Backend.HARDWARE)
    with build(board.with_backend(Backend.SIM), clock=SimClock()) as bench:
        assert len(bench.devices) == 6
    assert {s.kind for s in board.devices} == {Kind.I2C, Kind.SERIAL}


def test_close_is_idempotent_and_closes_simulated_buses() -> None:
    bench = build(sim_bench_map(), clock=SimClock())
    bench.close()
    bench.close()
    assert bench.sim_buses[1].closed


def test_seed_reaches_the_simulated_chips_and_differs_per_device() -> None:
    m = sim_bench_map()
    with build(m, clock=SimClock(), seed=1) as one, build(m, clock=SimClock(), seed=2) as two:
        assert one.models["lidar"] is not two.models["lidar"]
        assert one.sim_buses[1]._rng.random() != two.sim_buses[1]._rng.random()


# --- layering -------------------------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _simulator_side(rel: str) -> bool:
    """hal/sim itself, the assembly that picks a backend, and a mission's simulator package
    (flight/missions/<name>/sim/: the physical world that drives the simulated chips)."""
    parts = rel.split("/")
    mission_sim = parts[:2] == ["flight", "missions"] and len(parts) > 4 and parts[3] == "sim"
    return rel.startswith("hal/sim/") or rel == "hal/assembly.py" or mission_sim


def test_only_the_assembly_imports_the_simulator() -> None:
    offenders = []
    for package in ("hal", "flight"):
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if _simulator_side(rel):
                continue
            if any(n == "hal.sim" or n.startswith("hal.sim.") for n in _imports(path)):
                offenders.append(rel)
    assert offenders == [], f"import hal.sim outside hal/sim and hal/assembly.py: {offenders}"
    assert "hal.sim" in _imports(REPO / "hal" / "assembly.py")  # the scan does see imports
