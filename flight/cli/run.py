"""``fsw run``: the flight software on the board (or a bench), under systemd.

    fsw run --config FILE [--state-dir DIR] [--record-downlink PATH]
            [--link-tcp HOST:PORT] [--max-seconds S]

One TOML file configures the whole run: its ``[[device]]`` tables are the device map
(:mod:`hal.devmap`; ``backend = "sim"`` devices make a simulated bench), ``[link]`` the space link,
``[state]`` the state directory and ``[mission]`` the mission (only ``"mars"`` exists)::

    [link]
    transport = "serial"        # "serial" (port, baud), "tcp" (host, port: listens) or
    port = "/dev/fsw-radio"     # "udp" (host, port to bind; remote_host/remote_port optional,
    baud = 57600                #  else replies go to whoever spoke last)
    key_file = "/etc/fsw/uplink.key"
    key_slot = 1                # optional; also spacecraft_id, frame_length, byte_rate,
                                # carrier_timeout_s, asm, playback_share, fixed_layouts
                                # (flight.link.service)
    [state]
    dir = "/var/lib/fsw"

The state directory is ``--state-dir``, else ``[state].dir``, else ``$STATE_DIRECTORY`` (systemd's
``StateDirectory=``). The mission elapsed time resumes from the state store.

Every configuration problem (malformed TOML, unknown driver, duplicate address, a ``[link]`` key
missing or wrong, a key file missing or readable by group/others) is reported on stderr with the
field it concerns, and the exit status is 2 with nothing started. SIGTERM and SIGINT stop the loop
at the next tick; the state is committed, the archive closed, and the exit status is 0. Hardware
that will not open (no ``/dev/i2c-1``, an unplugged UART) exits 1: that is the board, not the file;
only the mission's optional devices (the landing altimeters) may be missing, with a warning.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

__all__ = ["ConfigError", "RunConfig", "parse_run_config", "register", "run"]

log = logging.getLogger(__name__)

_TRANSPORTS = ("serial", "tcp", "udp")
_DEFAULT_RADIO_BAUD = 57600


class ConfigError(ValueError):
    """A problem with the run configuration or command line: exit status 2."""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from exc
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "run", help="run the flight software on the board or a bench (systemd service)"
    )
    parser.add_argument("--config", required=True, type=Path, help="fsw.toml (device map, link)")
    parser.add_argument("--state-dir", type=Path, help="state directory (overrides [state].dir)")
    parser.add_argument("--record-downlink", type=Path, help="also write every downlink byte here")
    parser.add_argument(
        "--link-tcp",
        metavar="HOST:PORT",
        help="serve the link on TCP instead of [link]'s transport",
    )
    parser.add_argument("--max-seconds", type=_seconds, help="stop by itself after S seconds")
    parser.set_defaults(func=run)


# ------------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class LinkOptions:
    """The ``[link]`` table, checked."""

    transport: str
    host: str
    port: int | str
    baud: int
    remote: tuple[str, int] | None
    key_file: Path
    key_slot: int
    settings: dict[str, Any]
    #: Further key slots (rotation): slot -> key file, from ``[link.keys]``.
    extra_keys: dict[int, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class RunConfig:
    """What ``fsw run`` needs beyond the device map."""

    link: LinkOptions | None
    state_dir: Path


def _host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{what} {text!r}: expected HOST:PORT with a port in 0..65535")
    return host, int(port)


def _int_field(table: dict[str, Any], key: str, default: int | None, low: int, high: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"[link].{key}: {value!r} is not an integer in {low}..{high}")
    return value


def _link_settings(table: dict[str, Any]) -> dict[str, Any]:
    """The optional :class:`~flight.link.service.LinkConfig` keys, type-checked."""
    numeric = ("spacecraft_id", "frame_length", "byte_rate", "carrier_timeout_s", "playback_share")
    settings: dict[str, Any] = {}
    for key in numeric:
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"[link].{key}: {value!r} is not a number")
            settings[key] = int(value) if key in ("spacecraft_id", "frame_length") else value
    for key in ("asm", "fixed_layouts"):
        if key in table:
            if not isinstance(table[key], bool):
                raise ConfigError(f"[link].{key}: {table[key]!r} is not true or false")
            settings[key] = table[key]
    return settings


def _link_options(table: Any, base: Path, link_tcp: str | None) -> LinkOptions | None:
    if table is None and link_tcp is None:
        return None
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise ConfigError("[link] must be a table")
    transport = table.get("transport", "tcp" if link_tcp else None)
    host: str = "127.0.0.1"
    port: int | str = 0
    baud = _DEFAULT_RADIO_BAUD
    remote: tuple[str, int] | None = None
    if link_tcp is not None:
        transport = "tcp"
        host, port = _host_port(link_tcp, "--link-tcp")
    elif transport not in _TRANSPORTS:
        raise ConfigError(f"[link].transport: {transport!r} is not one of {', '.join(_TRANSPORTS)}")
    elif transport == "serial":
        device = table.get("port")
        if not isinstance(device, str) or not device:
            raise ConfigError("[link].port: the radio's serial device path is missing")
        port = device
        baud = _int_field(table, "baud", _DEFAULT_RADIO_BAUD, 50, 4_000_000)
    else:
        host = table.get("host", "127.0.0.1")
        if not isinstance(host, str) or not host:
            raise ConfigError(f"[link].host: {host!r} is not a host name or address")
        port = _int_field(table, "port", None, 0, 65535)
        if transport == "udp" and "remote_host" in table:
            remote_host = table["remote_host"]
            if not isinstance(remote_host, str) or not remote_host:
                raise ConfigError(f"[link].remote_host: {remote_host!r} is not a host")
            remote = (remote_host, _int_field(table, "remote_port", None, 1, 65535))
    key_file = table.get("key_file")
    if not isinstance(key_file, str) or not key_file:
        raise ConfigError("[link].key_file: missing (make one with `fsw keygen --out FILE`)")
    key_path = Path(key_file) if Path(key_file).is_absolute() else base / key_file
    extra_keys: dict[int, Path] = {}
    keys = table.get("keys", {})
    if not isinstance(keys, dict):
        raise ConfigError("[link.keys] must be a table of slot = key file")
    for slot, path in keys.items():
        if not str(slot).isdigit() or not 0 <= int(slot) <= 0xFFFF:
            raise ConfigError(f"[link.keys]: slot {slot!r} is not a number in 0..65535")
        if not isinstance(path, str) or not path:
            raise ConfigError(f"[link.keys].{slot}: {path!r} is not a key file path")
        extra_keys[int(slot)] = Path(path) if Path(path).is_absolute() else base / path
    return LinkOptions(
        transport=str(transport),
        host=host,
        port=port,
        baud=baud,
        remote=remote,
        key_file=key_path,
        key_slot=_int_field(table, "key_slot", 1, 0, 0xFFFF),
        settings=_link_settings(table),
        extra_keys=extra_keys,
    )


def parse_run_config(
    extra: dict[str, Any],
    *,
    base: Path,
    state_dir: Path | None = None,
    link_tcp: str | None = None,
    environ: dict[str, str] | None = None,
) -> RunConfig:
    """Check the device map's ``extra`` tables; relative paths are taken from ``base``.

    Raises:
        ConfigError: naming the table and key at fault.
    """
    mission = extra.get("mission", {})
    if not isinstance(mission, dict):
        raise ConfigError("[mission] must be a table")
    name = mission.get("name", "mars")
    if name != "mars":
        raise ConfigError(f"[mission].name: {name!r} is not a known mission (only 'mars')")
    link = _link_options(extra.get("link"), base, link_tcp)
    state = extra.get("state", {})
    if not isinstance(state, dict):
        raise ConfigError("[state] must be a table")
    env = os.environ if environ is None else environ
    configured = state.get("dir")
    if configured is not None and (not isinstance(configured, str) or not configured):
        raise ConfigError(f"[state].dir: {configured!r} is not a directory path")
    if state_dir is None and configured:
        state_dir = Path(configured) if Path(configured).is_absolute() else base / configured
    if state_dir is None and env.get("STATE_DIRECTORY"):
        # systemd may pass several, colon-separated; the first is ours.
        state_dir = Path(env["STATE_DIRECTORY"].split(":")[0])
    if state_dir is None:
        raise ConfigError("[state].dir: missing (or give --state-dir, or run under systemd)")
    return RunConfig(link=link, state_dir=state_dir)


# ------------------------------------------------------------------------------ running


def _open_link(options: LinkOptions) -> Any:
    """The transport and key ring; the key is loaded first so a bad key opens nothing.

    Raises:
        ConfigError: the key file is missing, malformed or readable by others, or the address
            cannot be bound.
    """
    from flight.link.sdls import KeyFileError, KeyRing
    from flight.link.transports import SerialTransport, TcpServerTransport, UdpTransport

    keyring = KeyRing()
    try:
        keyring.load(options.key_slot, options.key_file)
    except KeyFileError as exc:
        raise ConfigError(f"[link].key_file: {exc}") from exc
    for slot, path in options.extra_keys.items():
        try:
            keyring.load(slot, path)
        except KeyFileError as exc:
            raise ConfigError(f"[link.keys].{slot}: {exc}") from exc
    try:
        if options.transport == "serial":
            transport: Any = SerialTransport(url=str(options.port), baudrate=options.baud)
        elif options.transport == "tcp":
            transport = TcpServerTransport(options.host, int(options.port))
        else:
            transport = UdpTransport((options.host, int(options.port)), options.remote)
    except OSError as exc:
        raise ConfigError(
            f"[link]: cannot listen on {options.host}:{options.port} ({exc.strerror or exc})"
        ) from exc
    return transport, keyring


def _describe(transport: Any, options: LinkOptions) -> str:
    address = getattr(transport, "address", None)
    if address is not None:
        return f"{options.transport} {address[0]}:{address[1]}"
    return f"serial {options.port} at {options.baud} baud"


def run(args: argparse.Namespace) -> int:
    """The ``fsw run`` subcommand; returns the exit status."""
    from flight.app import FlightSoftware, LinkSetup
    from flight.clock import WallClock
    from flight.health import SystemdNotifier
    from flight.link.service import LinkConfig
    from flight.missions.mars.definition import MARS
    from hal.assembly import build
    from hal.devmap import DeviceMapError, load_device_map

    def fail(message: str, status: int = 2) -> int:
        sys.stderr.write(f"fsw run: {message}\n")
        return status

    try:
        devmap = load_device_map(args.config)
        config = parse_run_config(
            devmap.extra,
            base=args.config.parent,
            state_dir=args.state_dir,
            link_tcp=args.link_tcp,
        )
        link_parts = _open_link(config.link) if config.link is not None else None
    except (DeviceMapError, ConfigError) as exc:
        return fail(str(exc))
    clock = WallClock()
    record: BinaryIO | None = None
    bench = None
    try:
        try:
            bench = build(devmap, clock=clock)
        except DeviceMapError as exc:
            return fail(str(exc))
        for name in sorted(set(bench.failed) & MARS.optional_devices):
            log.warning(
                "optional device %s not reachable, flying without it: %s", name, bench.failed[name]
            )
        required = {n: why for n, why in bench.failed.items() if n not in MARS.optional_devices}
        if required:
            lines = "\n".join(f"  - {name}: {why}" for name, why in required.items())
            return fail(f"hardware not reachable (check wiring and `fsw bench probe`):\n{lines}", 1)
        link = None
        if link_parts is not None and config.link is not None:
            transport, keyring = link_parts
            try:
                link_config = LinkConfig(**config.link.settings)
            except (TypeError, ValueError) as exc:
                return fail(f"[link]: {exc}")
            if args.record_downlink is not None:
                record = open(args.record_downlink, "wb")  # noqa: SIM115 - closed in finally
            link = LinkSetup(transport, keyring, link_config, record)
            sys.stderr.write(f"fsw run: link on {_describe(transport, config.link)}\n")
        try:
            fsw = FlightSoftware(
                clock=clock,
                devices=bench.devices,
                mission=MARS,
                state_dir=config.state_dir,
                met_at_start=None,
                notifier=SystemdNotifier(),
                link=link,
            )
        except (ValueError, OSError) as exc:
            return fail(f"cannot assemble the flight software: {exc}")
        return _fly(fsw, clock, args.max_seconds)
    except OSError as exc:
        return fail(f"{exc.filename or ''}: {exc.strerror or exc}", 1)
    finally:
        if link_parts is not None:
            link_parts[0].close()
        if record is not None:
            record.close()
        if bench is not None:
            bench.close()


def _fly(fsw: Any, clock: Any, max_seconds: float | None) -> int:
    """Run until SIGTERM/SIGINT (or ``max_seconds``), then save everything."""
    stop = {"requested": False}

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop["requested"] = True

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    deadline = None if max_seconds is None else clock.monotonic() + max_seconds
    try:
        fsw.start()
        fsw.scheduler.run(
            until=lambda: (
                stop["requested"] or (deadline is not None and clock.monotonic() >= deadline)
            )
        )
    finally:
        fsw.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
