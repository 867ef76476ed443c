"""Command definitions: data declared by the component that owns them.

A :class:`CommandSpec` names the command (``component.NAME``), fixes its opcode, types every
argument with its range or enumeration and units, marks it hazardous or not, and points at the
handler. The dispatcher (``flight.dispatcher``) looks commands up by opcode and validates arguments
against these specs before any handler runs; a handler therefore receives only checked, typed
values.

Wire form of one command (CBOR, inside a CCSDS space packet): ``[seq, opcode, [arg, ...]]``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Arg",
    "ArgType",
    "BusyError",
    "CommandError",
    "CommandResponse",
    "CommandSpec",
    "CommandStatus",
    "ValidationError",
    "validate_args",
]


@enum.unique
class CommandStatus(enum.IntEnum):
    OK = 0
    INVALID_OPCODE = 1
    VALIDATION_ERROR = 2
    FORMAT_ERROR = 3
    EXECUTION_ERROR = 4
    BUSY = 5


@enum.unique
class ArgType(enum.Enum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"
    ENUM = "enum"
    BYTES = "bytes"


class CommandError(Exception):
    """Raised by a handler that could not carry out a valid command (EXECUTION_ERROR)."""


class BusyError(CommandError):
    """Raised by a handler whose component cannot take the command now (BUSY)."""


class ValidationError(ValueError):
    """An argument failed its type, range or enumeration check (VALIDATION_ERROR)."""


@dataclass(frozen=True)
class Arg:
    """One typed argument.

    ``minimum``/``maximum`` bound INT and FLOAT values; ``choices`` lists ENUM names (sent on the
    wire as the name or its index); ``max_length`` bounds STR and BYTES.
    """

    name: str
    type: ArgType
    units: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    max_length: int = 256
    description: str = ""

    def validate(self, value: Any) -> Any:
        """Return the checked (and for ENUM, normalised to its name) value.

        Raises:
            ValidationError: wrong type, out of range, unknown choice, too long.
        """
        t = self.type
        if t is ArgType.BOOL:
            if not isinstance(value, bool):
                raise ValidationError(f"{self.name}: expected bool, got {type(value).__name__}")
            return value
        if t is ArgType.INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(f"{self.name}: expected int, got {type(value).__name__}")
            self._check_range(value)
            return value
        if t is ArgType.FLOAT:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationError(f"{self.name}: expected number, got {type(value).__name__}")
            if isinstance(value, int) and abs(value) > 2**53:
                raise ValidationError(f"{self.name}: {value} is too large")
            value = float(value)
            if not math.isfinite(value):
                raise ValidationError(f"{self.name}: {value} is not finite")
            self._check_range(value)
            return value
        if t is ArgType.STR:
            if not isinstance(value, str):
                raise ValidationError(f"{self.name}: expected str, got {type(value).__name__}")
            if len(value) > self.max_length:
                raise ValidationError(f"{self.name}: longer than {self.max_length} characters")
            return value
        if t is ArgType.BYTES:
            if not isinstance(value, bytes):
                raise ValidationError(f"{self.name}: expected bytes, got {type(value).__name__}")
            if len(value) > self.max_length:
                raise ValidationError(f"{self.name}: longer than {self.max_length} bytes")
            return value
        # ENUM
        if isinstance(value, str) and value in self.choices:
            return value
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and 0 <= value < len(self.choices)
        ):
            return self.choices[value]
        raise ValidationError(f"{self.name}: {value!r} not one of {', '.join(self.choices)}")

    def _check_range(self, value: float) -> None:
        if self.minimum is not None and value < self.minimum:
            raise ValidationError(f"{self.name}: {value} below minimum {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ValidationError(f"{self.name}: {value} above maximum {self.maximum}")

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type.value}
        if self.units:
            d["units"] = self.units
        if self.minimum is not None:
            d["min"] = self.minimum
        if self.maximum is not None:
            d["max"] = self.maximum
        if self.choices:
            d["choices"] = list(self.choices)
        if self.type in (ArgType.STR, ArgType.BYTES):
            d["max_length"] = self.max_length
        if self.description:
            d["description"] = self.description
        return d


#: A handler gets the validated arguments by name and may return a short text for the response.
Handler = Callable[..., str | None]


@dataclass(frozen=True)
class CommandSpec:
    opcode: int
    name: str
    handler: Handler = field(compare=False, repr=False)
    args: tuple[Arg, ...] = ()
    hazardous: bool = False
    description: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "opcode": self.opcode,
            "name": self.name,
            "args": [a.describe() for a in self.args],
            "hazardous": self.hazardous,
            "description": self.description,
        }


def validate_args(spec: CommandSpec, raw: Any) -> dict[str, Any]:
    """Check a positional argument list against ``spec``.

    Raises:
        ValidationError: wrong count, or any argument fails its check.
    """
    if not isinstance(raw, list):
        raise ValidationError("arguments must be a list")
    if len(raw) != len(spec.args):
        raise ValidationError(f"{spec.name} takes {len(spec.args)} argument(s), got {len(raw)}")
    return {arg.name: arg.validate(value) for arg, value in zip(spec.args, raw, strict=True)}


@dataclass(frozen=True)
class CommandResponse:
    seq: int
    opcode: int
    status: CommandStatus
    reason: str = ""

    def to_body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "op": self.opcode,
            "status": int(self.status),
            "reason": self.reason,
        }
