"""The deep-space radio link of ``fsw sim``: bytes cross it one light time late, or not at all.

The spacecraft's end is a :class:`~flight.link.transports.Transport` like a radio's UART, so the
real link service runs over it; the ground station holds the other end. The harness asks when the
next bytes arrive so that it can skip quiet time without skipping a delivery.
"""

from __future__ import annotations

from collections import deque

from flight.clock import SimClock
from flight.missions.mars.sim.timeline import one_way_light_time

__all__ = ["LightTimeLink"]


class _LightTimeEnd:
    """One end of the radio link: bytes written arrive at the other end one light time later."""

    def __init__(
        self,
        link: LightTimeLink,
        outbox: deque[tuple[float, bytes]],
        inbox: deque[tuple[float, bytes]],
    ) -> None:
        self._link = link
        self._out = outbox
        self._in = inbox
        self.connected = True

    def write(self, data: bytes) -> None:
        now = self._link.clock.monotonic()
        if not self._link.in_outage(now):
            self._out.append((now + one_way_light_time(now), bytes(data)))

    def read_available(self) -> bytes:
        now = self._link.clock.monotonic()
        chunks = []
        while self._in and self._in[0][0] <= now:
            chunks.append(self._in.popleft()[1])
        return b"".join(chunks)

    def close(self) -> None:
        self.connected = False


class LightTimeLink:
    """A deep-space radio link on the simulated clock, with outages (nothing crosses them)."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        up: deque[tuple[float, bytes]] = deque()
        down: deque[tuple[float, bytes]] = deque()
        self.ground = _LightTimeEnd(self, up, down)
        self.spacecraft = _LightTimeEnd(self, down, up)
        self._queues = (up, down)
        self.outages: list[tuple[float, float]] = []

    def in_outage(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.outages)

    def next_uplink_delivery(self) -> float | None:
        """When the next bytes reach the spacecraft (what the downlink carries does not make
        the spacecraft busy: the ground reads it whenever it arrives)."""
        up = self._queues[0]
        return up[0][0] if up else None

    def next_downlink_delivery(self) -> float | None:
        """When the next bytes reach the ground."""
        down = self._queues[1]
        return down[0][0] if down else None
