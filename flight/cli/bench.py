"""``fsw bench probe`` and ``fsw bench read``: is every device of a map there, and what does it say?

The first thing a technician runs on a new board or bench. Both commands build the map's devices
(:func:`hal.assembly.build`), then probe and configure each one; ``read`` also takes one reading.
Every device gets a row, whether it answered or not, and the reason it failed names the part and
its address, so one run shows every wiring fault on the bench.

Exit status: 0 when every device answered, 1 when one or more failed, 2 when the device map itself
is wrong (the message on stderr names the file, the device and the field).
"""

from __future__ import annotations

import argparse
import enum
import io
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flight.clock import SimClock, WallClock
from hal.assembly import Bench, build, sim_bench_map
from hal.devmap import Backend, DeviceMap, DeviceSpec, Kind, load_device_map
from hal.errors import ConfigError, HALError

__all__ = ["display_value", "format_value", "register", "split_unit"]

log = logging.getLogger(__name__)

#: Field-name suffix -> unit symbol: readings carry their unit in the field name (``pressure_pa``).
UNITS: dict[str, str] = {
    "pa": "Pa", "hpa": "hPa", "c": "°C", "k": "K", "pct": "%", "t": "T", "ut": "µT",
    "gauss": "G", "mps2": "m/s²", "mps": "m/s", "dps": "°/s", "radps": "rad/s", "v": "V",
    "mv": "mV", "a": "A", "ma": "mA", "w": "W", "ohm": "Ω", "m": "m", "cm": "cm", "mm": "mm",
    "hz": "Hz", "s": "s", "ms": "ms", "us": "µs", "deg": "°", "rad": "rad", "g": "g",
}  # fmt: skip

#: Simulated time allowed between configure and read: first conversions, LiDAR frames.
DEFAULT_SETTLE_S = 0.1


def split_unit(field_name: str) -> tuple[str, str]:
    """``"pressure_pa"`` -> ``("pressure", "Pa")``; a name without a unit suffix keeps ``""``."""
    stem, sep, suffix = field_name.rpartition("_")
    if sep and stem and suffix in UNITS:
        return stem, UNITS[suffix]
    return field_name, ""


def format_value(value: Any, unit: str = "") -> str:
    """A reading value for people: ``101325.0 Pa``, ``(1.0, 2.0, 3.0) m/s²``, ``yes``."""
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:.6g}"
        if math.isfinite(value) and not any(c in text for c in ".e"):
            text += ".0"
    elif isinstance(value, tuple | list):
        text = "(" + ", ".join(format_value(v) for v in value) + ")"
    elif isinstance(value, enum.Enum):
        text = value.name
    else:
        text = str(value)
    return f"{text} {unit}" if unit else text


#: Units shown scaled, because nobody reads a geomagnetic field as 2e-05 T.
_DISPLAY_SCALE: dict[str, tuple[float, str]] = {"T": (1e6, "µT")}


def _scaled(value: Any, factor: float) -> Any:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return value * factor
    if isinstance(value, tuple | list):
        return tuple(_scaled(v, factor) for v in value)
    return value


def display_value(value: Any, unit: str) -> str:
    """:func:`format_value` with a friendlier prefix where one helps (tesla -> µT)."""
    if unit in _DISPLAY_SCALE:
        factor, unit = _DISPLAY_SCALE[unit]
        value = _scaled(value, factor)
    return format_value(value, unit)


def _jsonable(value: Any) -> Any:
    """Strict JSON: non-finite floats become null, tuples lists, enums their names."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return str(value)


@dataclass
class Row:
    """What happened to one device."""

    spec: DeviceSpec
    ok: bool = False
    identity: str | None = None
    error: str | None = None
    reading: dict[str, Any] | None = None
    units: dict[str, str] = field(default_factory=dict)

    def as_json(self, *, with_reading: bool) -> dict[str, Any]:
        spec = self.spec
        out: dict[str, Any] = {
            "name": spec.name,
            "driver": spec.driver,
            "bus": spec.bus,
            "address": spec.address,
            "port": spec.port,
            "backend": spec.backend.value,
            "ok": self.ok,
            "identity": self.identity,
            "error": self.error,
        }
        if with_reading:
            out["reading"] = _jsonable(self.reading)
            out["units"] = dict(self.units)
        return out


def _reason(stage: str, exc: Exception) -> str:
    if isinstance(exc, HALError):
        return f"{stage}: {exc}"
    # Not a HAL error: a driver bug. Still one row, never a traceback in the technician's face.
    log.debug("%s raised", stage, exc_info=exc)
    return f"{stage}: internal error {type(exc).__name__}: {exc}"


def _bring_up(bench: Bench, spec: DeviceSpec) -> Row:
    row = Row(spec)
    failure = bench.failed.get(spec.name)
    device = bench.devices.get(spec.name)
    if failure is not None or device is None:
        row.error = f"open: {failure}" if failure is not None else "open: not built"
        return row
    stage = "probe"
    try:
        row.identity = device.probe()
        stage = "configure"
        device.configure()
    except Exception as exc:  # every failure becomes this row
        row.error = _reason(stage, exc)
        return row
    row.ok = True
    return row


def _read_one(bench: Bench, row: Row) -> None:
    device = bench.devices[row.spec.name]
    try:
        reading = device.read().as_dict()
    except Exception as exc:  # every failure becomes this row
        row.ok = False
        row.error = _reason("read", exc)
        return
    row.reading = reading
    row.units = {name: unit for name in reading if (unit := split_unit(name)[1])}


def _load(args: argparse.Namespace) -> DeviceMap:
    if args.sim:
        return sim_bench_map()
    path: Path = args.config
    return load_device_map(path)


def _location(spec: DeviceSpec) -> str:
    if spec.kind is Kind.I2C:
        return f"bus {spec.bus} 0x{spec.address or 0:02X}"
    return f"{spec.port} @{spec.baud}"


def _print_table(rows: list[Row]) -> None:
    table = [("DEVICE", "DRIVER", "BACKEND", "WHERE", "STATUS", "IDENTITY / REASON")]
    for row in rows:
        detail = row.identity if row.ok else row.error
        status = "OK" if row.ok else "FAIL"
        spec = row.spec
        table.append(
            (spec.name, spec.driver, spec.backend.value, _location(spec), status, detail or "")
        )
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5])


def _print_readings(rows: list[Row]) -> None:
    for row in rows:
        spec = row.spec
        head = f"{spec.name} ({spec.driver}, {spec.backend.value}, {_location(spec)})"
        if not row.ok or row.reading is None:
            print(f"{head}  FAIL  {row.error}")
            continue
        print(f"{head}  OK")
        labels = {name: split_unit(name) for name in row.reading}
        width = max((len(label) for label, _ in labels.values()), default=0)
        for name, value in row.reading.items():
            label, unit = labels[name]
            print(f"    {label.ljust(width)}  {display_value(value, unit)}")


def _run(args: argparse.Namespace, *, read: bool) -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Unit symbols (°C, µT, m/s²) must not crash a terminal whose encoding lacks them.
        sys.stdout.reconfigure(errors="replace")
    try:
        devmap = _load(args)
    except ConfigError as exc:
        print(f"fsw bench: {exc}", file=sys.stderr)
        return 2
    if not devmap.devices:
        print(f"fsw bench: device map {devmap.source} lists no devices", file=sys.stderr)
    # All simulated: simulated time, so settling costs nothing and runs are reproducible.
    all_sim = all(s.backend is Backend.SIM for s in devmap.devices)
    clock: SimClock | WallClock = SimClock() if all_sim else WallClock()
    try:
        bench = build(devmap, clock=clock, seed=args.seed)
    except ConfigError as exc:
        print(f"fsw bench: {exc}", file=sys.stderr)
        return 2
    with bench:
        rows = [_bring_up(bench, spec) for spec in devmap.devices]
        if read:
            clock.sleep(args.settle)
            for row in rows:
                if row.ok:
                    _read_one(bench, row)
    if args.json:
        print(json.dumps([r.as_json(with_reading=read) for r in rows], indent=2, allow_nan=False))
    elif read:
        _print_readings(rows)
    else:
        _print_table(rows)
    ok = sum(r.ok for r in rows)
    if not args.json:
        print(f"{ok} of {len(rows)} devices OK ({devmap.name})")
    return 0 if ok == len(rows) else 1


def _probe(args: argparse.Namespace) -> int:
    return _run(args, read=False)


def _read(args: argparse.Namespace) -> int:
    return _run(args, read=True)


def _settle(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and 0 <= value <= 10):
        raise argparse.ArgumentTypeError(f"settle must be 0..10 s, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fsw bench probe`` and ``fsw bench read``."""
    bench = subparsers.add_parser(
        "bench",
        help="probe or read every device of a device map",
        description="Probe or read every device of a device map, real or simulated.",
    )
    actions = bench.add_subparsers(dest="bench_action", metavar="ACTION", required=True)
    for name, func, text in (
        ("probe", _probe, "identify and configure each device; exit 0 only if all answer"),
        ("read", _read, "probe, configure and take one reading of each device, with units"),
    ):
        parser = actions.add_parser(name, help=text, description=text)
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--config", type=Path, metavar="FILE", help="device map (TOML)")
        source.add_argument(
            "--sim", action="store_true", help="the built-in, fully simulated reference bench"
        )
        parser.add_argument("--json", action="store_true", help="one JSON object per device")
        parser.add_argument("--seed", type=int, default=0, help="seed of the simulated chips")
        parser.set_defaults(func=func, settle=0.0)
        if name == "read":  # after set_defaults, which would otherwise override this default
            parser.add_argument(
                "--settle",
                type=_settle,
                default=DEFAULT_SETTLE_S,
                metavar="S",
                help=f"seconds between configure and read (default {DEFAULT_SETTLE_S})",
            )
