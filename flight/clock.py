"""Clocks: the only place in hal/ and flight/ that reads wall time or sleeps.

Everything that waits asks a :class:`Clock`. On the board that is :class:`WallClock` (monotonic
time, absolute deadlines, so a late wake-up does not push every later deadline back). In tests and
in ``fsw sim`` it is :class:`SimClock`, which advances instantly: a nine-minute EDL runs in seconds
and the same seed always gives the same telemetry.

:class:`SpacecraftTime` turns the monotonic clock into mission elapsed time (MET) and, once the
ground has sent a correlation by command, into UTC.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "SimClock", "SpacecraftTime", "WallClock", "utc_now"]


def utc_now() -> float:
    """Unix seconds from the host's calendar clock: for ground tools' log stamps only (the flight
    side has no trustworthy calendar and uses :class:`SpacecraftTime`)."""
    return time.time()


class Clock(Protocol):
    """Monotonic seconds plus the two ways to wait on them."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait a relative interval (short waits only: drivers' settle times)."""
        ...

    def sleep_until(self, deadline: float) -> None:
        """Wait until ``monotonic() >= deadline``; return at once if it already is."""
        ...


class WallClock:
    """Real time from ``time.monotonic``; waits block the calling thread."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def sleep_until(self, deadline: float) -> None:
        # Sleep on the absolute deadline, re-reading the clock each time: time.sleep may return
        # early on a signal, and sleeping a precomputed interval would accumulate drift.
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(remaining)


class SimClock:
    """Simulated time: waiting advances the clock instead of blocking.

    Time only moves when something waits or calls :meth:`advance`, which makes runs deterministic
    and as fast as the CPU allows.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def monotonic(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._now += seconds

    def sleep_until(self, deadline: float) -> None:
        if deadline > self._now:
            self._now = deadline

    def advance(self, seconds: float) -> None:
        """Move time forward; negative steps are refused because the clock is monotonic."""
        if seconds < 0:
            raise ValueError(f"SimClock cannot go backwards (advance({seconds}))")
        self._now += seconds


class SpacecraftTime:
    """Mission elapsed time and its correlation to UTC.

    MET counts from the moment the flight software's epoch was set (boot, or a value restored from
    the state store so MET survives a reboot). UTC is MET plus an offset that only the ground can
    set, because a Mars spacecraft has no trustworthy absolute time source of its own.
    """

    def __init__(self, clock: Clock, *, met_at_start: float = 0.0) -> None:
        self._clock = clock
        self._origin = clock.monotonic() - met_at_start
        self._utc_offset: float | None = None

    @property
    def clock(self) -> Clock:
        return self._clock

    def met(self) -> float:
        """Seconds of mission elapsed time."""
        return self._clock.monotonic() - self._origin

    def set_utc_correlation(self, utc_at_met: float, met: float) -> None:
        """Record that ``met`` seconds of MET corresponded to ``utc_at_met`` (Unix seconds)."""
        self._utc_offset = utc_at_met - met

    @property
    def utc_offset(self) -> float | None:
        return self._utc_offset

    def utc(self) -> float | None:
        """Unix seconds now, or ``None`` until the ground has sent a correlation."""
        if self._utc_offset is None:
            return None
        return self.met() + self._utc_offset
