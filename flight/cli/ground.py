"""``fsw ground``: the ground console, interactive or running a script.

    fsw ground --dict DICT.json --key KEYFILE
               (--tcp HOST:PORT | --udp [LHOST:]LPORT:RHOST:RPORT | --serial PORT[:BAUD])
               [--spi N] [--scid N] [--counter-file PATH] [--log PATH]
               [--script FILE [--timeout S]] [--no-color]

It speaks to the flight software only through authenticated CCSDS frames (the radio's format),
over TCP or UDP to a bench or simulator, or over the radio modem's serial port. The anti-replay
counter (which is also every command's sequence number) is kept in ``--counter-file``, by default
``KEYFILE.arsn`` beside the key: keep one counter file per key and never reset it, or the
spacecraft will refuse the console's commands as replays.

Exit status: 0 on success (every expectation of a script met), 1 at the first unmet expectation
or when the link never came up, 2 for usage and configuration errors (missing or invalid
dictionary, key file missing or readable by others, a script that does not parse).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

# The console's modules load only when the subcommand runs, so ``fsw --help`` stays fast.
if TYPE_CHECKING:
    from flight.dictionary import GroundDictionary
    from flight.ground.script import ScriptParser
    from flight.ground.station import GroundStation
    from flight.link.transports import Transport
    from hal.clock import Clock

__all__ = ["ConfigError", "register", "run"]

#: The flight side's link defaults (``flight.link.service.LinkConfig``; a test keeps them equal),
#: so a console and a default build agree without options.
DEFAULT_SCID = 0x0C8
DEFAULT_FRAME_LENGTH = 256
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_SPI = 1
DEFAULT_BAUD = 57600
DEFAULT_CONNECT_TIMEOUT_S = 5.0


class ConfigError(ValueError):
    """Bad command line or configuration file: exit status 2."""


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from exc


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from exc
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a non-negative number of seconds")
    return value


_EPILOG = """\
statements (script lines, or typed at the console; 'help' there lists them all):
  cmd.PING 7 | send NAME ARGS...     arm NAME     sequence FILE.toml     wait S
  expect response OK [containing TEXT] [within S]
  expect telemetry CHANNEL LOW..HIGH|VALUE [within S]
  expect event NAME [containing TEXT] [within S]
console only: show [PATTERN], events [N], commands [PATTERN], help [NAME], link, quit
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "ground",
        help="the ground console: send commands by name, watch telemetry, run test scripts",
        description=__doc__.split("\n\n")[2] if __doc__ else None,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dict", required=True, type=Path, help="dictionary JSON (fsw dict --json)"
    )
    parser.add_argument("--key", required=True, type=Path, help="uplink key file (fsw keygen)")
    link = parser.add_mutually_exclusive_group(required=True)
    link.add_argument("--tcp", metavar="HOST:PORT", help="connect to a bench/simulator over TCP")
    link.add_argument("--udp", metavar="LOCAL:REMOTE", help="datagrams: [LHOST:]LPORT:RHOST:RPORT")
    link.add_argument("--serial", metavar="PORT[:BAUD]", help="radio modem (device or URL)")
    parser.add_argument("--spi", type=_int, default=DEFAULT_SPI, help="key slot (default 1)")
    parser.add_argument(
        "--scid", type=_int, default=DEFAULT_SCID, help=f"spacecraft id (default {DEFAULT_SCID})"
    )
    parser.add_argument(
        "--frame-length",
        type=_int,
        default=DEFAULT_FRAME_LENGTH,
        help=f"TM frame length in bytes (default {DEFAULT_FRAME_LENGTH})",
    )
    parser.add_argument("--counter-file", type=Path, help="anti-replay counter (KEYFILE.arsn)")
    parser.add_argument("--log", type=Path, help="append everything sent and received (JSONL)")
    parser.add_argument("--script", type=Path, help="run this script instead of the console")
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_S,
        help=f"default 'within' of script expectations (default {DEFAULT_TIMEOUT_S:g} s)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=DEFAULT_CONNECT_TIMEOUT_S,
        help="how long to wait for the link before giving up (default 5 s)",
    )
    parser.add_argument("--no-color", action="store_true", help="no ANSI colours")
    parser.set_defaults(func=run)


# ------------------------------------------------------------------------------ building


def _host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{what} {text!r}: expected HOST:PORT")
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"{what} {text!r}: port {port!r} is not a number") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"{what} {text!r}: port {number} outside 0..65535")
    return host, number


def parse_udp(text: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """``[LHOST:]LPORT:RHOST:RPORT`` -> (local, remote). Raises: ConfigError."""
    parts = text.split(":")
    if len(parts) == 3:
        parts = ["0.0.0.0", *parts]
    if len(parts) != 4:
        raise ConfigError(f"--udp {text!r}: expected [LHOST:]LPORT:RHOST:RPORT")
    local = _host_port(f"{parts[0]}:{parts[1]}", "--udp local")
    remote = _host_port(f"{parts[2]}:{parts[3]}", "--udp remote")
    return local, remote


def parse_serial(text: str) -> tuple[str, int]:
    """``PORT[:BAUD]`` -> (port, baud). A pyserial URL (``socket://h:p``) is taken whole."""
    if "://" not in text:
        port, sep, baud = text.rpartition(":")
        if sep and port and baud.isdigit():
            return port, int(baud)
    if not text:
        raise ConfigError("--serial needs a port")
    return text, DEFAULT_BAUD


def open_transport(args: argparse.Namespace, clock: Clock) -> Transport:
    """Raises: ConfigError: a malformed address, or a UDP port that cannot be bound."""
    from flight.link.transports import SerialTransport, TcpClientTransport, UdpTransport

    if args.tcp:
        host, port = _host_port(args.tcp, "--tcp")
        return TcpClientTransport(host, port, now=clock.monotonic)
    if args.udp:
        local, remote = parse_udp(args.udp)
        try:
            return UdpTransport(local, remote)
        except OSError as exc:
            raise ConfigError(f"--udp: cannot bind {local[0]}:{local[1]}: {exc}") from exc
    device, baud = parse_serial(args.serial)
    return SerialTransport(url=device, baudrate=baud)


def load_dictionary(path: Path) -> GroundDictionary:
    """Raises: ConfigError: missing, not JSON, or not a valid dictionary export."""
    from flight.dictionary import GroundDictionary

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"dictionary {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"dictionary {path}: not UTF-8 text") from exc
    try:
        return GroundDictionary.from_json_dict(json.loads(text))
    except ValueError as exc:
        raise ConfigError(f"dictionary {path}: {exc}") from exc


@dataclass
class Setup:
    station: GroundStation
    parser: ScriptParser


def build(args: argparse.Namespace, clock: Clock, *, transport: Transport | None = None) -> Setup:
    """Everything the console needs, from its command line (``transport`` overrides the link
    options, for tests).

    Raises:
        ConfigError: any configuration problem, with a message for the operator.
    """
    from flight.ground.script import ScriptParser
    from flight.ground.station import GroundStation
    from flight.link.ground import CommandEncoder, TelemetryDecoder
    from flight.link.sdls import CounterStoreError, KeyFileError, load_key

    dictionary = load_dictionary(args.dict)
    try:
        key = load_key(args.key)
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from exc
    counter = args.counter_file or Path(f"{args.key}.arsn")
    try:
        encoder = CommandEncoder(key=key, spi=args.spi, scid=args.scid, counters=counter)
        decoder = TelemetryDecoder(scid=args.scid, frame_length=args.frame_length)
    except CounterStoreError as exc:
        raise ConfigError(str(exc)) from exc
    except ValueError as exc:  # SPI, spacecraft id or frame length out of range
        raise ConfigError(f"link settings: {exc}") from exc
    link = transport if transport is not None else open_transport(args, clock)
    try:
        station = GroundStation(
            dictionary=dictionary,
            encoder=encoder,
            decoder=decoder,
            transport=link,
            clock=clock,
            log_path=args.log,
        )
    except OSError as exc:
        link.close()
        raise ConfigError(f"log {args.log}: {exc.strerror or exc}") from exc
    base = args.script.parent if args.script is not None else Path.cwd()
    parser = ScriptParser(dictionary, base_dir=base, default_timeout_s=args.timeout)
    return Setup(station, parser)


# ------------------------------------------------------------------------------ running


def _use_color(args: argparse.Namespace, out: TextIO) -> bool:
    if args.no_color or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def run(
    args: argparse.Namespace,
    *,
    clock: Clock | None = None,
    transport: Transport | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """The ``fsw ground`` subcommand (keyword arguments let tests supply the world)."""
    from flight.clock import WallClock
    from flight.ground.console import Console, print_arrivals
    from flight.ground.runner import ScriptRunner
    from flight.ground.script import ScriptError

    clock = clock or WallClock()
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    script_text = None
    if args.script is not None:
        try:
            script_text = args.script.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            err.write(f"fsw ground: script {args.script}: {exc}\n")
            return 2
    try:
        setup = build(args, clock, transport=transport)
    except ConfigError as exc:
        err.write(f"fsw ground: {exc}\n")
        return 2
    station = setup.station
    color = _use_color(args, out)
    with station:
        if script_text is None:
            console = Console(
                station,
                parser=setup.parser,
                out=out,
                color=color,
                prompt=bool(getattr(stdin, "isatty", lambda: False)()),
            )
            return console.run(stdin)
        try:
            steps = setup.parser.parse(script_text, source=str(args.script))
        except ScriptError as exc:
            err.write(f"fsw ground: script does not parse, nothing sent:\n{exc}\n")
            return 2
        print_arrivals(station, out, color=color)
        if not station.wait_until(
            lambda: station.transport.connected or None, args.connect_timeout
        ):
            err.write(f"fsw ground: link not up after {args.connect_timeout:g} s\n")
            return 1
        return ScriptRunner(station, out=out, source=str(args.script)).run(steps)
