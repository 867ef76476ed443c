"""Telemetry: packet timing by spacecraft time, packet bodies, limit events, the rate command."""

from __future__ import annotations

import enum
import math
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from flight import codec
from flight.clock import SimClock, SpacecraftTime
from flight.commands import CommandStatus
from flight.datapool import DataPool
from flight.dispatcher import Dispatcher
from flight.events import EventLog, Severity
from flight.messages import Message, MessageKind
from flight.telemetry import ChannelSpec, PacketSpec, TelemetryManager


class Rig:
    def __init__(self, start_met: float = 100.0) -> None:
        self.clock = SimClock()
        self.time = SpacecraftTime(self.clock, met_at_start=start_met)
        self.pool = DataPool()
        self.events = EventLog(now=self.time.met)
        self.tlm = TelemetryManager(pool=self.pool, events=self.events, now=self.time.met)

    def put(self, name: str, value: Any) -> None:
        self.pool.set(name, value, self.time.met())

    def run(self, seconds: float, *, tick: float = 0.1, mode: str = "CRUISE") -> list[Message]:
        out: list[Message] = []
        for _ in range(round(seconds / tick)):
            out += self.tlm.sample(mode)
            self.clock.advance(tick)
        return out

    def event_names(self) -> list[str]:
        return [e.name for e in self.events.recent]


def _basic(rig: Rig, rates: dict[str, float], *, on_change: bool = False, **kw: Any) -> None:
    rig.tlm.register_channel(ChannelSpec(0x1001, "eps.bus_v", "float", "V"))
    rig.tlm.register_channel(ChannelSpec(0x1002, "eps.mode", "str"))
    rig.tlm.register_packet(
        PacketSpec(0x1001, "eps.HK", ("eps.bus_v", "eps.mode"), rates, on_change=on_change, **kw)
    )


def _times(messages: list[Message], packet_id: int = 0x1001) -> list[float]:
    return [round(m.time, 6) for m in messages if m.id == packet_id]


# -- specs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"type": "double"},
        {"type": "bool", "yellow": (0.0, 1.0)},
        {"type": "str", "red": (None, 1.0)},
        {"type": "float", "yellow": (2.0, 1.0)},
        {"type": "float", "yellow": (math.nan, 1.0)},
        {"type": "float", "red": (1.0,)},
        {"type": "int", "yellow": (True, 3)},
        {"type": "int", "id": -1},
    ],
)
def test_bad_channel_specs_are_refused(kwargs: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"id": 1, "name": "x.y", **kwargs}
    with pytest.raises(ValueError):
        ChannelSpec(**fields)


@pytest.mark.parametrize(
    ("channels", "rates"),
    [((), {"*": 1.0}), (("a", "a"), {"*": 1.0}), (("a",), {"*": -1.0}), (("a",), {"X": math.inf})],
)
def test_bad_packet_specs_are_refused(channels: tuple[str, ...], rates: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PacketSpec(1, "x.P", channels, rates)


def test_packet_rates_are_a_read_only_copy() -> None:
    rates = {"*": 1.0}
    spec = PacketSpec(1, "x.P", ("a",), rates)
    rates["*"] = 5.0
    assert spec.rates_hz["*"] == 1.0
    with pytest.raises(TypeError):
        spec.rates_hz["*"] = 2.0  # type: ignore[index]
    assert hash(spec) == hash(PacketSpec(1, "x.P", ("a",), {"*": 1.0}))


def test_packet_with_unknown_channel_is_refused() -> None:
    rig = Rig()
    rig.tlm.register_channel(ChannelSpec(1, "a.x", "int"))
    with pytest.raises(ValueError, match=r"a\.y"):
        rig.tlm.register_packet(PacketSpec(1, "a.P", ("a.x", "a.y"), {"*": 1.0}))


def test_duplicate_ids_and_names_are_refused() -> None:
    rig = Rig()
    _basic(rig, {"*": 1.0})
    with pytest.raises(ValueError):
        rig.tlm.register_channel(ChannelSpec(0x1001, "eps.other", "int"))
    with pytest.raises(ValueError):
        rig.tlm.register_channel(ChannelSpec(0x1999, "eps.bus_v", "int"))
    with pytest.raises(ValueError):
        rig.tlm.register_packet(PacketSpec(0x1001, "eps.OTHER", ("eps.mode",), {}))
    with pytest.raises(ValueError):
        rig.tlm.register_packet(PacketSpec(0x1002, "eps.HK", ("eps.mode",), {}))
    assert [c.id for c in rig.tlm.channels] == [0x1001, 0x1002]
    assert [p.name for p in rig.tlm.packets] == ["eps.HK"]


# -- timing ----------------------------------------------------------------------------------


def test_packet_sent_at_its_rate_by_time() -> None:
    rig = Rig()
    _basic(rig, {"*": 1.0})
    msgs = rig.run(10.0)
    assert _times(msgs) == [100.0 + i for i in range(10)]


def test_tick_rate_does_not_change_packet_rate() -> None:
    fast, slow = Rig(), Rig()
    _basic(fast, {"*": 2.0})
    _basic(slow, {"*": 2.0})
    assert len(fast.run(10.0, tick=0.02)) == len(slow.run(10.0, tick=0.25)) == 20


def test_jittery_ticks_keep_the_mean_rate() -> None:
    rig = Rig()
    _basic(rig, {"*": 1.0})
    steps = [0.093, 0.107, 0.1, 0.131, 0.069]
    sent = 0
    for i in range(1000):  # ~100 s
        sent += len(rig.tlm.sample("CRUISE"))
        rig.clock.advance(steps[i % len(steps)])
    assert sent in (100, 101)


def test_after_a_stall_no_burst() -> None:
    rig = Rig()
    _basic(rig, {"*": 1.0})
    rig.run(2.0)
    rig.clock.advance(10.0)
    assert len(rig.tlm.sample("CRUISE")) == 1
    assert rig.tlm.sample("CRUISE") == []


def test_rates_per_mode_with_default() -> None:
    rig = Rig()
    _basic(rig, {"CRUISE": 0.5, "EDL": 0.0, "*": 2.0})
    assert len(rig.run(10.0, mode="CRUISE")) == 5
    assert len(rig.run(10.0, mode="EDL")) == 0
    assert len(rig.run(10.0, mode="SAFE")) == 20


def test_packet_without_default_rate_is_off_in_unlisted_modes() -> None:
    rig = Rig()
    _basic(rig, {"CRUISE": 1.0})
    assert rig.run(5.0, mode="SURFACE") == []


def test_mode_change_takes_effect_immediately() -> None:
    rig = Rig()
    _basic(rig, {"CRUISE": 0.1, "EDL": 10.0})
    assert len(rig.run(1.0, tick=0.05, mode="CRUISE")) == 1  # t=100.0, next due 110
    msgs = rig.run(1.0, tick=0.05, mode="EDL")
    assert len(msgs) == 10
    assert msgs[0].time == pytest.approx(101.0)


def test_rate_change_takes_effect_from_last_send() -> None:
    rig = Rig()
    _basic(rig, {"*": 0.1})
    rig.run(0.5)  # sent at 100.0
    rig.tlm.set_rate("eps.HK", 1.0)
    msgs = rig.run(1.0)
    assert _times(msgs) == [101.0]
    assert rig.tlm.rate(0x1001, "ANY") == 1.0
    assert "tlm.RATE_CHANGED" in rig.event_names()


def test_rate_zero_turns_packet_off_and_back_on() -> None:
    rig = Rig()
    _basic(rig, {"*": 1.0})
    rig.run(2.0)
    rig.tlm.set_rate(0x1001, 0.0, "CRUISE")
    assert rig.run(5.0) == []
    assert len(rig.run(5.0, mode="SAFE")) == 5  # "*" still 1 Hz
    rig.tlm.set_rate(0x1001, 1.0, "CRUISE")
    assert len(rig.tlm.sample("CRUISE")) == 1


class _ReferenceSchedule:
    """The timing rules of the module docstring for one packet, written out plainly: the
    manager's flat loop must send exactly when this does.

    A rate change, by command or by a mode change, takes effect at the next call: the rate in
    force is compared with the one at the previous call (not at the last send), so leaving a
    mode for one where the packet is off and coming back is a change like any other.
    """

    def __init__(self, rates: dict[str, float], on_change: bool, min_interval: float) -> None:
        self.rates, self.on_change, self.min_interval = dict(rates), on_change, min_interval
        self.last_sent: float | None = None
        self.next_due: float | None = None  # None: never sent, or periodic sending is off
        self.period = 0.0  # the period in force at the previous call
        self.last_values: Any = None

    def sample(self, mode: str, now: float, values: Any) -> bool:
        rate = self.rates.get(mode, self.rates.get("*", 0.0))
        period = 1.0 / rate if rate > 0 else 0.0
        if period != self.period:  # due one new period after the last send
            self.period = period
            self.next_due = (
                self.last_sent + period if period and self.last_sent is not None else None
            )
        periodic = bool(period) and (self.next_due is None or now >= self.next_due - 1e-6)
        changed = (
            self.on_change
            and values != self.last_values
            and (self.last_sent is None or now - self.last_sent >= self.min_interval - 1e-6)
        )
        if not (periodic or changed):
            return False
        if period:  # anchored on the due time, unless late by a whole period or not periodic
            due = self.next_due
            anchored = periodic and due is not None and now - due < period
            self.next_due = due + period if anchored and due is not None else now + period
        self.last_sent, self.last_values = now, values
        return True


_rates = st.sampled_from([0.0, 0.3, 1.0, 2.5, 10.0])
_schedule_ops = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.sampled_from([0.01, 0.1, 0.25, 0.4, 1.0, 7.0])),
        st.tuples(st.just("mode"), st.sampled_from(["CRUISE", "EDL", "SAFE"])),
        st.tuples(st.just("rate"), st.sampled_from(["CRUISE", "EDL", "*"]), _rates),
        st.tuples(st.just("value"), st.integers(0, 2)),
    ),
    max_size=60,
)


@settings(max_examples=300)
@given(
    st.dictionaries(st.sampled_from(["CRUISE", "EDL", "*"]), _rates),
    st.booleans(),
    st.sampled_from([0.0, 0.5, 2.0]),
    _schedule_ops,
)
@example(  # off in CRUISE and back: 2.5 Hz again from the last send, not the old due time
    {},
    True,
    0.0,
    [
        ("tick", 0.01),
        ("tick", 0.55),
        ("mode", "EDL"),
        ("rate", "EDL", 2.5),
        ("mode", "CRUISE"),
        ("mode", "EDL"),
        ("tick", 0.25),
        ("tick", 0.15),
    ],
)
def test_packets_are_sent_when_the_timing_rules_say(
    rates: dict[str, float], on_change: bool, min_interval: float, ops: list[tuple[Any, ...]]
) -> None:
    rig = Rig()
    rig.tlm.register_channel(ChannelSpec(1, "x.v", "int"))
    rig.tlm.register_packet(
        PacketSpec(1, "x.P", ("x.v",), rates, on_change=on_change, min_interval_s=min_interval)
    )
    reference = _ReferenceSchedule(rates, on_change, min_interval)
    mode, value = "CRUISE", 0
    rig.put("x.v", value)
    for op in ops:
        if op[0] == "tick":
            rig.clock.advance(op[1])
        elif op[0] == "mode":
            mode = op[1]
        elif op[0] == "rate":
            rig.tlm.set_rate(1, op[2], op[1])
            reference.rates[op[1]] = op[2]
        else:
            value = op[1]
            rig.put("x.v", value)
        now = rig.time.met()
        sent = [m.time for m in rig.tlm.sample(mode)]
        assert sent == ([now] if reference.sample(mode, now, [value]) else []), op


def test_set_rate_refuses_bad_values() -> None:
    rig = Rig()
    _basic(rig, {"*": 1.0})
    with pytest.raises(KeyError):
        rig.tlm.set_rate("eps.NOPE", 1.0)
    with pytest.raises(ValueError):
        rig.tlm.set_rate("eps.HK", -1.0)
    with pytest.raises(ValueError):
        rig.tlm.set_rate("eps.HK", math.nan)


# -- bodies ----------------------------------------------------------------------------------


def test_body_values_in_channel_order_with_ids() -> None:
    rig = Rig()
    _basic(rig, {"*": 1.0})
    rig.put("eps.bus_v", 28.1)
    rig.put("eps.mode", "NOMINAL")
    (msg,) = rig.tlm.sample("CRUISE")
    assert msg == Message(MessageKind.TELEMETRY, 0x1001, 100.0, [28.1, "NOMINAL"])
    assert codec.decode(codec.encode(msg.body)) == [28.1, "NOMINAL"]


def test_layouts_give_each_packets_channel_types_in_body_order() -> None:
    rig = Rig()
    _basic(rig, {"*": 1.0})
    rig.tlm.register_channel(ChannelSpec(0x1003, "eps.count", "int"))
    rig.tlm.register_packet(PacketSpec(0x1000, "eps.NUM", ("eps.count", "eps.bus_v"), {}))
    assert rig.tlm.layouts() == {0x1000: ("int", "float"), 0x1001: ("float", "str")}


@pytest.mark.parametrize(
    ("type_", "stored", "sent"),
    [
        ("float", 3, 3.0),
        ("float", True, None),
        ("float", math.nan, None),
        ("float", math.inf, None),
        ("float", "3.0", None),
        ("float", 10**400, None),
        ("int", 7, 7),
        ("int", 7.0, 7),
        ("int", 7.5, None),
        ("int", False, None),
        ("bool", True, True),
        ("bool", 1, None),
        ("str", "ok", "ok"),
        ("str", b"ok", None),
    ],
)
def test_values_are_coerced_or_none(type_: str, stored: Any, sent: Any) -> None:
    rig = Rig()
    rig.tlm.register_channel(ChannelSpec(1, "x.v", type_))
    rig.tlm.register_packet(PacketSpec(1, "x.P", ("x.v",), {"*": 1.0}))
    rig.put("x.v", stored)
    (msg,) = rig.tlm.sample("M")
    assert msg.body == [sent]
    assert type(msg.body[0]) is type(sent)


class _Level(enum.IntEnum):
    LOW = 1


#: Anything a component might leave in the pool, well-typed or not.
_pool_values = st.one_of(
    st.floats(),  # NaN and the infinities included
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.text(max_size=4),
    st.binary(max_size=2),
    st.just(_Level.LOW),
    st.none(),
)
#: Values of each channel type's own Python type, the edge cases drawn often.
_own_values = {
    "float": st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, 0.0]), st.floats()),
    "int": st.integers(),
    "bool": st.booleans(),
    "str": st.text(max_size=4),
}


@st.composite
def _slot(draw: st.DrawFn) -> tuple[str, Any, bool]:
    type_ = draw(st.sampled_from(sorted(_own_values)))
    value = draw(st.one_of(_own_values[type_], _own_values[type_], _pool_values))
    return type_, value, draw(st.booleans())


@settings(max_examples=300)
@given(st.lists(_slot(), min_size=1, max_size=6), st.lists(st.lists(_pool_values), max_size=3))
def test_packet_bodies_equal_each_channel_converted_on_its_own(
    slots: list[tuple[str, Any, bool]], later: list[list[Any]]
) -> None:
    """Whatever the pool holds, the values converted as they are written are what converting each
    channel's value on its own gives."""
    rig = Rig()
    names = [f"x.c{i}" for i in range(len(slots))]
    for i, (type_, _, _) in enumerate(slots):
        rig.tlm.register_channel(ChannelSpec(i, names[i], type_))
    rig.tlm.register_packet(PacketSpec(1, "x.P", tuple(names), {"*": 1000.0}))
    rounds = [[value for _, value, _ in slots], *later]
    for values in rounds:
        for i, (name, value) in enumerate(zip(names, values, strict=False)):
            if i == 0 and not slots[0][2]:
                continue  # never written: missing
            rig.put(name, value)
            if slots[i][2] is False and i % 2:
                rig.pool.invalidate(name, rig.time.met())
        (msg,) = rig.tlm.sample("M")
        expected = [rig.tlm.value(name) for name in names]
        assert msg.body == expected  # no NaN can make this fail spuriously: NaN is sent as None
        assert [type(v) for v in msg.body] == [type(v) for v in expected]
        rig.clock.advance(0.01)


def test_a_value_written_before_its_channel_exists_is_converted_too() -> None:
    rig = Rig()
    rig.put("eps.bus_v", 27)  # an int, in the pool before the dictionary is loaded
    rig.put("eps.mode", math.nan)
    _basic(rig, {"*": 1.0})
    (msg,) = rig.tlm.sample("M")
    assert msg.body == [27.0, None] and type(msg.body[0]) is float


def test_channels_showing_one_reading_must_agree_on_its_type() -> None:
    rig = Rig()
    rig.tlm.register_channel(ChannelSpec(1, "a.v", "float", source="dev.v"))
    rig.tlm.register_channel(ChannelSpec(2, "b.v", "float", source="dev.v"))  # same type: fine
    with pytest.raises(ValueError, match=r"dev\.v"):
        rig.tlm.register_channel(ChannelSpec(3, "c.v", "int", source="dev.v"))
    assert [c.name for c in rig.tlm.channels] == ["a.v", "b.v"]


def test_missing_and_invalid_values_are_none() -> None:
    rig = Rig()
    _basic(rig, {"*": 1.0})
    rig.put("eps.bus_v", 27.0)
    rig.pool.invalidate("eps", rig.time.met())
    (msg,) = rig.tlm.sample("M")
    assert msg.body == [None, None]


def test_channel_reads_its_source_key() -> None:
    rig = Rig()
    rig.tlm.register_channel(ChannelSpec(1, "nav.alt", "float", "m", source="lidar.range_m"))
    rig.tlm.register_packet(PacketSpec(1, "nav.P", ("nav.alt",), {"*": 1.0}))
    rig.put("lidar.range_m", 12.5)
    assert rig.tlm.sample("M")[0].body == [12.5]
    assert rig.tlm.value("nav.alt") == 12.5


def test_packets_come_out_in_id_order() -> None:
    rig = Rig()
    rig.tlm.register_channel(ChannelSpec(1, "a.x", "int"))
    rig.tlm.register_packet(PacketSpec(9, "a.LATE", ("a.x",), {"*": 1.0}))
    rig.tlm.register_packet(PacketSpec(3, "a.EARLY", ("a.x",), {"*": 1.0}))
    assert [m.id for m in rig.tlm.sample("M")] == [3, 9]


# -- on change -------------------------------------------------------------------------------


def test_on_change_packet_sent_on_change_only() -> None:
    rig = Rig()
    _basic(rig, {"*": 0.0}, on_change=True)
    rig.put("eps.bus_v", 28.0)
    assert len(rig.run(1.0)) == 1  # the first sample counts as a change
    rig.put("eps.bus_v", 28.0)  # rewritten, same value
    assert rig.run(1.0) == []
    rig.put("eps.mode", "SAFE")
    (msg,) = rig.run(1.0)
    assert msg.body == [28.0, "SAFE"]


def test_on_change_respects_min_interval() -> None:
    rig = Rig()
    _basic(rig, {"*": 0.0}, on_change=True, min_interval_s=1.0)
    sent: list[Message] = []
    for i in range(30):  # the value changes every tick for 3 s
        rig.put("eps.bus_v", float(i))
        sent += rig.tlm.sample("M")
        rig.clock.advance(0.1)
    assert _times(sent) == [100.0, 101.0, 102.0]
    assert sent[-1].body[0] == 20.0


def test_on_change_rate_is_a_heartbeat() -> None:
    rig = Rig()
    _basic(rig, {"*": 0.5}, on_change=True)
    rig.put("eps.bus_v", 1.0)
    msgs = rig.run(2.5)  # t=100 first sample, t=102 heartbeat
    rig.put("eps.bus_v", 2.0)  # t=102.5 change: heartbeat restarts from here
    msgs += rig.run(2.5)
    assert _times(msgs) == [100.0, 102.0, 102.5, 104.5]


# -- limits ----------------------------------------------------------------------------------


def _limited(rig: Rig) -> None:
    rig.tlm.register_channel(
        ChannelSpec(1, "eps.bus_v", "float", "V", yellow=(26.0, 30.0), red=(24.0, None))
    )


def _limit_events(rig: Rig) -> list[tuple[str, Severity]]:
    return [(e.name, e.severity) for e in rig.events.recent if e.name.startswith("tlm.LIMIT")]


def test_limit_excursion_events_once_each() -> None:
    rig = Rig()
    _limited(rig)
    for v in [28.0, 28.0, 25.5, 25.0, 25.9, 23.0, 22.0, 25.0, 23.5, 27.0, 27.0, 31.0, 31.0, 29.0]:
        rig.put("eps.bus_v", v)
        rig.tlm.sample("M")
    assert _limit_events(rig) == [
        ("tlm.LIMIT_YELLOW", Severity.WARNING_LO),
        ("tlm.LIMIT_RED", Severity.WARNING_HI),
        ("tlm.LIMIT_NOMINAL", Severity.ACTIVITY_LO),
        ("tlm.LIMIT_YELLOW", Severity.WARNING_LO),
        ("tlm.LIMIT_NOMINAL", Severity.ACTIVITY_LO),
    ]
    yellow = next(e for e in rig.events.recent if e.name == "tlm.LIMIT_YELLOW")
    assert yellow.args["channel"] == "eps.bus_v" and yellow.args["value"] == 25.5
    assert "[26.0, 30.0]" in yellow.text


def test_limits_checked_even_when_no_packet_is_due() -> None:
    rig = Rig()
    _limited(rig)
    rig.put("eps.bus_v", 20.0)
    assert rig.tlm.sample("M") == []
    assert _limit_events(rig) == [("tlm.LIMIT_RED", Severity.WARNING_HI)]


def test_missing_or_invalid_value_keeps_limit_state() -> None:
    rig = Rig()
    _limited(rig)
    rig.tlm.sample("M")  # nothing in the pool yet
    rig.put("eps.bus_v", 25.0)
    rig.tlm.sample("M")
    rig.pool.invalidate("eps.bus_v", rig.time.met())
    rig.tlm.sample("M")
    rig.put("eps.bus_v", 25.1)
    rig.tlm.sample("M")
    assert _limit_events(rig) == [("tlm.LIMIT_YELLOW", Severity.WARNING_LO)]


def test_int_channel_limits() -> None:
    rig = Rig()
    rig.tlm.register_channel(ChannelSpec(1, "app.slips", "int", yellow=(None, 0), red=(None, 10)))
    for v in [0, 1, 11]:
        rig.put("app.slips", v)
        rig.tlm.sample("M")
    assert [n for n, _ in _limit_events(rig)] == ["tlm.LIMIT_YELLOW", "tlm.LIMIT_RED"]


def _reference_limit_events(values: list[Any], spec: ChannelSpec) -> list[str]:
    """The limit rules of the module docstring, applied naively to every value."""
    out: list[str] = []
    level = worst = 0
    for raw in values:
        value = spec.coerce(raw) if raw is not None else None
        if value is None:
            continue
        new = spec.limit_level(value)
        if new == 0:
            if level != 0:
                out.append("tlm.LIMIT_NOMINAL")
            worst = 0
        elif new > worst:
            out.append("tlm.LIMIT_RED" if new == 2 else "tlm.LIMIT_YELLOW")
            worst = new
        level = new
    return out


_bound = st.one_of(st.none(), st.integers(-5, 5).map(float))


_limits = st.tuples(_bound, _bound).filter(lambda b: b[0] is None or b[1] is None or b[0] <= b[1])
_limit_value = st.one_of(st.integers(-8, 8), st.floats(-8, 8), st.none(), st.just(math.nan))


@settings(max_examples=300)
@given(
    st.lists(st.tuples(_limits, _limits), min_size=1, max_size=3),
    st.lists(st.lists(_limit_value, min_size=3, max_size=3), max_size=60),
)
def test_limit_events_follow_the_rules_for_any_sequence(
    limits: list[tuple[tuple[float | None, float | None], tuple[float | None, float | None]]],
    ticks: list[list[Any]],
) -> None:
    """The fast skip while every value is inside its limits never hides or invents an event,
    whichever of several channels leaves its limits, returns or goes missing.

    (At most 60 ticks: below the events' throttle, which the reference does not model.)
    """
    specs = [
        ChannelSpec(i, f"x.v{i}", "float", yellow=yellow, red=red)
        for i, (yellow, red) in enumerate(limits)
    ]
    rig = Rig()
    for spec in specs:
        rig.tlm.register_channel(spec)
    for values in ticks:
        for spec, value in zip(specs, values, strict=False):
            rig.put(spec.name, value)
        rig.tlm.sample("M")
    for spec in specs:
        got = [
            e.name
            for e in rig.events.recent
            if e.name.startswith("tlm.LIMIT") and e.args["channel"] == spec.name
        ]
        column = [values[spec.id] for values in ticks]
        assert got == _reference_limit_events(column, spec), spec.name


# -- command ---------------------------------------------------------------------------------


@pytest.fixture
def wired() -> tuple[Rig, Dispatcher]:
    rig = Rig()
    _basic(rig, {"*": 1.0})
    dispatcher = Dispatcher(events=rig.events, now=rig.time.met)
    dispatcher.register_all(rig.tlm.commands())
    return rig, dispatcher


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["eps.HK", 0.25, "CRUISE"], CommandStatus.OK),
        (["0x1001", 0, "*"], CommandStatus.OK),
        ([str(0x1001), 2.0, "EDL"], CommandStatus.OK),
        (["eps.NOPE", 1.0, "*"], CommandStatus.VALIDATION_ERROR),
        (["0x9999", 1.0, "*"], CommandStatus.VALIDATION_ERROR),
        (["eps.HK", -0.5, "*"], CommandStatus.VALIDATION_ERROR),
        (["eps.HK", math.nan, "*"], CommandStatus.VALIDATION_ERROR),
        (["eps.HK", 1.0, ""], CommandStatus.VALIDATION_ERROR),
        (["eps.HK", 1.0], CommandStatus.VALIDATION_ERROR),
    ],
)
def test_rate_set_command(
    wired: tuple[Rig, Dispatcher], args: list[Any], status: CommandStatus
) -> None:
    rig, dispatcher = wired
    resp = dispatcher.dispatch_bytes(codec.encode([1, 0x0100, args]))
    assert resp.status is status
    if status is CommandStatus.OK:
        assert rig.tlm.rate("eps.HK", args[2]) == float(args[1])
    else:
        assert rig.tlm.rate("eps.HK", "CRUISE") == 1.0


def test_declared_ids_are_in_the_telemetry_range() -> None:
    rig = Rig()
    assert [c.opcode for c in rig.tlm.commands()] == [0x0100]
    assert all(0x0100 <= e.id <= 0x01FF for e in rig.tlm.events())
