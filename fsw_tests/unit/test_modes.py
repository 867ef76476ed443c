"""The generic mode machine: tables, guards, refusals, one-shots, persistence and the diagram."""

from __future__ import annotations

from pathlib import Path

import pytest

from flight.clock import SimClock
from flight.commands import CommandStatus
from flight.dispatcher import Dispatcher
from flight.events import EventLog
from flight.modes import ModeConfig, ModeMachine, OneShot, TransitionSpec, mode_of, phase_of
from flight.persistence.state import StateStore

STATES = ("IDLE", "RUN.WARM", "RUN.HOT", "SAFE")
MODES = {"IDLE": ModeConfig(), "RUN": ModeConfig(), "SAFE": ModeConfig()}


class Rig:
    """A tiny two-mode machine with a guard, a one-shot and a safe mode."""

    def __init__(self, path: Path, clock: SimClock) -> None:
        self.clock = clock
        self.hot_enough = False
        self.fired: list[str] = []
        self.safed = 0
        self.events = EventLog(now=clock.monotonic)
        self.store = StateStore(path / "state.cbor")
        self.changes: list[tuple[str, str, str]] = []
        table = [
            TransitionSpec("start", ("IDLE",), "RUN.WARM"),
            TransitionSpec(
                "heat",
                ("RUN.WARM",),
                "RUN.HOT",
                guard=lambda: self.hot_enough,
                autonomous=True,
                on_arrival=(OneShot("pyro", lambda: self.fired.append("pyro")),),
            ),
            TransitionSpec("safe", ("IDLE", "RUN.WARM"), "SAFE", actions=(self._safe,)),
            TransitionSpec("resume", ("SAFE",), "IDLE"),
        ]
        self.machine = ModeMachine(
            states=STATES,
            transitions=table,
            initial="IDLE",
            fallback="SAFE",
            modes=MODES,
            events=self.events,
            store=self.store,
            now=clock.monotonic,
            on_change=lambda old, new, cause: self.changes.append((old, new, cause)),
        )

    def _safe(self) -> None:
        self.safed += 1

    def names(self) -> list[str]:
        return [e.name for e in self.events.recent]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    r = Rig(tmp_path, SimClock())
    r.machine.restore()
    return r


def test_mode_and_phase_split_on_the_dot() -> None:
    assert (mode_of("EDL.PARACHUTE"), phase_of("EDL.PARACHUTE")) == ("EDL", "PARACHUTE")
    assert (mode_of("SAFE"), phase_of("SAFE")) == ("SAFE", "")


def test_a_commanded_transition_moves_and_reports(rig: Rig) -> None:
    assert rig.machine.trigger("start", cause="ground")
    assert (rig.machine.mode, rig.machine.phase) == ("RUN", "WARM")
    assert rig.changes[-1] == ("IDLE", "RUN.WARM", "ground")
    assert "mode.TRANSITION" in rig.names()


def test_a_trigger_from_the_wrong_state_is_refused_with_an_event(rig: Rig) -> None:
    assert not rig.machine.trigger("resume")
    assert rig.machine.state == "IDLE"
    refused = [e for e in rig.events.recent if e.name == "mode.TRIGGER_REFUSED"]
    assert refused and "not allowed" in refused[-1].text


def test_an_unknown_trigger_is_refused_not_raised(rig: Rig) -> None:
    assert not rig.machine.trigger("warp_drive")
    assert "no such trigger" in rig.events.recent[-1].text


def test_a_guard_that_does_not_hold_refuses(rig: Rig) -> None:
    rig.machine.trigger("start")
    assert not rig.machine.trigger("heat")
    assert rig.machine.state == "RUN.WARM"
    assert "guard" in rig.events.recent[-1].text


def test_autonomous_transitions_fire_when_their_guard_holds(rig: Rig) -> None:
    rig.machine.trigger("start")
    rig.machine.tick()
    assert rig.machine.state == "RUN.WARM"
    rig.hot_enough = True
    rig.machine.tick()
    assert rig.machine.state == "RUN.HOT"
    assert rig.fired == ["pyro"]
    assert rig.changes[-1][2] == "autonomous"


def test_repeatable_actions_run_on_every_arrival(rig: Rig) -> None:
    rig.machine.trigger("safe")
    rig.machine.trigger("resume")
    rig.machine.trigger("safe")
    assert rig.safed == 2
    assert rig.machine.previous == "IDLE"


def test_restore_resumes_the_state_without_repeating_one_shots(tmp_path: Path) -> None:
    clock = SimClock()
    first = Rig(tmp_path, clock)
    first.machine.restore()
    first.machine.trigger("start")
    first.hot_enough = True
    first.machine.tick()
    assert first.fired == ["pyro"]
    clock.advance(5.0)

    second = Rig(tmp_path, clock)  # a reboot: same state file, new everything else
    assert second.machine.restore() == "RUN.HOT"
    assert second.fired == []
    assert second.machine.fired("pyro")
    assert not second.machine.fire_once(OneShot("pyro", lambda: second.fired.append("again")))
    assert second.fired == []
    assert second.machine.time_in_state() == pytest.approx(5.0)


def test_an_unusable_stored_state_falls_back_to_safe(tmp_path: Path) -> None:
    clock = SimClock()
    store = StateStore(tmp_path / "state.cbor")
    store.set("mode.state", "WARP.NINE")
    store.commit()
    rig = Rig(tmp_path, clock)
    assert rig.machine.restore() == "SAFE"
    assert "mode.RESTORE_FALLBACK" in rig.names()


def machine_over(
    table: list[TransitionSpec], *, events: EventLog, store: StateStore, clock: SimClock
) -> ModeMachine:
    """A machine over the test states with a table of the test's own."""
    return ModeMachine(
        states=STATES,
        transitions=table,
        initial="IDLE",
        fallback="SAFE",
        modes=MODES,
        events=events,
        store=store,
        now=clock.monotonic,
    )


class Flaky:
    """An action whose first ``failures`` calls raise, as a relay board that does not ACK."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.done = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError("relay driver not answering")
        self.done += 1


def test_a_one_shot_that_raises_is_retried_each_tick_until_it_succeeds(rig: Rig) -> None:
    mortar = Flaky(failures=3)
    assert not rig.machine.fire_once(OneShot("mortar", mortar))
    assert rig.machine.fired("mortar") and rig.machine.retrying("mortar")
    assert rig.names()[-1] == "mode.ACTION_RETRYING"
    for _ in range(3):
        rig.clock.advance(0.02)
        rig.machine.tick()
    assert (mortar.calls, mortar.done) == (4, 1)
    assert not rig.machine.retrying("mortar")
    assert rig.names()[-2:] == ["mode.ACTION_RETRY_OK", "mode.ONESHOT"]
    assert "attempt 4" in rig.events.recent[-2].text
    rig.machine.tick()
    assert mortar.calls == 4  # nothing left to retry


def test_a_one_shot_that_keeps_failing_is_given_up_after_its_retry_time(rig: Rig) -> None:
    mortar = Flaky(failures=10**6)
    rig.machine.fire_once(OneShot("mortar", mortar, retry_s=1.0))
    while rig.machine.retrying("mortar"):
        rig.clock.advance(0.25)
        rig.machine.tick()
    assert rig.clock.monotonic() == 1.0
    assert mortar.calls == 5 and mortar.done == 0
    failed = rig.events.recent[-1]
    assert failed.name == "mode.ONESHOT_FAILED" and "gave up after 5 attempts" in failed.text
    rig.machine.tick()
    assert mortar.calls == 5
    assert rig.machine.fired("mortar")  # recorded before it ran: at most once, by design


def test_a_one_shot_without_retry_time_is_reported_at_once(rig: Rig) -> None:
    mortar = Flaky(failures=1)
    assert not rig.machine.fire_once(OneShot("mortar", mortar, retry_s=0.0))
    assert rig.names()[-1] == "mode.ONESHOT_FAILED"
    rig.machine.tick()
    assert mortar.calls == 1 and not rig.machine.retrying("mortar")


def test_a_reboot_while_a_one_shot_is_retried_does_not_try_it_again(tmp_path: Path) -> None:
    clock = SimClock()
    first = Rig(tmp_path, clock)
    first.machine.restore()
    mortar = Flaky(failures=10**6)
    first.machine.fire_once(OneShot("mortar", mortar))
    assert first.machine.retrying("mortar")

    second = Rig(tmp_path, clock)
    second.machine.restore()
    again = Flaky(failures=0)
    assert not second.machine.fire_once(OneShot("mortar", again))
    second.machine.tick()
    assert again.calls == 0 and not second.machine.retrying("mortar")
    assert second.machine.fired("mortar")


def test_a_failed_arrival_action_is_retried_only_while_in_its_state(tmp_path: Path) -> None:
    clock = SimClock()
    rig = Rig(tmp_path, clock)
    rig.machine.restore()
    safing = Flaky(failures=10**6)
    rig.machine = machine_over(
        [
            TransitionSpec("safe", ("IDLE",), "SAFE", actions=(safing,)),
            TransitionSpec("resume", ("SAFE",), "IDLE"),
        ],
        events=rig.events,
        store=rig.store,
        clock=clock,
    )
    rig.machine.trigger("safe")
    assert rig.machine.retrying("safe/action")  # a callable object has no __name__
    rig.machine.tick()
    assert safing.calls == 2
    rig.machine.trigger("resume")
    rig.machine.tick()
    assert safing.calls == 2  # left SAFE: its safing action is no longer wanted
    safing.failures = 0
    rig.machine.trigger("safe")
    assert safing.calls == 3 and safing.done == 1


def test_an_arrival_action_that_keeps_failing_is_reported_as_an_action(tmp_path: Path) -> None:
    clock = SimClock()
    events = EventLog(now=clock.monotonic)

    def close_valves() -> None:
        raise OSError("PWM board not answering")

    machine = machine_over(
        [TransitionSpec("safe", ("IDLE",), "SAFE", actions=(close_valves,))],
        events=events,
        store=StateStore(tmp_path / "s.cbor"),
        clock=clock,
    )
    machine.restore()
    machine.trigger("safe")
    assert machine.retrying("safe/close_valves")
    clock.advance(10.0)
    machine.tick()
    last = events.recent[-1]
    assert last.name == "mode.ACTION_FAILED" and "safe/close_valves" in last.text
    assert not machine.retrying("safe/close_valves")


def test_inconsistent_tables_are_refused_at_construction(tmp_path: Path) -> None:
    clock = SimClock()
    with pytest.raises(ValueError, match="unknown state 'NOWHERE'"):
        ModeMachine(
            states=STATES,
            transitions=[TransitionSpec("go", ("IDLE",), "NOWHERE")],
            initial="IDLE",
            fallback="SAFE",
            modes=MODES,
            events=EventLog(now=clock.monotonic),
            store=StateStore(tmp_path / "s.cbor"),
            now=clock.monotonic,
        )
    with pytest.raises(ValueError, match="mode RUN has no entry"):
        ModeMachine(
            states=STATES,
            transitions=[],
            initial="IDLE",
            fallback="SAFE",
            modes={"IDLE": ModeConfig(), "SAFE": ModeConfig()},
            events=EventLog(now=clock.monotonic),
            store=StateStore(tmp_path / "s2.cbor"),
            now=clock.monotonic,
        )


def test_mode_table_is_validated_against_devices_packets_and_monitors(rig: Rig) -> None:
    rig.machine.modes["RUN"] = ModeConfig(poll_hz={"imu": 10.0}, monitors=frozenset({"m"}))
    with pytest.raises(ValueError, match=r"unknown device .imu.*unknown monitor .m."):
        rig.machine.validate_against(devices=[], packets=[], monitors=[])
    rig.machine.validate_against(devices=["imu"], packets=[], monitors=["m"])


def test_the_trigger_command_answers_refusals_with_an_execution_error(rig: Rig) -> None:
    clock = rig.clock
    dispatcher = Dispatcher(events=rig.events, now=clock.monotonic)
    dispatcher.register_all(rig.machine.commands())
    op = dispatcher.lookup("mode.TRIGGER")
    assert op is not None
    assert dispatcher.dispatch(1, op.opcode, ["start"]).status is CommandStatus.OK
    refused = dispatcher.dispatch(2, op.opcode, ["resume"])
    assert refused.status is CommandStatus.EXECUTION_ERROR
    assert dispatcher.dispatch(3, op.opcode, ["nonsense"]).status is CommandStatus.VALIDATION_ERROR


def test_the_diagram_is_generated_from_the_machine(rig: Rig) -> None:
    text = rig.machine.mermaid()
    assert text.startswith("stateDiagram-v2")
    assert "state RUN {" in text
    assert "RUN_WARM --> RUN_HOT : heat (auto)" in text
    assert "IDLE --> SAFE : safe" in text and "RUN_WARM --> SAFE : safe" in text
