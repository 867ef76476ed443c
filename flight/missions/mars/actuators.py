"""The lander's actuators on the PCA9685 PWM board: which channel does what, and how it is driven.

Valves and pyrotechnic relays are switched fully on or off; proportional actuators (the descent
engine's throttle valve, the lateral thrusters' valve) are servo-driven and take a pulse width:
1000 us closed, 2000 us fully open, 1500 us neutral. The simulator reads these same channels to
decide what the vehicle does, so the flight software can only fly it through its outputs.

Pyro channels are pulsed (on for :data:`PYRO_PULSE_S`, then off) as a firing circuit would be;
the pulse's end is driven by :meth:`Actuators.tick` so nothing ever waits.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "PULSE_CLOSED_US",
    "PULSE_NEUTRAL_US",
    "PULSE_OPEN_US",
    "Actuators",
    "Channel",
    "PwmLike",
]

log = logging.getLogger(__name__)

PULSE_CLOSED_US = 1000.0
PULSE_NEUTRAL_US = 1500.0
PULSE_OPEN_US = 2000.0
PYRO_PULSE_S = 0.5


@enum.unique
class Channel(enum.IntEnum):
    MAIN_ENGINE = 0
    PARACHUTE_MORTAR = 1
    HEATSHIELD_RELEASE = 2
    BACKSHELL_SEPARATION = 3
    DESCENT_THROTTLE = 4
    LATERAL_THRUST = 5
    ROVER_RELEASE = 6
    LANDER_SEPARATION = 7


PYRO_CHANNELS = frozenset(
    {
        Channel.PARACHUTE_MORTAR,
        Channel.HEATSHIELD_RELEASE,
        Channel.BACKSHELL_SEPARATION,
        Channel.ROVER_RELEASE,
        Channel.LANDER_SEPARATION,
    }
)


class PwmLike(Protocol):
    """The PCA9685 driver's set-point interface."""

    def full_on(self, channel: int) -> None: ...

    def full_off(self, channel: int) -> None: ...

    def set_pulse_us(self, channel: int, pulse_us: float) -> None: ...


class Actuators:
    """Typed actuator commands over a PWM board.

    Args:
        pwm: the PCA9685 driver (``None`` when the board has none configured: every command then
            raises, so a missing actuator is loud, not silent).
        now: spacecraft time, for pyro pulse timing.
    """

    def __init__(self, pwm: PwmLike | None, *, now: Callable[[], float]) -> None:
        self._pwm = pwm
        self._now = now
        self._pulse_ends: dict[Channel, float] = {}
        self.throttle = 0.0
        self.lateral = 0.0
        self.main_engine_on = False

    def _board(self) -> PwmLike:
        if self._pwm is None:
            raise RuntimeError("no PWM actuator board configured")
        return self._pwm

    def fire(self, channel: Channel) -> None:
        """Start a pyro pulse; :meth:`tick` ends it."""
        if channel not in PYRO_CHANNELS:
            raise ValueError(f"{channel.name} is not a pyro channel")
        self._board().full_on(channel)
        self._pulse_ends[channel] = self._now() + PYRO_PULSE_S

    def main_engine(self, on: bool) -> None:
        board = self._board()
        if on:
            board.full_on(Channel.MAIN_ENGINE)
        else:
            board.full_off(Channel.MAIN_ENGINE)
        self.main_engine_on = on

    def set_throttle(self, fraction: float) -> None:
        """Descent engine throttle 0..1 (0 closes the valve)."""
        fraction = max(0.0, min(1.0, fraction))
        self._board().set_pulse_us(
            Channel.DESCENT_THROTTLE, PULSE_CLOSED_US + fraction * (PULSE_OPEN_US - PULSE_CLOSED_US)
        )
        self.throttle = fraction

    def set_lateral(self, fraction: float) -> None:
        """Lateral thrust -1..1 for hazard avoidance (0 is neutral)."""
        fraction = max(-1.0, min(1.0, fraction))
        self._board().set_pulse_us(Channel.LATERAL_THRUST, PULSE_NEUTRAL_US + fraction * 500.0)
        self.lateral = fraction

    def safe(self) -> None:
        """Close every valve (engines off). Pyros are left alone: their pulses end by themselves."""
        self.main_engine(False)
        self.set_throttle(0.0)
        self.set_lateral(0.0)

    def tick(self) -> None:
        """End pyro pulses that are due."""
        if not self._pulse_ends:
            return
        now = self._now()
        for channel, end in list(self._pulse_ends.items()):
            if now >= end:
                try:
                    self._board().full_off(channel)
                except Exception:  # retried next tick: a relay left on is logged, not fatal
                    log.warning("could not end pulse on %s; will retry", channel.name)
                    continue
                del self._pulse_ends[channel]
