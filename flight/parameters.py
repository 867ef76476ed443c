"""Parameters: tunable values that persist across reboots and can be changed by command.

Components declare :class:`ParamSpec` data (type, default, range or choices); the
:class:`ParameterStore` holds the current values, validates every change exactly like a command
argument, mirrors each value into the data pool as ``prm.<name>`` (so it reaches telemetry through
the ``prm.PARAMS`` packet) and tells subscribed components when a value changes.

The store file is CBOR ``{name: value}`` written atomically. Loading never fails the boot: a missing
file means defaults; an unreadable or corrupt one raises a WARNING_HI event, is renamed to
``<name>.corrupt`` (kept for the ground to inspect) and the defaults stay; a stored value that no
longer validates (a range narrowed by a software update) falls back to its default with an event.
Values for names this build does not register are kept and written back, so a component disabled
in one build does not lose its settings.

Commands: ``prm.SET name value`` carries the value as text, parsed by the named parameter's type
(``"0.25"``, ``"17"`` or ``"0x11"``, ``"true"``, an enum name or index), because one command
argument cannot have the type of whichever parameter it names; the parsed value is then checked
against the parameter's range. A bad value raises ``ValidationError``, which the dispatcher
answers with VALIDATION_ERROR.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flight import codec
from flight.commands import Arg, ArgType, CommandError, CommandSpec, ValidationError
from flight.datapool import DataPool
from flight.events import EventLog, EventSpec, Severity
from flight.persistence.atomic import atomic_write, read_bytes_or_none, remove_stale_temps
from flight.telemetry import ChannelSpec, PacketSpec

__all__ = ["POOL_PREFIX", "ParamSpec", "ParameterStore"]

log = logging.getLogger(__name__)

#: Data-pool (and channel) names of parameters are ``prm.<name>``.
POOL_PREFIX = "prm."
#: The parameter file is ours, but still bounded when read back.
_MAX_FILE_BYTES = 1024 * 1024

_CHANNEL_TYPE = {
    ArgType.INT: "int",
    ArgType.FLOAT: "float",
    ArgType.BOOL: "bool",
    ArgType.STR: "str",
    ArgType.ENUM: "str",
}
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

OP_SET = 0x0200
OP_SAVE = 0x0201
OP_RESET = 0x0202
PACKET_ID = 0x0200

EV_CHANGED = EventSpec(
    0x0200,
    "prm.CHANGED",
    Severity.ACTIVITY_HI,
    "{name} = {value}",
    description="A parameter changed by command or reset.",
)
EV_SAVED = EventSpec(
    0x0201,
    "prm.SAVED",
    Severity.ACTIVITY_LO,
    "{count} parameter(s) saved to {path}",
    description="The parameter file was written.",
)
EV_LOADED = EventSpec(
    0x0202,
    "prm.LOADED",
    Severity.ACTIVITY_LO,
    "{count} parameter(s) loaded from {path}",
    description="Stored parameter values were applied at start.",
)
EV_NO_FILE = EventSpec(
    0x0203,
    "prm.NO_FILE",
    Severity.ACTIVITY_LO,
    "no parameter file at {path}; using defaults",
    description="First boot, or the file was removed: every parameter has its default.",
)
EV_FILE_CORRUPT = EventSpec(
    0x0204,
    "prm.FILE_CORRUPT",
    Severity.WARNING_HI,
    "parameter file {path} is corrupt ({error}); defaults kept, file moved to {moved_to}",
    description="The stored parameters could not be decoded; the bad file is kept aside.",
)
EV_FILE_UNREADABLE = EventSpec(
    0x0205,
    "prm.FILE_UNREADABLE",
    Severity.WARNING_HI,
    "cannot read parameter file {path} ({error}); defaults kept",
    description="The parameter file exists but reading it failed (permissions, I/O error).",
)
EV_VALUE_REJECTED = EventSpec(
    0x0206,
    "prm.VALUE_REJECTED",
    Severity.WARNING_LO,
    "stored {name} rejected ({error}); default {default} used",
    description="A stored value no longer validates against its parameter's spec.",
)
EV_SAVE_FAILED = EventSpec(
    0x0207,
    "prm.SAVE_FAILED",
    Severity.WARNING_HI,
    "saving parameters to {path} failed: {error}",
    description="The parameter file could not be written; the previous file is unchanged.",
)


@dataclass(frozen=True)
class ParamSpec:
    """One parameter.

    Raises (on construction):
        ValueError: a type parameters cannot have (BYTES), an ENUM without choices.
    """

    id: int
    name: str
    type: ArgType
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    units: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if self.type not in _CHANNEL_TYPE:
            raise ValueError(f"{self.name}: parameters cannot be of type {self.type.value}")
        if self.type is ArgType.ENUM and not self.choices:
            raise ValueError(f"{self.name}: an ENUM parameter needs choices")
        if not self.name or self.name == "*":
            raise ValueError(f"parameter name {self.name!r} is not allowed")

    def arg(self) -> Arg:
        """The argument spec that validates this parameter's values."""
        return Arg(
            self.name,
            self.type,
            self.units,
            self.minimum,
            self.maximum,
            self.choices,
            description=self.description,
        )

    def validate(self, value: Any) -> Any:
        """Raises: ValidationError: wrong type, out of range, unknown choice."""
        return self.arg().validate(value)

    def parse(self, text: str) -> Any:
        """Turn command text into a checked value of this parameter's type.

        Raises:
            ValidationError: the text is not a value of this type, or the value fails its check.
        """
        text = text.strip()
        value: Any
        try:
            if self.type is ArgType.INT:
                try:
                    value = int(text, 0)
                except ValueError:
                    value = int(text, 10)  # "010": base 0 refuses leading zeros
            elif self.type is ArgType.FLOAT:
                value = float(text)
            elif self.type is ArgType.BOOL:
                lowered = text.lower()
                if lowered not in _TRUE | _FALSE:
                    raise ValueError("expected true or false")
                value = lowered in _TRUE
            elif self.type is ArgType.ENUM and text not in self.choices and text.isdigit():
                value = int(text)
            else:
                value = text
        except ValueError as exc:
            raise ValidationError(
                f"{self.name}: cannot read {text!r} as {self.type.value}"
            ) from exc
        return self.validate(value)

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": self.type.value,
            "default": self.default,
            "units": self.units,
            "min": self.minimum,
            "max": self.maximum,
            "choices": list(self.choices),
            "description": self.description,
        }
        return d


class ParameterStore:
    """Current parameter values, their persistence and their commands.

    Args:
        path: the parameter file; ``None`` keeps everything in memory (tests, ``fsw sim``).
        events: where load/save/change events go.
        pool: if given, each value is mirrored there as ``prm.<name>``.
        now: spacecraft time, for the data-pool samples.
    """

    def __init__(
        self,
        *,
        path: Path | None,
        events: EventLog,
        pool: DataPool | None = None,
        now: Callable[[], float],
    ) -> None:
        self._path = Path(path) if path is not None else None
        self._events = events
        self._pool = pool
        self._now = now
        self._specs: dict[str, ParamSpec] = {}
        self._ids: dict[int, ParamSpec] = {}
        self._values: dict[str, Any] = {}
        self._orphans: dict[str, Any] = {}
        self._subscribers: dict[str, list[Callable[[Any], None]]] = {}

    # -- registry ---------------------------------------------------------------------------

    def register(self, spec: ParamSpec) -> None:
        """Add a parameter at its default (or at a value already loaded for it).

        Raises:
            ValueError: id or name taken, or the default fails the parameter's own check.
        """
        if spec.name in self._specs:
            raise ValueError(f"parameter {spec.name} already registered")
        if spec.id in self._ids:
            other = self._ids[spec.id].name
            raise ValueError(f"{spec.name}: parameter id 0x{spec.id:04X} already used by {other}")
        try:
            default = spec.validate(spec.default)
        except ValidationError as exc:
            raise ValueError(f"{spec.name}: default {spec.default!r} is invalid: {exc}") from exc
        self._specs[spec.name] = spec
        self._ids[spec.id] = spec
        self._values[spec.name] = default
        if spec.name in self._orphans:
            self._apply_stored(spec, self._orphans.pop(spec.name))
        self._mirror(spec.name)

    def register_all(self, specs: Iterable[ParamSpec]) -> None:
        for spec in specs:
            self.register(spec)

    def parameters(self) -> list[ParamSpec]:
        """Every registered parameter, by id."""
        return [self._ids[i] for i in sorted(self._ids)]

    def spec(self, name: str) -> ParamSpec:
        """Raises: KeyError: no such parameter."""
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"no parameter {name!r}") from None

    # -- values -----------------------------------------------------------------------------

    def get(self, name: str) -> Any:
        """Raises: KeyError: no such parameter."""
        self.spec(name)
        return self._values[name]

    def values(self) -> dict[str, Any]:
        return dict(self._values)

    def set(self, name: str, value: Any) -> Any:
        """Change a parameter; returns the checked value (an ENUM index becomes its name).

        Raises:
            KeyError: no such parameter.
            ValidationError: the value fails the parameter's check; nothing changes.
        """
        spec = self.spec(name)
        checked = spec.validate(value)
        if self._assign(spec, checked):
            self._events.emit(EV_CHANGED, name=name, value=checked)
        return checked

    def reset(self, name: str) -> Any:
        """Back to the default; returns it. Raises: KeyError: no such parameter."""
        return self.set(name, self.spec(name).default)

    def subscribe(self, name: str, callback: Callable[[Any], None]) -> None:
        """Call ``callback(new_value)`` whenever ``name`` changes (a raising callback is logged).

        Raises:
            KeyError: no such parameter (a typo would otherwise never fire).
        """
        self.spec(name)
        self._subscribers.setdefault(name, []).append(callback)

    def _assign(self, spec: ParamSpec, value: Any) -> bool:
        old = self._values[spec.name]
        if type(old) is type(value) and old == value:
            return False
        self._values[spec.name] = value
        self._mirror(spec.name)
        for callback in list(self._subscribers.get(spec.name, ())):
            try:
                callback(value)
            except Exception:
                log.exception("subscriber of parameter %s raised", spec.name)
        return True

    def _mirror(self, name: str) -> None:
        if self._pool is not None:
            self._pool.set(POOL_PREFIX + name, self._values[name], self._now())

    # -- persistence ------------------------------------------------------------------------

    def save(self) -> None:
        """Write every value atomically (a no-op without a path).

        Raises:
            OSError: the file could not be written; the previous file is unchanged.
        """
        if self._path is None:
            return
        data = {**self._orphans, **self._values}
        atomic_write(self._path, codec.encode(data))
        self._events.emit(EV_SAVED, count=len(data), path=str(self._path))

    def load(self) -> None:
        """Apply the stored values. Never raises: every problem becomes an event (module doc)."""
        if self._path is None:
            return
        path = self._path
        try:
            remove_stale_temps(path)
            data = read_bytes_or_none(path)
        except OSError as exc:
            self._events.emit(EV_FILE_UNREADABLE, path=str(path), error=str(exc))
            return
        if data is None:
            self._events.emit(EV_NO_FILE, path=str(path))
            return
        try:
            stored = codec.decode(data, max_bytes=_MAX_FILE_BYTES)
            if not isinstance(stored, dict) or not all(isinstance(k, str) for k in stored):
                raise codec.CodecError("not a map of parameter names to values")
        except codec.CodecError as exc:
            moved_to = self._quarantine(path)
            self._events.emit(
                EV_FILE_CORRUPT, path=str(path), error=str(exc), moved_to=moved_to or "(not moved)"
            )
            return
        count = 0
        for name, raw in stored.items():
            spec = self._specs.get(name)
            if spec is None:
                self._orphans[name] = raw
            elif self._apply_stored(spec, raw):
                count += 1
        self._events.emit(EV_LOADED, count=count, path=str(path))

    def _apply_stored(self, spec: ParamSpec, raw: Any) -> bool:
        try:
            value = spec.validate(raw)
        except ValidationError as exc:
            self._events.emit(
                EV_VALUE_REJECTED, name=spec.name, error=str(exc), default=spec.default
            )
            self._assign(spec, spec.validate(spec.default))
            return False
        self._assign(spec, value)
        return True

    @staticmethod
    def _quarantine(path: Path) -> str | None:
        """Move a bad file aside without overwriting an earlier one; its new name, or None."""
        for n in range(1000):
            target = path.with_name(f"{path.name}.corrupt" + (f".{n}" if n else ""))
            if target.exists():
                continue
            try:
                os.rename(path, target)
            except OSError as exc:
                log.error("cannot move corrupt parameter file %s aside: %s", path, exc)
                return None
            return str(target)
        log.error("too many corrupt copies of %s; leaving it in place", path)
        return None

    # -- telemetry --------------------------------------------------------------------------

    def channels(self) -> list[ChannelSpec]:
        """One channel per parameter, ``prm.<name>``, with the parameter's id."""
        return [
            ChannelSpec(
                spec.id,
                POOL_PREFIX + spec.name,
                _CHANNEL_TYPE[spec.type],
                spec.units,
                description=spec.description,
            )
            for spec in self.parameters()
        ]

    def packet(self) -> PacketSpec:
        """``prm.PARAMS``: every parameter, sent on change and once a minute.

        Raises:
            ValueError: no parameter is registered (a packet needs a channel).
        """
        return PacketSpec(
            PACKET_ID,
            "prm.PARAMS",
            tuple(c.name for c in self.channels()),
            {"*": 1.0 / 60.0},
            on_change=True,
            description="Every parameter value; on change and once a minute.",
            min_interval_s=1.0,
        )

    def packets(self) -> list[PacketSpec]:
        return [self.packet()] if self._specs else []

    # -- commands ---------------------------------------------------------------------------

    def _lookup(self, name: str) -> ParamSpec:
        spec = self._specs.get(name)
        if spec is None:
            raise ValidationError(f"name: no parameter {name!r}")
        return spec

    def _cmd_set(self, name: str, value: str) -> str:
        spec = self._lookup(name)
        checked = self.set(spec.name, spec.parse(value))
        return f"{name} = {checked!r}"

    def _cmd_save(self) -> str:
        if self._path is None:
            raise CommandError("no parameter file configured")
        try:
            self.save()
        except OSError as exc:
            self._events.emit(EV_SAVE_FAILED, path=str(self._path), error=str(exc))
            raise CommandError(f"save failed: {exc}") from exc
        return f"saved to {self._path}"

    def _cmd_reset(self, name: str) -> str:
        if name == "*":
            for spec in self.parameters():
                self.reset(spec.name)
            return "all parameters reset to defaults"
        spec = self._lookup(name)
        return f"{name} = {self.reset(spec.name)!r}"

    def commands(self) -> list[CommandSpec]:
        name_arg = Arg("name", ArgType.STR, max_length=64, description="Parameter name.")
        return [
            CommandSpec(
                OP_SET,
                "prm.SET",
                self._cmd_set,
                (
                    name_arg,
                    Arg(
                        "value",
                        ArgType.STR,
                        max_length=256,
                        description="New value as text, read by the parameter's type.",
                    ),
                ),
                description="Change a parameter (not saved until prm.SAVE).",
            ),
            CommandSpec(
                OP_SAVE, "prm.SAVE", self._cmd_save, description="Write all parameters to flash."
            ),
            CommandSpec(
                OP_RESET,
                "prm.RESET",
                self._cmd_reset,
                (Arg("name", ArgType.STR, max_length=64, description="Parameter name, or '*'."),),
                description="Set a parameter (or all, '*') back to its default.",
            ),
        ]

    def events(self) -> list[EventSpec]:
        return [
            EV_CHANGED,
            EV_SAVED,
            EV_LOADED,
            EV_NO_FILE,
            EV_FILE_CORRUPT,
            EV_FILE_UNREADABLE,
            EV_VALUE_REJECTED,
            EV_SAVE_FAILED,
        ]
