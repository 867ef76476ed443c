"""The scheduler: rate groups driven by one base tick, single-threaded.

Every rate group runs at an integer divisor of the base rate (50 Hz base, divisor 5: 10 Hz), so
all timing derives from one absolute tick index: tick ``n`` is due at ``start + n * period``.
Waiting on absolute deadlines keeps the long-run rate exact whatever the jitter of one wake-up.

Overrun policy (the cFS scheduler's): when a tick finishes late, the following ticks are due
already and run back to back without waiting, catching up; but at most ``max_catchup`` ticks in a
row are run late. If the loop is still behind after that, it skips ahead to the tick that is due
now, and every tick it skipped counts as a slip for each group that would have run in it. A
stalled board thus loses work (visibly, in telemetry) rather than running ever further behind.

A task that raises is caught, counted against its group and reported (``on_error`` and an
event); it never stops the loop. Execution time is measured on the scheduler's clock, so under a
:class:`~flight.clock.SimClock` it is zero unless a task advances the clock itself, which is how
tests simulate an overrun.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from flight.clock import Clock
from flight.datapool import DataPool
from flight.events import EventLog, EventSpec, Severity
from flight.telemetry import ChannelSpec, PacketSpec

__all__ = ["GroupStats", "RateGroup", "Scheduler"]

log = logging.getLogger(__name__)

#: Float tolerance when converting elapsed time into a tick index (SimClock sums land a hair low).
_EPS_TICKS = 1e-6
#: Ids in the 0x07xx block: 0x0700-0x070F app, 0x0710-0x0717 scheduler events and totals,
#: 0x0718-0x071F health, 0x0730-0x074F persistence; per-group channels are 0x0780 + 8 * group
#: index + field (16 groups at most: up to 0x07FF).
_CHANNEL_BASE = 0x0780
_MAX_GROUPS = 16
_FIELDS = ("ticks", "max_ms", "mean_ms", "slips", "errors")

EV_TASK_ERROR = EventSpec(
    0x0710,
    "sched.TASK_ERROR",
    Severity.WARNING_HI,
    "task {task} in group {group} raised {error}",
    throttle=20,
    description="A scheduled task raised; the loop went on. Repeats are throttled.",
)
EV_SLIP = EventSpec(
    0x0711,
    "sched.SLIP",
    Severity.WARNING_LO,
    "behind by {behind} tick(s): skipped {skipped} tick(s) after {catchup} catch-up tick(s)",
    throttle=20,
    description="The loop fell too far behind and skipped base ticks (cFS-style slip).",
)


@dataclass(frozen=True)
class GroupStats:
    """Counters of one rate group (execution times are per activation, all tasks together)."""

    ticks: int
    max_exec_s: float
    mean_exec_s: float
    slips: int
    errors: int


class RateGroup:
    """Tasks run in order every ``divisor`` base ticks. Created by :meth:`Scheduler.add_group`."""

    def __init__(self, name: str, divisor: int, period_s: float) -> None:
        self.name = name
        self.divisor = divisor
        self.period_s = period_s
        self._tasks: list[tuple[str, Callable[[], None]]] = []
        self.ticks = 0
        self.slips = 0
        self.errors = 0
        self.max_exec_s = 0.0
        self.total_exec_s = 0.0
        #: Clock time at which the group last started a run (``None``: never ran).
        self.last_run: float | None = None

    def add(self, task: Callable[[], None], name: str) -> None:
        """Append ``task``; tasks run in the order they were added.

        Raises:
            ValueError: a task with this name is already in the group.
        """
        if any(existing == name for existing, _ in self._tasks):
            raise ValueError(f"group {self.name}: task {name!r} already added")
        self._tasks.append((name, task))

    @property
    def tasks(self) -> tuple[tuple[str, Callable[[], None]], ...]:
        """``(name, task)`` pairs in run order."""
        return tuple(self._tasks)

    def stats(self) -> GroupStats:
        mean = self.total_exec_s / self.ticks if self.ticks else 0.0
        return GroupStats(self.ticks, self.max_exec_s, mean, self.slips, self.errors)

    def due(self, tick: int) -> bool:
        return tick % self.divisor == 0

    def activations_between(self, first: int, stop: int) -> int:
        """How many of the ticks ``first .. stop-1`` this group would have run in."""
        if stop <= first:
            return 0
        return (stop - 1) // self.divisor - (first - 1) // self.divisor


class Scheduler:
    """Runs rate groups at integer divisors of a base tick.

    Args:
        clock: monotonic time and absolute-deadline waiting.
        base_hz: the base tick rate.
        max_catchup: most ticks run late back to back before skipping ahead.
        on_error: called with ``"group.task"`` and the exception when a task raises (it must not
            raise itself; if it does, that is logged and ignored).
        events: if given, task errors and slips are also raised as events.
        alive_slack_s: how far past its own period a group may be and still count as alive.

    Raises:
        ValueError: a non-positive or non-finite base rate, negative catch-up or slack.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        base_hz: float = 50.0,
        max_catchup: int = 5,
        on_error: Callable[[str, BaseException], None] | None = None,
        events: EventLog | None = None,
        alive_slack_s: float = 0.5,
    ) -> None:
        if not (math.isfinite(base_hz) and base_hz > 0):
            raise ValueError(f"base_hz must be a positive number, got {base_hz}")
        if max_catchup < 0:
            raise ValueError(f"max_catchup must be >= 0, got {max_catchup}")
        if not (math.isfinite(alive_slack_s) and alive_slack_s >= 0):
            raise ValueError(f"alive_slack_s must be >= 0, got {alive_slack_s}")
        self._clock = clock
        self.base_hz = float(base_hz)
        self.period = 1.0 / self.base_hz
        self.max_catchup = max_catchup
        self._on_error = on_error
        self._events = events
        self._alive_slack_s = float(alive_slack_s)
        self._groups: dict[str, RateGroup] = {}
        #: Index of the next tick to run; its deadline is ``start + tick * period``.
        self.tick = 0
        self._start: float | None = None
        self._late_run = 0
        #: Base ticks skipped in total (each counts as a slip in the groups due in it).
        self.skipped_ticks = 0
        self.late_ticks = 0

    # -- configuration ----------------------------------------------------------------------

    def add_group(self, name: str, divisor: int) -> RateGroup:
        """Create a rate group running every ``divisor`` base ticks (``base_hz / divisor`` Hz).

        Raises:
            ValueError: divisor not a positive int, name empty or taken, too many groups.
        """
        if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
            raise ValueError(f"group {name!r}: divisor must be a positive int, got {divisor!r}")
        if not name or name in self._groups:
            raise ValueError(f"group name {name!r} is empty or already used")
        if len(self._groups) >= _MAX_GROUPS:
            raise ValueError(f"at most {_MAX_GROUPS} rate groups")
        group = RateGroup(name, divisor, divisor * self.period)
        self._groups[name] = group
        return group

    @property
    def groups(self) -> list[RateGroup]:
        return list(self._groups.values())

    def group(self, name: str) -> RateGroup:
        """Raises: KeyError: no such group."""
        return self._groups[name]

    # -- running ----------------------------------------------------------------------------

    def step(self) -> None:
        """Run tick ``self.tick`` now (every group due at it, in the order added), no waiting."""
        if self._start is None:
            self._start = self._clock.monotonic() - self.tick * self.period
        tick = self.tick
        for group in self._groups.values():
            if group.due(tick):
                self._run_group(group)
        self.tick = tick + 1

    def run_once(self) -> None:
        """Wait for the next tick's absolute deadline, then run it (applying the overrun policy).

        If the deadline has already passed (the previous tick overran), this does not wait: it is
        a catch-up tick. After ``max_catchup`` catch-up ticks in a row the scheduler skips to the
        tick due now and counts the ticks in between as slips.
        """
        if self._start is None:
            self._start = self._clock.monotonic() - self.tick * self.period
        self._clock.sleep_until(self._deadline(self.tick))
        behind = self._current_tick() - self.tick
        if behind <= 0:
            self._late_run = 0
        elif self._late_run < self.max_catchup:
            self._late_run += 1
            self.late_ticks += 1
        else:
            self._skip(behind)
        self.step()

    def run(self, *, until: Callable[[], bool] | None = None, max_ticks: int | None = None) -> None:
        """Call :meth:`run_once` until ``until()`` is true or ``max_ticks`` ticks have run."""
        count = 0
        while (max_ticks is None or count < max_ticks) and not (until is not None and until()):
            self.run_once()
            count += 1

    def _deadline(self, tick: int) -> float:
        assert self._start is not None
        return self._start + tick * self.period

    def _current_tick(self) -> int:
        """Index of the latest tick whose deadline has passed."""
        assert self._start is not None
        return math.floor((self._clock.monotonic() - self._start) / self.period + _EPS_TICKS)

    def _skip(self, behind: int) -> None:
        first, stop = self.tick, self.tick + behind
        for group in self._groups.values():
            group.slips += group.activations_between(first, stop)
        self.skipped_ticks += behind
        catchup = self._late_run
        self._late_run = 0
        self.tick = stop
        log.warning("scheduler behind by %d tick(s): skipped them", behind)
        if self._events is not None:
            self._events.emit(EV_SLIP, behind=behind, skipped=behind, catchup=catchup)

    def _run_group(self, group: RateGroup) -> None:
        started = self._clock.monotonic()
        group.last_run = started
        for task_name, task in group.tasks:
            try:
                task()
            except Exception as exc:
                group.errors += 1
                self._report(group, task_name, exc)
        elapsed = self._clock.monotonic() - started
        group.ticks += 1
        group.total_exec_s += elapsed
        group.max_exec_s = max(group.max_exec_s, elapsed)

    def _report(self, group: RateGroup, task_name: str, exc: Exception) -> None:
        where = f"{group.name}.{task_name}"
        log.error("task %s raised", where, exc_info=exc)
        if self._events is not None:
            try:
                self._events.emit(EV_TASK_ERROR, task=task_name, group=group.name, error=repr(exc))
            except Exception:
                log.exception("event listener raised while reporting %s", where)
        if self._on_error is not None:
            try:
                self._on_error(where, exc)
            except Exception:
                log.exception("on_error callback raised while reporting %s", where)

    # -- health and telemetry ---------------------------------------------------------------

    def alive(self) -> bool:
        """True if every group has run within its own period plus the slack, as of now.

        A group that has not run yet is measured from the first tick (at start-up the slower
        groups run after the faster ones). False before the first tick and when there are no
        groups: nothing then proves the loop runs.
        """
        if not self._groups or self._start is None:
            return False
        now = self._clock.monotonic()
        for group in self._groups.values():
            reference = group.last_run if group.last_run is not None else self._start
            if now - reference > group.period_s + self._alive_slack_s:
                return False
        return True

    def stats(self) -> dict[str, GroupStats]:
        return {name: group.stats() for name, group in self._groups.items()}

    def publish(self, pool: DataPool, now: float) -> None:
        """Write ``sched.<group>.ticks/max_ms/mean_ms/slips/errors`` and totals into ``pool``."""
        for name, stats in self.stats().items():
            pool.set(f"sched.{name}.ticks", stats.ticks, now)
            pool.set(f"sched.{name}.max_ms", stats.max_exec_s * 1e3, now)
            pool.set(f"sched.{name}.mean_ms", stats.mean_exec_s * 1e3, now)
            pool.set(f"sched.{name}.slips", stats.slips, now)
            pool.set(f"sched.{name}.errors", stats.errors, now)
        pool.set("sched.skipped_ticks", self.skipped_ticks, now)
        pool.set("sched.late_ticks", self.late_ticks, now)

    def channels(self) -> list[ChannelSpec]:
        """Channels for :meth:`publish` (call after every group has been added)."""
        specs = [
            ChannelSpec(0x0710, "sched.skipped_ticks", "int", description="Base ticks skipped."),
            ChannelSpec(
                0x0711, "sched.late_ticks", "int", description="Ticks run late (catch-up)."
            ),
        ]
        units = {"max_ms": "ms", "mean_ms": "ms"}
        for index, name in enumerate(self._groups):
            for offset, field_name in enumerate(_FIELDS):
                kind = "float" if field_name in units else "int"
                specs.append(
                    ChannelSpec(
                        _CHANNEL_BASE + 8 * index + offset,
                        f"sched.{name}.{field_name}",
                        kind,
                        units=units.get(field_name, ""),
                    )
                )
        return specs

    def packets(self, *, rate_hz: float = 0.2) -> list[PacketSpec]:
        """One ``sched.TIMING`` packet carrying every channel of :meth:`channels`."""
        return [
            PacketSpec(
                0x0710,
                "sched.TIMING",
                tuple(c.name for c in self.channels()),
                {"*": rate_hz},
                description="Rate-group execution times, slips and task errors.",
            )
        ]

    def events(self) -> list[EventSpec]:
        return [EV_TASK_ERROR, EV_SLIP]
