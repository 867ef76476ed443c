"""The mode machine: a mission's modes and phases as tables, run by the ``transitions`` library.

A mission declares three tables and nothing else:

* its states, each a ``MODE.PHASE`` name (``EDL.PARACHUTE``), as an Enum;
* its transitions (:class:`TransitionSpec`): trigger, sources, destination, guard, cause, and the
  one-shot actions to run on arrival;
* its mode table (:class:`ModeConfig`): what each mode polls, sends and monitors.

States are flat names with the phase after a dot rather than ``transitions``' nested states: the
library's nested machinery separates levels with ``_`` by default (a global setting), while flat
names keep every transition explicit in one table, cheap to evaluate each tick, and trivially
persisted as one string.

Triggers come from ground commands, stored sequences, fault protection and autonomous conditions.
Every trigger either moves the machine or is refused with an event; nothing a caller does makes it
raise. One-shot actions (fire the parachute mortar) are recorded in the state store *before* they
run, so a reboot never repeats them; the current state is restored on boot without re-running the
entry actions.

An action that raises (the relay board did not acknowledge the write) has not happened, and on a
noisy bus the next attempt usually gets through, so it is tried again on every machine tick for a
while (:attr:`OneShot.retry_s`, :data:`DEFAULT_RETRY_S`) before it is given up with an event. A
retry is the same firing, not a second one: the record was committed before the first attempt, and
a reboot during the retries does not try again. Actions must therefore be safe to repeat after they
raised, which the reference ones are (they set a relay or a valve to a level; they never toggle).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from transitions import Machine, MachineError

from flight.commands import Arg, ArgType, CommandError, CommandSpec
from flight.events import EventLog, EventSpec, Severity

__all__ = [
    "DEFAULT_RETRY_S",
    "ModeConfig",
    "ModeMachine",
    "OneShot",
    "StateStoreLike",
    "TransitionSpec",
    "mode_of",
    "phase_of",
]

log = logging.getLogger(__name__)

SEPARATOR = "."

#: Seconds for which a failed one-shot or arrival action is retried, once per machine tick. Long
#: enough for hundreds of attempts at EDL rates, short enough that a pyro which cannot be fired is
#: reported while there is still time to act on it.
DEFAULT_RETRY_S = 5.0


def mode_of(state: str) -> str:
    """``"EDL.PARACHUTE"`` -> ``"EDL"``."""
    return state.split(SEPARATOR, 1)[0]


def phase_of(state: str) -> str:
    """``"EDL.PARACHUTE"`` -> ``"PARACHUTE"`` (``""`` for a mode without phases)."""
    parts = state.split(SEPARATOR, 1)
    return parts[1] if len(parts) > 1 else ""


class StateStoreLike(Protocol):
    """What the machine needs of ``flight.persistence.state.StateStore``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def commit(self) -> None: ...

    def set_flag_once(self, key: str) -> bool: ...


@dataclass(frozen=True)
class OneShot:
    """An action that must run at most once in the mission's life (a pyro, a release).

    Attributes:
        retry_s: how long to keep retrying the action after it raised (0: give up at once).
    """

    name: str
    action: Callable[[], None] = field(compare=False, repr=False)
    retry_s: float = field(default=DEFAULT_RETRY_S, compare=False)


@dataclass(frozen=True)
class TransitionSpec:
    """One row of the transition table.

    Attributes:
        trigger: the event name (``"deploy_parachute"``); several rows may share it.
        source: states it may fire from.
        dest: the state it goes to.
        guard: must return True for the transition to happen (evaluated when triggered).
        on_arrival: one-shot actions run after arriving, each recorded before it runs.
        actions: repeatable actions run after arriving (safing the actuators), before one-shots.
        autonomous: evaluated every tick by :meth:`ModeMachine.tick` with the guard as condition.
        commandable: may be requested by a ground command or a sequence (``mode.TRIGGER``).
        description: why this transition exists, for the dictionary and the diagram.
    """

    trigger: str
    source: tuple[str, ...]
    dest: str
    guard: Callable[[], bool] | None = field(default=None, compare=False, repr=False)
    on_arrival: tuple[OneShot, ...] = ()
    actions: tuple[Callable[[], None], ...] = field(default=(), compare=False, repr=False)
    autonomous: bool = False
    commandable: bool = True
    description: str = ""


@dataclass(frozen=True)
class ModeConfig:
    """What one mode does: the per-mode table, validated at start-up.

    Attributes:
        poll_hz: device name -> polling rate in this mode (0 or absent: not polled).
        telemetry_hz: packet name -> rate in this mode (absent: the packet's own default).
        monitors: fault-protection monitors enabled in this mode.
    """

    poll_hz: Mapping[str, float] = field(default_factory=dict)
    telemetry_hz: Mapping[str, float] = field(default_factory=dict)
    monitors: frozenset[str] = frozenset()


EV_TRANSITION = EventSpec(
    0x0800, "mode.TRANSITION", Severity.ACTIVITY_HI, "{source} -> {dest} ({trigger}: {cause})"
)
EV_REFUSED = EventSpec(
    0x0801,
    "mode.TRIGGER_REFUSED",
    Severity.WARNING_LO,
    "trigger {trigger} refused in {state}: {reason}",
    throttle=50,
)
EV_RESTORED = EventSpec(
    0x0802, "mode.RESTORED", Severity.ACTIVITY_HI, "restored {state} after restart"
)
EV_RESTORE_BAD = EventSpec(
    0x0803,
    "mode.RESTORE_FALLBACK",
    Severity.WARNING_HI,
    "stored state {stored!r} unusable, starting in {state}",
)
EV_ONESHOT = EventSpec(0x0804, "mode.ONESHOT", Severity.ACTIVITY_HI, "one-shot {name} fired")
EV_ONESHOT_SKIPPED = EventSpec(
    0x0805,
    "mode.ONESHOT_SKIPPED",
    Severity.ACTIVITY_LO,
    "one-shot {name} already fired, not repeated",
)
EV_ONESHOT_FAILED = EventSpec(
    0x0806, "mode.ONESHOT_FAILED", Severity.WARNING_HI, "one-shot {name} failed: {error}"
)
EV_RETRYING = EventSpec(
    0x0807,
    "mode.ACTION_RETRYING",
    Severity.WARNING_LO,
    "{name} failed ({error}); retrying every tick for {seconds} s",
)
EV_RETRY_OK = EventSpec(
    0x0808, "mode.ACTION_RETRY_OK", Severity.ACTIVITY_HI, "{name} succeeded on attempt {attempts}"
)
EV_ACTION_FAILED = EventSpec(
    0x0809, "mode.ACTION_FAILED", Severity.WARNING_HI, "action {name} failed: {error}"
)

_STATE_KEY = "mode.state"
_PREVIOUS_KEY = "mode.previous"
_ENTERED_KEY = "mode.entered_met"


class _Model:
    """The object ``transitions`` drives; it holds only the state attribute."""

    state: str


@dataclass
class _Retry:
    """A failed action waiting for its next attempt."""

    action: Callable[[], None]
    until: float
    #: The state whose arrival ran it, for a repeatable action: leaving that state drops the
    #: retry (the next state's own actions apply). ``None`` for a one-shot, which was decided and
    #: recorded, and is retried wherever the machine goes.
    state: str | None
    attempts: int = 1


class ModeMachine:
    """Runs a mission's transition table.

    Args:
        states: every state name, ``MODE`` or ``MODE.PHASE``.
        transitions: the table.
        initial: the state of a first boot.
        fallback: the state a boot falls back to when the stored state is unusable (SAFE).
        modes: the per-mode table; every mode of ``states`` must have an entry.
        events, store, now: the event log, the persistent state store, spacecraft time.
        on_change: called with ``(old, new, cause)`` after every transition and on restore, so
            the executive can apply the new mode's poll rates, telemetry rates and monitors.

    Raises:
        ValueError: the tables are inconsistent (unknown states, modes without a table entry).
    """

    def __init__(
        self,
        *,
        states: Sequence[str],
        transitions: Sequence[TransitionSpec],
        initial: str,
        fallback: str,
        modes: Mapping[str, ModeConfig],
        events: EventLog,
        store: StateStoreLike,
        now: Callable[[], float],
        on_change: Callable[[str, str, str], None] | None = None,
    ) -> None:
        # Plain strings throughout: ``transitions`` treats Enum members as states by *name*,
        # while this machine's states are the ``MODE.PHASE`` values.
        self.states = tuple(str(s) for s in states)
        self.table = tuple(
            replace(t, source=tuple(str(s) for s in t.source), dest=str(t.dest))
            for t in transitions
        )
        self.modes = dict(modes)
        self._events = events
        self._store = store
        self._now = now
        self._on_change = on_change
        initial, fallback = str(initial), str(fallback)
        self._fallback = fallback
        self._validate(initial)
        self._cause = ""
        self._from = initial
        self._model = _Model()
        self._machine = Machine(
            model=self._model,
            states=list(self.states),
            initial=initial,
            auto_transitions=False,
            queued=True,
            send_event=False,
        )
        for spec in self.table:
            self._machine.add_transition(
                spec.trigger,
                list(spec.source),
                spec.dest,
                conditions=[spec.guard] if spec.guard is not None else [],
                after=self._arrived_callback(spec),
            )
        self._autonomous = [s for s in self.table if s.autonomous]
        self._retries: dict[str, _Retry] = {}
        self.transition_count = 0
        self.refused_count = 0

    # --- tables ----------------------------------------------------------------------------------
    def _validate(self, initial: str) -> None:
        problems: list[str] = []
        known = set(self.states)
        if len(known) != len(self.states):
            problems.append("duplicate state names")
        for name in (initial, self._fallback):
            if name not in known:
                problems.append(f"state {name!r} is not in the state list")
        for spec in self.table:
            for s in (*spec.source, spec.dest):
                if s not in known:
                    problems.append(f"transition {spec.trigger}: unknown state {s!r}")
        for mode in {mode_of(s) for s in self.states}:
            if mode not in self.modes:
                problems.append(f"mode {mode} has no entry in the mode table")
        for mode in self.modes:
            if mode not in {mode_of(s) for s in self.states}:
                problems.append(f"mode table names unknown mode {mode}")
        if problems:
            raise ValueError("mode machine tables invalid: " + "; ".join(problems))

    def validate_against(
        self,
        *,
        devices: Iterable[str],
        packets: Iterable[str],
        monitors: Iterable[str],
    ) -> None:
        """Check the mode table names only devices, packets and monitors that exist.

        Raises:
            ValueError: listing every unknown name, so a start-up with a broken table stops with
                one clear message instead of a mode that silently polls nothing.
        """
        devs, pkts, mons = set(devices), set(packets), set(monitors)
        problems = []
        for mode, cfg in self.modes.items():
            problems += [f"{mode}: unknown device {d!r}" for d in cfg.poll_hz if d not in devs]
            problems += [f"{mode}: unknown packet {p!r}" for p in cfg.telemetry_hz if p not in pkts]
            problems += [f"{mode}: unknown monitor {m!r}" for m in cfg.monitors if m not in mons]
            problems += [
                f"{mode}: negative rate for {k}"
                for k, v in (*cfg.poll_hz.items(), *cfg.telemetry_hz.items())
                if v < 0
            ]
        if problems:
            raise ValueError("mode table invalid: " + "; ".join(sorted(problems)))

    # --- state -----------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._model.state

    @property
    def mode(self) -> str:
        return mode_of(self._model.state)

    @property
    def phase(self) -> str:
        return phase_of(self._model.state)

    @property
    def config(self) -> ModeConfig:
        return self.modes[self.mode]

    @property
    def previous(self) -> str | None:
        """The state before the last transition (where SAFE returns to)."""
        value = self._store.get(_PREVIOUS_KEY, None)
        return value if isinstance(value, str) and value in self.states else None

    def time_in_state(self) -> float:
        """Spacecraft seconds since the current state was entered (survives a reboot)."""
        entered = self._store.get(_ENTERED_KEY, None)
        return self._now() - float(entered) if isinstance(entered, int | float) else 0.0

    def restore(self) -> str:
        """Resume the stored state without re-running entry actions; fall back if unusable."""
        stored = self._store.get(_STATE_KEY, None)
        if stored is None:
            self._persist(self.state, keep_entry_time=False)
            self._notify(self.state, self.state, "boot")
            return self.state
        if isinstance(stored, str) and stored in self.states:
            self._machine.set_state(stored)
            self._events.emit(EV_RESTORED, state=stored)
        else:
            self._machine.set_state(self._fallback)
            self._events.emit(EV_RESTORE_BAD, stored=str(stored)[:64], state=self._fallback)
            self._persist(self._fallback, keep_entry_time=False)
        self._notify(self.state, self.state, "restore")
        return self.state

    def _persist(self, state: str, *, keep_entry_time: bool) -> None:
        self._store.set(_STATE_KEY, state)
        if not keep_entry_time:
            self._store.set(_ENTERED_KEY, self._now())
        self._store.commit()

    def _notify(self, old: str, new: str, cause: str) -> None:
        if self._on_change is not None:
            self._on_change(old, new, cause)

    # --- triggering ------------------------------------------------------------------------------
    def trigger(self, name: str, cause: str = "") -> bool:
        """Fire ``name``; returns True if the machine moved. Refusals raise an event, never."""
        specs = [s for s in self.table if s.trigger == name]
        if not specs:
            return self._refuse(name, "no such trigger")
        if not any(self.state in s.source for s in specs):
            return self._refuse(name, "not allowed from this state")
        self._cause = cause or "request"
        self._from = self.state
        before = self.transition_count
        try:
            # With queued processing the library reports True even when a guard said no, so
            # whether the machine moved is read from the arrival counter instead.
            self._model.trigger(name)  # type: ignore[attr-defined]
        except MachineError as exc:
            return self._refuse(name, str(exc))
        if self.transition_count == before:
            return self._refuse(name, "guard not satisfied")
        return True

    def _refuse(self, trigger: str, reason: str) -> bool:
        self.refused_count += 1
        self._events.emit(EV_REFUSED, trigger=trigger, state=self.state, reason=reason)
        return False

    def _arrived_callback(self, spec: TransitionSpec) -> Callable[[], None]:
        def arrived() -> None:
            old = self._from
            self.transition_count += 1
            self._store.set(_PREVIOUS_KEY, old)
            self._persist(spec.dest, keep_entry_time=False)
            self._events.emit(
                EV_TRANSITION, source=old, dest=spec.dest, trigger=spec.trigger, cause=self._cause
            )
            for action in spec.actions:  # safing goes on even if one output fails
                name = f"{spec.trigger}/{getattr(action, '__name__', 'action')}"
                self._attempt(name, action, DEFAULT_RETRY_S, spec.dest)
            for shot in spec.on_arrival:
                self.fire_once(shot)
            self._notify(old, spec.dest, self._cause)

        return arrived

    def fire_once(self, shot: OneShot) -> bool:
        """Run a one-shot action unless it already ran; the record is committed first.

        Returns True if the action ran now without raising; one that raised is retried by
        :meth:`tick` for ``shot.retry_s`` (see :meth:`retrying`).
        """
        if not self._store.set_flag_once(f"oneshot.{shot.name}"):
            self._events.emit(EV_ONESHOT_SKIPPED, name=shot.name)
            return False
        return self._attempt(shot.name, shot.action, shot.retry_s, None)

    def _attempt(
        self, name: str, action: Callable[[], None], retry_s: float, state: str | None
    ) -> bool:
        """Run an action the first time; a failure is queued for retries or reported."""
        try:
            action()
        except Exception as exc:  # an actuator fault must not stop the mode machine
            log.warning("%s failed: %s", name, exc)
            error = str(exc)[:80]
            if retry_s > 0:
                self._retries[name] = _Retry(action, self._now() + retry_s, state)
                self._events.emit(EV_RETRYING, name=name, error=error, seconds=retry_s)
            else:
                self._gave_up(name, state, error)
            return False
        self._retries.pop(name, None)  # a new arrival's action succeeded: nothing to retry
        if state is None:
            self._events.emit(EV_ONESHOT, name=name)
        return True

    def fired(self, name: str) -> bool:
        """Whether the one-shot ``name`` is recorded as fired (in this life or a previous one).

        A one-shot still being retried counts as fired here, so that nothing calls
        :meth:`fire_once` for it again; :meth:`retrying` tells the two apart.
        """
        return bool(self._store.get(f"oneshot.{name}", False))

    def retrying(self, name: str) -> bool:
        """Whether the one-shot (or ``trigger/action``) ``name`` failed and is being retried."""
        return name in self._retries

    def _retry_failed(self) -> None:
        now = self._now()
        for name, retry in list(self._retries.items()):
            if retry.state is not None and retry.state != self.state:
                self._retries.pop(name, None)
                continue
            retry.attempts += 1
            try:
                retry.action()
            except Exception as exc:
                if now >= retry.until:
                    self._retries.pop(name, None)
                    error = f"{str(exc)[:60]} (gave up after {retry.attempts} attempts)"
                    self._gave_up(name, retry.state, error)
                continue
            self._retries.pop(name, None)
            self._events.emit(EV_RETRY_OK, name=name, attempts=retry.attempts)
            if retry.state is None:
                self._events.emit(EV_ONESHOT, name=name)

    def _gave_up(self, name: str, state: str | None, error: str) -> None:
        spec = EV_ONESHOT_FAILED if state is None else EV_ACTION_FAILED
        self._events.emit(spec, name=name, error=error)

    def tick(self) -> None:
        """Retry failed actions, then take the first autonomous transition from the current
        state whose guard holds."""
        if self._retries:
            self._retry_failed()
        state = self.state
        for spec in self._autonomous:
            if state in spec.source and (spec.guard is None or spec.guard()):
                self._cause = "autonomous"
                self._from = state
                self._model.trigger(spec.trigger)  # type: ignore[attr-defined]
                return

    # --- commanding ------------------------------------------------------------------------------
    def commandable_triggers(self) -> tuple[str, ...]:
        return tuple(sorted({s.trigger for s in self.table if s.commandable}))

    def commands(self) -> list[CommandSpec]:
        """``mode.TRIGGER``: the ground's and sequences' way to request a transition."""

        def handle(trigger: str) -> str:
            if not self.trigger(trigger, cause="command"):
                raise CommandError(f"trigger {trigger} refused in {self.state}")
            return f"now in {self.state}"

        choices = self.commandable_triggers()
        return [
            CommandSpec(
                0x0800,
                "mode.TRIGGER",
                handle,
                (Arg("trigger", ArgType.ENUM, choices=choices),),
                description="Request a mode transition; refused unless its guard holds.",
            )
        ]

    def events(self) -> list[EventSpec]:
        return [
            EV_TRANSITION,
            EV_REFUSED,
            EV_RESTORED,
            EV_RESTORE_BAD,
            EV_ONESHOT,
            EV_ONESHOT_SKIPPED,
            EV_ONESHOT_FAILED,
            EV_RETRYING,
            EV_RETRY_OK,
            EV_ACTION_FAILED,
        ]

    # --- documentation ---------------------------------------------------------------------------
    def mermaid(self) -> str:
        """A Mermaid state diagram generated from the live machine's own transition table."""
        lines = ["stateDiagram-v2"]
        by_mode: dict[str, list[str]] = {}
        for s in self.states:
            by_mode.setdefault(mode_of(s), []).append(s)
        ident = {s: s.replace(SEPARATOR, "_") for s in self.states}
        for mode, members in by_mode.items():
            phased = [s for s in members if phase_of(s)]
            if phased:
                lines.append(f"    state {mode} {{")
                lines += [f"        {ident[s]} : {phase_of(s)}" for s in phased]
                lines.append("    }")
            else:
                lines.append(f"    {ident[mode]} : {mode}")
        lines.append(f"    [*] --> {ident[str(self._machine.initial)]}")
        spec_by = {(s.trigger, s.dest): s for s in self.table}
        for event in self._machine.events.values():
            for transitions in event.transitions.values():
                for t in transitions:
                    src, dst = str(t.source), str(t.dest)
                    spec = spec_by.get((event.name, dst))
                    tag = " (auto)" if spec is not None and spec.autonomous else ""
                    lines.append(f"    {ident[src]} --> {ident[dst]} : {event.name}{tag}")
        return "\n".join(lines) + "\n"
