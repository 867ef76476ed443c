"""Device polling: read each device at its per-mode rate into the data pool, and track its health.

A :class:`DevicePoller` owns one :class:`~hal.device.Device`. Each successful read writes every
field of the reading into the data pool as ``<device>.<field>``. A failed read (any HAL error or
``OSError``: no ACK, stuck bus, bad frame, no data yet) is counted; ``fail_limit`` failures in a
row declare the device offline: a WARNING_HI event, its pool entries marked invalid (so nothing
downstream acts on a stale value as if it were fresh), and ``dev.<device>.online`` set False for
fault protection. An offline device is retried only every ``retry_interval_s``, so a dead chip
does not eat the bus time of the live ones; the first good read brings it back online.

A driver bug (an exception that is neither a HAL error nor an ``OSError``) counts as a failure
too, logged with its traceback: one broken driver must not take the polling of the others down.

:class:`PollManager` runs the pollers from one base-tick task, each at the rate the current mode
gives it, and owns the ``dev.RESET`` command.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flight.commands import Arg, ArgType, CommandError, CommandSpec, ValidationError
from flight.datapool import DataPool
from flight.events import EventLog, EventSpec, Severity
from flight.telemetry import ChannelSpec
from hal.device import Device
from hal.errors import HALError

__all__ = ["DevicePoller", "PollManager"]

log = logging.getLogger(__name__)

#: Tolerance on due times (simulated time built from repeated float additions lands a hair early).
_EPS_S = 1e-6
#: Highest polling rate accepted from configuration.
MAX_POLL_HZ = 1000.0

OP_RESET = 0x0400

EV_OFFLINE = EventSpec(
    0x0400,
    "dev.OFFLINE",
    Severity.WARNING_HI,
    "{device} offline after {failures} failed reads: {error}",
    description="A device failed fail_limit reads in a row; its data is marked invalid.",
)
EV_ONLINE = EventSpec(
    0x0401,
    "dev.ONLINE",
    Severity.ACTIVITY_HI,
    "{device} back online after {failures} failed reads",
    description="An offline device answered again.",
)
EV_READ_FAILED = EventSpec(
    0x0402,
    "dev.READ_FAILED",
    Severity.WARNING_LO,
    "{device} read failed ({failures} in a row): {error}",
    throttle=50,
    description="One failed read of a device that is still online.",
)
EV_RESET = EventSpec(
    0x0403, "dev.RESET_DONE", Severity.ACTIVITY_HI, "{device} reset", description="dev.RESET ran."
)
EV_RESET_FAILED = EventSpec(
    0x0404,
    "dev.RESET_FAILED",
    Severity.WARNING_HI,
    "{device} reset failed: {error}",
    description="dev.RESET could not reconfigure the device.",
)


class DevicePoller:
    """Reads one device into the data pool and decides whether it is online.

    Args:
        device: the driver.
        pool: where readings and ``dev.<name>.online`` / ``dev.<name>.errors`` go.
        events: where online/offline events go.
        now: spacecraft time in seconds (stamps pool entries, paces retries).
        fail_limit: consecutive failures that make the device offline.
        retry_interval_s: how often an offline device is tried again.

    Raises:
        ValueError: fail_limit below 1, negative or non-finite retry interval.
    """

    def __init__(
        self,
        device: Device,
        *,
        pool: DataPool,
        events: EventLog,
        now: Callable[[], float],
        fail_limit: int = 3,
        retry_interval_s: float = 5.0,
    ) -> None:
        if fail_limit < 1:
            raise ValueError(f"{device.name}: fail_limit must be >= 1, got {fail_limit}")
        if not (math.isfinite(retry_interval_s) and retry_interval_s >= 0):
            raise ValueError(f"{device.name}: retry_interval_s must be >= 0")
        self.device = device
        self.name = device.name
        self._pool = pool
        self._events = events
        self._now = now
        self.fail_limit = fail_limit
        self.retry_interval_s = float(retry_interval_s)
        self.online = True
        self.failures = 0
        self.total_errors = 0
        self.reads = 0
        self.last_error = ""
        self._next_retry: float | None = None

    def poll(self) -> None:
        """Read the device once (or, while offline, only when a retry is due). Never raises."""
        now = self._now()
        if not self.online and self._next_retry is not None and now < self._next_retry - _EPS_S:
            return
        try:
            values = self.device.read().as_dict()
        except (HALError, OSError) as exc:
            self._failed(now, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:
            log.exception("driver of %s raised an unexpected exception", self.name)
            self._failed(now, f"driver bug {type(exc).__name__}: {exc}")
            return
        self._succeeded(now, values)

    def reset(self) -> None:
        """Reset the device (``Device.reset``) and let the next :meth:`poll` try it at once.

        Raises:
            HALError, OSError: the reset failed (a ``dev.RESET_FAILED`` event is raised first).
        """
        try:
            self.device.reset()
        except (HALError, OSError) as exc:
            self._events.emit(EV_RESET_FAILED, device=self.name, error=str(exc))
            raise
        self._next_retry = None
        self._events.emit(EV_RESET, device=self.name)

    def _succeeded(self, now: float, values: Mapping[str, Any]) -> None:
        self._pool.update(self.name, values, now)
        self.reads += 1
        if not self.online:
            self.online = True
            self._events.emit(EV_ONLINE, device=self.name, failures=self.failures)
        self.failures = 0
        self._next_retry = None
        self._publish(now)

    def _failed(self, now: float, error: str) -> None:
        self.failures += 1
        self.total_errors += 1
        self.last_error = error
        if self.online:
            if self.failures >= self.fail_limit:
                self.online = False
                self._pool.invalidate(self.name, now)
                self._events.emit(EV_OFFLINE, device=self.name, failures=self.failures, error=error)
            else:
                self._events.emit(
                    EV_READ_FAILED, device=self.name, failures=self.failures, error=error
                )
        if not self.online:
            self._next_retry = now + self.retry_interval_s
        self._publish(now)

    def _publish(self, now: float) -> None:
        self._pool.set(f"dev.{self.name}.online", self.online, now)
        self._pool.set(f"dev.{self.name}.errors", self.total_errors, now)


class PollManager:
    """Polls every device at the rate the current mode asks for.

    Args:
        pollers: one per device, polled in this order when due at the same tick.
        now: spacecraft time in seconds.
        rates_hz: mode -> device name -> polls per second. A mode not listed uses the ``"*"``
            table; in a listed mode a device not listed is not polled (rate 0).

    Raises:
        ValueError: two pollers with one name, a rate for an unknown device, a negative,
            non-finite or too high rate.
    """

    def __init__(
        self,
        pollers: Iterable[DevicePoller],
        *,
        now: Callable[[], float],
        rates_hz: Mapping[str, Mapping[str, float]],
    ) -> None:
        self._pollers: dict[str, DevicePoller] = {}
        for poller in pollers:
            if poller.name in self._pollers:
                raise ValueError(f"two devices named {poller.name!r}")
            self._pollers[poller.name] = poller
        self._now = now
        self._rates: dict[str, dict[str, float]] = {}
        for mode, table in rates_hz.items():
            checked: dict[str, float] = {}
            for device, rate in table.items():
                if device not in self._pollers:
                    raise ValueError(f"mode {mode!r}: polling rate for unknown device {device!r}")
                if (
                    isinstance(rate, bool)
                    or not isinstance(rate, int | float)
                    or not math.isfinite(rate)
                    or not 0 <= rate <= MAX_POLL_HZ
                ):
                    raise ValueError(
                        f"mode {mode!r}: rate {rate!r} for {device} not within 0..{MAX_POLL_HZ} Hz"
                    )
                checked[device] = float(rate)
            self._rates[mode] = checked
        self._next_due: dict[str, float | None] = dict.fromkeys(self._pollers)
        self._period: dict[str, float] = dict.fromkeys(self._pollers, 0.0)

    @property
    def pollers(self) -> list[DevicePoller]:
        return list(self._pollers.values())

    def poller(self, name: str) -> DevicePoller:
        """Raises: KeyError: no such device."""
        return self._pollers[name]

    def rate(self, device: str, mode: str) -> float:
        """Polls per second of ``device`` in ``mode`` (0: not polled)."""
        table = self._rates.get(mode, self._rates.get("*", {}))
        return table.get(device, 0.0)

    def tick(self, mode: str) -> None:
        """Poll every device that is due in ``mode``; call once per base tick. Never raises."""
        now = self._now()
        for name, poller in self._pollers.items():
            rate = self.rate(name, mode)
            if rate <= 0:
                self._next_due[name] = None
                continue
            period = 1.0 / rate
            due = self._next_due[name]
            if due is not None and self._period[name] != period:
                due = due - self._period[name] + period  # rate changed: one new period after
            if due is not None and now < due - _EPS_S:
                continue
            poller.poll()
            # Anchor on the due time so the mean rate is exact despite tick jitter; after a stall
            # restart from now rather than bursting to catch up.
            if due is not None and now - due < period:
                self._next_due[name] = due + period
            else:
                self._next_due[name] = now + period
            self._period[name] = period

    # -- dictionary -------------------------------------------------------------------------

    def _reset(self, device: str) -> str:
        poller = self._pollers.get(device)
        if poller is None:
            raise ValidationError(f"device: no device named {device!r}")
        try:
            poller.reset()
        except (HALError, OSError) as exc:
            raise CommandError(f"{device} reset failed: {exc}") from exc
        return f"{device} reset"

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                OP_RESET,
                "dev.RESET",
                self._reset,
                (Arg("device", ArgType.STR, max_length=64, description="Device name."),),
                description="Reconfigure a device and retry it at the next poll.",
            )
        ]

    def events(self) -> list[EventSpec]:
        return [EV_OFFLINE, EV_ONLINE, EV_READ_FAILED, EV_RESET, EV_RESET_FAILED]

    def channels(self) -> list[ChannelSpec]:
        """``dev.<name>.online`` and ``dev.<name>.errors`` for every device (ids 0x0400 + 2n)."""
        specs: list[ChannelSpec] = []
        for index, name in enumerate(self._pollers):
            specs.append(ChannelSpec(0x0400 + 2 * index, f"dev.{name}.online", "bool"))
            specs.append(ChannelSpec(0x0401 + 2 * index, f"dev.{name}.errors", "int"))
        return specs
