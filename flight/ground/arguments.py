"""Typed values from what an operator types, and stored sequences from files.

Command arguments typed on a console or script line are text; the dictionary says what each one
is. :func:`parse_value` turns one word into that type:

=========  ==================================================================================
int        decimal, ``0x`` hex, ``0b`` binary, ``_`` separators (``1_000``)
float      any Python float literal (``2.5``, ``1e-3``); ``nan``/``inf`` are refused on board
bool       ``true``/``false``, ``yes``/``no``, ``on``/``off``, ``1``/``0`` (any case)
str        the word as typed (quote it to keep spaces: ``"hello world"``)
enum       a choice name, or its index
bytes      hexadecimal (``0x`` prefix, ``:`` and ``_`` separators allowed), or ``@FILE`` to send
           a file's contents (relative to the script's directory)
=========  ==================================================================================

Sequence files (:func:`load_sequence_file`), TOML or JSON by extension, with the same fields::

    name = "checkout"             # 1-32 of letters, digits, "_", "-", "."
    abort_on_error = true         # optional, default true
    on_reboot = "abort"           # optional, "abort" or "resume"
    [[commands]]
    after = 5.0                   # seconds after the previous entry ("rel") ...
    command = "cmd.PING"
    args = [7]
    [[commands]]
    at = 1200.0                   # ... or at this MET ("abs"); exactly one of the two
    command = "cmd.NOOP"

Argument values in files are already typed; a string given for a ``bytes`` argument is read as
above (hex or ``@FILE``). Everything is checked against the dictionary when the sequence is sent.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flight.commands import Arg, ArgType, CommandSpec

__all__ = [
    "ArgumentError",
    "SequenceFile",
    "load_sequence_file",
    "parse_args",
    "parse_bool",
    "parse_value",
    "usage",
]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
#: Largest file ``@FILE`` reads (a stored sequence is at most 16 KiB; frames are smaller still).
MAX_FILE_BYTES = 64 * 1024


class ArgumentError(ValueError):
    """A word that is not a value of the argument's type, or a bad sequence file."""


def parse_bool(text: str) -> bool:
    """Raises: ArgumentError: not one of the accepted spellings."""
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ArgumentError(f"{text!r} is not a boolean (true/false, yes/no, on/off, 1/0)")


def _read_file(text: str, base_dir: Path | None) -> bytes:
    path = Path(text[1:]).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ArgumentError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ArgumentError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
    return data


def parse_bytes(text: str, base_dir: Path | None = None) -> bytes:
    """Hex digits or ``@FILE``. Raises: ArgumentError."""
    if text.startswith("@"):
        return _read_file(text, base_dir)
    digits = text[2:] if text[:2].lower() == "0x" else text
    digits = digits.replace(":", "").replace("_", "").replace(" ", "")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise ArgumentError(f"{text!r} is not hexadecimal bytes (or @FILE)") from None


def parse_value(arg: Arg, text: str, *, base_dir: Path | None = None) -> Any:
    """One typed argument from its text; range and choice checks are left to the dictionary.

    Raises:
        ArgumentError: naming the argument and what was wrong.
    """
    try:
        if arg.type is ArgType.INT:
            try:
                return int(text, 0)
            except ValueError:
                raise ArgumentError(f"{text!r} is not an integer") from None
        if arg.type is ArgType.FLOAT:
            try:
                return float(text)
            except ValueError:
                raise ArgumentError(f"{text!r} is not a number") from None
        if arg.type is ArgType.BOOL:
            return parse_bool(text)
        if arg.type is ArgType.BYTES:
            return parse_bytes(text, base_dir)
        if arg.type is ArgType.ENUM and text not in arg.choices and text.isdigit():
            return int(text)
        return text
    except ArgumentError as exc:
        raise ArgumentError(f"{arg.name}: {exc}") from None


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def usage(spec: CommandSpec) -> str:
    """``cmd.PING token:int[0..4294967295]``: the command and what each argument takes."""
    parts = [spec.name]
    for arg in spec.args:
        kind = arg.type.value
        if arg.type is ArgType.ENUM:
            kind = "|".join(arg.choices)
        elif arg.minimum is not None or arg.maximum is not None:
            low = "" if arg.minimum is None else _number(arg.minimum)
            high = "" if arg.maximum is None else _number(arg.maximum)
            kind += f"[{low}..{high}]"
        parts.append(f"{arg.name}:{kind}" + (f"({arg.units})" if arg.units else ""))
    return " ".join(parts)


def parse_args(
    spec: CommandSpec, words: Sequence[str], *, base_dir: Path | None = None
) -> list[Any]:
    """Typed arguments for ``spec`` from the words after its name.

    Raises:
        ArgumentError: wrong number of words (with the usage) or a word of the wrong type.
    """
    if len(words) != len(spec.args):
        raise ArgumentError(
            f"{spec.name} takes {len(spec.args)} argument(s), got {len(words)}; "
            f"usage: {usage(spec)}"
        )
    return [parse_value(a, w, base_dir=base_dir) for a, w in zip(spec.args, words, strict=True)]


# ---------------------------------------------------------------------------------- sequences


@dataclass(frozen=True)
class SequenceFile:
    """A sequence as read from a file, entries by command name (not yet validated)."""

    name: str
    entries: tuple[tuple[str, float, str, list[Any]], ...]
    abort_on_error: bool = True
    on_reboot: str = "abort"


Lookup = Callable[[str], CommandSpec | None]


def _entry(
    i: int, raw: Any, lookup: Lookup, base_dir: Path | None
) -> tuple[str, float, str, list[Any]]:
    where = f"commands[{i}]"
    if not isinstance(raw, dict):
        raise ArgumentError(f"{where} must be a table/object")
    unknown = set(raw) - {"at", "after", "command", "args"}
    if unknown:
        raise ArgumentError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    if ("at" in raw) == ("after" in raw):
        raise ArgumentError(f"{where}: give exactly one of 'at' (MET s) or 'after' (s)")
    kind, t = ("abs", raw["at"]) if "at" in raw else ("rel", raw["after"])
    if isinstance(t, bool) or not isinstance(t, int | float):
        raise ArgumentError(f"{where}: time must be a number of seconds")
    command, args = raw.get("command"), raw.get("args", [])
    if not isinstance(command, str):
        raise ArgumentError(f"{where}: 'command' must be a command name")
    if not isinstance(args, list):
        raise ArgumentError(f"{where}: 'args' must be a list")
    spec: CommandSpec | None = lookup(command)
    if spec is not None and len(args) == len(spec.args):
        args = [
            parse_bytes(v, base_dir) if a.type is ArgType.BYTES and isinstance(v, str) else v
            for a, v in zip(spec.args, args, strict=True)
        ]
    return kind, float(t), command, list(args)


def load_sequence_file(path: str | Path, lookup: Lookup | None = None) -> SequenceFile:
    """Read a sequence file (format in the module docstring).

    Args:
        lookup: command name -> :class:`CommandSpec` or ``None``, used only to read ``bytes``
            arguments given as text; validation proper happens when the sequence is sent.

    Raises:
        ArgumentError: unreadable file, bad TOML/JSON, or a field of the wrong shape.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ArgumentError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        doc: Any = (
            json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw.decode())
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArgumentError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ArgumentError(f"{path}: must hold one table/object")
    unknown = set(doc) - {"name", "abort_on_error", "on_reboot", "commands"}
    if unknown:
        raise ArgumentError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    name, commands = doc.get("name"), doc.get("commands")
    abort_on_error, on_reboot = doc.get("abort_on_error", True), doc.get("on_reboot", "abort")
    if not isinstance(name, str):
        raise ArgumentError(f"{path}: 'name' must be a string")
    if not isinstance(abort_on_error, bool):
        raise ArgumentError(f"{path}: 'abort_on_error' must be true or false")
    if not isinstance(on_reboot, str):
        raise ArgumentError(f'{path}: \'on_reboot\' must be "abort" or "resume"')
    if not isinstance(commands, list) or not commands:
        raise ArgumentError(f"{path}: 'commands' must be a non-empty list")
    find: Lookup = lookup or (lambda _name: None)
    try:
        entries = tuple(_entry(i, c, find, path.parent) for i, c in enumerate(commands))
    except ArgumentError as exc:
        raise ArgumentError(f"{path}: {exc}") from exc
    return SequenceFile(name, entries, abort_on_error, on_reboot)
