"""The executive's remaining built-in commands: time correlation and event control.

:class:`TimeService` lets the ground correlate mission elapsed time with UTC (a Mars spacecraft has
no trustworthy absolute time of its own); :class:`EventControl` lets it raise the event filter to
save downlink bandwidth and release throttled events. Each is a small component declaring its
commands and events like any other.
"""

from __future__ import annotations

from flight.clock import SpacecraftTime
from flight.commands import Arg, ArgType, CommandSpec, ValidationError
from flight.events import EventLog, EventSpec, Severity

__all__ = ["EventControl", "TimeService"]

OP_TIME_SET = 0x0010
OP_EVENT_FILTER = 0x0011
OP_EVENT_THROTTLE_RESET = 0x0012

#: Latest UTC the time command accepts (year 2200): catches a value sent in ms or ns by mistake.
MAX_UTC_S = 7_258_118_400.0

EV_TIME_CORRELATED = EventSpec(
    0x0010,
    "cmd.TIME_CORRELATED",
    Severity.ACTIVITY_HI,
    "MET {met_s} s = UTC {utc_s} s (offset changed by {delta_s} s)",
    description="The ground set the MET-to-UTC correlation.",
)
EV_FILTER_SET = EventSpec(
    0x0011,
    "cmd.EVENT_FILTER_SET",
    Severity.ACTIVITY_HI,
    "event filter {old} -> {new}",
    description="Events below the new severity are no longer sent.",
)
EV_THROTTLE_RESET = EventSpec(
    0x0012,
    "cmd.EVENT_THROTTLE_RESET",
    Severity.ACTIVITY_LO,
    "event throttle reset for {which}",
    description="Throttled events may be sent again.",
)


class TimeService:
    """``cmd.TIME_SET``: record that MET ``met_s`` corresponded to UTC ``utc_s``."""

    def __init__(self, time: SpacecraftTime, events: EventLog) -> None:
        self._time = time
        self._events = events

    def _time_set(self, utc_s: float, met_s: float) -> str:
        old = self._time.utc_offset
        self._time.set_utc_correlation(utc_s, met_s)
        new = self._time.utc_offset
        delta = 0.0 if old is None or new is None else new - old
        self._events.emit(EV_TIME_CORRELATED, met_s=met_s, utc_s=utc_s, delta_s=delta)
        return f"utc offset {new:.3f} s" if new is not None else "utc offset set"

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                OP_TIME_SET,
                "cmd.TIME_SET",
                self._time_set,
                (
                    Arg(
                        "utc_s",
                        ArgType.FLOAT,
                        "s",
                        minimum=0.0,
                        maximum=MAX_UTC_S,
                        description="UTC as Unix seconds at the MET below.",
                    ),
                    Arg(
                        "met_s",
                        ArgType.FLOAT,
                        "s",
                        minimum=0.0,
                        description="Mission elapsed time the UTC refers to.",
                    ),
                ),
                description="Correlate spacecraft MET with UTC.",
            )
        ]

    def events(self) -> list[EventSpec]:
        return [EV_TIME_CORRELATED]


class EventControl:
    """``cmd.EVENT_FILTER`` and ``cmd.EVENT_THROTTLE_RESET`` over one :class:`EventLog`."""

    def __init__(self, events: EventLog) -> None:
        self._events = events

    def _filter(self, min_severity: str) -> str:
        new = Severity[min_severity]
        old = self._events.min_severity
        # Announce before applying: raising the filter above ACTIVITY_HI would drop this event.
        self._events.emit(EV_FILTER_SET, old=old.name, new=new.name)
        self._events.min_severity = new
        return f"min severity {new.name}"

    def _throttle_reset(self, event_id: int) -> str:
        if event_id == -1:
            self._events.reset_throttle()
            which = "all events"
        elif event_id >= 0:
            self._events.reset_throttle(event_id)
            which = f"event 0x{event_id:04X}"
        else:
            raise ValidationError(f"event_id: {event_id} is neither an id nor -1")
        self._events.emit(EV_THROTTLE_RESET, which=which)
        return which

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                OP_EVENT_FILTER,
                "cmd.EVENT_FILTER",
                self._filter,
                (
                    Arg(
                        "min_severity",
                        ArgType.ENUM,
                        choices=tuple(s.name for s in Severity),
                        description="Events below this severity are dropped.",
                    ),
                ),
                description="Set the lowest severity of event that is sent.",
            ),
            CommandSpec(
                OP_EVENT_THROTTLE_RESET,
                "cmd.EVENT_THROTTLE_RESET",
                self._throttle_reset,
                (
                    Arg(
                        "event_id",
                        ArgType.INT,
                        minimum=-1,
                        maximum=2**32 - 1,
                        description="Event id, or -1 for every event.",
                    ),
                ),
                description="Let throttled events through again.",
            ),
        ]

    def events(self) -> list[EventSpec]:
        return [EV_FILTER_SET, EV_THROTTLE_RESET]
