"""The dictionary: every command, channel, packet, event and parameter of one build, by id.

The flight side builds a :class:`Dictionary` from its components (anything with some of
``commands()``, ``channels()``, ``packets()``, ``events()``, ``parameters()`` methods), checks it
for clashing ids and names, and exports it as JSON (``fsw dict --json``). The ground console
loads that JSON into a read-only :class:`GroundDictionary` to send commands by name and to
decode telemetry packets (a value list in the packet's channel order), events and responses.

JSON layout (one object, version implied by the keys)::

    {"commands":   [{"opcode", "name", "args": [{"name", "type", "units"?, "min"?, "max"?,
                     "choices"?, "max_length"?, "description"?}], "hazardous", "description"}],
     "telemetry":  [{"id", "name", "type", "units", "source", "yellow", "red", "description"}],
     "packets":    [{"id", "name", "channels", "rates_hz", "on_change", "min_interval_s",
                     "description"}],
     "events":     [{"id", "name", "severity", "format", "throttle", "description"}],
     "parameters": [{"id", "name", "type", "default", "units", "min", "max", "choices",
                     "description"}]}

``telemetry`` lists channels; packets have their own key. Limits are ``[low, high]`` with ``null``
for an open side, or ``null``. Severities and argument types are by name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from flight.commands import Arg, ArgType, CommandError, CommandSpec, validate_args
from flight.events import EventSpec, Severity
from flight.parameters import ParamSpec
from flight.telemetry import ChannelSpec, PacketSpec

__all__ = ["Dictionary", "GroundDictionary", "from_json_dict"]

T = TypeVar("T")


def _duplicates(kind: str, items: Iterable[T], key: Callable[[T], Any], what: str) -> list[str]:
    seen: dict[Any, int] = {}
    for item in items:
        k = key(item)
        seen[k] = seen.get(k, 0) + 1
    return [
        f"{kind}: {what} {k if isinstance(k, str) else f'0x{k:04X}'} used {n} times"
        for k, n in seen.items()
        if n > 1
    ]


def _problems(
    commands: Sequence[CommandSpec],
    channels: Sequence[ChannelSpec],
    packets: Sequence[PacketSpec],
    events: Sequence[EventSpec],
    parameters: Sequence[ParamSpec],
) -> list[str]:
    problems: list[str] = []
    problems += _duplicates("command", commands, lambda c: c.opcode, "opcode")
    problems += _duplicates("command", commands, lambda c: c.name, "name")
    problems += _duplicates("channel", channels, lambda c: c.id, "id")
    problems += _duplicates("channel", channels, lambda c: c.name, "name")
    problems += _duplicates("packet", packets, lambda p: p.id, "id")
    problems += _duplicates("packet", packets, lambda p: p.name, "name")
    problems += _duplicates("event", events, lambda e: e.id, "id")
    problems += _duplicates("event", events, lambda e: e.name, "name")
    problems += _duplicates("parameter", parameters, lambda p: p.id, "id")
    problems += _duplicates("parameter", parameters, lambda p: p.name, "name")
    known = {c.name for c in channels}
    for packet in packets:
        unknown = [c for c in packet.channels if c not in known]
        if unknown:
            problems.append(f"packet {packet.name}: unknown channel(s) {', '.join(unknown)}")
    return problems


def _by_id(items: Iterable[T], key: Callable[[T], int]) -> list[T]:
    return sorted(items, key=key)


class Dictionary:
    """Collects the declarations of a build's components (flight side)."""

    def __init__(self) -> None:
        self.commands: list[CommandSpec] = []
        self.channels: list[ChannelSpec] = []
        self.packets: list[PacketSpec] = []
        self.events: list[EventSpec] = []
        self.parameters: list[ParamSpec] = []

    def add_component(self, obj: object) -> None:
        """Add whatever ``obj`` declares through its ``commands()``, ``channels()``, ``packets()``,
        ``events()`` and ``parameters()`` methods (each optional).

        Only methods count: a non-callable attribute of the same name (``TelemetryManager.channels``
        lists what it carries for others, not what it declares) is ignored, so adding the telemetry
        manager does not list every channel twice.
        """
        for attr, target in (
            ("commands", self.commands),
            ("channels", self.channels),
            ("packets", self.packets),
            ("events", self.events),
            ("parameters", self.parameters),
        ):
            method = getattr(obj, attr, None)
            if callable(method):
                target.extend(method())

    def check(self) -> None:
        """Raises: ValueError: listing every duplicate id or name and every unknown channel."""
        problems = _problems(
            self.commands, self.channels, self.packets, self.events, self.parameters
        )
        if problems:
            raise ValueError("dictionary is inconsistent:\n  " + "\n  ".join(problems))

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON-ready export, each list by id (checked first).

        Raises:
            ValueError: the dictionary is inconsistent (see :meth:`check`).
        """
        self.check()
        return {
            "commands": [c.describe() for c in _by_id(self.commands, lambda c: c.opcode)],
            "telemetry": [_channel_json(c) for c in _by_id(self.channels, lambda c: c.id)],
            "packets": [_packet_json(p) for p in _by_id(self.packets, lambda p: p.id)],
            "events": [_event_json(e) for e in _by_id(self.events, lambda e: e.id)],
            "parameters": [p.describe() for p in _by_id(self.parameters, lambda p: p.id)],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """Raises: ValueError: the dictionary is inconsistent."""
        return json.dumps(self.to_json_dict(), indent=indent)

    @staticmethod
    def from_json_dict(d: Any) -> GroundDictionary:
        """The ground's read-only view of an exported dictionary (see :func:`from_json_dict`)."""
        return GroundDictionary.from_json_dict(d)


def _channel_json(c: ChannelSpec) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "type": c.type,
        "units": c.units,
        "source": c.source,
        "yellow": list(c.yellow) if c.yellow else None,
        "red": list(c.red) if c.red else None,
        "description": c.description,
    }


def _packet_json(p: PacketSpec) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "channels": list(p.channels),
        "rates_hz": dict(p.rates_hz),
        "on_change": p.on_change,
        "min_interval_s": p.min_interval_s,
        "description": p.description,
    }


def _event_json(e: EventSpec) -> dict[str, Any]:
    return {
        "id": e.id,
        "name": e.name,
        "severity": e.severity.name,
        "format": e.format,
        "throttle": e.throttle,
        "description": e.description,
    }


# -- ground side ----------------------------------------------------------------------------

_MISSING = object()


def _field(d: Mapping[str, Any], key: str, types: Any, default: Any = _MISSING) -> Any:
    if key not in d:
        if default is _MISSING:
            raise ValueError(f"missing {key!r}")
        return default
    value = d[key]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ValueError(f"{key!r} must not be a boolean")
    if not isinstance(value, types):
        raise ValueError(f"{key!r} has the wrong type ({type(value).__name__})")
    return value


_NUM = (int, float)
_OPT_NUM = (int, float, type(None))


def _limits(d: Mapping[str, Any], key: str) -> tuple[float | None, float | None] | None:
    value = _field(d, key, (list, type(None)), None)
    if value is None:
        return None
    if len(value) != 2 or not all(
        v is None or (isinstance(v, _NUM) and not isinstance(v, bool)) for v in value
    ):
        raise ValueError(f"{key!r} must be [low, high]")
    return (value[0], value[1])


def _ground_handler(**_: Any) -> str | None:
    raise CommandError("ground-side copy of a command cannot be executed")


def _arg_from(d: Any) -> Arg:
    if not isinstance(d, dict):
        raise ValueError("argument must be an object")
    return Arg(
        _field(d, "name", str),
        ArgType(_field(d, "type", str)),
        _field(d, "units", str, ""),
        _field(d, "min", _OPT_NUM, None),
        _field(d, "max", _OPT_NUM, None),
        tuple(_strings(_field(d, "choices", list, []), "choices")),
        _field(d, "max_length", int, 256),
        _field(d, "description", str, ""),
    )


def _strings(values: list[Any], key: str) -> list[str]:
    if not all(isinstance(v, str) for v in values):
        raise ValueError(f"{key!r} must hold strings")
    return values


def _command_from(d: Mapping[str, Any]) -> CommandSpec:
    args = _field(d, "args", list, [])
    return CommandSpec(
        _field(d, "opcode", int),
        _field(d, "name", str),
        _ground_handler,
        tuple(_arg_from(a) for a in args),
        _field(d, "hazardous", bool, False),
        _field(d, "description", str, ""),
    )


def _channel_from(d: Mapping[str, Any]) -> ChannelSpec:
    return ChannelSpec(
        _field(d, "id", int),
        _field(d, "name", str),
        _field(d, "type", str),
        _field(d, "units", str, ""),
        _field(d, "source", (str, type(None)), None),
        _limits(d, "yellow"),
        _limits(d, "red"),
        _field(d, "description", str, ""),
    )


def _packet_from(d: Mapping[str, Any]) -> PacketSpec:
    rates = _field(d, "rates_hz", dict)
    return PacketSpec(
        _field(d, "id", int),
        _field(d, "name", str),
        tuple(_strings(_field(d, "channels", list), "channels")),
        rates,
        _field(d, "on_change", bool, False),
        _field(d, "description", str, ""),
        float(_field(d, "min_interval_s", _NUM, 0.0)),
    )


def _event_from(d: Mapping[str, Any]) -> EventSpec:
    severity = _field(d, "severity", str)
    if severity not in Severity.__members__:
        raise ValueError(f"unknown severity {severity!r}")
    return EventSpec(
        _field(d, "id", int),
        _field(d, "name", str),
        Severity[severity],
        _field(d, "format", str),
        _field(d, "throttle", int, 0),
        _field(d, "description", str, ""),
    )


def _parameter_from(d: Mapping[str, Any]) -> ParamSpec:
    return ParamSpec(
        _field(d, "id", int),
        _field(d, "name", str),
        ArgType(_field(d, "type", str)),
        _field(d, "default", (int, float, str, bool)),
        _field(d, "min", _OPT_NUM, None),
        _field(d, "max", _OPT_NUM, None),
        tuple(_strings(_field(d, "choices", list, []), "choices")),
        _field(d, "units", str, ""),
        _field(d, "description", str, ""),
    )


def _parse_list(d: Mapping[str, Any], key: str, parse: Callable[[Any], T]) -> tuple[T, ...]:
    entries = d.get(key, [] if key == "packets" else _MISSING)
    if entries is _MISSING:
        raise ValueError(f"dictionary has no {key!r} list")
    if not isinstance(entries, list):
        raise ValueError(f"{key!r} must be a list")
    out: list[T] = []
    for i, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise ValueError("entry must be an object")
            out.append(parse(entry))
        except (ValueError, TypeError, KeyError) as exc:
            name = entry.get("name") if isinstance(entry, dict) else None
            raise ValueError(f"{key}[{i}]{f' ({name})' if name else ''}: {exc}") from exc
    return tuple(out)


class GroundDictionary:
    """A read-only dictionary loaded from the flight export, for the ground console.

    Commands are :class:`CommandSpec` with a handler that refuses to run, so the console can check
    arguments with the very same validation the spacecraft applies before spending an uplink.
    """

    def __init__(
        self,
        *,
        commands: Iterable[CommandSpec] = (),
        channels: Iterable[ChannelSpec] = (),
        packets: Iterable[PacketSpec] = (),
        events: Iterable[EventSpec] = (),
        parameters: Iterable[ParamSpec] = (),
    ) -> None:
        self.commands = tuple(commands)
        self.channels = tuple(channels)
        self.packets = tuple(packets)
        self.events = tuple(events)
        self.parameters = tuple(parameters)
        problems = _problems(
            self.commands, self.channels, self.packets, self.events, self.parameters
        )
        if problems:
            raise ValueError("dictionary is inconsistent:\n  " + "\n  ".join(problems))
        self._cmd_name = {c.name: c for c in self.commands}
        self._cmd_op = {c.opcode: c for c in self.commands}
        self._chan = {c.name: c for c in self.channels}
        self._pkt_id = {p.id: p for p in self.packets}
        self._pkt_name = {p.name: p for p in self.packets}
        self._evt = {e.id: e for e in self.events}
        self._prm = {p.name: p for p in self.parameters}

    @classmethod
    def from_json_dict(cls, d: Any) -> GroundDictionary:
        """Parse an export (untrusted file contents: everything is type-checked).

        Raises:
            ValueError: not an export, a malformed entry (named with its list and index), or
                duplicate ids/names.
        """
        if not isinstance(d, dict):
            raise ValueError("dictionary must be a JSON object")
        return cls(
            commands=_parse_list(d, "commands", _command_from),
            channels=_parse_list(d, "telemetry", _channel_from),
            packets=_parse_list(d, "packets", _packet_from),
            events=_parse_list(d, "events", _event_from),
            parameters=_parse_list(d, "parameters", _parameter_from),
        )

    def command(self, key: int | str) -> CommandSpec:
        """By name or opcode. Raises: KeyError: unknown."""
        spec = self._cmd_name.get(key) if isinstance(key, str) else self._cmd_op.get(key)
        if spec is None:
            raise KeyError(f"no command {key!r}")
        return spec

    def prepare(self, name: str, args: Sequence[Any]) -> tuple[int, list[Any]]:
        """Opcode and checked wire arguments for ``name`` (ENUM indexes become names).

        Raises:
            KeyError: unknown command.
            ValidationError: the arguments would be rejected on board.
        """
        spec = self.command(name)
        checked = validate_args(spec, list(args))
        return spec.opcode, [checked[a.name] for a in spec.args]

    def channel(self, name: str) -> ChannelSpec:
        """Raises: KeyError: unknown."""
        try:
            return self._chan[name]
        except KeyError:
            raise KeyError(f"no channel {name!r}") from None

    def packet(self, key: int | str) -> PacketSpec:
        """By id or name. Raises: KeyError: unknown."""
        spec = self._pkt_name.get(key) if isinstance(key, str) else self._pkt_id.get(key)
        if spec is None:
            raise KeyError(f"no packet {key!r}")
        return spec

    def packet_channels(self, key: int | str) -> list[ChannelSpec]:
        """The packet's channels in wire order (names, units, limits). Raises: KeyError."""
        return [self._chan[name] for name in self.packet(key).channels]

    def unpack(self, packet_id: int, body: Any) -> dict[str, Any]:
        """Channel name -> value for one telemetry message body (the values in channel order).

        Raises:
            KeyError: unknown packet.
            ValueError: the body is not a value list of the packet's length.
        """
        spec = self.packet(packet_id)
        if not isinstance(body, list) or len(body) != len(spec.channels):
            raise ValueError(
                f"packet {spec.name}: body does not match its {len(spec.channels)} channels"
            )
        return dict(zip(spec.channels, body, strict=True))

    def event(self, event_id: int) -> EventSpec:
        """Raises: KeyError: unknown."""
        try:
            return self._evt[event_id]
        except KeyError:
            raise KeyError(f"no event {event_id!r}") from None

    def parameter(self, name: str) -> ParamSpec:
        """Raises: KeyError: unknown."""
        try:
            return self._prm[name]
        except KeyError:
            raise KeyError(f"no parameter {name!r}") from None


def from_json_dict(d: Any) -> GroundDictionary:
    """Same as :meth:`GroundDictionary.from_json_dict`."""
    return GroundDictionary.from_json_dict(d)
