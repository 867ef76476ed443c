"""The device map loader: what a valid map holds, and a clear, complete error for every bad one."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hal.devmap import (
    DEFAULT_BAUD,
    Backend,
    DeviceMap,
    DeviceMapError,
    Kind,
    driver_kind,
    load_device_map,
    parse_device_map,
)
from hal.drivers import DRIVERS
from hal.errors import ConfigError

BARO = """
[[device]]
name = "baro"
driver = "bme280"
bus = 1
address = 0x76
backend = "hardware"
poll_hz = 10
"""

LIDAR = """
[[device]]
name = "lidar"
driver = "tfmini"
port = "/dev/ttyAMA0"
backend = "sim"
poll_hz = 50
"""


def parse(text: str) -> DeviceMap:
    return parse_device_map(text, source="bench.toml")


def problems_of(text: str) -> list[str]:
    with pytest.raises(DeviceMapError) as info:
        parse(text)
    return info.value.problems


# --- what a valid map holds -----------------------------------------------------------------------
def test_valid_map_keeps_fields_options_sim_table_and_extra_tables() -> None:
    text = f"""
[bench]
name = "lab bench"

[[device]]
name = "power"
driver = "ina219"
bus = 1
address = 0x41
backend = "sim"
poll_hz = 2.5
shunt_ohms = 0.05
[device.sim]
shunt_ohms = 0.05

{LIDAR}
baud = 57600

[link]
uplink_port = "/dev/ttyUSB0"
[state]
path = "/var/lib/fsw/state.cbor"
"""
    devmap = parse(text)
    assert devmap.name == "lab bench"
    assert devmap.names() == ["power", "lidar"]
    power, lidar = devmap.devices
    assert (power.kind, power.bus, power.address, power.port) == (Kind.I2C, 1, 0x41, None)
    assert power.backend is Backend.SIM and power.poll_hz == 2.5
    assert dict(power.options) == {"shunt_ohms": 0.05}
    assert dict(power.sim) == {"shunt_ohms": 0.05}
    assert power.location == "i2c-1:0x41"
    assert (lidar.kind, lidar.port, lidar.baud, lidar.bus) == (
        Kind.SERIAL,
        "/dev/ttyAMA0",
        57600,
        None,
    )
    assert lidar.location == "/dev/ttyAMA0"
    assert devmap.extra == {
        "link": {"uplink_port": "/dev/ttyUSB0"},
        "state": {"path": "/var/lib/fsw/state.cbor"},
    }
    assert devmap.device("lidar") is lidar
    with pytest.raises(KeyError, match="nope"):
        devmap.device("nope")


def test_serial_baud_defaults_and_bench_name_defaults_to_file_stem() -> None:
    devmap = parse(LIDAR)
    assert devmap.devices[0].baud == DEFAULT_BAUD
    assert devmap.name == "bench"


def test_with_backend_moves_every_device_and_leaves_the_original() -> None:
    devmap = parse(BARO + LIDAR)
    sim = devmap.with_backend(Backend.SIM)
    assert {s.backend for s in sim.devices} == {Backend.SIM}
    assert devmap.devices[0].backend is Backend.HARDWARE


def test_driver_kind_comes_from_the_driver_class() -> None:
    kinds = {name: driver_kind(name) for name in DRIVERS}
    assert kinds["tfmini"] is Kind.SERIAL
    assert {k for k, v in kinds.items() if v is Kind.I2C} == {
        "bme280", "lis3mdl", "mpu6050", "ina219", "pca9685",
    }  # fmt: skip


def test_same_address_on_different_buses_is_fine() -> None:
    other = BARO.replace('"baro"', '"baro2"').replace("bus = 1", "bus = 3")
    assert parse(BARO + other).names() == ["baro", "baro2"]


def test_empty_map_is_valid() -> None:
    assert parse("").devices == ()


# --- every validation error names the device and the field ----------------------------------------
CASES = {
    "unknown driver": (BARO.replace("bme280", "bmx999"), "field driver", "known: bme280"),
    "missing driver": (BARO.replace('driver = "bme280"', ""), "field driver", "missing"),
    "missing bus": (BARO.replace("bus = 1", ""), "field bus", "I2C driver"),
    "missing address": (BARO.replace("address = 0x76", ""), "field address", "missing"),
    "address too low": (BARO.replace("0x76", "0x02"), "field address", "0x03..0x77"),
    "address too high": (BARO.replace("0x76", "0x78"), "field address", "0x03..0x77"),
    "address not int": (BARO.replace("0x76", '"0x76"'), "field address", "integer"),
    "bus negative": (BARO.replace("bus = 1", "bus = -1"), "field bus", "0..65535"),
    "bus bool": (BARO.replace("bus = 1", "bus = true"), "field bus", "bus number"),
    "bad backend": (BARO.replace('"hardware"', '"emulated"'), "field backend", "'emulated'"),
    "missing backend": (BARO.replace('backend = "hardware"', ""), "field backend", "missing"),
    "poll_hz zero": (BARO.replace("poll_hz = 10", "poll_hz = 0"), "field poll_hz", "positive"),
    "poll_hz nan": (BARO.replace("poll_hz = 10", "poll_hz = nan"), "field poll_hz", "finite"),
    "poll_hz text": (BARO.replace("poll_hz = 10", 'poll_hz = "fast"'), "field poll_hz", "number"),
    "poll_hz bool": (BARO.replace("poll_hz = 10", "poll_hz = true"), "field poll_hz", "number"),
    "missing poll_hz": (BARO.replace("poll_hz = 10", ""), "field poll_hz", "missing"),
    "missing port": (LIDAR.replace('port = "/dev/ttyAMA0"', ""), "field port", "serial driver"),
    "port not text": (LIDAR.replace('"/dev/ttyAMA0"', "7"), "field port", "string"),
    "port empty": (LIDAR.replace('"/dev/ttyAMA0"', '" "'), "field port", "empty"),
    "baud zero": (LIDAR + "baud = 0\n", "field baud", "positive"),
    "port on i2c": (BARO + 'port = "/dev/ttyS0"\n', "field port", "serial drivers only"),
    "bus on serial": (LIDAR + "bus = 1\n", "field bus", "I2C drivers only"),
    "bad name": (BARO.replace('"baro"', '"Baro-1"'), "field name", "[a-z][a-z0-9_]*"),
    "missing name": (BARO.replace('name = "baro"', ""), "field name", "missing"),
    "unknown option": (BARO + "oversampeling = 4\n", "field oversampeling", "options: "),
    "reserved option": (BARO + 'clock = "wall"\n', "field clock", "not an option"),
    "sim not a table": (BARO + "sim = 3\n", "field sim", "[device.sim]"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_problem_names_the_device_and_field(case: str) -> None:
    text, fieldname, detail = CASES[case]
    problems = problems_of(text)
    assert len(problems) == 1, problems
    assert problems[0].startswith("device[0]")
    assert fieldname in problems[0]
    assert detail in problems[0]


def test_named_device_is_labelled_by_index_and_name() -> None:
    (problem,) = problems_of(BARO.replace("0x76", "0x99"))
    assert problem.startswith("device[0] 'baro': field address: 0x99")


def test_duplicate_name_names_both_entries() -> None:
    twin = BARO.replace("0x76", "0x77")
    (problem,) = problems_of(BARO + twin)
    assert "device[1] 'baro': field name: duplicate" in problem
    assert "device[0]" in problem


def test_duplicate_address_on_one_bus_names_both_entries() -> None:
    other = BARO.replace('"baro"', '"baro2"')
    (problem,) = problems_of(BARO + other)
    assert "device[1] 'baro2': field address: duplicate address 0x76 on bus 1" in problem
    assert "'baro'" in problem


def test_duplicate_port() -> None:
    (problem,) = problems_of(LIDAR + LIDAR.replace('"lidar"', '"radar"'))
    assert "field port: duplicate port '/dev/ttyAMA0'" in problem


def test_duplicates_are_found_even_in_entries_with_other_problems() -> None:
    broken_twin = BARO.replace("poll_hz = 10", "poll_hz = -1")
    problems = problems_of(BARO + broken_twin)
    assert any("field poll_hz" in p for p in problems)
    assert any("duplicate name" in p for p in problems)
    assert any("duplicate address" in p for p in problems)


def test_every_problem_is_reported_in_one_error() -> None:
    text = (
        BARO.replace("0x76", "0x80").replace("poll_hz = 10", "poll_hz = 0")
        + LIDAR.replace('"sim"', '"maybe"')
        + "[[device]]\nname = 'x'\ndriver = 'nope'\nbackend = 'sim'\npoll_hz = 1\n"
    )
    with pytest.raises(DeviceMapError) as info:
        parse(text)
    err = info.value
    assert len(err.problems) == 4
    message = str(err)
    assert message.startswith("device map bench.toml: 4 problems:")
    for fragment in (
        "device[0] 'baro': field address",
        "device[0] 'baro': field poll_hz",
        "device[1] 'lidar': field backend",
        "device[2] 'x': field driver",
    ):
        assert fragment in message
    assert isinstance(err, ConfigError) and isinstance(err, ValueError)


def test_malformed_toml_gives_line_and_column() -> None:
    (problem,) = problems_of('[[device]]\nname = "baro"\naddress = 0x76 0x77\n')
    assert "malformed TOML" in problem
    assert "line 3" in problem and "column" in problem


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("device = 3\n", "'device' must be an array of tables"),
        ("device = [1, 2]\n", "device[0]: must be a table"),
        ("[[devices]]\nname = 'a'\n", "devices are written [[device]]"),
        ("verbose = true\n", "top-level key 'verbose' must be a table"),
        ("bench = 1\n", "'bench' must be a table"),
        ("[bench]\nname = 5\n", "bench: field name"),
    ],
)
def test_structural_problems(text: str, fragment: str) -> None:
    problems = problems_of(text)
    assert any(fragment in p for p in problems), problems


def test_load_reports_missing_and_non_utf8_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"(?s)nope\.toml.*cannot read"):
        load_device_map(missing)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"name = '\xff\xfe'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_device_map(binary)
    good = tmp_path / "good.toml"
    good.write_text(BARO, encoding="utf-8")
    assert load_device_map(good).source == str(good)


# --- nothing but ConfigError, whatever the input --------------------------------------------------
def check_parse_outcome(text: str) -> None:
    try:
        devmap = parse(text)
    except ConfigError as exc:
        assert str(exc).startswith("device map bench.toml:")
        return
    names = devmap.names()
    assert len(names) == len(set(names))
    for spec in devmap.devices:
        if spec.kind is Kind.I2C:
            assert spec.address is not None and 0x03 <= spec.address <= 0x77
            assert spec.bus is not None and spec.bus >= 0
        else:
            assert isinstance(spec.port, str) and spec.baud is not None and spec.baud > 0
        assert spec.poll_hz > 0


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_raises_only_config_error(text: str) -> None:
    check_parse_outcome(text)


_FIELDS = ["name", "driver", "bus", "address", "port", "baud", "backend", "poll_hz", "sim",
           "shunt_ohms", "pwm_hz", "oversampling", "junk"]  # fmt: skip
_scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["baro", "lidar", "bme280", "tfmini", "ina219", "sim", "hardware", "sim://x"]),
    st.text(alphabet=string.ascii_letters + string.digits + "_-/: ", max_size=12),
)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # printable ASCII: JSON's escapes are TOML's


_devices = st.lists(
    st.dictionaries(st.sampled_from(_FIELDS), _scalars, max_size=len(_FIELDS)), max_size=4
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_devices)
def test_arbitrary_device_tables_raise_only_config_error(devices: list[dict[str, object]]) -> None:
    text = "".join(
        "[[device]]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in entry.items())
        for entry in devices
    )
    check_parse_outcome(text)


@settings(max_examples=100, deadline=None)
@given(
    address=st.integers(min_value=0, max_value=0x7F),
    bus=st.integers(min_value=-2, max_value=3),
    poll_hz=st.floats(allow_nan=False, min_value=-10, max_value=1000),
)
def test_i2c_fields_are_accepted_exactly_in_range(address: int, bus: int, poll_hz: float) -> None:
    text = BARO.replace("0x76", hex(address)).replace("bus = 1", f"bus = {bus}")
    text = text.replace("poll_hz = 10", f"poll_hz = {poll_hz!r}")
    valid = 0x03 <= address <= 0x77 and bus >= 0 and poll_hz > 0
    if valid:
        spec = parse(text).devices[0]
        assert (spec.address, spec.bus, spec.poll_hz) == (address, bus, poll_hz)
    else:
        with pytest.raises(DeviceMapError):
            parse(text)


def test_unknown_driver_does_not_hide_a_bad_address() -> None:
    problems = problems_of(BARO.replace("bme280", "bmx999").replace("0x76", "0x99"))
    assert [p.split(":")[1].strip() for p in problems] == ["field driver", "field address"]
