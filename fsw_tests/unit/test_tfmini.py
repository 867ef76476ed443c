"""TFmini Plus driver over the simulated sensor (and a real pty): readings, timeouts, faults."""

from __future__ import annotations

import os
import time

import pytest
import serial

from flight.clock import SimClock, WallClock
from hal.drivers.tfmini import Frame, TFminiPlus, encode_frame
from hal.errors import (
    BusIOError,
    BusTimeoutError,
    ConfigError,
    DeviceIdentityError,
    DeviceStateError,
)
from hal.serialport import SerialPort
from hal.sim import Environment
from hal.sim.serial import SimSerialPort
from hal.sim.tfmini import TFminiModel

GOLDEN = bytes.fromhex("5959f401d007f00876")  # 5.00 m, strength 2000, 30 degC


@pytest.fixture
def rig():
    clock = SimClock()
    env = Environment()
    model = TFminiModel(env, clock=clock)
    port = SerialPort(model, name="sim://tfmini")
    return clock, env, model, port


def make(port, clock, **options):
    return TFminiPlus(port, name="lidar", clock=clock, **options)


# --- the model speaks the datasheet's protocol ---------------------------------------------------
def test_model_first_frame_matches_golden_bytes(rig):
    _clock, _env, model, _port = rig
    assert model.in_waiting == 9
    assert model.read(9) == GOLDEN


def test_model_streams_at_its_frame_rate(rig):
    clock, _env, model, _port = rig
    model.reset_input_buffer()
    clock.advance(0.5)
    assert model.in_waiting == 50 * 9
    assert model.frames_sent == 51


def test_model_buffer_drops_the_oldest_bytes_when_full(rig):
    clock, env, model, port = rig
    env.range_m = 1.0
    clock.advance(3600.0)  # an hour unread: only the newest 4 KiB survive, computed cheaply
    assert model.in_waiting == 4096
    assert model.bytes_dropped > 0
    env.range_m = 2.0
    clock.advance(0.01)
    dev = make(port, clock)
    assert dev.read().distance_m == pytest.approx(2.0)


def test_model_is_a_pyserial_port(rig):
    clock, _env, model, _port = rig
    assert isinstance(model, serial.SerialBase)
    assert model.is_open and model.baudrate == 115200
    model.timeout = 0.05  # a blocking read waits on the simulated clock
    model.reset_input_buffer()
    assert model.read(18) == GOLDEN * 2
    assert clock.monotonic() == pytest.approx(0.02)
    model.close()
    with pytest.raises(serial.PortNotOpenError):
        model.read(1)


def test_closed_model_port_maps_to_bus_io_error(rig):
    clock, _env, model, port = rig
    model.close()
    with pytest.raises(BusIOError, match="sim://tfmini"):
        make(port, clock).read()


def test_faults_are_deterministic_for_a_seed():
    def run(seed):
        clock = SimClock()
        model = TFminiModel(Environment(), clock=clock, seed=seed, range_noise_m=0.02)
        model.garbage(20)
        model.truncate_next(2)
        clock.advance(0.1)
        return model.read(4096)

    assert run(3) == run(3)
    assert run(3) != run(4)


# --- driver: readings -------------------------------------------------------------------------
def test_probe_reports_the_frame_rate(rig):
    clock, _env, _model, port = rig
    assert make(port, clock).probe() == "TFmini Plus frames at 100 Hz"


def test_read_returns_the_latest_frame(rig):
    clock, env, _model, port = rig
    dev = make(port, clock)
    clock.advance(0.05)
    env.range_m, env.range_strength, env.lidar_temperature_c = 3.21, 850, -12.5
    clock.advance(0.01)
    r = dev.read()
    assert (r.distance_m, r.strength, r.temperature_c) == (pytest.approx(3.21), 850, -12.5)
    assert r.frames == 7 and r.checksum_errors == 0 and r.age_s == 0.0


@pytest.mark.parametrize(
    ("range_m", "strength", "options"),
    [
        (None, 2000, {}),  # nothing below
        (12.5, 2000, {}),  # beyond the sensor's range: strength 0
        (5.0, 99, {}),  # too weak
        (5.0, 65535, {}),  # saturated
        (5.0, 250, {"min_strength": 300}),  # below the configured threshold
        (8.0, 2000, {"max_range_m": 6.0}),  # beyond the driver's trusted range
    ],
)
def test_no_valid_return_reads_as_none(rig, range_m, strength, options):
    clock, env, _model, port = rig
    env.range_m, env.range_strength = range_m, strength
    assert make(port, clock, **options).read().distance_m is None


def test_read_before_any_frame_is_a_state_error():
    clock = SimClock()
    model = TFminiModel(Environment(), clock=clock, frame_rate_hz=0)
    with pytest.raises(DeviceStateError, match="no frame"):
        make(SerialPort(model, name="sim://tfmini"), clock).read()


# --- driver: timeouts and faults ----------------------------------------------------------------
def test_dropout_gives_stale_readings_then_a_timeout_naming_the_port(rig):
    clock, _env, model, port = rig
    dev = make(port, clock)
    dev.read()
    model.dropout(1.0)
    clock.advance(0.15)
    assert dev.read().age_s == pytest.approx(0.15)
    clock.advance(0.1)
    with pytest.raises(BusTimeoutError, match="sim://tfmini"):
        dev.read()
    clock.advance(1.0)
    assert dev.read().distance_m == pytest.approx(5.0)


def test_garbage_only_stream_times_out_without_crashing():
    clock = SimClock()
    model = TFminiModel(Environment(), clock=clock, frame_rate_hz=0)
    dev = make(SerialPort(model, name="sim://tfmini"), clock, timeout_s=0.2)
    for _ in range(30):
        model.garbage(50)
        clock.advance(0.01)
        try:
            dev.read()
        except DeviceStateError:
            pass
        except BusTimeoutError as exc:
            assert "bytes skipped" in str(exc)
            break
    else:
        pytest.fail("no timeout on a garbage-only stream")
    assert dev.parser.frames_ok == 0


def test_probe_on_garbage_is_an_identity_error():
    clock = SimClock()
    model = TFminiModel(Environment(), clock=clock, frame_rate_hz=0)
    model.garbage(300)
    with pytest.raises(DeviceIdentityError, match="no valid frame"):
        make(SerialPort(model, name="sim://tfmini"), clock).probe()


def test_probe_on_silence_is_a_timeout():
    clock = SimClock()
    model = TFminiModel(Environment(), clock=clock, frame_rate_hz=0)
    with pytest.raises(BusTimeoutError, match="nothing received"):
        make(SerialPort(model, name="sim://tfmini"), clock).probe()
    assert clock.monotonic() == pytest.approx(0.2)


def test_corrupt_frames_are_counted_and_skipped(rig):
    clock, env, model, port = rig
    dev = make(port, clock)
    dev.read()
    model.corrupt_next(3)
    clock.advance(0.03)
    stale = dev.read()  # only corrupt frames arrived: still the first frame, now 30 ms old
    assert (stale.frames, stale.checksum_errors, stale.age_s) == (1, 3, pytest.approx(0.03))
    env.range_m = 4.0
    clock.advance(0.01)
    r = dev.read()
    assert r.checksum_errors == 3 and r.frames == 2 and r.distance_m == pytest.approx(4.0)


def test_truncated_frames_and_garbage_lose_only_the_damaged_frames(rig):
    clock, _env, model, port = rig
    dev = make(port, clock)
    model.reset_input_buffer()
    model.truncate_next(2, keep=5)
    clock.advance(0.1)
    model.garbage(37)
    clock.advance(0.1)
    r = dev.read()
    # 20 frames sent, 2 cut to 5 bytes: those 10 bytes and the garbage are skipped, no more.
    assert r.frames == 18
    assert dev.parser.bytes_skipped == 37 + 2 * 5
    assert r.distance_m == pytest.approx(5.0)


# --- commands and the long-range extension ----------------------------------------------------
def test_configure_sets_the_frame_rate_by_command(rig):
    clock, _env, model, port = rig
    dev = make(port, clock, frame_rate_hz=50)
    dev.configure()
    assert model.frame_rate_hz == 50
    assert [(cid, payload) for _t, cid, payload in model.commands] == [(0x03, b"\x32\x00")]
    assert dev.probe() == "TFmini Plus frames at 50 Hz"
    assert dev.firmware_version() == "2.0.5"


def test_unanswered_command_times_out():
    clock = SimClock()
    silent = SimSerialPort(clock=clock, name="sim://silent")
    dev = make(SerialPort(silent, name="sim://silent"), clock)
    with pytest.raises(BusTimeoutError, match="0x03"):
        dev.set_frame_rate(10)
    assert silent.host_writes[0][1] == bytes.fromhex("5a06030a006d")


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"max_range_m": 0}, "max_range_m"),
        ({"max_range_m": 20_000.0}, "max_range_m"),  # beyond 655.35 m in cm units
        ({"min_strength": 0}, "min_strength"),
        ({"min_strength": 1.5}, "min_strength"),
        ({"timeout_s": -1}, "timeout_s"),
        ({"distance_unit_cm": 0}, "distance_unit_cm"),
        ({"frame_rate_hz": 300}, "frame_rate_hz"),
    ],
)
def test_bad_options_are_refused_naming_them(rig, options, named):
    clock, _env, _model, port = rig
    with pytest.raises(ConfigError, match=named):
        make(port, clock, **options)


def test_long_range_altimeter_on_the_same_protocol():
    clock, env = SimClock(), Environment(range_m=15_000.4)
    with pytest.raises(ConfigError, match="u16"):
        TFminiModel(env, clock=clock, max_range_m=20_000)
    model = TFminiModel(env, clock=clock, max_range_m=20_000, distance_unit_cm=100)
    dev = make(
        SerialPort(model, name="sim://radalt"), clock, max_range_m=20_000, distance_unit_cm=100
    )
    assert dev.read().distance_m == pytest.approx(15_000.0)
    env.range_m = 25_000.0
    clock.advance(0.01)
    assert dev.read().distance_m is None


# --- a real pty ---------------------------------------------------------------------------------
def test_driver_reads_frames_from_a_real_pty():
    try:
        master, slave = os.openpty()
    except OSError as exc:  # pragma: no cover - no ptys in this sandbox
        pytest.skip(f"no pty: {exc}")
    port = SerialPort.open(os.ttyname(slave), baudrate=115200)
    try:
        dev = make(port, WallClock(), timeout_s=5.0)
        frames = [Frame(100 + i, 1000, 2300) for i in range(10)]
        stream = b"\x59\x00\xff" + b"".join(f.encode() for f in frames[:5])
        stream += bytes(range(0x50, 0x60)) + b"".join(f.encode() for f in frames[5:])
        os.write(master, stream)
        deadline = time.monotonic() + 3.0
        reading = None
        while time.monotonic() < deadline:
            try:
                reading = dev.read()
            except DeviceStateError:
                reading = None
            if reading is not None and reading.frames == len(frames):
                break
            time.sleep(0.01)
        assert reading is not None and reading.frames == len(frames)
        assert reading.distance_m == pytest.approx(1.09)
        assert dev.parser.bytes_skipped >= 3
        assert encode_frame(109, 1000, 2300) == frames[-1].encode()
    finally:
        port.close()
        os.close(slave)
        os.close(master)
