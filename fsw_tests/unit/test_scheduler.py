"""Scheduler: rate-group timing, the catch-up/skip overrun policy, error isolation, liveness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flight.clock import SimClock
from flight.datapool import DataPool
from flight.events import EventLog
from flight.scheduler import EV_SLIP, EV_TASK_ERROR, Scheduler

PERIOD = 1.0 / 50.0


def recording_scheduler(clock: SimClock, divisors: dict[str, int], **kwargs):
    sched = Scheduler(clock, **kwargs)
    runs: dict[str, list[int]] = {name: [] for name in divisors}
    for name, divisor in divisors.items():
        group = sched.add_group(name, divisor)
        group.add(lambda name=name: runs[name].append(sched.tick), "record")
    return sched, runs


def test_groups_run_at_their_divisor_ticks():
    clock = SimClock()
    sched, runs = recording_scheduler(clock, {"fast": 1, "half": 2, "slow": 5})
    for _ in range(20):
        sched.step()
    assert runs["fast"] == list(range(20))
    assert runs["half"] == list(range(0, 20, 2))
    assert runs["slow"] == [0, 5, 10, 15]
    assert sched.stats()["slow"].ticks == 4


def test_run_once_waits_on_absolute_deadlines():
    clock = SimClock(start=100.0)
    times: list[float] = []
    sched = Scheduler(clock, base_hz=50.0)
    sched.add_group("g", 1).add(lambda: times.append(clock.monotonic()), "t")
    sched.run(max_ticks=10)
    assert times == pytest.approx([100.0 + i * PERIOD for i in range(10)])
    assert sched.skipped_ticks == 0 and sched.late_ticks == 0


def test_jitter_inside_a_period_does_not_accumulate_drift():
    clock = SimClock()
    sched = Scheduler(clock)
    # Each run takes 60% of a period: late wake-ups would drift if deadlines were relative.
    sched.add_group("g", 1).add(lambda: clock.advance(0.6 * PERIOD), "busy")
    sched.run(max_ticks=100)
    assert clock.monotonic() == pytest.approx(99 * PERIOD + 0.6 * PERIOD)
    assert sched.skipped_ticks == 0 and sched.late_ticks == 0


def test_overrun_catches_up_at_most_max_catchup_ticks_then_skips():
    clock = SimClock()
    sched = Scheduler(clock, max_catchup=3)
    ran: list[tuple[int, float]] = []
    group = sched.add_group("fast", 1)

    def task():
        ran.append((sched.tick, clock.monotonic()))
        if sched.tick == 5:
            clock.advance(10.5 * PERIOD)  # tick 5 overruns into tick 15's slot

    group.add(task, "t")
    half = sched.add_group("half", 2)
    half.add(lambda: None, "nothing")
    fifth = sched.add_group("fifth", 5)
    fifth.add(lambda: None, "nothing")

    sched.run(max_ticks=12)
    ticks = [t for t, _ in ran]
    # 6, 7, 8 caught up back to back, 9..14 skipped, 15 runs at once, 16 on time.
    assert ticks == [0, 1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 17]
    late_at = 5 * PERIOD + 10.5 * PERIOD
    assert [t for tick, t in ran if 6 <= tick <= 15] == pytest.approx([late_at] * 4)
    assert ran[-2][1] == pytest.approx(16 * PERIOD)
    assert sched.late_ticks == 3
    assert sched.skipped_ticks == 6
    stats = sched.stats()
    assert stats["fast"].slips == 6
    assert stats["half"].slips == 3  # ticks 10, 12, 14
    assert stats["fifth"].slips == 1  # tick 10


def test_short_overrun_is_caught_up_without_slips():
    clock = SimClock()
    sched, runs = recording_scheduler(clock, {"g": 1}, max_catchup=5)
    sched.group("g").add(lambda: clock.advance(3 * PERIOD) if sched.tick == 2 else None, "late")
    sched.run(max_ticks=10)
    assert runs["g"] == list(range(10))
    assert sched.late_ticks == 2  # ticks 3 and 4 ran late, 5 was back on time
    assert sched.skipped_ticks == 0


def test_zero_catchup_skips_straight_to_now():
    clock = SimClock()
    events = EventLog(now=clock.monotonic)
    sched, runs = recording_scheduler(clock, {"g": 1}, max_catchup=0, events=events)
    sched.group("g").add(lambda: clock.advance(4 * PERIOD) if sched.tick == 1 else None, "late")
    sched.run(max_ticks=4)
    assert runs["g"] == [0, 1, 5, 6]
    assert sched.stats()["g"].slips == 3
    assert events.count(EV_SLIP.id) == 1


@settings(max_examples=60, deadline=None)
@given(
    overruns=st.lists(st.floats(min_value=0.0, max_value=12.0), min_size=1, max_size=40),
    max_catchup=st.integers(min_value=0, max_value=6),
)
def test_every_tick_is_either_run_or_counted_as_a_slip(overruns, max_catchup):
    clock = SimClock()
    sched = Scheduler(clock, max_catchup=max_catchup)
    costs = iter(overruns)
    sched.add_group("a", 1).add(lambda: clock.advance(next(costs, 0.0) * PERIOD), "cost")
    divisors = {"a": 1, "b": 3, "c": 7}
    for name in ("b", "c"):
        sched.add_group(name, divisors[name]).add(lambda: None, "nothing")
    late_streak = 0
    for _ in range(len(overruns) + 10):
        before = sched.tick
        late_before = sched.late_ticks
        sched.run_once()
        late_streak = late_streak + 1 if sched.late_ticks > late_before else 0
        assert late_streak <= max_catchup  # never more than max_catchup late ticks in a row
        assert sched.tick > before
    end = sched.tick
    for name, divisor in divisors.items():
        stats = sched.stats()[name]
        due = len(range(0, end, divisor))
        assert stats.ticks + stats.slips == due
    assert sched.stats()["a"].slips == sched.skipped_ticks


def test_execution_time_is_measured_on_the_clock():
    clock = SimClock()
    sched = Scheduler(clock)
    costs = iter([0.002, 0.006, 0.001, 0.003])
    sched.add_group("g", 1).add(lambda: clock.advance(next(costs)), "work")
    sched.run(max_ticks=4)
    stats = sched.stats()["g"]
    assert stats.max_exec_s == pytest.approx(0.006)
    assert stats.mean_exec_s == pytest.approx(0.003)
    pool = DataPool()
    sched.publish(pool, now=clock.monotonic())
    assert pool.value("sched.g.max_ms") == pytest.approx(6.0)
    assert pool.value("sched.g.mean_ms") == pytest.approx(3.0)
    assert pool.value("sched.g.ticks") == 4
    assert pool.value("sched.g.slips") == 0
    names = {c.name for c in sched.channels()}
    assert {"sched.g.max_ms", "sched.g.slips", "sched.skipped_ticks"} <= names
    assert len({c.id for c in sched.channels()}) == len(sched.channels())


def test_a_raising_task_is_counted_and_reported_and_the_loop_goes_on():
    clock = SimClock()
    events = EventLog(now=clock.monotonic)
    errors: list[tuple[str, BaseException]] = []
    sched = Scheduler(clock, on_error=lambda where, exc: errors.append((where, exc)), events=events)
    after: list[int] = []
    group = sched.add_group("g", 1)

    def broken():
        if sched.tick % 2:
            raise RuntimeError("boom")

    group.add(broken, "broken")
    group.add(lambda: after.append(sched.tick), "after")
    sched.run(max_ticks=6)
    assert after == list(range(6))  # the task after the broken one still runs every tick
    assert sched.stats()["g"].errors == 3
    assert [where for where, _ in errors] == ["g.broken"] * 3
    assert isinstance(errors[0][1], RuntimeError)
    assert events.count(EV_TASK_ERROR.id) == 3


def test_a_raising_error_callback_does_not_stop_the_loop():
    clock = SimClock()

    def bad_callback(where: str, exc: BaseException) -> None:
        raise ValueError("callback bug")

    sched = Scheduler(clock, on_error=bad_callback)
    sched.add_group("g", 1).add(lambda: 1 / 0, "div")
    sched.run(max_ticks=3)
    assert sched.stats()["g"].errors == 3


def test_step_is_deterministic():
    def trace() -> list[tuple[str, int]]:
        clock = SimClock()
        sched = Scheduler(clock)
        out: list[tuple[str, int]] = []
        for name, divisor in (("a", 1), ("b", 4), ("c", 10)):
            sched.add_group(name, divisor).add(
                lambda name=name: out.append((name, sched.tick)), "rec"
            )
        for _ in range(50):
            sched.step()
        return out

    first = trace()
    assert first == trace()
    assert first[:4] == [("a", 0), ("b", 0), ("c", 0), ("a", 1)]  # groups in the order added


def test_step_does_not_wait():
    clock = SimClock()
    sched = Scheduler(clock)
    sched.add_group("g", 1).add(lambda: None, "t")
    for _ in range(10):
        sched.step()
    assert clock.monotonic() == 0.0
    assert sched.tick == 10


def test_alive_only_while_every_group_runs_within_its_period():
    clock = SimClock()
    sched = Scheduler(clock, alive_slack_s=0.1)
    assert not sched.alive()  # no groups
    sched.add_group("fast", 1).add(lambda: None, "t")
    slow = sched.add_group("slow", 50)  # 1 Hz
    slow.add(lambda: None, "t")
    assert not sched.alive()  # nothing ran yet
    sched.step()
    assert sched.alive()
    clock.advance(1.2)
    assert not sched.alive()
    sched.run(max_ticks=60)
    assert sched.alive()
    # The loop stops (a hung task would do this): after 1 s + slack the slow group is overdue.
    clock.advance(0.5)
    assert not sched.alive()  # the fast group's 20 ms + 100 ms slack is long gone


def test_alive_fails_when_one_group_stops_running():
    clock = SimClock()
    sched = Scheduler(clock, alive_slack_s=0.05, max_catchup=0)
    sched.add_group("fast", 1).add(lambda: None, "t")
    slow = sched.add_group("slow", 10)
    slow.add(lambda: None, "t")
    sched.run(max_ticks=25)
    assert sched.alive()
    # Starve the slow group (as if its ticks were always the skipped ones): step only through
    # ticks that are not multiples of 10 while time goes on.
    while sched.tick < 45:
        if sched.tick % 10 == 0:
            sched.tick += 1
        sched.step()
        clock.advance(PERIOD)
    assert sched.alive() is False
    assert clock.monotonic() - sched.group("fast").last_run < PERIOD + 0.05


def test_bad_configuration_is_refused():
    clock = SimClock()
    with pytest.raises(ValueError):
        Scheduler(clock, base_hz=0)
    with pytest.raises(ValueError):
        Scheduler(clock, max_catchup=-1)
    sched = Scheduler(clock)
    with pytest.raises(ValueError):
        sched.add_group("g", 0)
    sched.add_group("g", 1)
    with pytest.raises(ValueError):
        sched.add_group("g", 2)
    sched.group("g").add(lambda: None, "x")
    with pytest.raises(ValueError):
        sched.group("g").add(lambda: None, "x")
