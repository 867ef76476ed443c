"""Events: what happened, how bad it is, and how often the ground needs to hear about it.

Components declare their events as :class:`EventSpec` data with stable ids. :class:`EventLog` stamps
them with spacecraft time, applies the severity filter set by command and per-id throttling (a
device failing every tick must not flood a 2.5 kB/s downlink), and hands each surviving event to its
listeners (the downlink, the archive, the console log).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flight.messages import Message, MessageKind

__all__ = ["Event", "EventLog", "EventSpec", "Severity"]

log = logging.getLogger(__name__)


@enum.unique
class Severity(enum.IntEnum):
    DIAGNOSTIC = 0
    ACTIVITY_LO = 1
    ACTIVITY_HI = 2
    COMMAND = 3
    WARNING_LO = 4
    WARNING_HI = 5
    FATAL = 6


_LOG_LEVEL = {
    Severity.DIAGNOSTIC: logging.DEBUG,
    Severity.ACTIVITY_LO: logging.INFO,
    Severity.ACTIVITY_HI: logging.INFO,
    Severity.COMMAND: logging.INFO,
    Severity.WARNING_LO: logging.WARNING,
    Severity.WARNING_HI: logging.WARNING,
    Severity.FATAL: logging.CRITICAL,
}


@dataclass(frozen=True)
class EventSpec:
    """An event a component can raise.

    Attributes:
        id: stable numeric id, unique across the dictionary.
        name: fully qualified, ``component.EVENT_NAME``.
        severity: how bad.
        format: ``str.format`` template over the event's named arguments.
        throttle: after this many, further occurrences are counted but not sent until the
            throttle is reset (by command or by the owning component); 0 means never throttle.
    """

    id: int
    name: str
    severity: Severity
    format: str
    throttle: int = 0
    description: str = ""


@dataclass(frozen=True)
class Event:
    id: int
    name: str
    severity: Severity
    time: float
    args: dict[str, Any]
    text: str

    def to_message(self) -> Message:
        return Message(
            MessageKind.EVENT,
            self.id,
            self.time,
            {"sev": int(self.severity), "args": self.args, "text": self.text},
        )


@dataclass
class _Counter:
    sent: int = 0
    suppressed: int = 0


@dataclass
class EventLog:
    """Stamps, filters, throttles and distributes events.

    Args:
        now: returns spacecraft time (MET seconds).
        min_severity: events below this are dropped (set by the event filter command).
    """

    now: Callable[[], float]
    min_severity: Severity = Severity.DIAGNOSTIC
    listeners: list[Callable[[Event], None]] = field(default_factory=list)
    _counters: dict[int, _Counter] = field(default_factory=dict)
    recent: list[Event] = field(default_factory=list)
    recent_limit: int = 200

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self.listeners.append(listener)

    def emit(self, spec: EventSpec, **args: Any) -> Event | None:
        """Raise ``spec`` with its arguments; returns the event, or None if filtered/throttled.

        Never raises: a bad format string yields the raw template plus the arguments, because an
        event about a fault must not itself become a fault.
        """
        counter = self._counters.setdefault(spec.id, _Counter())
        if spec.severity < self.min_severity:
            return None
        if spec.throttle and counter.sent >= spec.throttle:
            counter.suppressed += 1
            return None
        counter.sent += 1
        try:
            text = spec.format.format(**args)
        except (KeyError, IndexError, ValueError, AttributeError):
            text = f"{spec.format} {args!r}"
        safe_args = {
            k: v if isinstance(v, int | float | str | bool | None) else str(v)
            for k, v in args.items()
        }
        event = Event(spec.id, spec.name, spec.severity, self.now(), safe_args, text)
        log.log(_LOG_LEVEL[spec.severity], "%s %s", spec.name, text)
        self.recent.append(event)
        if len(self.recent) > self.recent_limit:
            del self.recent[: len(self.recent) - self.recent_limit]
        for listener in self.listeners:
            listener(event)
        return event

    def reset_throttle(self, event_id: int | None = None) -> None:
        """Let a throttled event through again (one id, or all)."""
        if event_id is None:
            self._counters.clear()
        else:
            self._counters.pop(event_id, None)

    def suppressed(self, event_id: int) -> int:
        c = self._counters.get(event_id)
        return c.suppressed if c else 0

    def count(self, event_id: int) -> int:
        """How many times this event was sent (not counting throttled ones)."""
        c = self._counters.get(event_id)
        return c.sent if c else 0
