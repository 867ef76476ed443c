"""Build the buses and devices a device map describes, on real hardware or simulated chips.

This is the only module outside ``hal/sim`` that imports :mod:`hal.sim`: drivers never learn which
backend is beneath them. :class:`~hal.sim.Environment` is re-exported here, so a mission simulator
that drives the simulated chips' physical inputs needs ``hal.assembly`` and not ``hal.sim``.

Nothing here touches hardware at import time: :func:`build` opens each real bus
(``smbus2.SMBus(n)``) and serial port, and only those a map asks for.

Backends per device, so a bench can be half real, half simulated:

* I2C: one :class:`~hal.i2c.I2CBus` per bus number, shared by every device on it. Hardware devices
  reach ``smbus2.SMBus(n)``, simulated ones a :class:`~hal.sim.SimSMBus` with their register model
  attached at the map's address. When one bus number carries both, an address router sends each
  transfer to the real bus or the simulated one, so a missing chip can be simulated in place.
* Serial: hardware opens the map's port (device path or pyserial URL) at its baud rate; a
  simulated device's model is itself the pyserial-compatible port, named by the map's ``port``.

Options for simulated chips: a model is constructed as ``Model(env, clock=clock, **options)``
where ``options`` are (1) the driver options whose names the model's constructor also takes
(physical facts of the board that driver and chip must agree on, such as ``shunt_ohms``), then
(2) the device's ``[device.sim]`` table, which overrides them, then (3) ``seed`` when the model
takes one and the map did not set it (derived from :func:`build`'s ``seed`` and the device name,
so a run is reproducible and devices do not share a noise sequence).

Failures are split in two. A wrong map (a driver or model rejecting an option) raises
:class:`~hal.devmap.DeviceMapError` listing every problem: nothing could be trusted. Hardware that
cannot be reached (no ``/dev/i2c-N``, a serial port that will not open) is recorded per device in
:attr:`Bench.failed` and the rest of the bench is built, so ``fsw bench probe`` reports one row per
device and a technician sees every fault at once.
"""

from __future__ import annotations

import errno
import inspect
import logging
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from hal.clock import Clock
from hal.device import Device
from hal.devmap import Backend, DeviceMap, DeviceMapError, DeviceSpec, Kind, parse_device_map
from hal.drivers import driver_class
from hal.errors import BusError, BusIOError, ConfigError, HALError
from hal.i2c import I2CBus, SMBusLike
from hal.serialport import SerialPort
from hal.sim import Environment, SimSMBus, model_class

__all__ = ["Bench", "Environment", "SMBusFactory", "build", "sim_bench_map"]

log = logging.getLogger(__name__)

#: Opens I2C bus ``n``; ``smbus2.SMBus`` on the board, a fake in tests.
SMBusFactory = Callable[[int], SMBusLike]

_SIM_BENCH = "sim_bench.toml"


def sim_bench_map() -> DeviceMap:
    """The reference bench with every device simulated (``hal/data/sim_bench.toml``).

    Raises:
        DeviceMapError: the shipped file is broken (a packaging bug).
    """
    text = resources.files("hal").joinpath("data").joinpath(_SIM_BENCH).read_text(encoding="utf-8")
    return parse_device_map(text, source=f"hal/data/{_SIM_BENCH}")


def _open_smbus(bus: int) -> SMBusLike:
    import smbus2  # imported on use: a simulated bench never needs it

    smbus: SMBusLike = smbus2.SMBus(bus)
    return smbus


@dataclass
class Bench:
    """Everything :func:`build` made; :meth:`close` releases it.

    Attributes:
        devices: device name -> driver, in map order (devices that could not be built are absent).
        failed: device name -> why it could not be built (its hardware bus or port would not open).
        buses: bus number -> the shared I2C bus.
        sim_buses: bus number -> the simulated SMBus beneath it (simulated devices only).
        models: device name -> simulated chip, for tests and the mission simulator.
        env: the physical inputs of every simulated chip (``None`` with no simulated device).
    """

    devmap: DeviceMap
    clock: Clock
    devices: dict[str, Device] = field(default_factory=dict)
    failed: dict[str, HALError] = field(default_factory=dict)
    buses: dict[int, I2CBus] = field(default_factory=dict)
    sim_buses: dict[int, SimSMBus] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    env: Environment | None = None
    _closed: bool = field(default=False, init=False, repr=False)

    def spec(self, name: str) -> DeviceSpec:
        return self.devmap.device(name)

    def close(self) -> None:
        """Close every device, then every bus; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for device in self.devices.values():
            try:
                device.close()
            except (HALError, OSError) as exc:
                log.warning("closing %s: %s", device.name, exc)
        for bus in self.buses.values():
            try:
                bus.close()
            except OSError as exc:
                log.warning("closing %s: %s", bus.name, exc)

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AddressRouter:
    """An SMBus that sends each transfer to the real bus or the simulated one by address."""

    def __init__(self, real: SMBusLike, sim: SimSMBus) -> None:
        self.real = real
        self.sim = sim

    def _to(self, address: int) -> SMBusLike:
        return self.sim if address in self.sim.devices else self.real

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        return self._to(i2c_addr).read_byte_data(i2c_addr, register, force)

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        self._to(i2c_addr).write_byte_data(i2c_addr, register, value, force)

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        return self._to(i2c_addr).read_i2c_block_data(i2c_addr, register, length, force)

    def write_i2c_block_data(
        self, i2c_addr: int, register: int, data: list[int], force: bool | None = None
    ) -> None:
        self._to(i2c_addr).write_i2c_block_data(i2c_addr, register, data, force)

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        # A combined transfer addresses one chip (repeated start, one STOP): route by the first.
        address = int(i2c_msgs[0].addr) if i2c_msgs else 0
        self._to(address).i2c_rdwr(*i2c_msgs)

    def close(self) -> None:
        try:
            self.real.close()
        finally:
            self.sim.close()


def _open_failure(bus: int, exc: OSError) -> BusIOError:
    path = f"/dev/i2c-{bus}"
    if exc.errno == errno.ENOENT:
        hint = "no such bus; is I2C enabled (dtparam=i2c_arm=on) and the bus number right?"
    elif exc.errno == errno.EACCES:
        hint = "permission denied; add the user to the i2c group"
    else:
        hint = exc.strerror or str(exc)
    return BusIOError(f"i2c-{bus}: cannot open {path} ({hint})", exc.errno)


def _parameters(cls: Any) -> tuple[frozenset[str], bool]:
    """A constructor's keyword names and whether it takes ``**kwargs``."""
    params = inspect.signature(cls).parameters.values()
    names = frozenset(p.name for p in params if p.name not in ("self", "env", "clock"))
    return names, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class _Builder:
    """One :func:`build` call; collects configuration problems instead of stopping at the first."""

    def __init__(self, bench: Bench, *, seed: int, smbus_factory: SMBusFactory) -> None:
        self.bench = bench
        self.seed = seed
        self.smbus_factory = smbus_factory
        self.problems: list[str] = []

    def _model(self, spec: DeviceSpec) -> Any | None:
        try:
            cls = model_class(spec.driver)
        except (KeyError, ImportError, AttributeError) as exc:
            self.problems.append(
                f"device {spec.name!r}: no simulated chip for {spec.driver} ({exc})"
            )
            return None
        names, any_kw = _parameters(cls)
        kwargs = {k: v for k, v in spec.options.items() if k in names}
        unknown = [k for k in spec.sim if k not in names and not any_kw]
        for key in unknown:
            listing = ", ".join(sorted(names)) or "none"
            self.problems.append(
                f"device {spec.name!r}: field sim.{key}: not an option of the simulated "
                f"{spec.driver} (options: {listing})"
            )
        if unknown:
            return None
        kwargs.update(spec.sim)
        if "name" in names and "name" not in kwargs:  # the model's messages name the map's port
            kwargs["name"] = spec.port or spec.name
        if "seed" in names and "seed" not in kwargs:
            kwargs["seed"] = (self.seed << 32) ^ zlib.crc32(spec.name.encode())
        assert self.bench.env is not None
        try:
            model = cls(self.bench.env, clock=self.bench.clock, **kwargs)
        except (TypeError, ValueError) as exc:  # ConfigError is a ValueError
            self.problems.append(f"device {spec.name!r}: field sim: simulated chip says: {exc}")
            return None
        self.bench.models[spec.name] = model
        return model

    def i2c_bus(self, number: int, specs: list[DeviceSpec]) -> None:
        hardware = [s for s in specs if s.backend is Backend.HARDWARE]
        simulated = [s for s in specs if s.backend is Backend.SIM]
        real: SMBusLike | None = None
        if hardware:
            try:
                real = self.smbus_factory(number)
            except OSError as exc:
                failure = _open_failure(number, exc)
                log.warning("%s", failure)
                for spec in hardware:
                    self.bench.failed[spec.name] = failure
        sim: SimSMBus | None = None
        if simulated:
            sim = SimSMBus(number, seed=self.seed)
            self.bench.sim_buses[number] = sim
            for spec in simulated:
                model = self._model(spec)
                if model is not None:
                    assert spec.address is not None
                    sim.attach(spec.address, model)
        smbus: SMBusLike
        if real is not None and sim is not None:
            smbus, name = _AddressRouter(real, sim), f"i2c-{number}"
        elif real is not None:
            smbus, name = real, f"i2c-{number}"
        elif sim is not None:
            smbus, name = sim, f"sim:i2c-{number}"
        else:
            return
        self.bench.buses[number] = I2CBus(smbus, name=name)

    def serial_port(self, spec: DeviceSpec) -> SerialPort | None:
        assert spec.port is not None and spec.baud is not None
        if spec.backend is Backend.SIM:
            model = self._model(spec)
            return None if model is None else SerialPort(model, name=spec.port)
        try:
            return SerialPort.open(spec.port, baudrate=spec.baud)
        except BusError as exc:
            log.warning("%s", exc)
            self.bench.failed[spec.name] = exc
            return None

    def device(self, spec: DeviceSpec, port: SerialPort | None) -> None:
        # Constructors differ per kind (bus and address, or port); the device map checked names.
        cls: Callable[..., Device] = driver_class(spec.driver)
        clock = self.bench.clock
        try:
            if spec.kind is Kind.I2C:
                bus = self.bench.buses.get(spec.bus) if spec.bus is not None else None
                if bus is None or spec.name in self.bench.failed:
                    return
                device = cls(bus, spec.address, name=spec.name, clock=clock, **spec.options)
            else:
                if port is None:
                    return
                device = cls(port, name=spec.name, clock=clock, **spec.options)
        except (ConfigError, TypeError) as exc:
            self.problems.append(f"device {spec.name!r}: driver {spec.driver} says: {exc}")
            if port is not None:
                port.close()
            return
        self.bench.devices[spec.name] = device


def _by_bus(specs: Iterable[DeviceSpec]) -> dict[int, list[DeviceSpec]]:
    groups: dict[int, list[DeviceSpec]] = {}
    for spec in specs:
        if spec.kind is Kind.I2C and spec.bus is not None:
            groups.setdefault(spec.bus, []).append(spec)
    return groups


def build(
    devmap: DeviceMap,
    *,
    clock: Clock,
    env: Environment | None = None,
    seed: int = 0,
    smbus_factory: SMBusFactory | None = None,
) -> Bench:
    """Open the buses and construct every device of ``devmap``.

    Args:
        devmap: a validated map (:func:`hal.devmap.load_device_map`).
        clock: handed to every driver and simulated chip.
        env: the simulated chips' physical inputs; a default :class:`Environment` when ``None``
            and the map has a simulated device.
        seed: seeds the simulated buses and chips, for reproducible runs.
        smbus_factory: opens a hardware I2C bus by number (default ``smbus2.SMBus``).

    Raises:
        DeviceMapError: a driver or simulated chip rejected its options (every such problem is
            listed); whatever was opened is closed again first.

    Hardware that cannot be opened does not raise: see :attr:`Bench.failed`.
    """
    if env is None and any(s.backend is Backend.SIM for s in devmap.devices):
        env = Environment()
    bench = Bench(devmap=devmap, clock=clock, env=env)
    builder = _Builder(bench, seed=seed, smbus_factory=smbus_factory or _open_smbus)
    for number, specs in sorted(_by_bus(devmap.devices).items()):
        builder.i2c_bus(number, specs)
    for spec in devmap.devices:
        port = builder.serial_port(spec) if spec.kind is Kind.SERIAL else None
        builder.device(spec, port)
    if builder.problems:
        bench.close()
        raise DeviceMapError(devmap.source, builder.problems)
    return bench
