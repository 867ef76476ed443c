"""Stored sequences: timing, error policy, load-time checks, reboot resume/abort, at-most-once."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flight import codec
from flight.clock import SimClock
from flight.commands import (
    Arg,
    ArgType,
    BusyError,
    CommandError,
    CommandResponse,
    CommandSpec,
    CommandStatus,
    ValidationError,
)
from flight.dispatcher import EV_ACCEPTED, Dispatcher
from flight.events import EventLog
from flight.persistence.state import StateStore
from flight.sequences import (
    EV_ABORTED,
    EV_CMD_FAILED,
    EV_COMPLETED,
    EV_LATE,
    EV_RESUMED,
    MAX_PER_TICK,
    SequenceEngine,
    encode_sequence,
)

TICK = 0.02
OP_RECORD, OP_FAIL, OP_CRASH, OP_HAZARD = 0x7000, 0x7001, 0x7002, 0x7003


class Crash(BaseException):
    """The process dies in the middle of a command (power cut, watchdog)."""


class Craft:
    """One boot of the flight software: fresh objects over the same state file and MET."""

    def __init__(self, tmp_path, clock: SimClock, *, with_test_commands: bool = True, **kw):
        self.clock = clock
        self.ran: list[tuple[float, int]] = []
        self.events = EventLog(now=clock.monotonic)
        self.dispatcher = Dispatcher(events=self.events, now=clock.monotonic)
        self.responses: list[CommandResponse] = []
        self.dispatcher.subscribe(self.responses.append)
        if with_test_commands:
            self.dispatcher.register_all(self.test_commands())
        self.store = StateStore(tmp_path / "state.cbor")
        self.engine = SequenceEngine(
            dispatcher=self.dispatcher,
            events=self.events,
            now=clock.monotonic,
            state=self.store,
            **kw,
        )
        self.dispatcher.register_all(self.engine.commands())

    def test_commands(self) -> list[CommandSpec]:
        def record(value: int) -> None:
            self.ran.append((self.clock.monotonic(), value))

        def fail(value: int) -> None:
            self.ran.append((self.clock.monotonic(), value))
            raise CommandError("refused")

        def crash(value: int) -> None:
            self.ran.append((self.clock.monotonic(), value))
            raise Crash()

        value = (Arg("value", ArgType.INT, minimum=0, maximum=1000),)
        return [
            CommandSpec(OP_RECORD, "test.RECORD", record, value),
            CommandSpec(OP_FAIL, "test.FAIL", fail, value),
            CommandSpec(OP_CRASH, "test.CRASH", crash, value),
            CommandSpec(OP_HAZARD, "test.HAZARD", record, value, hazardous=True),
        ]

    def run_until(self, t_end: float) -> None:
        while self.clock.monotonic() < t_end - 1e-9:
            self.engine.tick()
            self.clock.advance(TICK)

    @property
    def values(self) -> list[int]:
        return [v for _, v in self.ran]


def rec(kind: str, t: float, value: int, op: int = OP_RECORD):
    return (kind, t, op, [value])


def test_abs_and_rel_entries_run_at_their_times(tmp_path):
    craft = Craft(tmp_path, SimClock())
    data = encode_sequence(
        "timing",
        [
            rec("rel", 3.0, 1),
            rec("abs", 10.0, 2),
            rec("rel", 5.0, 3),
            rec("rel", 0.0, 4),
            rec("abs", 30.0, 5),
            rec("rel", 0.5, 6),
        ],
    )
    assert craft.engine.load(data) == "timing"
    craft.clock.advance(2.0)
    craft.engine.start("timing")
    craft.run_until(40.0)
    assert craft.values == [1, 2, 3, 4, 5, 6]
    times = [t for t, _ in craft.ran]
    assert times == pytest.approx([5.0, 10.0, 15.0, 15.0, 30.0, 30.5], abs=TICK + 1e-6)
    assert craft.engine.status()["timing"] == {"state": "done", "next": 6, "count": 6}
    assert craft.events.count(EV_COMPLETED.id) == 1
    assert craft.events.count(EV_LATE.id) == 0


def test_rel_times_do_not_accumulate_tick_jitter(tmp_path):
    craft = Craft(tmp_path, SimClock())
    craft.engine.load(encode_sequence("jitter", [rec("rel", 0.013, i) for i in range(100)]))
    craft.engine.start("jitter")
    craft.run_until(2.0)
    last_time = craft.ran[-1][0]
    assert last_time == pytest.approx(1.3, abs=TICK + 1e-6)  # 100 x 13 ms, not 100 ticks


def test_commands_go_through_the_dispatcher_with_the_sequence_as_source(tmp_path):
    craft = Craft(tmp_path, SimClock())
    craft.engine.load(encode_sequence("src", [rec("rel", 0, 1), rec("rel", 0, 2)]))
    craft.engine.start("src")
    craft.engine.tick()
    accepted = [e for e in craft.events.recent if e.id == EV_ACCEPTED.id]
    assert [e.args["source"] for e in accepted[-2:]] == ["sequence:src"] * 2
    seqs = [r.seq for r in craft.responses if r.opcode == OP_RECORD]
    assert seqs == [0, 1]


def test_abort_on_error_stops_at_the_first_failure(tmp_path):
    craft = Craft(tmp_path, SimClock())
    craft.engine.load(
        encode_sequence("strict", [rec("rel", 1, 1), rec("rel", 1, 2, OP_FAIL), rec("rel", 1, 3)])
    )
    craft.engine.start("strict")
    craft.run_until(10.0)
    assert craft.values == [1, 2]
    assert craft.engine.status()["strict"]["state"] == "aborted"
    assert craft.events.count(EV_CMD_FAILED.id) == 1
    assert craft.events.count(EV_ABORTED.id) == 1
    assert craft.engine.running == []


def test_continue_on_error_runs_to_the_end(tmp_path):
    craft = Craft(tmp_path, SimClock())
    craft.engine.load(
        encode_sequence(
            "lenient",
            [rec("rel", 1, 1), rec("rel", 1, 2, OP_FAIL), rec("rel", 1, 3)],
            abort_on_error=False,
        )
    )
    craft.engine.start("lenient")
    craft.run_until(10.0)
    assert craft.values == [1, 2, 3]
    assert craft.engine.status()["lenient"]["state"] == "done"
    assert craft.engine.failed == 1


def bad_sequences() -> dict[str, tuple[object, str]]:
    good = [["rel", 1.0, OP_RECORD, [1]]]
    return {
        "not_a_map": ([1, 2], "must be a map"),
        "no_commands": ({"name": "x"}, "commands"),
        "empty_commands": ({"name": "x", "commands": []}, "non-empty"),
        "bad_name": ({"name": "has space", "commands": good}, "name"),
        "long_name": ({"name": "n" * 33, "commands": good}, "name"),
        "unknown_field": ({"name": "x", "commands": good, "extra": 1}, "unknown sequence field"),
        "bad_policy": ({"name": "x", "commands": good, "on_reboot": "retry"}, "on_reboot"),
        "bad_abort_flag": ({"name": "x", "commands": good, "abort_on_error": 1}, "abort_on_error"),
        "short_entry": ({"name": "x", "commands": [["rel", 1.0, OP_RECORD]]}, "entry 0"),
        "bad_kind": ({"name": "x", "commands": [["at", 1.0, OP_RECORD, [1]]]}, "'abs' or 'rel'"),
        "negative_time": ({"name": "x", "commands": [["rel", -1.0, OP_RECORD, [1]]]}, "time"),
        "nan_time": ({"name": "x", "commands": [["abs", float("nan"), OP_RECORD, [1]]]}, "time"),
        "bool_time": ({"name": "x", "commands": [["abs", True, OP_RECORD, [1]]]}, "time"),
        "unknown_opcode": (
            {"name": "x", "commands": [*good, ["rel", 1.0, 0x7777, []]]},
            "entry 1: unknown opcode 0x7777",
        ),
        "wrong_arg_type": (
            {"name": "x", "commands": [["rel", 1.0, OP_RECORD, ["one"]]]},
            "entry 0: test.RECORD: value: expected int",
        ),
        "arg_out_of_range": (
            {"name": "x", "commands": [["rel", 1.0, OP_RECORD, [5000]]]},
            "above maximum",
        ),
        "wrong_arg_count": ({"name": "x", "commands": [["rel", 1.0, OP_RECORD, []]]}, "takes 1"),
        "args_not_list": ({"name": "x", "commands": [["rel", 1.0, OP_RECORD, 1]]}, "list"),
        "too_many": (
            {"name": "x", "commands": [["rel", 0.0, OP_RECORD, [i]] for i in range(5)]},
            "exceed the limit of 4",
        ),
    }


@pytest.mark.parametrize("case", sorted(bad_sequences()))
def test_bad_sequences_are_refused_at_load_with_a_clear_message(tmp_path, case):
    craft = Craft(tmp_path, SimClock(), max_commands=4)
    item, message = bad_sequences()[case]
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        craft.engine.load(codec.encode(item))
    assert craft.engine.names == []
    # The same through the command: a VALIDATION_ERROR whose reason says what is wrong.
    response = craft.dispatcher.dispatch(1, 0x0300, [codec.encode(item)])
    assert response.status is CommandStatus.VALIDATION_ERROR
    assert message.split("(")[0] in response.reason


def test_undecodable_bytes_are_refused(tmp_path):
    craft = Craft(tmp_path, SimClock())
    with pytest.raises(ValidationError, match="not valid CBOR"):
        craft.engine.load(b"\xff\x00garbage")


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
        lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=15), c, max_size=5),
        max_leaves=20,
    )
)
def test_arbitrary_input_only_ever_raises_validation_error(tmp_path_factory, item):
    craft = Craft(tmp_path_factory.mktemp("fuzz"), SimClock())
    try:
        data = codec.encode(item)
    except codec.CodecError:
        return
    with contextlib.suppress(ValidationError):
        craft.engine.load(data)


def test_the_sequence_table_is_bounded(tmp_path):
    craft = Craft(tmp_path, SimClock(), max_sequences=2)
    craft.engine.load(encode_sequence("a", [rec("rel", 1, 1)]))
    craft.engine.load(encode_sequence("b", [rec("rel", 1, 1)]))
    craft.engine.load(encode_sequence("b", [rec("rel", 2, 2)]))  # replacing is fine
    with pytest.raises(ValidationError, match="table full"):
        craft.engine.load(encode_sequence("c", [rec("rel", 1, 1)]))
    craft.engine.remove("a")
    craft.engine.load(encode_sequence("c", [rec("rel", 1, 1)]))
    assert craft.engine.names == ["b", "c"]


def test_running_sequences_cannot_be_replaced_removed_or_restarted(tmp_path):
    craft = Craft(tmp_path, SimClock())
    data = encode_sequence("busy", [rec("rel", 100, 1)])
    craft.engine.load(data)
    assert craft.dispatcher.dispatch(1, 0x0301, ["busy"]).status is CommandStatus.OK
    assert craft.dispatcher.dispatch(2, 0x0301, ["busy"]).status is CommandStatus.BUSY
    assert craft.dispatcher.dispatch(3, 0x0300, [data]).status is CommandStatus.BUSY
    assert craft.dispatcher.dispatch(4, 0x0303, ["busy"]).status is CommandStatus.BUSY
    assert craft.dispatcher.dispatch(5, 0x0301, ["nosuch"]).status is CommandStatus.VALIDATION_ERROR
    assert craft.dispatcher.dispatch(6, 0x0302, ["busy"]).reason == "aborted busy"
    assert craft.dispatcher.dispatch(7, 0x0302, ["busy"]).reason == "busy was not running"
    assert craft.dispatcher.dispatch(8, 0x0303, ["busy"]).status is CommandStatus.OK
    assert craft.engine.names == []
    with pytest.raises(BusyError):
        craft.engine.load(data)
        craft.engine.start("busy")
        craft.engine.start("busy")


def test_sequences_can_start_and_abort_sequences(tmp_path):
    craft = Craft(tmp_path, SimClock())
    craft.engine.load(encode_sequence("child", [rec("rel", 1, 10), rec("rel", 1, 11)]))
    craft.engine.load(
        encode_sequence(
            "parent",
            [
                rec("rel", 0.5, 1),
                ("rel", 0.0, 0x0301, ["child"]),
                ("rel", 1.5, 0x0302, ["child"]),
                ("rel", 0.0, 0x0302, ["parent"]),
                rec("rel", 0.0, 99),
            ],
        )
    )
    craft.engine.start("parent")
    craft.run_until(10.0)
    assert craft.values == [1, 10]  # child aborted after its first entry; parent stopped itself
    assert craft.engine.status()["child"]["state"] == "aborted"
    assert craft.engine.status()["parent"]["state"] == "aborted"


def test_a_hazardous_command_needs_an_arm_entry(tmp_path):
    craft = Craft(tmp_path, SimClock())
    craft.engine.load(
        encode_sequence(
            "pyro",
            [
                rec("rel", 1, 1, OP_HAZARD),
                ("rel", 1, 0x0003, ["test.HAZARD"]),
                rec("rel", 1, 2, OP_HAZARD),
            ],
            abort_on_error=False,
        )
    )
    craft.engine.start("pyro")
    craft.run_until(5.0)
    assert craft.values == [2]


def test_a_burst_is_spread_over_ticks(tmp_path):
    craft = Craft(tmp_path, SimClock())
    craft.engine.load(encode_sequence("burst", [rec("rel", 0, i) for i in range(MAX_PER_TICK + 4)]))
    craft.engine.start("burst")
    craft.engine.tick()
    assert len(craft.ran) == MAX_PER_TICK
    craft.engine.tick()
    assert craft.values == list(range(MAX_PER_TICK + 4))


def test_entries_whose_time_has_passed_run_at_once_and_are_reported_late(tmp_path):
    craft = Craft(tmp_path, SimClock(start=100.0))
    craft.engine.load(encode_sequence("late", [rec("abs", 50.0, 1), rec("abs", 200.0, 2)]))
    craft.engine.start("late")
    craft.engine.tick()
    assert craft.values == [1]
    assert craft.events.count(EV_LATE.id) == 1


def reboot_sequence(on_reboot: str) -> bytes:
    return encode_sequence(
        "boot",
        [
            rec("rel", 1, 1),
            rec("rel", 1, 2),
            rec("rel", 1, 3, OP_CRASH),
            rec("rel", 1, 4),
            rec("abs", 10.0, 5),
        ],
        on_reboot=on_reboot,
    )


def test_reboot_mid_sequence_resumes_at_the_next_unexecuted_entry(tmp_path):
    clock = SimClock()
    first = Craft(tmp_path, clock)
    first.engine.load(reboot_sequence("resume"))
    first.engine.start("boot")
    with pytest.raises(Crash):
        first.run_until(20.0)  # dies inside entry 2 (value 3), at t = 3
    assert first.values == [1, 2, 3]

    clock.advance(0.5)  # the reboot takes a while; MET carries on
    second = Craft(tmp_path, clock)
    assert second.engine.running == []  # nothing runs before restore() decides
    second.engine.restore()
    assert second.engine.running == ["boot"]
    assert second.events.count(EV_RESUMED.id) == 1
    second.run_until(20.0)
    assert second.values == [4, 5]  # entry 2 (the crash) never re-runs
    times = [t for t, _ in second.ran]
    assert times == pytest.approx([4.0, 10.0], abs=TICK + 1e-6)  # 1 s after entry 2's due time
    assert second.engine.status()["boot"]["state"] == "done"

    third = Craft(tmp_path, clock)
    third.engine.restore()
    third.run_until(30.0)
    assert third.values == []


def test_reboot_mid_sequence_with_abort_policy_stops_it(tmp_path):
    clock = SimClock()
    first = Craft(tmp_path, clock)
    first.engine.load(reboot_sequence("abort"))
    first.engine.start("boot")
    first.run_until(2.5)
    assert first.values == [1, 2]

    second = Craft(tmp_path, clock)  # no crash needed: a reboot between entries
    second.engine.restore()
    assert second.engine.running == []
    assert second.events.count(EV_ABORTED.id) == 1
    second.run_until(20.0)
    assert second.values == []
    assert second.engine.status()["boot"] == {"state": "aborted", "next": 2, "count": 5}
    # It can be started again from the top by command.
    second.engine.start("boot")
    second.run_until(21.5)
    assert second.values == [1]


def test_stored_sequences_survive_a_reboot_and_are_revalidated_at_start(tmp_path):
    clock = SimClock()
    first = Craft(tmp_path, clock)
    first.engine.load(encode_sequence("kept", [rec("rel", 1, 7)]))
    second = Craft(tmp_path, clock)
    second.engine.restore()
    assert second.engine.names == ["kept"]
    second.engine.start("kept")
    second.run_until(2.0)
    assert second.values == [7]
    # A software update that dropped the command: the stored sequence no longer starts.
    third = Craft(tmp_path, clock, with_test_commands=False)
    with pytest.raises(ValidationError, match="unknown opcode 0x7000"):
        third.engine.start("kept")


def test_status_and_telemetry(tmp_path):
    from flight.datapool import DataPool

    craft = Craft(tmp_path, SimClock())
    craft.engine.load(
        encode_sequence("a", [rec("rel", 1, 1), rec("rel", 1, 2, OP_FAIL)], abort_on_error=False)
    )
    craft.engine.load(encode_sequence("b", [rec("rel", 100, 1)]))
    craft.engine.start("a")
    craft.engine.start("b")
    craft.run_until(3.0)
    pool = DataPool()
    craft.engine.publish(pool, craft.clock.monotonic())
    assert pool.value("seq.loaded") == 2
    assert pool.value("seq.running") == 1
    assert pool.value("seq.running_names") == "b"
    assert pool.value("seq.dispatched") == 2
    assert pool.value("seq.failed") == 1
    assert {c.name for c in craft.engine.channels()} == {
        "seq.loaded",
        "seq.running",
        "seq.running_names",
        "seq.dispatched",
        "seq.failed",
    }
