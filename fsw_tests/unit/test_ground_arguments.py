"""Typed arguments from typed text, usage lines, and sequence files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flight.commands import Arg, ArgType, CommandSpec
from flight.ground.arguments import (
    ArgumentError,
    load_sequence_file,
    parse_args,
    parse_bool,
    parse_bytes,
    parse_value,
    usage,
)

INT = Arg("count", ArgType.INT, minimum=0, maximum=10)
FLOAT = Arg("duration_s", ArgType.FLOAT, "s", minimum=0.0)
BOOL = Arg("on", ArgType.BOOL)
STR = Arg("label", ArgType.STR)
ENUM = Arg("mode", ArgType.ENUM, choices=("SAFE", "NOMINAL"))
BYTES = Arg("blob", ArgType.BYTES)
SPEC = CommandSpec(0x10, "x.DO", lambda **_: None, (INT, ENUM), hazardous=True)


@pytest.mark.parametrize(
    ("arg", "text", "value"),
    [
        (INT, "42", 42),
        (INT, "0x2A", 42),
        (INT, "0b101", 5),
        (INT, "1_000", 1000),
        (INT, "-3", -3),
        (FLOAT, "2.5", 2.5),
        (FLOAT, "1e-3", 0.001),
        (FLOAT, "7", 7.0),
        (BOOL, "TRUE", True),
        (BOOL, "off", False),
        (BOOL, "1", True),
        (STR, "hello world", "hello world"),
        (ENUM, "SAFE", "SAFE"),
        (ENUM, "1", 1),
        (BYTES, "0a0B", b"\x0a\x0b"),
        (BYTES, "0x01:02_03", b"\x01\x02\x03"),
        (BYTES, "", b""),
    ],
)
def test_text_becomes_the_arguments_type(arg: Arg, text: str, value: object) -> None:
    parsed = parse_value(arg, text)
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize(
    ("arg", "text", "message"),
    [
        (INT, "4.5", r"count: '4\.5' is not an integer"),
        (FLOAT, "fast", "duration_s: 'fast' is not a number"),
        (BOOL, "maybe", "on: 'maybe' is not a boolean"),
        (BYTES, "0xZZ", "blob: '0xZZ' is not hexadecimal"),
        (BYTES, "abc", "not hexadecimal"),
    ],
)
def test_bad_text_names_the_argument(arg: Arg, text: str, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        parse_value(arg, text)


def test_bytes_from_a_file_relative_to_the_base_dir(tmp_path: Path) -> None:
    (tmp_path / "table.bin").write_bytes(b"\x00\x01\xfe")
    assert parse_value(BYTES, "@table.bin", base_dir=tmp_path) == b"\x00\x01\xfe"
    with pytest.raises(ArgumentError, match="blob: cannot read"):
        parse_value(BYTES, "@missing.bin", base_dir=tmp_path)


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_any_integer_round_trips_in_decimal_and_hex(n: int) -> None:
    assert parse_value(INT, str(n)) == n
    assert parse_value(INT, hex(n)) == n


@given(st.floats(allow_nan=False))
def test_any_float_round_trips(x: float) -> None:
    assert parse_value(FLOAT, repr(x)) == x


@given(st.binary(max_size=64))
def test_any_bytes_round_trip_through_hex(data: bytes) -> None:
    assert parse_bytes(data.hex()) == data
    assert parse_bytes("0x" + data.hex().upper()) == data


@given(st.text(max_size=20))
def test_parse_bool_accepts_only_its_spellings(text: str) -> None:
    spellings = {"true", "false", "yes", "no", "on", "off", "1", "0"}
    if text.strip().lower() in spellings:
        assert parse_bool(text) in (True, False)
    else:
        with pytest.raises(ArgumentError):
            parse_bool(text)


def test_parse_args_checks_the_count_and_shows_the_usage() -> None:
    assert parse_args(SPEC, ["3", "NOMINAL"]) == [3, "NOMINAL"]
    with pytest.raises(ArgumentError, match=r"x\.DO takes 2 argument\(s\), got 1; usage: x\.DO"):
        parse_args(SPEC, ["3"])


def test_usage_lists_types_ranges_units_and_choices() -> None:
    spec = CommandSpec(1, "a.B", lambda **_: None, (INT, FLOAT, ENUM, BYTES))
    assert (
        usage(spec) == "a.B count:int[0..10] duration_s:float[0..](s) mode:SAFE|NOMINAL blob:bytes"
    )


TOML = """
name = "checkout"
on_reboot = "resume"
[[commands]]
after = 5
command = "cmd.PING"
args = [7]
[[commands]]
at = 1200.5
command = "x.LOAD"
args = ["0a0b"]
"""


def _lookup(name: str) -> CommandSpec | None:
    return {"x.LOAD": CommandSpec(2, "x.LOAD", lambda **_: None, (BYTES,))}.get(name)


def test_toml_and_json_sequence_files_read_the_same(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(TOML)
    doc = {
        "name": "checkout",
        "on_reboot": "resume",
        "commands": [
            {"after": 5, "command": "cmd.PING", "args": [7]},
            {"at": 1200.5, "command": "x.LOAD", "args": ["0a0b"]},
        ],
    }
    (tmp_path / "s.json").write_text(json.dumps(doc))
    from_toml = load_sequence_file(tmp_path / "s.toml", _lookup)
    assert from_toml == load_sequence_file(tmp_path / "s.json", _lookup)
    assert from_toml.entries == (
        ("rel", 5.0, "cmd.PING", [7]),
        ("abs", 1200.5, "x.LOAD", [b"\x0a\x0b"]),
    )
    assert (from_toml.abort_on_error, from_toml.on_reboot) == (True, "resume")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "a"\n[[commands]]\nat = 1\nafter = 2\ncommand = "c.X"', "exactly one of"),
        ('name = "a"\n[[commands]]\ncommand = "c.X"', "exactly one of"),
        ('name = "a"\n[[commands]]\nat = "soon"\ncommand = "c.X"', "number of seconds"),
        (
            'name = "a"\n[[commands]]\nat = 1\ncommand = "c.X"\nspeed = 3',
            r"unknown field\(s\) speed",
        ),
        ('name = "a"\ncommands = []', "non-empty"),
        ('commands = [{at = 1, command = "c.X"}]', "'name'"),
        (
            'name = "a"\nabort_on_error = "yes"\ncommands = [{at = 1, command = "c.X"}]',
            "true or false",
        ),
        ("name = ", "s.toml"),
    ],
)
def test_bad_sequence_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ArgumentError, match=message):
        load_sequence_file(path)


def test_missing_sequence_file(tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match="cannot read"):
        load_sequence_file(tmp_path / "nope.toml")
