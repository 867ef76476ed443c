"""Ground scripts: parsing against the dictionary, and running against a real flight link."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flight.ground.runner import ScriptRunner
from flight.ground.script import (
    ExpectEventStep,
    ExpectResponseStep,
    ExpectTelemetryStep,
    ScriptError,
    ScriptParser,
    SendStep,
    Step,
    ValueCheck,
    WaitStep,
)
from flight.ground.station import GroundStation
from flight.link.ground import CommandEncoder
from fsw_tests.ground_support import SCID, SPI, make_link


@pytest.fixture
def link(tmp_path: Path):
    flight, clock, pipe, encoder, decoder = make_link(tmp_path)
    dictionary = flight.ground_dictionary()
    station = GroundStation(
        dictionary=dictionary, encoder=encoder, decoder=decoder, transport=pipe, clock=clock
    )
    parser = ScriptParser(dictionary, base_dir=tmp_path, default_timeout_s=3.0)
    return flight, station, parser


def run(station: GroundStation, parser: ScriptParser, text: str) -> tuple[int, str]:
    out = io.StringIO()
    steps = parser.parse(text, source="t.fsw")
    return ScriptRunner(station, out=out, source="t.fsw").run(steps), out.getvalue()


# ------------------------------------------------------------------------------ parsing


def test_statements_parse_into_checked_steps(link) -> None:
    _, _, parser = link
    steps = parser.parse(
        "# a comment\n"
        "\n"
        "send cmd.PING 0x10   # trailing comment\n"
        "expect response ok containing 'pong 16' within 2.5\n"
        'test.CONFIGURE SAFE yes 0a0b "two words"\n'
        "expect telemetry test.bus_voltage_v 20..35\n"
        "expect telemetry test.mode NOMINAL within 1\n"
        "expect event cmd.ACCEPTED containing PING\n"
        "wait 0.5\n"
    )
    assert steps[0] == SendStep(3, "send cmd.PING 0x10   # trailing comment", "cmd.PING", (16,))
    assert steps[1] == ExpectResponseStep(
        4, "expect response ok containing 'pong 16' within 2.5", "OK", "pong 16", 2.5
    )
    assert isinstance(steps[2], SendStep)
    assert steps[2].args == ("SAFE", True, b"\x0a\x0b", "two words")
    assert isinstance(steps[3], ExpectTelemetryStep)
    assert steps[3].check == ValueCheck(20.0, 35.0) and steps[3].timeout_s == 3.0
    assert isinstance(steps[4], ExpectTelemetryStep) and steps[4].check("NOMINAL")
    assert isinstance(steps[5], ExpectEventStep) and steps[5].containing == "PING"
    assert steps[6] == WaitStep(9, "wait 0.5", 0.5)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("fly away", "unknown statement 'fly'"),
        ("send", "needs a command name"),
        ("send cmd.PONG 1", "unknown command 'cmd.PONG'"),
        ("cmd.PING", r"cmd\.PING takes 1 argument"),
        ("cmd.PING seven", "token: 'seven' is not an integer"),
        ("cmd.PING -1", "below minimum"),
        ("arm cmd.PING", "not hazardous"),
        ("arm", "usage: arm"),
        ("wait soon", "not a number"),
        ("wait -1", "non-negative"),
        ("expect response GREAT", "unknown status 'GREAT'"),
        ("expect telemetry nope.x 1..2", "unknown channel 'nope.x'"),
        ("expect telemetry test.mode 1..2", "range needs a number"),
        ("expect telemetry test.bus_voltage_v 5..1", "empty"),
        ("expect telemetry test.bus_voltage_v lots", "not a float value"),
        ("expect telemetry test.bus_voltage_v 1..2 containing x", "'containing' applies"),
        ("expect event no.SUCH_EVENT", "unknown event"),
        ("expect event cmd.ACCEPTED within", "unexpected 'within'"),
        ("expect", "usage: expect"),
        ("send cmd.PING 'unclosed", "cannot split"),
        ("sequence missing.toml", "cannot read"),
    ],
)
def test_bad_lines_are_reported(link, line: str, message: str) -> None:
    _, _, parser = link
    with pytest.raises(ScriptError, match=message):
        parser.parse_line(line, 1)


def test_every_bad_line_is_listed_before_anything_runs(link) -> None:
    _flight, station, parser = link
    text = "send cmd.PING 1\nfly\nexpect response OK\ncmd.NOOP extra\n"
    with pytest.raises(ScriptError) as info:
        parser.parse(text, source="t.fsw")
    assert str(info.value).splitlines() == [
        "t.fsw:2: unknown statement 'fly' (expected send, arm, sequence, wait, expect or a "
        "command name)",
        "t.fsw:4: cmd.NOOP takes 0 argument(s), got 1; usage: cmd.NOOP",
    ]
    assert station.sent == {}


def test_expect_response_needs_a_command_before_it(link) -> None:
    _, _, parser = link
    with pytest.raises(ScriptError, match=r"t\.fsw:1: expect response before any command"):
        parser.parse("expect response OK\ncmd.NOOP\n", source="t.fsw")


@given(
    st.one_of(st.none(), st.floats(-1e6, 1e6)),
    st.one_of(st.none(), st.floats(-1e6, 1e6)),
    st.one_of(st.floats(allow_nan=True), st.integers(-(10**7), 10**7), st.booleans(), st.text()),
)
def test_range_check_accepts_exactly_the_numbers_inside(low, high, value) -> None:
    check = ValueCheck(low, high)
    numeric = isinstance(value, int | float) and not isinstance(value, bool) and value == value
    inside = numeric and (low is None or value >= low) and (high is None or value <= high)
    assert check(value) == inside


def test_equality_check_does_not_confuse_booleans_and_numbers() -> None:
    assert ValueCheck(value=True, is_range=False)(True)
    assert not ValueCheck(value=True, is_range=False)(1)
    assert not ValueCheck(value=1, is_range=False)(True)
    assert ValueCheck(value=1, is_range=False)(1.0)


# ------------------------------------------------------------------------------ running


def test_script_with_every_statement_passes(link, tmp_path: Path) -> None:
    flight, station, parser = link
    (tmp_path / "check.toml").write_text(
        'name = "check"\n[[commands]]\nafter = 1\ncommand = "test.SET_VOLTAGE"\nargs = [33]\n'
    )
    status, out = run(
        station,
        parser,
        "cmd.PING 42\n"
        "expect response OK containing 'pong 42' within 5\n"
        "expect telemetry test.bus_voltage_v 20..35 within 5\n"
        "send test.BURN 2.0\n"
        "expect response VALIDATION_ERROR containing 'not armed'\n"
        "arm test.BURN\n"
        "expect response OK\n"
        "test.BURN 2.0\n"
        "expect event test.BURN_DONE containing '2.0 s' within 5\n"
        "sequence check.toml\n"
        "expect response OK containing 'loaded check'\n"
        "seq.START check\n"
        "expect event seq.COMPLETED within 5\n"
        "expect telemetry test.bus_voltage_v 32.. within 5\n"
        "wait 1\n",
    )
    assert status == 0, out
    assert "ok   t.fsw:2: expect response OK containing 'pong 42' within 5: OK (pong 42)" in out
    assert out.endswith("t.fsw: all 15 step(s) passed\n")
    assert flight.power.voltage == 33.0


def test_unmet_response_fails_at_once_naming_the_line(link) -> None:
    _, station, parser = link
    status, out = run(station, parser, "cmd.NOOP\nexpect response OK\ntest.FAIL\n"
                      "expect response OK within 60\ncmd.NOOP\n")  # fmt: skip
    assert status == 1
    assert out.splitlines()[-1] == (
        "FAIL t.fsw:4: expect response OK within 60: got EXECUTION_ERROR (always fails)"
    )
    assert station.clock.monotonic() < 1.0  # did not wait out the 60 s
    assert len(station.sent) == 2  # stopped before line 5


def test_unmet_telemetry_reports_the_last_value(link) -> None:
    _, station, parser = link
    status, out = run(station, parser, "expect telemetry test.bus_voltage_v ..20 within 2\n")
    assert status == 1
    assert "FAIL t.fsw:1:" in out
    assert "wanted in ..20 within 2 s; last value 28.0 V" in out


def test_unmet_event_lists_what_did_arrive(link) -> None:
    _, station, parser = link
    status, out = run(station, parser, "cmd.NOOP\nexpect event seq.COMPLETED within 1\n")
    assert status == 1
    assert "no seq.COMPLETED event within 1 s; recent: cmd.ACCEPTED" in out


def test_events_before_the_last_command_do_not_count(link) -> None:
    _, station, parser = link
    status, out = run(
        station, parser,
        "arm test.BURN\ntest.BURN 1\nwait 1\ncmd.NOOP\nexpect event test.BURN_DONE within 1\n",
    )  # fmt: skip
    assert status == 1, out


def test_forged_command_times_out_with_the_links_reason(link, tmp_path: Path) -> None:
    flight, station, parser = link
    station.encoder = CommandEncoder(
        key=bytes(32), spi=SPI, scid=SCID, counters=tmp_path / "other.arsn"
    )
    status, out = run(station, parser, "cmd.PING 1\nexpect response OK within 2\n")
    assert status == 1
    assert "no response to cmd.PING seq 0 within 2 s; the link reported: uplink frame failed" in out
    assert flight.uplink.counters["auth_failures"] == 1


def test_link_down_fails_the_send_line(link) -> None:
    _, station, parser = link
    station.transport.set_connected(False)
    status, out = run(station, parser, "cmd.NOOP\n")
    assert status == 1
    assert "FAIL t.fsw:1: cmd.NOOP: link is down" in out


WORDS = st.sampled_from(
    ["send", "expect", "response", "telemetry", "event", "within", "containing", "wait", "arm",
     "sequence", "cmd.PING", "cmd.ARM", "test.BURN", "test.bus_voltage_v", "OK", "1..2", "..",
     "-1", "0x10", "'", '"', "#", "nan", "inf", "1e999", "seq.COMPLETED", ""]
)  # fmt: skip


@pytest.fixture(scope="module")
def parser_only(tmp_path_factory: pytest.TempPathFactory) -> ScriptParser:
    flight, *_ = make_link(tmp_path_factory.mktemp("parser"))
    return ScriptParser(flight.ground_dictionary())


@given(st.lists(st.one_of(WORDS, st.text(max_size=8)), max_size=8))
def test_any_line_parses_to_a_step_or_a_script_error(parser_only, words: list[str]) -> None:
    try:
        step = parser_only.parse_line(" ".join(words), 1)
    except ScriptError as exc:
        assert str(exc)
    else:
        assert step is None or isinstance(step, Step)
