"""Figure 1: wake-up lateness of a 100 Hz rate group against a bare absolute-deadline loop.

Both loops run in this process, alternating one-second chunks so that whatever else the machine
is doing (other processes on two shared cores) falls on both alike. Lateness is the time the
task (or the bare loop) observes minus the tick's absolute deadline ``start + n * period``.
"""

from __future__ import annotations

import gc
import time

from flight.clock import WallClock
from flight.scheduler import Scheduler

from .common import Figure, percentile

__all__ = ["scheduler_figures"]

BASE_HZ = 100.0
#: Floor under the baseline p99 in the target: Linux's default timer slack is 50 us, so
#: lateness below that is the kernel coalescing wake-ups, not anything a user-space loop can
#: influence; without a floor, a quiet machine would turn a 10 us difference into a "miss".
FLOOR_S = 50e-6


def _bare_chunk(ticks: int, period: float, out: list[float]) -> None:
    start = time.monotonic()
    for n in range(ticks):
        deadline = start + n * period
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(remaining)
        out.append(time.monotonic() - deadline)


def _scheduler_chunk(ticks: int, out: list[float]) -> tuple[int, int]:
    clock = WallClock()
    sched = Scheduler(clock, base_hz=BASE_HZ)
    group = sched.add_group("fast", 1)

    def task() -> None:
        # The deadline of the tick being run: the scheduler's own start plus index * period.
        out.append(clock.monotonic() - sched._deadline(sched.tick))

    group.add(task, "probe")
    sched.run(max_ticks=ticks)
    return sched.skipped_ticks, group.slips


def scheduler_figures(seconds: float) -> list[Figure]:
    period = 1.0 / BASE_HZ
    ticks = int(BASE_HZ)
    bare: list[float] = []
    sched: list[float] = []
    skipped = slips = 0
    gc.collect()
    for _ in range(max(1, round(seconds))):
        _bare_chunk(ticks, period, bare)
        s, g = _scheduler_chunk(ticks, sched)
        skipped += s
        slips += g
    b50, b99, bmax = (percentile(bare, 50), percentile(bare, 99), max(bare))
    s50, s99, smax = (percentile(sched, 50), percentile(sched, 99), max(sched))
    limit = 1.5 * max(b99, FLOOR_S)
    note = f"{len(sched)} ticks at 100 Hz, alternating 1 s chunks with the bare loop"
    us = 1e6
    return [
        Figure(
            "sched.lateness_p50",
            s50 * us,
            "us",
            b50 * us,
            "informative",
            None,
            True,
            note,
        ),
        Figure(
            "sched.lateness_p99",
            s99 * us,
            "us",
            b99 * us,
            f"<= 1.5 x max(bare p99, 50 us) = {limit * us:.0f} us",
            limit * us,
            s99 <= limit,
            note,
        ),
        Figure(
            "sched.lateness_max",
            smax * us,
            "us",
            bmax * us,
            "informative",
            None,
            True,
            note,
        ),
        Figure(
            "sched.slips",
            float(slips + skipped),
            "ticks",
            None,
            "== 0",
            0.0,
            slips + skipped == 0,
            note,
            {"skipped_ticks": skipped, "group_slips": slips},
        ),
    ]
