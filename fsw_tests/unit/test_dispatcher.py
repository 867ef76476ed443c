"""Command dispatch: one response per command, the right status, never an exception."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flight import codec
from flight.clock import SimClock, SpacecraftTime
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
from flight.datapool import DataPool
from flight.dispatcher import MAX_SEQ, Dispatcher, response_message
from flight.events import EventLog, Severity
from flight.messages import MessageKind

S = CommandStatus


class Rig:
    """A dispatcher on simulated time with a handful of test commands."""

    def __init__(self, *, pool: DataPool | None = None) -> None:
        self.clock = SimClock()
        self.time = SpacecraftTime(self.clock)
        self.events = EventLog(now=self.time.met)
        self.dispatcher = Dispatcher(
            events=self.events, now=self.time.met, arm_window_s=30.0, pool=pool
        )
        self.responses: list[CommandResponse] = []
        self.dispatcher.subscribe(self.responses.append)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.dispatcher.register_all(self._specs())

    def _record(self, name: str) -> Any:
        def handler(**kwargs: Any) -> str:
            self.calls.append((name, kwargs))
            return f"{name} done"

        return handler

    def _raiser(self, exc: BaseException) -> Any:
        def handler() -> None:
            raise exc

        return handler

    def _specs(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                0x1001,
                "test.SET",
                self._record("set"),
                (
                    Arg("level", ArgType.INT, minimum=0, maximum=10),
                    Arg("gain", ArgType.FLOAT, minimum=-1.0, maximum=1.0),
                    Arg("flag", ArgType.BOOL),
                    Arg("mode", ArgType.ENUM, choices=("A", "B", "C")),
                    Arg("label", ArgType.STR, max_length=8),
                    Arg("blob", ArgType.BYTES, max_length=4),
                ),
            ),
            CommandSpec(0x1002, "test.FAIL", self._raiser(CommandError("nozzle stuck"))),
            CommandSpec(0x1003, "test.BUSY", self._raiser(BusyError("slewing"))),
            CommandSpec(0x1004, "test.CRASH", self._raiser(RuntimeError("bug"))),
            CommandSpec(0x1005, "test.KEY", self._raiser(KeyError("missing"))),
            CommandSpec(0x1006, "test.CHECK", self._raiser(ValidationError("no such thing"))),
            CommandSpec(0x1007, "test.NONE", lambda: None),
            CommandSpec(0x1010, "test.FIRE", self._record("fire"), hazardous=True),
            CommandSpec(
                0x1011,
                "test.VENT",
                self._record("vent"),
                (Arg("valve", ArgType.INT, minimum=0, maximum=3),),
                hazardous=True,
            ),
        ]

    def send(self, frame: Any) -> CommandResponse:
        return self.dispatcher.dispatch_bytes(codec.encode(frame))

    def event_names(self) -> list[str]:
        return [e.name for e in self.events.recent]


GOOD_SET_ARGS = [3, 0.5, True, "B", "hello", b"\x00\x01"]


@pytest.fixture
def rig() -> Rig:
    return Rig()


# -- happy path ------------------------------------------------------------------------------


def test_valid_command_runs_handler_with_typed_args(rig: Rig) -> None:
    resp = rig.send([7, 0x1001, GOOD_SET_ARGS])
    assert resp == CommandResponse(7, 0x1001, S.OK, "set done")
    assert rig.calls == [
        (
            "set",
            {
                "level": 3,
                "gain": 0.5,
                "flag": True,
                "mode": "B",
                "label": "hello",
                "blob": b"\x00\x01",
            },
        )
    ]


def test_enum_index_is_normalised_to_its_name(rig: Rig) -> None:
    args = list(GOOD_SET_ARGS)
    args[3] = 2
    assert rig.send([1, 0x1001, args]).status is S.OK
    assert rig.calls[0][1]["mode"] == "C"


def test_int_accepted_for_float_argument(rig: Rig) -> None:
    args = list(GOOD_SET_ARGS)
    args[1] = 1
    assert rig.send([1, 0x1001, args]).status is S.OK
    assert rig.calls[0][1]["gain"] == 1.0


def test_noop_and_ping(rig: Rig) -> None:
    assert rig.send([1, 0x0001, []]).status is S.OK
    resp = rig.send([2, 0x0002, [12345]])
    assert resp.status is S.OK and "12345" in resp.reason


def test_handler_returning_none_gives_empty_reason(rig: Rig) -> None:
    assert rig.send([1, 0x1007, []]) == CommandResponse(1, 0x1007, S.OK, "")


def test_seq_limits_accepted(rig: Rig) -> None:
    assert rig.send([0, 1, []]).status is S.OK
    assert rig.send([MAX_SEQ, 1, []]).seq == MAX_SEQ


def test_accepted_event_and_counters(rig: Rig) -> None:
    rig.send([5, 0x0001, []])
    rig.send([6, 0x7777, []])
    assert rig.event_names() == ["cmd.ACCEPTED", "cmd.REJECTED"]
    accepted, rejected = rig.events.recent
    assert accepted.severity is Severity.COMMAND and accepted.args["name"] == "cmd.NOOP"
    assert rejected.severity is Severity.WARNING_LO
    assert rejected.args["status"] == "INVALID_OPCODE"
    counters = rig.dispatcher.counters
    assert counters["accepted"] == 1 and counters["rejected"] == 1
    assert counters["OK"] == 1 and counters["INVALID_OPCODE"] == 1 and counters["BUSY"] == 0


def test_every_response_goes_to_listeners_exactly_once(rig: Rig) -> None:
    frames = [[1, 1, []], [2, 0x9999, []], b"junk", [3, 0x1001, [1]], [4, 0x1004, []]]
    for f in frames:
        if isinstance(f, bytes):
            rig.dispatcher.dispatch_bytes(f)
        else:
            rig.send(f)
    assert len(rig.responses) == len(frames)


def test_listener_that_raises_does_not_break_dispatch(rig: Rig) -> None:
    def bad(_: CommandResponse) -> None:
        raise RuntimeError("downlink broke")

    rig.dispatcher.subscribe(bad)
    assert rig.send([1, 1, []]).status is S.OK


def test_response_message() -> None:
    resp = CommandResponse(9, 0x0102, S.BUSY, "later")
    msg = response_message(resp, 12.5)
    assert msg.kind is MessageKind.COMMAND_RESPONSE
    assert (msg.id, msg.time) == (0x0102, 12.5)
    assert msg.body == {"seq": 9, "op": 0x0102, "status": 5, "reason": "later"}


def test_counters_mirrored_to_pool() -> None:
    pool = DataPool()
    rig = Rig(pool=pool)
    rig.send([41, 1, []])
    rig.send([42, 0x9999, []])
    assert pool.value("cmd.accepted") == 1
    assert pool.value("cmd.rejected") == 1
    assert pool.value("cmd.last_seq") == 42
    assert pool.value("cmd.last_status") == int(S.INVALID_OPCODE)
    assert [c.name for c in rig.dispatcher.channels()] == list(rig.dispatcher.packets()[0].channels)


def test_no_channels_declared_without_pool(rig: Rig) -> None:
    assert rig.dispatcher.channels() == [] and rig.dispatcher.packets() == []


# -- registry --------------------------------------------------------------------------------


def test_duplicate_opcode_or_name_refused(rig: Rig) -> None:
    with pytest.raises(ValueError, match="opcode"):
        rig.dispatcher.register(CommandSpec(0x1001, "test.OTHER", lambda: None))
    with pytest.raises(ValueError, match="already registered"):
        rig.dispatcher.register(CommandSpec(0x2000, "test.SET", lambda: None))
    with pytest.raises(ValueError):
        rig.dispatcher.register(CommandSpec(0x10000, "test.BIG", lambda: None))


def test_lookup_and_specs(rig: Rig) -> None:
    assert rig.dispatcher.lookup("cmd.PING") is rig.dispatcher.lookup(0x0002)
    assert rig.dispatcher.lookup(0x4242) is None and rig.dispatcher.lookup("nope") is None
    opcodes = [s.opcode for s in rig.dispatcher.specs]
    assert opcodes == sorted(opcodes) and {1, 2, 3, 0x1001} <= set(opcodes)
    assert {s.name for s in rig.dispatcher.commands()} == {"cmd.NOOP", "cmd.PING", "cmd.ARM"}
    assert {e.id for e in rig.dispatcher.events()} <= set(range(0x100))


# -- malformed input -------------------------------------------------------------------------


def _set_args(index: int, value: Any) -> list[Any]:
    args = list(GOOD_SET_ARGS)
    args[index] = value
    return args


@pytest.mark.parametrize(
    ("data", "status", "seq"),
    [
        (b"", S.FORMAT_ERROR, -1),
        (b"\xff\xfe\xfd", S.FORMAT_ERROR, -1),
        (codec.encode([1, 1, []])[:-1], S.FORMAT_ERROR, -1),
        (codec.encode([1, 1, []]) + b"\x00", S.FORMAT_ERROR, -1),
        (codec.encode({"seq": 1}), S.FORMAT_ERROR, -1),
        (codec.encode(17), S.FORMAT_ERROR, -1),
        (codec.encode([]), S.FORMAT_ERROR, -1),
        (codec.encode([4, 1]), S.FORMAT_ERROR, 4),
        (codec.encode([4, 1, [], 0]), S.FORMAT_ERROR, 4),
        (codec.encode(["4", 1, []]), S.FORMAT_ERROR, -1),
        (codec.encode([4.0, 1, []]), S.FORMAT_ERROR, -1),
        (codec.encode([True, 1, []]), S.FORMAT_ERROR, -1),
        (codec.encode([-1, 1, []]), S.FORMAT_ERROR, -1),
        (codec.encode([-5, 1, []]), S.FORMAT_ERROR, -5),
        (codec.encode([MAX_SEQ + 1, 1, []]), S.FORMAT_ERROR, MAX_SEQ + 1),
        (codec.encode([2**70, 1, []]), S.FORMAT_ERROR, -1),  # bignum tag: refused by the codec
        (codec.encode([4, "cmd.NOOP", []]), S.FORMAT_ERROR, 4),
        (codec.encode([4, 1.0, []]), S.FORMAT_ERROR, 4),
        (codec.encode([4, None, []]), S.FORMAT_ERROR, 4),
        (codec.encode([4, 1, None]), S.FORMAT_ERROR, 4),
        (codec.encode([4, 1, {"a": 1}]), S.FORMAT_ERROR, 4),
        (codec.encode([4, 1, "x"]), S.FORMAT_ERROR, 4),
        (codec.encode([4, 0x4242, []]), S.INVALID_OPCODE, 4),
        (codec.encode([4, -3, []]), S.INVALID_OPCODE, 4),
        (codec.encode([4, 0x1001, [1, 2]]), S.VALIDATION_ERROR, 4),
        (codec.encode([4, 0x0001, [1]]), S.VALIDATION_ERROR, 4),
    ],
)
def test_malformed_frames(rig: Rig, data: bytes, status: CommandStatus, seq: int) -> None:
    resp = rig.dispatcher.dispatch_bytes(data)
    assert resp.status is status
    assert resp.seq == seq
    assert resp.reason
    assert rig.calls == []
    assert rig.event_names() == ["cmd.REJECTED"]


def test_tagged_cbor_is_refused(rig: Rig) -> None:
    # Tag 1 (epoch time) around the seq: tags are never allowed in uplinked commands.
    data = bytes([0x83, 0xC1, 0x01, 0x01, 0x80])
    assert rig.dispatcher.dispatch_bytes(data).status is S.FORMAT_ERROR


def test_non_bytes_input_is_a_format_error(rig: Rig) -> None:
    bogus: Any = "not bytes"
    assert rig.dispatcher.dispatch_bytes(bogus).status is S.FORMAT_ERROR


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (_set_args(0, True), "expected int"),  # bool is not an int
        (_set_args(0, 2.0), "expected int"),
        (_set_args(0, "3"), "expected int"),
        (_set_args(0, 11), "above maximum"),
        (_set_args(0, -1), "below minimum"),
        (_set_args(1, False), "expected number"),
        (_set_args(1, math.nan), "not finite"),
        (_set_args(1, math.inf), "not finite"),
        (_set_args(1, -math.inf), "not finite"),
        (_set_args(1, 1.5), "above maximum"),
        (_set_args(1, 2**60), "too large"),
        (_set_args(2, 1), "expected bool"),
        (_set_args(2, None), "expected bool"),
        (_set_args(3, "D"), "not one of"),
        (_set_args(3, 3), "not one of"),
        (_set_args(3, True), "not one of"),
        (_set_args(3, -1), "not one of"),
        (_set_args(4, "x" * 9), "longer than"),
        (_set_args(4, b"bytes"), "expected str"),
        (_set_args(5, b"12345"), "longer than"),
        (_set_args(5, "text"), "expected bytes"),
        (GOOD_SET_ARGS[:-1], "takes 6"),
        ([*GOOD_SET_ARGS, 0], "takes 6"),
    ],
)
def test_argument_validation(rig: Rig, args: list[Any], fragment: str) -> None:
    resp = rig.send([11, 0x1001, args])
    assert resp.status is S.VALIDATION_ERROR
    assert fragment in resp.reason
    assert rig.calls == []
    (event,) = rig.events.recent
    assert event.name == "cmd.REJECTED" and event.args["name"] == "test.SET"
    assert event.args["status"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    ("opcode", "status", "fragment"),
    [
        (0x1002, S.EXECUTION_ERROR, "nozzle stuck"),
        (0x1003, S.BUSY, "slewing"),
        (0x1004, S.EXECUTION_ERROR, "RuntimeError"),
        (0x1005, S.EXECUTION_ERROR, "KeyError"),
        (0x1006, S.VALIDATION_ERROR, "no such thing"),
    ],
)
def test_handler_failures_map_to_status(
    rig: Rig, opcode: int, status: CommandStatus, fragment: str
) -> None:
    resp = rig.send([3, opcode, []])
    assert (resp.seq, resp.opcode, resp.status) == (3, opcode, status)
    assert fragment in resp.reason


def test_unexpected_handler_exception_raises_fault_event(rig: Rig) -> None:
    rig.send([3, 0x1004, []])
    assert rig.event_names() == ["cmd.HANDLER_FAULT", "cmd.REJECTED"]
    assert rig.events.recent[0].severity is Severity.WARNING_HI


def test_handler_may_dispatch_another_command(rig: Rig) -> None:
    inner: list[CommandResponse] = []
    rig.dispatcher.register(
        CommandSpec(
            0x1020, "test.NEST", lambda: inner.append(rig.dispatcher.dispatch(99, 1, [])) or "ok"
        )
    )
    assert rig.send([1, 0x1020, []]).status is S.OK
    assert inner[0].status is S.OK and len(rig.responses) == 2


# -- hazardous commands ----------------------------------------------------------------------


def test_hazardous_without_arm_is_refused(rig: Rig) -> None:
    resp = rig.send([1, 0x1010, []])
    assert resp.status is S.VALIDATION_ERROR and "not armed" in resp.reason
    assert rig.calls == []
    assert rig.events.recent[-1].args["reason"].startswith("not armed")


def test_hazardous_armed_in_time_runs_once(rig: Rig) -> None:
    assert rig.send([1, 0x0003, ["test.FIRE"]]).status is S.OK
    assert "cmd.ARMED" in rig.event_names()
    rig.clock.advance(29.0)
    assert rig.send([2, 0x1010, []]).status is S.OK
    assert rig.calls == [("fire", {})]
    # The arm was consumed.
    again = rig.send([3, 0x1010, []])
    assert again.status is S.VALIDATION_ERROR and "not armed" in again.reason
    assert len(rig.calls) == 1


def test_hazardous_arm_expires(rig: Rig) -> None:
    rig.send([1, 0x0003, ["test.FIRE"]])
    rig.clock.advance(30.5)
    assert rig.send([2, 0x1010, []]).status is S.VALIDATION_ERROR
    assert rig.calls == []


def test_arm_for_another_command_does_not_count(rig: Rig) -> None:
    rig.send([1, 0x0003, ["test.VENT"]])
    assert rig.send([2, 0x1010, []]).status is S.VALIDATION_ERROR
    assert rig.send([3, 0x1011, [2]]).status is S.OK
    assert rig.calls == [("vent", {"valve": 2})]


def test_arm_by_opcode_text(rig: Rig) -> None:
    assert rig.send([1, 0x0003, ["0x1010"]]).status is S.OK
    assert rig.send([2, 0x1010, []]).status is S.OK
    assert rig.send([3, 0x0003, [str(0x1011)]]).status is S.OK
    assert rig.dispatcher.is_armed(0x1011)


def test_bad_arguments_do_not_consume_the_arm(rig: Rig) -> None:
    rig.send([1, 0x0003, ["test.VENT"]])
    assert rig.send([2, 0x1011, [9]]).status is S.VALIDATION_ERROR
    assert rig.send([3, 0x1011, [1]]).status is S.OK


@pytest.mark.parametrize("target", ["test.NOPE", "cmd.NOOP", "0x4242", "", "zz"])
def test_arm_refuses_unknown_or_non_hazardous(rig: Rig, target: str) -> None:
    resp = rig.send([1, 0x0003, [target]])
    assert resp.status is S.VALIDATION_ERROR
    assert "cmd.ARMED" not in rig.event_names()


def test_rearm_restarts_window(rig: Rig) -> None:
    rig.send([1, 0x0003, ["test.FIRE"]])
    rig.clock.advance(20.0)
    rig.send([2, 0x0003, ["test.FIRE"]])
    rig.clock.advance(20.0)
    assert rig.send([3, 0x1010, []]).status is S.OK


def test_direct_dispatch_checks_like_bytes(rig: Rig) -> None:
    bogus: Any = "1"
    assert rig.dispatcher.dispatch(bogus, 1, []).status is S.FORMAT_ERROR
    assert rig.dispatcher.dispatch(1, 1, (), source="sequence").status is S.FORMAT_ERROR
    assert rig.dispatcher.dispatch(1, 1, [], source="sequence").status is S.OK
    assert rig.events.recent[-1].args["source"] == "sequence"


# -- properties ------------------------------------------------------------------------------

_cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=20,
)
_rig_for_props = Rig()
_opcodes = st.sampled_from([s.opcode for s in _rig_for_props.dispatcher.specs] + [0x4242])


def _check_one_response(rig: Rig, data: bytes) -> None:
    before = len(rig.responses)
    resp = rig.dispatcher.dispatch_bytes(data)
    assert isinstance(resp, CommandResponse)
    assert resp.status in CommandStatus
    assert len(rig.responses) == before + 1 and rig.responses[-1] is resp
    codec.decode(codec.encode(resp.to_body()))  # the response itself always travels


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    _check_one_response(_rig_for_props, data)


@settings(max_examples=300, deadline=None)
@given(_cbor_values)
def test_arbitrary_cbor_values_never_raise(value: Any) -> None:
    _check_one_response(_rig_for_props, codec.encode(value))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=-10, max_value=2**33) | _cbor_values,
    _opcodes,
    st.lists(_cbor_values, max_size=7),
)
def test_well_shaped_frames_with_arbitrary_args_never_raise(
    seq: Any, opcode: int, args: list[Any]
) -> None:
    _check_one_response(_rig_for_props, codec.encode([seq, opcode, args]))
