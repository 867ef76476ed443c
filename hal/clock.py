"""The clock protocol the HAL depends on.

Drivers sometimes must wait (a PCA9685 oscillator needs 500 µs after waking). They never call
``time.sleep``: they ask the clock they were given, so the same driver runs at full speed under a
simulated clock and at real pace on the board. The implementations live in ``flight.clock``; the
HAL only names what it needs, to keep the dependency pointing downwards.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Clock"]


class Clock(Protocol):
    """Monotonic time and waiting, in seconds."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; the origin is arbitrary."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; a simulated clock advances instead of blocking."""
        ...
