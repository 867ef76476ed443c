"""Telemetry: channels read from the data pool, grouped into packets sent at per-mode rates.

A :class:`ChannelSpec` names one value (type, units, yellow and red limits) and the data-pool key it
is read from. A :class:`PacketSpec` groups channels and says how often to send them in each mode.
:class:`TelemetryManager` is called once per base tick with the current mode; it returns the packets
that are due as :class:`~flight.messages.Message` objects whose body is the list of values in the
packet's channel order (the dictionary tells the ground what each position means; ``None`` marks a
value that is missing, invalid or of the wrong type). A plain list, not a map, because it is the
cheapest CBOR form and the ground needs the dictionary to read it anyway.

Scheduling is by time (``now``), not by counting ticks, so a late or skipped tick does not change
the rate, and a rate change (by command or by a mode change) takes effect at the next call: the next
send is due one new period after the last one.

On-change packets (parameters, counters) are sent as soon as any value differs from what was last
sent, but not more often than ``min_interval_s``; their rate is then a heartbeat so a ground station
that missed one still catches up, and a rate of 0 means "on change only".

Limits: ``yellow=(low, high)`` means a value below ``low`` or above ``high`` is in the yellow zone
(``None`` leaves that side open); ``red`` likewise, normally wider. Each channel with limits is
checked on every call. Entering yellow raises a WARNING_LO event, entering red a WARNING_HI event,
each at most once per excursion (a value flickering between yellow and red does not repeat them),
and coming back inside all limits raises an ACTIVITY_LO event. Missing or invalid values do not
change the limit state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from flight.commands import Arg, ArgType, CommandSpec, ValidationError
from flight.datapool import DataPool
from flight.events import EventLog, EventSpec, Severity
from flight.messages import Message, MessageKind

__all__ = ["CHANNEL_TYPES", "ChannelSpec", "PacketSpec", "TelemetryManager"]

CHANNEL_TYPES = ("float", "int", "bool", "str")

#: Highest packet rate the rate command accepts (the base tick bounds the real rate anyway).
MAX_RATE_HZ = 100.0
#: Tolerance on due times: simulated time built from repeated float additions lands a hair early.
_EPS_S = 1e-6
_TELEMETRY = MessageKind.TELEMETRY
#: Builds a Message from one tuple without the generated ``__new__`` (a third of the cost; the
#: same object).
_new_message = tuple.__new__

Limits = tuple[float | None, float | None]

OP_RATE_SET = 0x0100

EV_RATE_CHANGED = EventSpec(
    0x0100,
    "tlm.RATE_CHANGED",
    Severity.ACTIVITY_HI,
    "{packet} rate in mode {mode} set to {rate_hz} Hz",
    description="A packet's rate was changed by command.",
)
EV_LIMIT_YELLOW = EventSpec(
    0x0101,
    "tlm.LIMIT_YELLOW",
    Severity.WARNING_LO,
    "{channel} = {value} {units} outside yellow limits {limits}",
    throttle=100,
    description="A channel entered its yellow zone (once per excursion).",
)
EV_LIMIT_RED = EventSpec(
    0x0102,
    "tlm.LIMIT_RED",
    Severity.WARNING_HI,
    "{channel} = {value} {units} outside red limits {limits}",
    description="A channel entered its red zone (once per excursion).",
)
EV_LIMIT_NOMINAL = EventSpec(
    0x0103,
    "tlm.LIMIT_NOMINAL",
    Severity.ACTIVITY_LO,
    "{channel} = {value} {units} back within limits",
    throttle=100,
    description="A channel that was out of limits is back inside them.",
)


def _check_limits(name: str, which: str, limits: Limits | None) -> None:
    if limits is None:
        return
    if not isinstance(limits, tuple) or len(limits) != 2:
        raise ValueError(f"{name}: {which} limits must be a (low, high) tuple")
    low, high = limits
    for bound in limits:
        if bound is not None and (
            isinstance(bound, bool)
            or not isinstance(bound, int | float)
            or not math.isfinite(bound)
        ):
            raise ValueError(f"{name}: {which} limit {bound!r} is not a finite number")
    if low is not None and high is not None and low > high:
        raise ValueError(f"{name}: {which} low limit {low} above high limit {high}")


def _format_limits(limits: Limits) -> str:
    low, high = limits
    return f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"


def _outside(value: float, limits: Limits | None) -> bool:
    if limits is None:
        return False
    low, high = limits
    return (low is not None and value < low) or (high is not None and value > high)


def _as_float(value: Any) -> float | None:
    if type(value) is float:  # the usual case, first: a finite float is kept as it is
        return value if value - value == 0.0 else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _as_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


#: Channel type -> conversion of a pool value to what is sent (``None``: not that type).
_COERCE: dict[str, Callable[[Any], Any]] = {
    "float": _as_float,
    "int": _as_int,
    "bool": _as_bool,
    "str": _as_str,
}


@dataclass(frozen=True)
class ChannelSpec:
    """One telemetry value.

    Raises (on construction):
        ValueError: unknown type, limits on a non-numeric channel, malformed limits.
    """

    id: int
    name: str
    type: str
    units: str = ""
    source: str | None = None
    yellow: Limits | None = None
    red: Limits | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.type not in CHANNEL_TYPES:
            raise ValueError(f"{self.name}: channel type {self.type!r} not in {CHANNEL_TYPES}")
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id < 0:
            raise ValueError(f"{self.name}: channel id {self.id!r} must be a non-negative int")
        if (self.yellow or self.red) and self.type not in ("float", "int"):
            raise ValueError(f"{self.name}: limits need a numeric channel, not {self.type}")
        _check_limits(self.name, "yellow", self.yellow)
        _check_limits(self.name, "red", self.red)

    @property
    def key(self) -> str:
        """The data-pool key the value is read from."""
        return self.source or self.name

    def coerce(self, value: Any) -> Any:
        """The value as this channel's type, or ``None`` if it is not one (NaN/inf included)."""
        return _COERCE[self.type](value)

    def limit_level(self, value: float) -> int:
        """0 inside all limits, 1 in the yellow zone, 2 in the red zone."""
        if _outside(value, self.red):
            return 2
        if _outside(value, self.yellow):
            return 1
        return 0


@dataclass(frozen=True)
class PacketSpec:
    """A group of channels sent together.

    Attributes:
        rates_hz: mode name -> sends per second; ``"*"`` applies to modes not listed; 0 is off
            (for on-change packets: no heartbeat, changes only).
        on_change: also send as soon as any value changes.
        min_interval_s: on-change sends are at least this far apart.

    Raises (on construction):
        ValueError: no channels, a channel listed twice, a negative or non-finite rate.
    """

    id: int
    name: str
    channels: tuple[str, ...]
    rates_hz: Mapping[str, float] = field(hash=False)
    on_change: bool = False
    description: str = ""
    min_interval_s: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "rates_hz", MappingProxyType(dict(self.rates_hz)))
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id < 0:
            raise ValueError(f"{self.name}: packet id {self.id!r} must be a non-negative int")
        if not self.channels:
            raise ValueError(f"{self.name}: a packet needs at least one channel")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"{self.name}: a channel is listed twice")
        for mode, rate in self.rates_hz.items():
            _check_rate(f"{self.name} rate for {mode!r}", rate)
        if not (math.isfinite(self.min_interval_s) and self.min_interval_s >= 0):
            raise ValueError(f"{self.name}: min_interval_s must be >= 0")


def _check_rate(what: str, rate: Any) -> None:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        raise ValueError(f"{what}: {rate!r} is not a finite number")
    if rate < 0:
        raise ValueError(f"{what}: {rate} is negative")


@dataclass
class _LimitState:
    level: int = 0
    worst: int = 0


@dataclass(slots=True)
class _PacketPlan:
    """One packet: its pool reader, resolved once at registration, and its schedule.

    The reader gives values already converted to each channel's type: every channel's pool key
    is declared with its conversion (:meth:`DataPool.declare`), so a value is converted once when
    it is written rather than on every sampling of every packet that carries it. The schedule
    lives here too, flat and slotted, because :meth:`TelemetryManager.sample` reads it for every
    active packet on every tick.
    """

    id: int  # spec.id, kept beside it for the same reason
    spec: PacketSpec
    rates: dict[str, float]
    read: Callable[[], tuple[Any, ...]]
    on_change: bool
    last_sent: float | None = None
    #: When the next periodic send is due (``-inf``: never sent, so due at once; ``inf``: no
    #: periodic sends in the current mode).
    due: float = math.inf
    #: The period ``due`` was set for (0: none); a different period in the mode now in force
    #: means the rate changed, and the next send is due one new period after the last.
    period: float = 0.0
    last_values: list[Any] | None = None


@dataclass
class _LimitPlan:
    """One limited channel: ``low..high`` is where it is inside every limit (level 0)."""

    spec: ChannelSpec
    state: _LimitState
    low: float
    high: float


def _inner_bounds(spec: ChannelSpec) -> tuple[float, float]:
    lows = [-math.inf] + [lim[0] for lim in (spec.yellow, spec.red) if lim and lim[0] is not None]
    highs = [math.inf] + [lim[1] for lim in (spec.yellow, spec.red) if lim and lim[1] is not None]
    return max(lows), min(highs)


class TelemetryManager:
    """Samples channels from the data pool and emits the packets that are due.

    Args:
        pool: where channel values are read.
        events: where limit and rate-change events go.
        now: spacecraft time in seconds.
    """

    def __init__(self, *, pool: DataPool, events: EventLog, now: Callable[[], float]) -> None:
        self._pool = pool
        self._events = events
        self._now = now
        self._channels: dict[str, ChannelSpec] = {}
        self._channel_ids: dict[int, ChannelSpec] = {}
        self._packets: dict[int, PacketSpec] = {}
        self._packet_names: dict[str, PacketSpec] = {}
        #: By packet id, in id order (the order packets are emitted in).
        self._plans: dict[int, _PacketPlan] = {}
        #: The packets with a rate or sent on change in ``_active_mode``, in id order; rebuilt
        #: when the mode changes or a rate or packet is added (``_active_mode = None``).
        self._active: list[_PacketPlan] = []
        self._active_mode: str | None = None
        self._limit_plans: list[_LimitPlan] = []
        self._read_limited: Callable[[], tuple[Any, ...]] = tuple
        #: Per limited channel, in _limit_plans order: the window in which a value needs no
        #: check. Its inner bounds while the channel is inside every limit; empty (inf, -inf)
        #: while it is not, so that every value is checked until it comes back.
        self._quiet_lows: list[float] = []
        self._quiet_highs: list[float] = []

    # -- registry ---------------------------------------------------------------------------

    def register_channel(self, spec: ChannelSpec) -> None:
        """Raises: ValueError: the id or name is already registered."""
        if spec.name in self._channels:
            raise ValueError(f"channel {spec.name} already registered")
        if spec.id in self._channel_ids:
            other = self._channel_ids[spec.id].name
            raise ValueError(f"{spec.name}: channel id 0x{spec.id:04X} already used by {other}")
        self._pool.declare(spec.key, _COERCE[spec.type])
        self._channels[spec.name] = spec
        self._channel_ids[spec.id] = spec
        if spec.yellow or spec.red:
            plan = _LimitPlan(spec, _LimitState(), *_inner_bounds(spec))
            self._limit_plans.append(plan)
            self._quiet_lows.append(plan.low)
            self._quiet_highs.append(plan.high)
            self._read_limited = self._pool.reader([p.spec.key for p in self._limit_plans])

    def register_packet(self, spec: PacketSpec) -> None:
        """Raises: ValueError: id or name taken, or a channel that is not registered."""
        unknown = [c for c in spec.channels if c not in self._channels]
        if unknown:
            raise ValueError(f"{spec.name}: unknown channel(s) {', '.join(unknown)}")
        if spec.id in self._packets:
            other = self._packets[spec.id].name
            raise ValueError(f"{spec.name}: packet id 0x{spec.id:04X} already used by {other}")
        if spec.name in self._packet_names:
            raise ValueError(f"packet {spec.name} already registered")
        self._packets[spec.id] = spec
        self._packet_names[spec.name] = spec
        channels = [self._channels[name] for name in spec.channels]
        plan = _PacketPlan(
            spec.id,
            spec,
            dict(spec.rates_hz),
            self._pool.reader([c.key for c in channels]),
            spec.on_change,
        )
        self._plans = dict(sorted({**self._plans, spec.id: plan}.items()))
        self._active_mode = None

    @property
    def channels(self) -> list[ChannelSpec]:
        """Every registered channel, by id (what this manager carries, not what it declares)."""
        return [self._channel_ids[i] for i in sorted(self._channel_ids)]

    @property
    def packets(self) -> list[PacketSpec]:
        """Every registered packet, by id."""
        return [self._packets[i] for i in sorted(self._packets)]

    def layouts(self) -> dict[int, tuple[str, ...]]:
        """Each packet's channel types in body order, by packet id: what the downlink builds a
        fixed layout from (:meth:`~flight.link.service.LinkService.fix_layouts`)."""
        return {
            pid: tuple(self._channels[name].type for name in spec.channels)
            for pid, spec in sorted(self._packets.items())
        }

    def packet(self, key: int | str) -> PacketSpec:
        """The packet with this id or name.

        Raises:
            KeyError: no such packet.
        """
        spec = self._packet_names.get(key) if isinstance(key, str) else self._packets.get(key)
        if spec is None:
            raise KeyError(f"no telemetry packet {key!r}")
        return spec

    # -- rates ------------------------------------------------------------------------------

    def rate(self, packet: int | str, mode: str) -> float:
        """Current rate of ``packet`` in ``mode`` (Hz).

        Raises:
            KeyError: no such packet.
        """
        rates = self._plans[self.packet(packet).id].rates
        return rates.get(mode, rates.get("*", 0.0))

    def set_rate(self, packet: int | str, rate_hz: float, mode: str = "*") -> None:
        """Change a packet's rate in one mode (``"*"``: the default for unlisted modes).

        Raises:
            KeyError: no such packet.
            ValueError: negative or non-finite rate, empty mode.
        """
        spec = self.packet(packet)
        _check_rate(f"{spec.name} rate", rate_hz)
        if not mode:
            raise ValueError("mode must not be empty")
        self._plans[spec.id].rates[mode] = float(rate_hz)
        self._active_mode = None
        self._events.emit(EV_RATE_CHANGED, packet=spec.name, mode=mode, rate_hz=float(rate_hz))

    # -- sampling ---------------------------------------------------------------------------

    def value(self, channel: str) -> Any:
        """The channel's current value as it would be sent (``None`` if missing or invalid).

        Raises:
            KeyError: no such channel.
        """
        spec = self._channels[channel]
        sample = self._pool.get(spec.key)
        if sample is None or not sample.valid:
            return None
        return spec.coerce(sample.value)

    def sample(self, mode: str) -> list[Message]:
        """Check limits and return the packets due now in ``mode``, by packet id.

        This runs every base tick, and the packets that are due run it through CBOR, a space
        packet and a frame, so it stays a flat loop: limits are skipped with one comparison
        while a value is inside them, and each packet's due time is one comparison.
        """
        now = self._now()
        lows, highs = self._quiet_lows, self._quiet_highs
        for i, value in enumerate(self._read_limited()):
            # Missing, or inside every limit and was before: nothing can change.
            if value is not None and not lows[i] <= value <= highs[i]:
                self._check_limit(i, value)

        if mode != self._active_mode:
            self._activate(mode)
        out: list[Message] = []
        reached = now + _EPS_S  # a due time up to this is reached
        for plan in self._active:
            periodic = reached >= plan.due
            if not (periodic or plan.on_change):
                continue  # not due: do not even read its channels
            values = list(plan.read())
            if not periodic and (
                values == plan.last_values
                or (
                    plan.last_sent is not None
                    and now - plan.last_sent < plan.spec.min_interval_s - _EPS_S
                )
            ):
                continue
            out.append(_new_message(Message, (_TELEMETRY, plan.id, now, values)))
            period = plan.period
            if period:
                # Anchoring on the due time keeps the mean rate exact despite tick jitter; after
                # a long stall (or a change-triggered send) restart from now instead of bursting
                # to catch up.
                due = plan.due
                plan.due = due + period if periodic and now - due < period else now + period
            plan.last_sent = now
            plan.last_values = values
        return out

    def _activate(self, mode: str) -> None:
        """Resolve each packet's rate in ``mode``; a changed rate is due one new period after
        the packet's last send."""
        active = []
        for plan in self._plans.values():
            rates = plan.rates
            rate = rates.get(mode)
            if rate is None:
                rate = rates.get("*", 0.0)
            period = 1.0 / rate if rate > 0 else 0.0
            if period != plan.period:
                plan.period = period
                if not period:
                    plan.due = math.inf
                elif plan.last_sent is None:
                    plan.due = -math.inf
                else:
                    plan.due = plan.last_sent + period
            if period or plan.on_change:
                active.append(plan)
        self._active = active
        self._active_mode = mode

    def _check_limit(self, index: int, value: Any) -> None:
        plan = self._limit_plans[index]
        spec, state = plan.spec, plan.state
        level = spec.limit_level(value)
        if level == 0:
            if state.level != 0:
                self._events.emit(
                    EV_LIMIT_NOMINAL, channel=spec.name, value=value, units=spec.units
                )
            state.worst = 0
        elif level > state.worst:
            event, limits = (
                (EV_LIMIT_RED, spec.red) if level == 2 else (EV_LIMIT_YELLOW, spec.yellow)
            )
            assert limits is not None  # level > 0 implies those limits exist
            self._events.emit(
                event,
                channel=spec.name,
                value=value,
                units=spec.units,
                limits=_format_limits(limits),
            )
            state.worst = level
        state.level = level
        quiet = (plan.low, plan.high) if level == 0 else (math.inf, -math.inf)
        self._quiet_lows[index], self._quiet_highs[index] = quiet

    # -- commands and events ----------------------------------------------------------------

    def _rate_set(self, packet: str, rate_hz: float, mode: str) -> str:
        spec = self._packet_names.get(packet)
        if spec is None:
            try:
                spec = self._packets.get(int(packet, 0))
            except ValueError:
                spec = None
        if spec is None:
            raise ValidationError(f"packet: no telemetry packet {packet!r}")
        if not mode:
            raise ValidationError("mode: must not be empty ('*' for the default)")
        self.set_rate(spec.id, rate_hz, mode)
        return f"{spec.name} {rate_hz:g} Hz in mode {mode}"

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                OP_RATE_SET,
                "tlm.RATE_SET",
                self._rate_set,
                (
                    Arg("packet", ArgType.STR, max_length=64, description="Packet name or id."),
                    Arg("rate_hz", ArgType.FLOAT, "Hz", minimum=0.0, maximum=MAX_RATE_HZ),
                    Arg(
                        "mode",
                        ArgType.STR,
                        max_length=32,
                        description="Mode name, or '*' for modes without their own rate.",
                    ),
                ),
                description="Set a packet's rate in one mode (0 = off).",
            )
        ]

    def events(self) -> list[EventSpec]:
        return [EV_RATE_CHANGED, EV_LIMIT_YELLOW, EV_LIMIT_RED, EV_LIMIT_NOMINAL]
