"""How the console shows telemetry, events and responses to a person.

Colour is ANSI and optional (off when the output is not a terminal, with ``--no-color``, or when
``NO_COLOR`` is set): a limit state or severity is always also written out in words, so nothing
is lost in a log file or on a monochrome terminal.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable
from typing import Any

from flight.commands import CommandSpec
from flight.ground.arguments import usage
from flight.ground.records import ChannelValue, EventRecord, Limit, ResponseRecord

__all__ = [
    "format_channels",
    "format_command_list",
    "format_event",
    "format_response",
    "format_value",
    "paint",
]

_RESET = "\033[0m"
_COLOURS = {"yellow": "\033[33m", "red": "\033[31m", "green": "\033[32m", "dim": "\033[2m"}
_SEVERITY_COLOUR = {"WARNING_LO": "yellow", "WARNING_HI": "red", "FATAL": "red"}


def paint(text: str, colour: str | None, enabled: bool) -> str:
    """``text`` in ``colour`` (yellow, red, green, dim) when ``enabled``."""
    if not enabled or colour is None:
        return text
    return f"{_COLOURS[colour]}{text}{_RESET}"


def format_value(value: Any, units: str = "") -> str:
    """``12.5 V``, ``yes``, ``0a1b`` (bytes in hex), ``-`` for no value."""
    if value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:.6g}"
        if math.isfinite(value) and not any(c in text for c in ".e"):
            text += ".0"
    elif isinstance(value, bytes):
        text = value.hex()
    else:
        text = str(value)
    return f"{text} {units}" if units and value is not None else text


def format_channels(
    values: Iterable[ChannelValue], *, color: bool, pattern: str | None = None, now: float
) -> str:
    """A table of channel values by name, limit states coloured and named.

    ``pattern`` is a shell-style pattern (``mars.*``) or a plain substring.
    """
    rows = sorted(values, key=lambda v: v.name)
    if pattern:
        glob = any(c in pattern for c in "*?[")
        rows = [
            v for v in rows if (fnmatch.fnmatchcase(v.name, pattern) if glob else pattern in v.name)
        ]
    if not rows:
        return "(no telemetry received yet)" if not pattern else f"(no channel matches {pattern})"
    width = max(len(v.name) for v in rows)
    texts = [format_value(v.value, v.units) for v in rows]
    vwidth = max(len(t) for t in texts)
    lines = []
    for v, text in zip(rows, texts, strict=True):
        state = ""
        colour = None
        if v.limit is Limit.YELLOW:
            state, colour = "YELLOW", "yellow"
        elif v.limit is Limit.RED:
            state, colour = "RED", "red"
        age = now - v.received
        line = f"{v.name:<{width}}  {text:>{vwidth}}  {state:<6}  MET {v.time:10.3f}"
        line += f"  ({age:.0f} s ago)"
        lines.append(paint(line, colour, color))
    return "\n".join(lines)


def format_event(event: EventRecord, *, color: bool) -> str:
    """``[MET 12.300] WARNING_HI link.UPLINK_AUTH_FAILED: text``."""
    tag = " (playback)" if event.playback else ""
    line = f"[MET {event.time:.3f}] {event.severity} {event.name}: {event.text}{tag}"
    return paint(line, _SEVERITY_COLOUR.get(event.severity), color)


def format_response(response: ResponseRecord, *, color: bool) -> str:
    """``seq 5 cmd.PING: OK pong 42``, failures in red."""
    reason = f" {response.reason}" if response.reason else ""
    line = f"seq {response.seq} {response.command}: {response.status}{reason}"
    return paint(line, "green" if response.ok else "red", color)


def format_command_list(specs: Iterable[CommandSpec], pattern: str | None = None) -> str:
    """Every command's usage line, hazardous ones flagged."""
    lines = []
    for spec in sorted(specs, key=lambda s: s.name):
        if pattern and not (fnmatch.fnmatchcase(spec.name, pattern) or pattern in spec.name):
            continue
        flag = "  (hazardous: arm first)" if spec.hazardous else ""
        lines.append(f"{usage(spec)}{flag}")
    return "\n".join(lines) if lines else "(no command matches)"
