"""systemd integration: readiness, status text and the watchdog, with no dependency.

systemd's notify protocol is one datagram per message on the AF_UNIX socket named by
``NOTIFY_SOCKET`` (a path, or an abstract name written with a leading ``@``). The service unit
sets ``WatchdogSec=``; systemd then passes ``WATCHDOG_USEC`` and kills and restarts the program if
``WATCHDOG=1`` does not arrive within that time. :class:`HealthMonitor` sends it only while
:meth:`flight.scheduler.Scheduler.alive` says every rate group is running on time, so a hung
task or a starved group ends in a clean restart rather than a zombie that answers nothing.

Outside systemd (tests, ``fsw sim``, a developer's shell) ``NOTIFY_SOCKET`` is unset and every
call is a no-op returning False. Socket errors are logged and never raised: the health of the
flight software must not depend on the health of its supervisor's socket.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Protocol

from flight.clock import Clock
from flight.datapool import DataPool
from flight.events import EventLog, EventSpec, Severity
from flight.scheduler import Scheduler
from flight.telemetry import ChannelSpec

__all__ = ["HealthMonitor", "SystemdNotifier"]

log = logging.getLogger(__name__)

EV_WITHHELD = EventSpec(
    0x0718,
    "health.WATCHDOG_WITHHELD",
    Severity.WARNING_HI,
    "watchdog withheld: a rate group is not running on time ({stalled})",
    description="A rate group missed its period; systemd will restart the program if it lasts.",
)
EV_RESUMED = EventSpec(
    0x0719,
    "health.WATCHDOG_RESUMED",
    Severity.ACTIVITY_HI,
    "watchdog resumed: every rate group on time again",
    description="The scheduler recovered before systemd's watchdog expired.",
)


class SystemdNotifier:
    """Sends sd_notify messages to the socket systemd gave the process.

    Args:
        env: where ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` are read
            (``os.environ`` by default; read once, here).
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        self._address: str | None
        if raw.startswith("@"):
            self._address = "\0" + raw[1:]  # Linux abstract namespace
        elif raw.startswith("/"):
            self._address = raw
        else:
            if raw:
                log.warning("NOTIFY_SOCKET=%r is neither a path nor an abstract name; ignored", raw)
            self._address = None
        self.watchdog_interval_s = self._watchdog_interval(env)
        self._socket: socket.socket | None = None
        self.sent = 0
        self.errors = 0

    @staticmethod
    def _watchdog_interval(env: Mapping[str, str]) -> float | None:
        usec = env.get("WATCHDOG_USEC")
        if not usec:
            return None
        pid = env.get("WATCHDOG_PID")
        if pid and pid != str(os.getpid()):
            return None  # the watchdog belongs to another process (our parent)
        try:
            value = int(usec)
        except ValueError:
            log.warning("WATCHDOG_USEC=%r is not an integer; watchdog off", usec)
            return None
        if value <= 0:
            return None
        # Half the timeout, as sd_watchdog_enabled(3) recommends: one late ping is survivable.
        return value / 1e6 / 2

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notify socket."""
        return self._address is not None

    def notify(self, message: str) -> bool:
        """Send one raw notify message; True if the socket accepted it. Never raises."""
        if self._address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(message.encode("utf-8", "replace"), self._address)
        except OSError as exc:
            self.errors += 1
            log.warning("sd_notify %r to %r failed: %s", message, self._address, exc)
            self.close()
            return False
        self.sent += 1
        return True

    def ready(self) -> bool:
        """Start-up is complete (``Type=notify`` units wait for this)."""
        return self.notify("READY=1")

    def status(self, text: str) -> bool:
        """A one-line status shown by ``systemctl status``."""
        return self.notify("STATUS=" + " ".join(text.split()))

    def watchdog(self) -> bool:
        """Reset systemd's watchdog timer."""
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        """Shutdown has begun."""
        return self.notify("STOPPING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class Aliveness(Protocol):
    def alive(self) -> bool: ...


class HealthMonitor:
    """Pets the systemd watchdog at its interval, only while the scheduler is alive.

    Call :meth:`tick` from a rate group that runs more often than ``watchdog_interval_s``
    (normally a 1 Hz or faster group; the interval is half of ``WatchdogSec=``).

    Args:
        notifier: the systemd connection.
        scheduler: anything with ``alive()`` (the :class:`~flight.scheduler.Scheduler`).
        clock: monotonic time for the interval.
        events: if given, withholding and resuming the watchdog raise events.
    """

    def __init__(
        self,
        notifier: SystemdNotifier,
        scheduler: Aliveness,
        clock: Clock,
        *,
        events: EventLog | None = None,
    ) -> None:
        self._notifier = notifier
        self._scheduler = scheduler
        self._clock = clock
        self._events = events
        self._last_pet: float | None = None
        self.pets = 0
        self.withheld = 0
        self._withholding = False

    def tick(self) -> None:
        """Send ``WATCHDOG=1`` if the interval has passed and every rate group is alive."""
        interval = self._notifier.watchdog_interval_s
        if interval is None:
            return
        now = self._clock.monotonic()
        if self._last_pet is not None and now - self._last_pet < interval:
            return
        if not self._scheduler.alive():
            self.withheld += 1
            if not self._withholding:
                self._withholding = True
                log.error("withholding the systemd watchdog: scheduler not alive")
                if self._events is not None:
                    self._events.emit(EV_WITHHELD, stalled=self._stalled())
            return
        if self._withholding:
            self._withholding = False
            if self._events is not None:
                self._events.emit(EV_RESUMED)
        if self._notifier.watchdog():
            self.pets += 1
        self._last_pet = now

    def _stalled(self) -> str:
        if not isinstance(self._scheduler, Scheduler):
            return "scheduler not alive"
        now = self._clock.monotonic()
        late = [
            g.name
            for g in self._scheduler.groups
            if g.last_run is None or now - g.last_run > g.period_s
        ]
        return ", ".join(late) or "no rate group"

    def publish(self, pool: DataPool, now: float) -> None:
        pool.set("health.watchdog_pets", self.pets, now)
        pool.set("health.watchdog_withheld", self.withheld, now)

    def channels(self) -> list[ChannelSpec]:
        return [
            ChannelSpec(0x0718, "health.watchdog_pets", "int", description="WATCHDOG=1 sent."),
            ChannelSpec(
                0x0719,
                "health.watchdog_withheld",
                "int",
                description="Watchdog pings withheld because a rate group was late.",
            ),
        ]

    def events(self) -> list[EventSpec]:
        return [EV_WITHHELD, EV_RESUMED]
