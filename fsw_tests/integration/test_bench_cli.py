"""``fsw bench probe`` / ``fsw bench read``: one row per device, honest exit codes, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flight.cli import main
from flight.cli.bench import display_value, format_value, split_unit

REPO = Path(__file__).resolve().parents[2]
SIX = ["baro", "mag", "imu", "power", "pwm", "lidar"]
JSON_KEYS = {"name", "driver", "bus", "address", "port", "backend", "ok", "identity", "error"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["bench", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_map(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bench.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


HALF_BROKEN = """
[bench]
name = "half bench"

[[device]]
name = "baro"
driver = "bme280"
bus = 250
address = 0x76
backend = "hardware"
poll_hz = 10

[[device]]
name = "imu"
driver = "mpu6050"
bus = 1
address = 0x68
backend = "sim"
poll_hz = 100
"""


# --- probe ---------------------------------------------------------------------------------------
def test_probe_sim_json_reports_all_six_devices_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "probe", "--sim", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["name"] for r in rows] == SIX
    for row in rows:
        assert set(row) == JSON_KEYS
        assert row["ok"] is True and row["error"] is None and row["backend"] == "sim"
        assert row["identity"]
    by_name = {r["name"]: r for r in rows}
    assert (by_name["baro"]["bus"], by_name["baro"]["address"]) == (1, 0x76)
    assert (by_name["lidar"]["port"], by_name["lidar"]["address"]) == ("sim://lidar", None)


def test_probe_sim_as_a_subprocess() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "flight", "bench", "probe", "--sim", "--json"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [r["ok"] for r in json.loads(proc.stdout)] == [True] * 6


def test_probe_sim_table_has_a_row_per_device(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "probe", "--sim")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["DEVICE", "DRIVER", "BACKEND", "WHERE", "STATUS"]
    assert [line.split()[0] for line in lines[1:7]] == SIX
    assert all(" OK " in line for line in lines[1:7])
    assert "BME280" in lines[1] and "bus 1 0x76" in lines[1]
    assert lines[-1].startswith("6 of 6 devices OK")


def test_device_on_a_missing_hardware_bus_fails_its_row_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_map(tmp_path, HALF_BROKEN)
    code, out, _ = run(capsys, "probe", "--config", config, "--json")
    assert code == 1
    baro, imu = json.loads(out)
    assert baro["ok"] is False and baro["identity"] is None
    assert "cannot open /dev/i2c-250" in baro["error"]
    assert imu["ok"] is True
    code, out, _ = run(capsys, "probe", "--config", config)
    assert code == 1
    fail = next(line for line in out.splitlines() if line.startswith("baro"))
    assert "FAIL" in fail and "/dev/i2c-250" in fail
    assert out.splitlines()[-1] == "1 of 2 devices OK (half bench)"


def test_serial_device_that_sends_nothing_fails_at_probe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_map(
        tmp_path,
        '[[device]]\nname = "lidar"\ndriver = "tfmini"\nport = "loop://"\n'
        'backend = "hardware"\npoll_hz = 50\n',
    )
    code, out, _ = run(capsys, "probe", "--config", config, "--json")
    (row,) = json.loads(out)
    assert code == 1
    assert row["ok"] is False and row["error"].startswith("probe: ")
    assert "loop://" in row["error"]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[[device]]\nname = 'baro'\ndriver = 'bme281'\n", ["field driver", "bme281", "known:"]),
        ("[[device]\n", ["malformed TOML", "line 1"]),
        (HALF_BROKEN.replace("0x68", "0x76").replace("bus = 250", "bus = 1"),
         ["field address", "duplicate address 0x76"]),
        (HALF_BROKEN + "[[device]]\nname = 'pwm'\ndriver = 'pca9685'\nbus = 1\naddress = 0x40\n"
         "backend = 'sim'\npoll_hz = 5\npwm_hz = 9000\n", ["device 'pwm'", "pwm_hz"]),
    ],
)  # fmt: skip
def test_broken_config_exits_2_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, fragments: list[str]
) -> None:
    config = write_map(tmp_path, text)
    for action in ("probe", "read"):
        code, out, err = run(capsys, action, "--config", config)
        assert code == 2
        assert out == ""
        assert err.startswith(f"fsw bench: device map {config}")
        for fragment in fragments:
            assert fragment in err


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "probe", "--config", str(tmp_path / "nope.toml"))
    assert code == 2
    assert "nope.toml" in err and "cannot read" in err


def test_a_source_is_required_and_only_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bench", "probe"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["bench", "probe", "--sim", "--config", "x.toml"])
    assert "not allowed with" in capsys.readouterr().err


# --- read ----------------------------------------------------------------------------------------
def test_read_sim_prints_values_with_units(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "read", "--sim")
    assert code == 0, err
    for head in SIX:
        assert any(
            line.startswith(f"{head} (") and line.endswith("OK") for line in out.splitlines()
        )
    pressure = next(line for line in out.splitlines() if line.strip().startswith("pressure "))
    value, unit = pressure.split()[-2:]
    assert unit == "Pa" and float(value) == pytest.approx(101_325.0, abs=50)
    for unit in (" °C", " m/s²", " °/s", " V", " A", " W", " µT", " m", " Hz"):
        assert unit in out, unit
    assert "_pa" not in out  # the unit suffix became a unit, not part of the label


def test_read_sim_json_carries_readings_and_units(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "read", "--sim", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == set(SIX)
    baro = rows["baro"]
    assert set(baro) == JSON_KEYS | {"reading", "units"}
    assert baro["reading"]["pressure_pa"] == pytest.approx(101_325.0, abs=50)
    assert baro["units"]["pressure_pa"] == "Pa"
    assert rows["lidar"]["reading"]["distance_m"] == pytest.approx(5.0, abs=0.05)
    assert rows["imu"]["units"]["accel_z_mps2"] == "m/s²"


def test_read_reports_the_failed_device_and_reads_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "read", "--config", write_map(tmp_path, HALF_BROKEN), "--json")
    baro, imu = json.loads(out)
    assert code == 1
    assert baro["ok"] is False and baro["reading"] is None
    assert imu["ok"] is True and imu["reading"]["accel_z_mps2"] == pytest.approx(9.81, abs=0.05)


# --- formatting ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [("pressure_pa", ("pressure", "Pa")), ("temperature_c", ("temperature", "°C")),
     ("accel_z_mps2", ("accel_z", "m/s²")), ("strength", ("strength", "")),
     ("age_s", ("age", "s")), ("_pa", ("_pa", "")), ("field_t", ("field", "T"))],
)  # fmt: skip
def test_split_unit(name: str, expected: tuple[str, str]) -> None:
    assert split_unit(name) == expected


def test_format_value() -> None:
    assert format_value(101325.0, "Pa") == "101325.0 Pa"
    assert format_value(21.5, "°C") == "21.5 °C"
    assert format_value(2e-05, "T") == "2e-05 T"
    assert format_value(True) == "yes"
    assert format_value(None) == "None"
    assert format_value((0.5, 1.0), "m") == "(0.5, 1.0) m"
    assert format_value(float("nan"), "V") == "nan V"
    assert display_value(2e-05, "T") == "20.0 µT"
    assert display_value((2e-05, -4.2e-05), "T") == "(20.0, -42.0) µT"


def test_unit_symbols_do_not_crash_an_ascii_terminal() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run(
        [sys.executable, "-m", "flight", "bench", "read", "--sim"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "temperature  21.0 ?C" in proc.stdout
