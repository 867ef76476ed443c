"""What the console prints: values with units, limit states in colour and in words."""

from __future__ import annotations

from flight.commands import Arg, ArgType, CommandSpec
from flight.ground.display import (
    format_channels,
    format_command_list,
    format_event,
    format_response,
    format_value,
    paint,
)
from flight.ground.records import ChannelValue, EventRecord, Limit, ResponseRecord

YELLOW, RED, RESET = "\033[33m", "\033[31m", "\033[0m"

VALUES = [
    ChannelValue("power.bus_v", 33.0, "V", Limit.YELLOW, 10.0, 95.0),
    ChannelValue("power.batt_c", 71.5, "°C", Limit.RED, 10.0, 99.0),
    ChannelValue("mode.name", "CRUISE", "", None, 12.0, 99.0),
    ChannelValue("power.ok", True, "", None, 12.0, 99.0),
]


def test_table_is_sorted_by_name_and_names_the_limit_state() -> None:
    lines = format_channels(VALUES, color=False, now=100.0).splitlines()
    assert [line.split()[0] for line in lines] == [
        "mode.name", "power.batt_c", "power.bus_v", "power.ok",
    ]  # fmt: skip
    assert "71.5 °C  RED" in lines[1]
    assert "33.0 V  YELLOW" in lines[2] and "(5 s ago)" in lines[2]
    assert "yes" in lines[3]
    assert "\033" not in "\n".join(lines)


def test_colour_marks_only_out_of_limit_rows() -> None:
    lines = format_channels(VALUES, color=True, now=100.0).splitlines()
    assert lines[1].startswith(RED) and lines[1].endswith(RESET)
    assert lines[2].startswith(YELLOW)
    assert "\033" not in lines[0] + lines[3]


def test_pattern_filters_by_glob_or_substring() -> None:
    globbed = format_channels(VALUES, color=False, pattern="power.b*", now=100.0)
    assert [line.split()[0] for line in globbed.splitlines()] == ["power.batt_c", "power.bus_v"]
    assert format_channels(VALUES, color=False, pattern="mode", now=0).startswith("mode.name")
    assert format_channels(VALUES, color=False, pattern="zzz", now=0) == "(no channel matches zzz)"
    assert format_channels([], color=False, now=0) == "(no telemetry received yet)"


def test_values_are_formatted_for_people() -> None:
    assert format_value(2.0, "V") == "2.0 V"
    assert format_value(1e-9) == "1e-09"
    assert format_value(None, "V") == "-"
    assert format_value(False) == "no"
    assert format_value(b"\x01\xab") == "01ab"
    assert paint("x", None, True) == "x" and paint("x", "red", False) == "x"


def test_events_and_responses_are_coloured_by_severity_and_status() -> None:
    warn = EventRecord(5, "link.UPLINK_AUTH_FAILED", "WARNING_HI", "bad MAC", {}, 3.25, 0.0)
    info = EventRecord(1, "cmd.ACCEPTED", "COMMAND", "ok", {}, 1.0, 0.0, playback=True)
    assert format_event(warn, color=True) == (
        f"{RED}[MET 3.250] WARNING_HI link.UPLINK_AUTH_FAILED: bad MAC{RESET}"
    )
    assert format_event(info, color=True) == "[MET 1.000] COMMAND cmd.ACCEPTED: ok (playback)"
    ok = ResponseRecord(7, 2, "cmd.PING", "OK", "pong 1", 0.0, 0.0)
    bad = ResponseRecord(8, 2, "cmd.PING", "VALIDATION_ERROR", "token", 0.0, 0.0)
    assert format_response(ok, color=False) == "seq 7 cmd.PING: OK pong 1"
    assert format_response(bad, color=True).startswith(RED)


def test_command_list_shows_usage_and_hazard() -> None:
    specs = [
        CommandSpec(2, "b.FIRE", lambda **_: None, (Arg("s", ArgType.FLOAT),), hazardous=True),
        CommandSpec(1, "a.NOOP", lambda **_: None),
    ]
    assert format_command_list(specs) == "a.NOOP\nb.FIRE s:float  (hazardous: arm first)"
    assert format_command_list(specs, "a.*") == "a.NOOP"
    assert format_command_list(specs, "zzz") == "(no command matches)"
