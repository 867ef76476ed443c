"""The device map: one TOML file naming every device, its driver, where it sits and its backend.

The same format serves the board (every device ``backend = "hardware"``), the bench (some real,
some simulated) and the simulator (all ``"sim"``)::

    [bench]
    name = "reference bench"

    [[device]]
    name = "power"           # unique, [a-z][a-z0-9_]*
    driver = "ina219"        # a key of hal.drivers.DRIVERS
    bus = 1                  # I2C drivers: bus number and 7-bit address 0x03..0x77
    address = 0x41
    backend = "hardware"     # or "sim"
    poll_hz = 10             # > 0: how often the executive polls it
    shunt_ohms = 0.1         # every other key is an option of the driver's constructor
    [device.sim]             # options of the simulated chip only (ignored on hardware)
    shunt_ohms = 0.1

    [[device]]
    name = "lidar"
    driver = "tfmini"
    port = "/dev/ttyAMA0"    # serial drivers: a device path or pyserial URL, and a baud rate
    baud = 115200            # optional, 115200 when absent
    backend = "hardware"
    poll_hz = 50

Driver options are checked against the driver constructor's keyword parameters here, so a typo
fails when the file is loaded, not when the device is built; their *values* are checked by the
driver itself when :mod:`hal.assembly` builds it. ``[device.sim]`` is the one place for options of
the simulated chip (see :mod:`hal.assembly` for how they reach the model).

Other top-level tables (``[link]``, ``[state]``, ``[mission]``, ...) belong to the flight
software and are kept, unvalidated, in :attr:`DeviceMap.extra`, so one file configures a whole
``fsw run``. Whether a driver is I2C or serial is read from its class (``I2CDevice`` or
``SerialDevice``): the driver table in :mod:`hal.drivers` stays the only list of drivers.

Every problem in a file is reported at once, in one :class:`DeviceMapError`, because a bench
technician fixing a map should not have to run the loader once per typo.
"""

from __future__ import annotations

import enum
import inspect
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeGuard

from hal.device import I2CDevice, SerialDevice
from hal.drivers import DRIVERS, driver_class
from hal.errors import ConfigError

__all__ = [
    "ADDRESS_MAX",
    "ADDRESS_MIN",
    "DEFAULT_BAUD",
    "Backend",
    "DeviceMap",
    "DeviceMapError",
    "DeviceSpec",
    "Kind",
    "driver_kind",
    "load_device_map",
    "parse_device_map",
]

#: The 7-bit addresses a device may use (0x00..0x02 and 0x78..0x7F are reserved by the I2C spec).
ADDRESS_MIN, ADDRESS_MAX = 0x03, 0x77
DEFAULT_BAUD = 115_200
_NAME_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_NAME_MAX = 32
#: Keys of a ``[[device]]`` entry that are not driver options.
_FIELDS = frozenset(
    {"name", "driver", "bus", "address", "port", "baud", "backend", "poll_hz", "sim"}
)
_I2C_ONLY = ("bus", "address")
_SERIAL_ONLY = ("port", "baud")
#: Constructor parameters the assembly passes itself; a device map cannot set them.
_RESERVED_OPTIONS = frozenset({"self", "bus", "address", "port", "name", "clock"})


@enum.unique
class Backend(enum.Enum):
    """Where a device's bytes go: the real chip or its register model."""

    HARDWARE = "hardware"
    SIM = "sim"


@enum.unique
class Kind(enum.Enum):
    """How a driver reaches its chip."""

    I2C = "i2c"
    SERIAL = "serial"


class DeviceMapError(ConfigError):
    """A device map with one or more problems; :attr:`problems` lists each one on its own."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
        body = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"device map {source}: {count}:\n{body}")


@dataclass(frozen=True)
class DeviceSpec:
    """One validated ``[[device]]`` entry.

    ``bus``/``address`` are set for I2C devices and ``port``/``baud`` for serial ones; the others
    are ``None``. ``options`` go to the driver's constructor, ``sim`` to the simulated chip's.
    """

    name: str
    driver: str
    kind: Kind
    backend: Backend
    poll_hz: float
    bus: int | None = None
    address: int | None = None
    port: str | None = None
    baud: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    sim: Mapping[str, Any] = field(default_factory=dict)

    @property
    def location(self) -> str:
        """``"i2c-1:0x76"`` or the port, as messages and the bench table print it."""
        if self.kind is Kind.I2C:
            return f"i2c-{self.bus}:0x{self.address or 0:02X}"
        return str(self.port)


@dataclass(frozen=True)
class DeviceMap:
    """A validated device map: devices in file order, plus the flight software's own tables."""

    source: str
    name: str
    devices: tuple[DeviceSpec, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    def device(self, name: str) -> DeviceSpec:
        """The device called ``name``.

        Raises:
            KeyError: no such device.
        """
        for spec in self.devices:
            if spec.name == name:
                return spec
        raise KeyError(f"device map {self.source}: no device named {name!r}")

    def names(self) -> list[str]:
        return [spec.name for spec in self.devices]

    def with_backend(self, backend: Backend) -> DeviceMap:
        """The same map with every device on ``backend`` (run a board's map in simulation)."""
        devices = tuple(replace(spec, backend=backend) for spec in self.devices)
        return replace(self, devices=devices)


def driver_kind(driver: str) -> Kind:
    """Whether ``driver`` is an I2C or a serial driver, from its class.

    Raises:
        ConfigError: unknown driver, a driver module that fails to import, or a class that is
            neither an ``I2CDevice`` nor a ``SerialDevice``.
    """
    cls = _load_driver(driver)
    if issubclass(cls, SerialDevice):
        return Kind.SERIAL
    if issubclass(cls, I2CDevice):
        return Kind.I2C
    raise ConfigError(f"driver {driver!r} ({cls.__name__}) is neither an I2C nor a serial driver")


def _load_driver(driver: str) -> type:
    try:
        return driver_class(driver)
    except ConfigError:
        raise
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"driver {driver!r} cannot be loaded ({exc})") from exc


def _driver_options(driver: str) -> frozenset[str] | None:
    """Keyword options the driver's constructor takes (``None``: it takes any)."""
    params = inspect.signature(_load_driver(driver)).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params if p.name not in _RESERVED_OPTIONS)


def load_device_map(path: Path) -> DeviceMap:
    """Read and validate a device map file.

    Raises:
        DeviceMapError: the file cannot be read, is not UTF-8 TOML, or fails validation.
    """
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DeviceMapError(source, [f"cannot read the file ({exc.strerror or exc})"]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeviceMapError(source, [f"not UTF-8 text (byte {exc.start})"]) from exc
    return parse_device_map(text, source=source)


def parse_device_map(text: str, *, source: str) -> DeviceMap:
    """Validate a device map given as TOML text; ``source`` names it in messages.

    Raises:
        DeviceMapError: malformed TOML (with line and column) or any validation problem; the
            message lists every problem found.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeviceMapError(source, [f"malformed TOML: {exc}"]) from exc
    except (ValueError, RecursionError) as exc:  # lone surrogates, absurd nesting
        raise DeviceMapError(source, [f"malformed TOML: {exc}"]) from exc
    problems: list[str] = []
    name = _bench_name(doc.get("bench"), source, problems)
    raw_devices = doc.get("device", [])
    devices: list[DeviceSpec] = []
    if not isinstance(raw_devices, list):
        problems.append("'device' must be an array of tables, written [[device]]")
        raw_devices = []
    for index, entry in enumerate(raw_devices):
        spec = _device(index, entry, problems)
        if spec is not None:
            devices.append(spec)
    _cross_checks(raw_devices, problems)
    extra: dict[str, Any] = {}
    for key, value in doc.items():
        if key in ("bench", "device"):
            continue
        if key == "devices":
            problems.append("unknown table 'devices': devices are written [[device]]")
        elif not isinstance(value, dict):
            problems.append(f"top-level key {key!r} must be a table, got {_type(value)}")
        else:
            extra[key] = value
    if problems:
        raise DeviceMapError(source, problems)
    return DeviceMap(source=source, name=name, devices=tuple(devices), extra=extra)


def _type(value: object) -> str:
    return type(value).__name__


def _bench_name(bench: object, source: str, problems: list[str]) -> str:
    default = Path(source).stem or source
    if bench is None:
        return default
    if not isinstance(bench, dict):
        problems.append(f"'bench' must be a table, got {_type(bench)}")
        return default
    name = bench.get("name", default)
    if not isinstance(name, str):
        problems.append(f"bench: field name must be a string, got {_type(name)}")
        return default
    return name


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class _Entry:
    """One raw ``[[device]]`` table under validation; each method checks one group of fields,
    appends what is wrong to ``problems`` and returns the valid value or ``None``."""

    def __init__(self, index: int, entry: dict[str, Any], problems: list[str]) -> None:
        self.entry = entry
        self.problems = problems
        name = entry.get("name")
        self.label = f"device[{index}] {name!r}" if isinstance(name, str) else f"device[{index}]"

    def bad(self, fieldname: str, why: str) -> None:
        self.problems.append(f"{self.label}: field {fieldname}: {why}")

    def name(self) -> str | None:
        name = self.entry.get("name")
        if name is None:
            self.bad("name", "missing")
        elif not isinstance(name, str):
            self.bad("name", f"must be a string, got {_type(name)}")
        elif len(name) > _NAME_MAX or not _NAME_RE.match(name):
            self.bad("name", f"{name!r} must match [a-z][a-z0-9_]* (at most {_NAME_MAX} chars)")
        else:
            return name
        return None

    def driver(self) -> tuple[str, Kind] | None:
        driver = self.entry.get("driver")
        known = ", ".join(sorted(DRIVERS))
        if driver is None:
            self.bad("driver", f"missing; known drivers: {known}")
        elif not isinstance(driver, str):
            self.bad("driver", f"must be a string, got {_type(driver)}")
        elif driver not in DRIVERS:
            self.bad("driver", f"unknown driver {driver!r}; known: {known}")
        else:
            try:
                return driver, driver_kind(driver)
            except ConfigError as exc:
                self.bad("driver", str(exc))
        return None

    def backend(self) -> Backend | None:
        value = self.entry.get("backend")
        choices = ", ".join(repr(b.value) for b in Backend)
        if value is None:
            self.bad("backend", f"missing; one of {choices}")
        elif not isinstance(value, str) or value not in {b.value for b in Backend}:
            self.bad("backend", f"{value!r} is not one of {choices}")
        else:
            return Backend(value)
        return None

    def poll_hz(self) -> float | None:
        value = self.entry.get("poll_hz")
        if value is None:
            self.bad("poll_hz", "missing")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            self.bad("poll_hz", f"must be a number, got {_type(value)}")
        elif not (math.isfinite(value) and value > 0):
            self.bad("poll_hz", f"must be positive and finite, got {value}")
        else:
            return float(value)
        return None

    def i2c_location(self, driver: str | None) -> tuple[int, int] | None:
        """Bus and address; with ``driver`` None (unknown) only the fields present are checked."""
        before = len(self.problems)
        bus, address = self.entry.get("bus"), self.entry.get("address")
        if bus is None:
            if driver is not None:
                self.bad("bus", f"missing (driver {driver} is an I2C driver)")
        elif not _is_int(bus) or not 0 <= bus <= 0xFFFF:
            self.bad("bus", f"must be an I2C bus number 0..65535, got {bus!r}")
        if address is None:
            if driver is not None:
                self.bad("address", f"missing (driver {driver} is an I2C driver)")
        elif not _is_int(address):
            self.bad("address", f"must be an integer, got {_type(address)}")
        elif not ADDRESS_MIN <= address <= ADDRESS_MAX:
            span = f"0x{ADDRESS_MIN:02X}..0x{ADDRESS_MAX:02X}"
            self.bad("address", f"{address:#04x} is outside {span}")
        for key in _SERIAL_ONLY:
            if driver is not None and key in self.entry:
                self.bad(key, f"applies to serial drivers only; {driver} is an I2C driver")
        if len(self.problems) > before or not (_is_int(bus) and _is_int(address)):
            return None
        return bus, address

    def serial_location(self, driver: str | None) -> tuple[str, int] | None:
        """Port and baud; with ``driver`` None (unknown) only the fields present are checked."""
        before = len(self.problems)
        port, baud = self.entry.get("port"), self.entry.get("baud", DEFAULT_BAUD)
        if port is None:
            if driver is not None:
                self.bad("port", f"missing (driver {driver} is a serial driver)")
        elif not isinstance(port, str):
            self.bad("port", f"must be a device path or URL string, got {_type(port)}")
        elif not port.strip():
            self.bad("port", "must not be empty")
        if not _is_int(baud) or baud <= 0:
            self.bad("baud", f"must be a positive integer, got {baud!r}")
        for key in _I2C_ONLY:
            if driver is not None and key in self.entry:
                self.bad(key, f"applies to I2C drivers only; {driver} is a serial driver")
        if len(self.problems) > before or not (isinstance(port, str) and _is_int(baud)):
            return None
        return port, baud

    def options(self, driver: str | None) -> dict[str, Any]:
        options = {k: v for k, v in self.entry.items() if k not in _FIELDS}
        known = _driver_options(driver) if driver is not None else None
        if known is not None:
            listing = ", ".join(sorted(known)) or "none"
            for key in sorted(options):
                if key not in known:
                    self.bad(key, f"not an option of driver {driver} (options: {listing})")
        return options

    def sim(self) -> dict[str, Any]:
        sim = self.entry.get("sim", {})
        if isinstance(sim, dict):
            return sim
        self.bad("sim", f"must be a table, written [device.sim], got {_type(sim)}")
        return {}


def _device(index: int, entry: object, problems: list[str]) -> DeviceSpec | None:
    """Validate one entry, appending its problems; ``None`` when it has any."""
    if not isinstance(entry, dict):
        problems.append(f"device[{index}]: must be a table, written [[device]], got {_type(entry)}")
        return None
    before = len(problems)
    check = _Entry(index, entry, problems)
    name, driver, backend, poll_hz = check.name(), check.driver(), check.backend(), check.poll_hz()
    location: tuple[int, int] | tuple[str, int] | None = None
    if driver is None:  # unknown kind: still report whatever location fields are wrong
        check.i2c_location(None)
        check.serial_location(None)
    elif driver[1] is Kind.I2C:
        location = check.i2c_location(driver[0])
    else:
        location = check.serial_location(driver[0])
    options = check.options(driver[0] if driver else None)
    sim = check.sim()
    if len(problems) > before:
        return None
    assert name and driver and backend and poll_hz and location
    where: dict[str, Any]
    if driver[1] is Kind.I2C:
        where = {"bus": location[0], "address": location[1]}
    else:
        where = {"port": location[0], "baud": location[1]}
    return DeviceSpec(
        name=name,
        driver=driver[0],
        kind=driver[1],
        backend=backend,
        poll_hz=poll_hz,
        options=MappingProxyType(options),
        sim=MappingProxyType(sim),
        **where,
    )


def _cross_checks(entries: list[Any], problems: list[str]) -> None:
    """Problems between entries: duplicate names, two devices on one address or one port.

    Works on the raw entries, so a duplicate is reported even when an entry has other problems.
    """
    names: dict[str, int] = {}
    addresses: dict[tuple[int, int], int] = {}
    ports: dict[str, int] = {}

    def label(index: int) -> str:
        name = entries[index].get("name")
        return f"device[{index}] {name!r}" if isinstance(name, str) else f"device[{index}]"

    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        name, bus, address, port = (entry.get(k) for k in ("name", "bus", "address", "port"))
        if isinstance(name, str):
            if name in names:
                problems.append(
                    f"{label(index)}: field name: duplicate name (also {label(names[name])})"
                )
            names.setdefault(name, index)
        if _is_int(bus) and _is_int(address):
            key = (bus, address)
            if key in addresses:
                problems.append(
                    f"{label(index)}: field address: duplicate address 0x{address:02X} on bus "
                    f"{bus} (also {label(addresses[key])})"
                )
            addresses.setdefault(key, index)
        if isinstance(port, str):
            if port in ports:
                problems.append(
                    f"{label(index)}: field port: duplicate port {port!r} (also "
                    f"{label(ports[port])})"
                )
            ports.setdefault(port, index)
