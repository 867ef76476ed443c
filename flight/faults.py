"""Fault protection: monitors over the data pool that raise events and request responses.

Three kinds of monitor, declared as data by the component or mission that owns them:

* :class:`LimitMonitor` trips when a value is outside ``[low, high]`` for ``persistence``
  consecutive evaluations (one noisy sample must not send the vehicle to safe mode). A float
  that is not finite (NaN from a failing sensor) counts as a violation; a missing, invalid or
  non-numeric value is not evaluated (staleness is the :class:`StaleMonitor`'s job).
* :class:`StaleMonitor` trips when a value has not been updated for ``max_age_s`` (counted from
  when the monitor was enabled at the earliest, so enabling it is not a trip), or at once when
  the value has been marked invalid (its device went offline).
* :class:`DeviceOfflineMonitor` trips when the poller declares the device offline
  (``dev.<device>.online`` is False).

On a trip: the monitor's own event (its ``id`` is the event id, so each monitor throttles and
filters on its own) naming the value, then its :class:`Response`: nothing more (``"event"``),
a mode change request (``"mode"``: ``request_mode(target, cause)``) or a stored sequence
(``"sequence"``: ``start_sequence(target)``). A monitor trips once per excursion: it re-arms
when the value is back within limits (fresh, online).

Which monitors run is set per mode by the mode machine (:meth:`FaultProtection.set_enabled`). The
ground can override one monitor either way with ``fp.ENABLE`` / ``fp.DISABLE`` and hand it back to
the mode table with ``fp.AUTO``. An override holds across mode changes and, given a state store,
across reboots: it is committed before it takes effect, and a monitor the ground switched off
because its sensor has drifted must not come back on with a power cycle and send the vehicle to
safe mode again. Each override found at start is reported (``fp.OVERRIDE_KEPT``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flight.commands import Arg, ArgType, CommandError, CommandSpec, ValidationError
from flight.datapool import DataPool
from flight.events import EventLog, EventSpec, Severity
from flight.persistence.state import StateStore
from flight.telemetry import ChannelSpec

__all__ = [
    "DeviceOfflineMonitor",
    "FaultProtection",
    "LimitMonitor",
    "Monitor",
    "Response",
    "StaleMonitor",
]

log = logging.getLogger(__name__)

RESPONSE_KINDS = ("event", "sequence", "mode")
#: Event ids the framework itself uses; monitor ids must avoid them.
_RESERVED_IDS = range(0x0500, 0x0510)

OP_ENABLE, OP_DISABLE, OP_AUTO = 0x0500, 0x0501, 0x0502

EV_CLEARED = EventSpec(
    0x0500,
    "fp.CLEARED",
    Severity.ACTIVITY_LO,
    "{monitor} back within limits ({value}); re-armed",
    throttle=100,
    description="A tripped monitor's value returned to normal.",
)
EV_RESPONSE_FAILED = EventSpec(
    0x0501,
    "fp.RESPONSE_FAILED",
    Severity.WARNING_HI,
    "{monitor}: response {response} {target} failed: {error}",
    description="A fault response (mode request or sequence start) raised.",
)
EV_OVERRIDE = EventSpec(
    0x0502,
    "fp.OVERRIDE",
    Severity.ACTIVITY_HI,
    "{monitor} {state} by command",
    description="The ground enabled or disabled a monitor, or returned it to the mode table.",
)
EV_OVERRIDE_KEPT = EventSpec(
    0x0503,
    "fp.OVERRIDE_KEPT",
    Severity.ACTIVITY_HI,
    "{monitor} stays {state} by command from before the restart",
    description="A ground override of a monitor, saved before the restart, is in force again.",
)

#: State store key: monitor name -> True (enabled) or False (disabled) by command.
_OVERRIDES_KEY = "fp.overrides"


@dataclass(frozen=True)
class Response:
    """What to do when a monitor trips.

    Raises (on construction):
        ValueError: unknown kind, or a mode/sequence response without a target.
    """

    kind: str
    target: str = ""

    def __post_init__(self) -> None:
        if self.kind not in RESPONSE_KINDS:
            raise ValueError(f"response kind {self.kind!r} not in {RESPONSE_KINDS}")
        if self.kind != "event" and not self.target:
            raise ValueError(f"a {self.kind} response needs a target")

    def describe(self) -> str:
        return self.kind if self.kind == "event" else f"{self.kind} {self.target}"


@dataclass(frozen=True)
class LimitMonitor:
    """Trips after ``persistence`` consecutive values outside ``[low, high]`` (None: open)."""

    id: int
    name: str
    channel: str
    low: float | None
    high: float | None
    persistence: int
    response: Response
    severity: Severity = Severity.WARNING_HI
    description: str = ""

    def __post_init__(self) -> None:
        if self.low is None and self.high is None:
            raise ValueError(f"{self.name}: a limit monitor needs low, high or both")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"{self.name}: low {self.low} above high {self.high}")
        if self.persistence < 1:
            raise ValueError(f"{self.name}: persistence must be >= 1")


@dataclass(frozen=True)
class StaleMonitor:
    """Trips when ``channel`` has had no valid update for ``max_age_s`` seconds."""

    id: int
    name: str
    channel: str
    max_age_s: float
    response: Response
    severity: Severity = Severity.WARNING_HI
    description: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_age_s) and self.max_age_s > 0):
            raise ValueError(f"{self.name}: max_age_s must be positive")


@dataclass(frozen=True)
class DeviceOfflineMonitor:
    """Trips when the device's poller has declared it offline."""

    id: int
    name: str
    device: str
    response: Response
    severity: Severity = Severity.WARNING_HI
    description: str = ""

    @property
    def channel(self) -> str:
        return f"dev.{self.device}.online"


Monitor = LimitMonitor | StaleMonitor | DeviceOfflineMonitor


@dataclass
class _State:
    monitor: Monitor
    event: EventSpec
    count: int = 0
    tripped: bool = False
    trips: int = 0
    mode_enabled: bool = False
    override: bool | None = None
    enabled_at: float = field(default=-math.inf)
    #: Time of the last sample a limit monitor counted: persistence counts new readings, not
    #: ticks, so a 1 Hz sensor checked at 50 Hz still needs ``persistence`` bad readings.
    last_sample: float | None = None

    @property
    def enabled(self) -> bool:
        return self.mode_enabled if self.override is None else self.override


def _trip_event(monitor: Monitor) -> EventSpec:
    return EventSpec(
        monitor.id,
        f"fp.{monitor.name}",
        monitor.severity,
        "{monitor} tripped: {detail}; response {response}",
        description=monitor.description or f"Fault monitor {monitor.name} tripped.",
    )


class FaultProtection:
    """Evaluates the enabled monitors each tick and runs their responses.

    Args:
        pool: where monitored values are read and ``fp.<name>.trips`` written.
        events: where trip and clear events go.
        now: spacecraft time (the pool's time base).
        request_mode: ``(trigger, cause)``: ask the mode machine for a transition.
        start_sequence: start a stored sequence by name.
        store: where ground overrides are kept across reboots (``None``: not kept).
    """

    def __init__(
        self,
        *,
        pool: DataPool,
        events: EventLog,
        now: Callable[[], float],
        request_mode: Callable[[str, str], None],
        start_sequence: Callable[[str], None],
        store: StateStore | None = None,
    ) -> None:
        self._pool = pool
        self._events = events
        self._now = now
        self._request_mode = request_mode
        self._start_sequence = start_sequence
        self._store = store
        self._monitors: dict[str, _State] = {}
        #: Overrides saved before the restart, applied as their monitors are added.
        self._saved = _saved_overrides(store)

    def add(self, monitor: Monitor) -> None:
        """Raises: ValueError: the name or id is taken, or the id is one the framework uses."""
        if monitor.name in self._monitors:
            raise ValueError(f"monitor {monitor.name} already added")
        if monitor.id in _RESERVED_IDS:
            raise ValueError(f"{monitor.name}: id 0x{monitor.id:04X} is reserved for fp events")
        if any(s.monitor.id == monitor.id for s in self._monitors.values()):
            raise ValueError(f"{monitor.name}: monitor id 0x{monitor.id:04X} already used")
        state = _State(monitor, _trip_event(monitor))
        self._monitors[monitor.name] = state
        self._pool.set(f"fp.{monitor.name}.trips", 0, self._now())
        saved = self._saved.get(monitor.name)
        if saved is not None:
            state.override = saved
            self._enabled_changed(state, False, self._now())
            self._events.emit(EV_OVERRIDE_KEPT, monitor=monitor.name, state=_STATE_TEXT[saved])

    @property
    def names(self) -> list[str]:
        return list(self._monitors)

    @property
    def monitors(self) -> list[Monitor]:
        """Every monitor, in the order added (the order they are evaluated)."""
        return [state.monitor for state in self._monitors.values()]

    def enabled(self) -> list[str]:
        return [name for name, state in self._monitors.items() if state.enabled]

    def tripped(self) -> list[str]:
        return [name for name, state in self._monitors.items() if state.tripped]

    def trips(self, name: str) -> int:
        """Raises: KeyError: no such monitor."""
        return self._monitors[name].trips

    def set_enabled(self, names: Iterable[str]) -> None:
        """Enable exactly these monitors (the current mode's table); ground overrides still win.

        Raises:
            ValueError: a name that is not a monitor (nothing is changed then).
        """
        wanted = set(names)
        unknown = wanted - set(self._monitors)
        if unknown:
            raise ValueError(f"unknown monitor(s): {', '.join(sorted(unknown))}")
        now = self._now()
        for name, state in self._monitors.items():
            was = state.enabled
            state.mode_enabled = name in wanted
            self._enabled_changed(state, was, now)

    def _enabled_changed(self, state: _State, was: bool, now: float) -> None:
        if state.enabled and not was:
            state.enabled_at = now
        if not state.enabled:
            state.count, state.tripped = 0, False  # a re-enabled monitor starts afresh

    # -- evaluation -------------------------------------------------------------------------

    def tick(self) -> None:
        """Evaluate every enabled monitor once, in the order added. Never raises."""
        now = self._now()
        for state in self._monitors.values():
            if not state.enabled:
                continue
            try:
                self._evaluate(state, now)
            except Exception:
                log.exception("monitor %s failed to evaluate", state.monitor.name)

    def _evaluate(self, state: _State, now: float) -> None:
        monitor = state.monitor
        if isinstance(monitor, LimitMonitor):
            sample = self._pool.get(monitor.channel)
            if sample is None or not sample.valid or sample.time == state.last_sample:
                return
            state.last_sample = sample.time
            value = sample.value
            if isinstance(value, bool) or not isinstance(value, int | float):
                return  # not a number: nothing to compare (a wiring mistake in the dictionary)
            violated = _outside(value, monitor.low, monitor.high)
            detail = (
                f"{monitor.channel} = {_short(value)!r} outside [{_bound(monitor.low)}, "
                f"{_bound(monitor.high)}] for {state.count + 1} sample(s)"
            )
            persistence = monitor.persistence
        elif isinstance(monitor, StaleMonitor):
            sample = self._pool.get(monitor.channel)
            last = sample.time if sample is not None else -math.inf
            age = now - max(last, state.enabled_at)
            value = age
            if sample is not None and not sample.valid:
                violated = True  # invalidated (device offline): no usable value, however recent
                detail = f"{monitor.channel} invalid"
            else:
                violated = age > monitor.max_age_s
                detail = (
                    f"{monitor.channel} not updated for {age:.3f} s (limit {monitor.max_age_s} s)"
                )
            persistence = 1
        else:
            value = self._pool.value(monitor.channel)
            violated = value is False
            detail = f"device {monitor.device} offline"
            persistence = 1
        if not violated:
            state.count = 0
            if state.tripped:
                state.tripped = False
                self._events.emit(EV_CLEARED, monitor=monitor.name, value=_short(value))
            return
        state.count += 1
        if state.tripped or state.count < persistence:
            return
        self._trip(state, detail, value, now)

    def _trip(self, state: _State, detail: str, value: Any, now: float) -> None:
        monitor = state.monitor
        state.tripped = True
        state.trips += 1
        self._pool.set(f"fp.{monitor.name}.trips", state.trips, now)
        response = monitor.response
        self._events.emit(
            state.event,
            monitor=monitor.name,
            detail=detail,
            value=_short(value),
            response=response.describe(),
        )
        try:
            if response.kind == "mode":
                self._request_mode(response.target, f"fp.{monitor.name}")
            elif response.kind == "sequence":
                self._start_sequence(response.target)
        except Exception as exc:
            log.exception("response of monitor %s failed", monitor.name)
            self._events.emit(
                EV_RESPONSE_FAILED,
                monitor=monitor.name,
                response=response.kind,
                target=response.target,
                error=f"{type(exc).__name__}: {exc}",
            )

    # -- dictionary -------------------------------------------------------------------------

    def _override(self, name: str, value: bool | None) -> str:
        state = self._monitors.get(name)
        if state is None:
            raise ValidationError(f"monitor: no monitor named {name!r}")
        if self._store is not None and value != state.override:
            overrides = {n: s.override for n, s in self._monitors.items() if s.override is not None}
            if value is None:
                del overrides[name]
            else:
                overrides[name] = value
            try:
                self._store.set_durably(_OVERRIDES_KEY, overrides)
            except OSError as exc:
                raise CommandError(f"override not durable ({exc}); not applied") from exc
        was = state.enabled
        state.override = value
        self._enabled_changed(state, was, self._now())
        text = _STATE_TEXT[value]
        self._events.emit(EV_OVERRIDE, monitor=name, state=text)
        return f"{name} {text} ({'on' if state.enabled else 'off'})"

    def commands(self) -> list[CommandSpec]:
        name = (Arg("monitor", ArgType.STR, max_length=64, description="Monitor name."),)
        return [
            CommandSpec(
                OP_ENABLE,
                "fp.ENABLE",
                lambda monitor: self._override(monitor, True),
                name,
                description="Enable a monitor whatever the mode table says.",
            ),
            CommandSpec(
                OP_DISABLE,
                "fp.DISABLE",
                lambda monitor: self._override(monitor, False),
                name,
                description="Disable a monitor whatever the mode table says.",
            ),
            CommandSpec(
                OP_AUTO,
                "fp.AUTO",
                lambda monitor: self._override(monitor, None),
                name,
                description="Let the mode table enable or disable a monitor again.",
            ),
        ]

    def events(self) -> list[EventSpec]:
        return [EV_CLEARED, EV_RESPONSE_FAILED, EV_OVERRIDE, EV_OVERRIDE_KEPT] + [
            s.event for s in self._monitors.values()
        ]

    def channels(self) -> list[ChannelSpec]:
        """``fp.<name>.trips`` for every monitor (channel id = the monitor's id)."""
        return [
            ChannelSpec(s.monitor.id, f"fp.{name}.trips", "int", description="Trips so far.")
            for name, s in self._monitors.items()
        ]


_STATE_TEXT = {True: "enabled", False: "disabled", None: "returned to the mode table"}


def _saved_overrides(store: StateStore | None) -> dict[str, bool]:
    """The overrides committed before the restart; a malformed entry is dropped (logged)."""
    raw = store.get(_OVERRIDES_KEY, None) if store is not None else None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        log.error("saved monitor overrides are not a map (%r); none kept", raw)
        return {}
    kept = {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, bool)}
    if len(kept) != len(raw):
        log.error("saved monitor overrides: dropped malformed entries of %r", raw)
    return kept


def _outside(value: float, low: float | None, high: float | None) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return True
    return (low is not None and value < low) or (high is not None and value > high)


def _bound(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _short(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    return value if isinstance(value, int | str | bool | None) else repr(value)[:40]
