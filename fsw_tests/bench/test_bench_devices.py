"""Each part of a wired bench answers as its datasheet says, and the radio carries the link.

Readings are checked for plausibility on a bench at rest, indoors, on Earth: the limits are
physical (the BME280's pressure range, one g on a resting IMU, the geomagnetic field), not copied
from any one run. The PCA9685 test drives channel 15, which the reference wiring leaves free
(the Mars mission uses channels 0-7); nothing should be connected to it. The radio test runs
``fsw run`` on this bench with a throwaway state directory and talks to it with ``fsw ground
--script``: over TCP/UDP as ``[link]`` says, or, for a serial radio, through the ground's own
radio named by a ``[ground]`` table (``port``, ``baud``) in the same file.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

from fsw_tests.run_support import FswProcess, NotifySocket, fsw_cli
from hal.assembly import Bench
from hal.devmap import DeviceMap, DeviceSpec
from hal.errors import DeviceStateError, HALError

pytestmark = pytest.mark.bench

#: The PWM channel the bench test may drive (unused by the reference wiring).
PWM_TEST_CHANNEL = 15


def _devices(bench: Bench, hardware: list[DeviceSpec], driver: str) -> list[object]:
    names = [d.name for d in hardware if d.driver == driver]
    if not names:
        pytest.skip(f"no {driver} on this bench")
    missing = {n: str(bench.failed.get(n, "not built")) for n in names if n not in bench.devices}
    assert not missing, f"{driver} could not be opened: {missing}"
    devices = [bench.devices[n] for n in names]
    for device in devices:
        device.probe()
        device.configure()
    return devices


def _first_reading(device: object, timeout_s: float = 1.0) -> Any:
    """A device's first reading after configure (conversions take a few ms to finish)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return device.read()  # type: ignore[attr-defined]
        except DeviceStateError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def test_every_device_identifies_itself(bench: Bench, hardware: list[DeviceSpec]) -> None:
    problems = {}
    for spec in hardware:
        device = bench.devices.get(spec.name)
        if device is None:
            problems[spec.name] = f"not opened: {bench.failed.get(spec.name)}"
            continue
        try:
            identity = device.probe()
        except Exception as exc:  # report every device, not just the first
            problems[spec.name] = f"{type(exc).__name__}: {exc}"
            continue
        assert identity, f"{spec.name}: probe returned no identity"
    assert not problems, problems


def test_bme280_reads_room_air(bench: Bench, hardware: list[DeviceSpec]) -> None:
    for baro in _devices(bench, hardware, "bme280"):
        reading = _first_reading(baro)
        assert 30_000 <= reading.pressure_pa <= 110_000, reading
        assert -20 <= reading.temperature_c <= 60, reading


def test_mpu6050_at_rest_feels_one_g(bench: Bench, hardware: list[DeviceSpec]) -> None:
    for imu in _devices(bench, hardware, "mpu6050"):
        reading = _first_reading(imu)
        g = math.dist((0, 0, 0), (reading.accel_x_mps2, reading.accel_y_mps2, reading.accel_z_mps2))
        assert 9.8 - 2 <= g <= 9.8 + 2, reading
        assert not reading.saturated


def test_lis3mdl_sees_the_geomagnetic_field(bench: Bench, hardware: list[DeviceSpec]) -> None:
    for mag in _devices(bench, hardware, "lis3mdl"):
        reading = _first_reading(mag)
        field_ut = 1e6 * math.dist(
            (0, 0, 0), (reading.field_x_t, reading.field_y_t, reading.field_z_t)
        )
        assert 20 <= field_ut <= 70, f"|B| = {field_ut:.1f} uT (a magnet or steel nearby?)"


def test_ina219_bus_voltage_in_range(bench: Bench, hardware: list[DeviceSpec]) -> None:
    for power in _devices(bench, hardware, "ina219"):
        reading = _first_reading(power)
        assert 0 <= reading.bus_voltage_v <= 26, reading
        assert not reading.overflow, reading


def test_pca9685_holds_the_duty_it_was_given(bench: Bench, hardware: list[DeviceSpec]) -> None:
    for pwm in _devices(bench, hardware, "pca9685"):
        try:
            for duty in (0.25, 0.075, 0.5):
                pwm.set_duty(PWM_TEST_CHANNEL, duty)  # type: ignore[attr-defined]
                held = pwm.channel_duty(PWM_TEST_CHANNEL)  # type: ignore[attr-defined]
                assert held == pytest.approx(duty, abs=1 / 4096), (duty, held)
        finally:
            pwm.full_off(PWM_TEST_CHANNEL)  # type: ignore[attr-defined]


def test_tfmini_streams_at_least_50_frames_per_second(
    bench: Bench, hardware: list[DeviceSpec]
) -> None:
    for lidar in _devices(bench, hardware, "tfmini"):
        deadline = time.monotonic() + 1.0
        first = None
        while first is None and time.monotonic() < deadline:  # the first frame
            try:
                first = lidar.read()  # type: ignore[attr-defined]
            except HALError:  # no frame yet; the deadline decides
                time.sleep(0.01)
        assert first is not None, "no TFmini frame within 1 s (wiring TX/RX crossed? baud?)"
        start = time.monotonic()
        while time.monotonic() - start < 2.0:
            time.sleep(0.01)
            last = lidar.read()  # type: ignore[attr-defined]
        rate = (last.frames - first.frames) / (time.monotonic() - start)
        assert rate >= 50, f"{rate:.1f} frames/s"
        assert last.checksum_errors - first.checksum_errors <= 0.01 * (last.frames - first.frames)


RADIO_SCRIPT = """\
cmd.PING 42
expect response OK containing "pong 42" within 10
tlm.RATE_SET mars.HK 1.0 CRUISE
expect response OK within 10
expect event tlm.RATE_CHANGED containing mars.HK within 10
expect telemetry mars.state CRUISE within 10
"""


def _ground_link(bench_map: DeviceMap, fsw: FswProcess) -> list[str]:
    link = bench_map.extra["link"]
    transport = link.get("transport")
    if transport == "serial":
        ground = bench_map.extra.get("ground")
        if not isinstance(ground, dict) or "port" not in ground:
            pytest.skip("serial [link]: add a [ground] table with the ground radio's port and baud")
        return ["--serial", f"{ground['port']}:{ground.get('baud', link.get('baud', 57600))}"]
    host, port = fsw.link_address()
    if transport == "udp":
        return ["--udp", f"0:{host}:{port}"]
    return ["--tcp", f"{host}:{port}"]


def test_command_and_telemetry_round_trip_through_the_link(
    tmp_path: Path, bench_map: DeviceMap, bench_config_path: Path
) -> None:
    if "link" not in bench_map.extra:
        pytest.skip("no [link] in the bench config")
    link = bench_map.extra["link"]
    key = Path(link["key_file"])
    key = key if key.is_absolute() else bench_config_path.parent / key
    dictionary = tmp_path / "dict.json"
    assert fsw_cli("dict", "--json", "--out", str(dictionary)).returncode == 0
    script = tmp_path / "radio.fswg"
    script.write_text(RADIO_SCRIPT)
    notify = NotifySocket()
    try:
        # A fresh state directory: the board's real state and anti-replay counter stay untouched.
        with FswProcess(
            bench_config_path,
            notify,
            "--state-dir",
            str(tmp_path / "state"),
            stderr_dir=tmp_path,
        ) as fsw:
            fsw.wait_ready(timeout=30)
            result = fsw_cli(
                "ground",
                "--dict",
                str(dictionary),
                "--key",
                str(key),
                "--counter-file",
                str(tmp_path / "ground.arsn"),
                "--no-color",
                "--connect-timeout",
                "15",
                "--script",
                str(script),
                *_ground_link(bench_map, fsw),
                timeout=120,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert fsw.terminate() == 0, fsw.stderr
    finally:
        notify.close()
