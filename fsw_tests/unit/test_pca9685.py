"""PCA9685 driver and register model: prescale, set-points, mode rules, recorded outputs, faults."""

from __future__ import annotations

import pytest

from flight.clock import SimClock
from hal.drivers.pca9685 import (
    PCA9685,
    REG_ALL_LED_OFF_H,
    REG_LED0_ON_L,
    REG_MODE1,
    REG_PRE_SCALE,
    channel_registers,
    duty_from_registers,
    prescale_for,
    pulse_ticks,
    pwm_hz_for,
)
from hal.errors import ConfigError, DeviceIdentityError, DeviceStateError, NoAckError
from hal.i2c import I2CBus
from hal.sim import BusFault, Environment, SimSMBus
from hal.sim.ina219 import INA219Model
from hal.sim.pca9685 import PCA9685Model

ADDR = 0x40


@pytest.fixture
def rig():
    clock = SimClock()
    smbus = SimSMBus()
    model = smbus.attach(ADDR, PCA9685Model(Environment(), clock=clock))
    bus = I2CBus(smbus, name="i2c-1")
    return clock, smbus, model, bus


@pytest.fixture
def running(rig):
    clock, smbus, model, bus = rig
    dev = PCA9685(bus, name="act", clock=clock)
    dev.configure()
    return dev, model, bus, clock, smbus


def led(channel):
    return REG_LED0_ON_L + 4 * channel


# --- pure conversions -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hz", "prescale"), [(50, 121), (200, 30), (1526, 3), (24, 253), (60, 101)]
)
def test_prescale_follows_the_datasheet_formula(hz, prescale):
    assert prescale_for(hz) == prescale


def test_prescale_reset_value_is_the_nominal_200_hz():
    # 25 MHz / (4096 * 31): the datasheet's "200 Hz" default is 196.9 Hz exactly.
    assert pwm_hz_for(0x1E) == pytest.approx(196.89, abs=0.01)
    assert prescale_for(pwm_hz_for(0x1E)) == 0x1E


@pytest.mark.parametrize(("pulse_us", "ticks"), [(1000, 205), (1500, 307), (2000, 410)])
def test_servo_pulses_at_50_hz(pulse_us, ticks):
    assert pulse_ticks(pulse_us, 50.0) == ticks
    assert pulse_ticks(pulse_us, pwm_hz_for(121)) == ticks


def test_duty_from_registers_full_off_wins_and_counts_wrap():
    assert duty_from_registers(channel_registers(0, 0, full_on=True, full_off=True)) == 0.0
    assert duty_from_registers(channel_registers(0, 0, full_on=True)) == 1.0
    assert duty_from_registers(channel_registers(0, 2048)) == 0.5
    assert duty_from_registers(channel_registers(4000, 100)) == 196 / 4096
    assert duty_from_registers(bytes([0x00, 0x00, 0x00, 0x10])) == 0.0  # power-on state


def test_channel_registers_are_little_endian_with_the_full_bit_in_bit_4():
    assert channel_registers(0x123, 0xABC, full_off=True) == bytes([0x23, 0x01, 0xBC, 0x1A])
    assert channel_registers(0, 0, full_on=True) == bytes([0, 0x10, 0, 0])


# --- options ------------------------------------------------------------------------------------
@pytest.mark.parametrize("pwm_hz", [23, 1527, "50", True, float("inf")])
def test_bad_pwm_frequency_is_refused_naming_the_option(rig, pwm_hz):
    clock, _smbus, _model, bus = rig
    with pytest.raises(ConfigError, match="pwm_hz"):
        PCA9685(bus, name="act", clock=clock, pwm_hz=pwm_hz)


def test_address_outside_the_pca9685_range_is_refused(rig):
    clock, _smbus, _model, bus = rig
    with pytest.raises(ConfigError, match="address"):
        PCA9685(bus, 0x20, name="act", clock=clock)


# --- probe --------------------------------------------------------------------------------------
def test_probe_identifies_a_fresh_chip_by_reset_values(rig):
    clock, _smbus, model, bus = rig
    result = PCA9685(bus, name="act", clock=clock).probe()
    assert "0x11" in result and "asleep" in result
    assert all(t.op == "r" for t in model.history)


def test_probe_identifies_a_configured_chip_without_changing_outputs(running):
    dev, model, _bus, _clock, _smbus = running
    dev.set_duty(2, 0.5)
    changes = len(model.output_history)
    assert "running" in dev.probe()
    assert len(model.output_history) == changes


def test_probe_rejects_another_chip_at_the_address():
    clock, smbus = SimClock(), SimSMBus()
    smbus.attach(ADDR, INA219Model(Environment(), clock=clock))
    with pytest.raises(DeviceIdentityError, match="PCA9685 at i2c-1:0x40"):
        PCA9685(I2CBus(smbus, name="i2c-1"), name="act", clock=clock).probe()


def test_probe_of_an_empty_address_names_part_and_address(rig):
    clock, smbus, _model, bus = rig
    smbus.detach(ADDR)
    with pytest.raises(NoAckError, match=r"PCA9685 at i2c-1:0x40"):
        PCA9685(bus, name="act", clock=clock).probe()


# --- configure ----------------------------------------------------------------------------------
def test_configure_follows_the_sleep_prescale_wake_restart_sequence(running):
    _dev, model, _bus, _clock, _smbus = running
    writes = [t for t in model.history if t.op == "w"]
    assert [(t.register, t.data[0]) for t in writes] == [
        (REG_MODE1, 0x11 | 0x10),  # sleep (already asleep at power-on)
        (REG_PRE_SCALE, 121),
        (REG_MODE1, 0x21),  # awake, auto-increment, ALLCALL kept
        (REG_MODE1, 0xA1),  # RESTART
    ]
    assert writes[3].time - writes[2].time >= 500e-6
    assert model.timing_violations == []
    assert model.regs[REG_PRE_SCALE] == 121
    assert model.pwm_hz == pytest.approx(50.03, abs=0.01)
    assert model.regs[REG_MODE1] == 0x21  # RESTART written while clear has no effect


def test_reconfiguring_a_running_chip_keeps_its_outputs(running):
    dev, model, bus, clock, _smbus = running
    dev.set_duty(4, 0.25)
    PCA9685(bus, name="act", clock=clock, pwm_hz=200).configure()
    assert model.regs[REG_PRE_SCALE] == 30
    assert model.duty(4) == 0.25
    # The outputs went off while asleep and came back at RESTART.
    assert [d for (_t, ch, d) in model.output_history if ch == 4] == [0.25, 0.0, 0.25]
    assert model.timing_violations == []


# --- set-points and read-back -----------------------------------------------------------------
@pytest.mark.parametrize(("pulse_us", "ticks"), [(1000, 205), (1500, 307), (2000, 410)])
def test_servo_pulse_reaches_the_output(running, pulse_us, ticks):
    dev, model, _bus, _clock, _smbus = running
    dev.set_pulse_us(7, pulse_us)
    assert model.duty(7) == ticks / 4096
    assert model.pulse_us(7) == pytest.approx(pulse_us, abs=1e6 / model.pwm_hz / 4096)
    assert dev.channel_duty(7) == ticks / 4096


def test_duty_set_points_and_read_back(running):
    dev, model, _bus, _clock, _smbus = running
    dev.set_duty(0, 0.5)
    dev.set_duty(1, 1.0)
    dev.set_duty(2, 0.0)
    dev.full_on(15)
    reading = dev.read()
    assert reading.pwm_hz == pytest.approx(50.03, abs=0.01)
    assert len(reading.duty) == 16
    assert reading.duty[:3] == (0.5, 1.0, 0.0)
    assert reading.duty[15] == 1.0
    assert [model.duty(n) for n in range(16)] == list(reading.duty)
    assert model.regs[led(1) + 1] == 0x10 and model.regs[led(1) + 3] == 0x00


def test_full_off_after_full_on_turns_the_output_off(running):
    dev, model, _bus, _clock, _smbus = running
    dev.full_on(3)
    dev.full_off(3)
    assert model.duty(3) == 0.0
    assert [(ch, d) for (_t, ch, d) in model.output_history] == [(3, 1.0), (3, 0.0)]


def test_set_all_off_uses_all_led_and_reads_back_zero(running):
    dev, model, bus, _clock, _smbus = running
    for channel in range(16):
        dev.set_duty(channel, 0.1 + channel / 20)
    dev.set_all_off()
    assert all(model.duty(n) == 0.0 for n in range(16))
    assert all(model.regs[led(n) + 3] & 0x10 for n in range(16))
    assert bus.read_u8(ADDR, REG_ALL_LED_OFF_H) == 0  # write-only register
    assert dev.read().duty == (0.0,) * 16


def test_a_channel_write_changes_the_output_once(running):
    dev, model, _bus, _clock, _smbus = running
    dev.set_duty(5, 0.75)
    assert [(ch, d) for (_t, ch, d) in model.output_history] == [(5, 0.75)]


@pytest.mark.parametrize(
    ("call", "args", "match"),
    [
        ("set_duty", (16, 0.5), "channel"),
        ("set_duty", (-1, 0.5), "channel"),
        ("set_duty", (True, 0.5), "channel"),
        ("set_duty", (0, 1.01), "duty"),
        ("set_duty", (0, -0.01), "duty"),
        ("set_duty", (0, float("nan")), "duty"),
        ("set_pulse_us", (0, 20_100.0), "pulse"),
        ("set_pulse_us", (0, -1.0), "pulse"),
        ("full_on", (99,), "channel"),
        ("channel_duty", (16,), "channel"),
    ],
)
def test_invalid_set_points_are_refused_before_touching_the_bus(running, call, args, match):
    dev, model, _bus, _clock, _smbus = running
    transfers = len(model.history)
    with pytest.raises(ConfigError, match=match):
        getattr(dev, call)(*args)
    assert len(model.history) == transfers


def test_set_points_before_configure_are_refused(rig):
    clock, _smbus, model, bus = rig
    with pytest.raises(DeviceStateError, match="configure"):
        PCA9685(bus, name="act", clock=clock).set_duty(0, 0.5)
    assert model.output_history == []


def test_a_chip_reset_is_detected(running):
    dev, model, _bus, _clock, _smbus = running
    dev.set_duty(0, 0.5)
    model.power_on_reset()
    with pytest.raises(DeviceStateError, match="0x11"):
        dev.read()
    dev.reset()
    assert dev.read().duty == (0.0,) * 16


# --- model mode rules ---------------------------------------------------------------------------
def test_prescale_writes_are_ignored_while_awake(running):
    _dev, model, bus, _clock, _smbus = running
    bus.write_u8(ADDR, REG_PRE_SCALE, 30)
    assert model.regs[REG_PRE_SCALE] == 121


def test_prescale_below_three_is_forced_to_three(rig):
    _clock, _smbus, _model, bus = rig
    bus.write_u8(ADDR, REG_PRE_SCALE, 1)  # asleep at power-on: accepted
    assert bus.read_u8(ADDR, REG_PRE_SCALE) == 3


def test_without_auto_increment_a_burst_rewrites_one_register(rig):
    _clock, _smbus, model, bus = rig
    bus.write_block(ADDR, led(0), bytes([1, 2, 3, 4]))
    assert model.regs[led(0)] == 4
    assert model.regs[led(0) + 1 : led(0) + 4] == bytes([0, 0, 0x10])
    assert bus.read_block(ADDR, led(0), 3) == bytes([4, 4, 4])


def test_auto_increment_rolls_from_led15_and_prescale_to_mode1(running):
    _dev, _model, bus, _clock, _smbus = running
    assert bus.read_block(ADDR, led(15) + 2, 3) == bytes([0x00, 0x10, 0x21])
    assert bus.read_block(ADDR, REG_PRE_SCALE, 2) == bytes([121, 0x21])


def test_reserved_bits_read_zero(running):
    _dev, model, bus, _clock, _smbus = running
    bus.write_block(ADDR, led(0), bytes([0xFF, 0xFF, 0xFF, 0xEF]))
    assert bus.read_block(ADDR, led(0), 4) == bytes([0xFF, 0x1F, 0xFF, 0x0F])
    assert model.duty(0) == 1.0  # full on, count bits irrelevant


def test_sleep_turns_outputs_off_and_wake_without_restart_keeps_them_off(running):
    dev, model, bus, clock, _smbus = running
    dev.set_duty(9, 0.5)
    bus.write_u8(ADDR, REG_MODE1, 0x31)  # sleep
    assert model.duty(9) == 0.0
    assert bus.read_u8(ADDR, REG_MODE1) & 0x80  # RESTART armed
    bus.write_u8(ADDR, REG_MODE1, 0x21)  # wake
    clock.advance(0.001)
    assert model.duty(9) == 0.0
    bus.write_u8(ADDR, REG_MODE1, 0xA1)  # RESTART: write 1 to clear, channels resume
    assert model.duty(9) == 0.5
    assert bus.read_u8(ADDR, REG_MODE1) == 0x21


def test_restart_too_soon_after_wake_is_recorded(running):
    dev, model, bus, clock, _smbus = running
    dev.set_duty(0, 0.5)
    bus.write_u8(ADDR, REG_MODE1, 0x31)
    bus.write_u8(ADDR, REG_MODE1, 0x21)
    clock.advance(100e-6)
    bus.write_u8(ADDR, REG_MODE1, 0xA1)
    assert len(model.timing_violations) == 1
    assert "100 us" in model.timing_violations[0]


def test_writing_a_channel_after_wake_clears_restart(running):
    dev, model, bus, clock, _smbus = running
    bus.write_u8(ADDR, REG_MODE1, 0x31)
    bus.write_u8(ADDR, REG_MODE1, 0x21)
    clock.advance(0.001)
    dev.set_duty(1, 0.25)
    assert model.duty(1) == 0.25
    assert not bus.read_u8(ADDR, REG_MODE1) & 0x80


def test_output_history_is_timestamped_by_the_clock(running):
    dev, model, _bus, clock, _smbus = running
    clock.advance(2.0)
    dev.full_on(6)
    clock.advance(0.5)
    dev.full_off(6)
    start = model.output_history[0][0]
    assert [(round(t - start, 6), ch, d) for (t, ch, d) in model.output_history] == [
        (0.0, 6, 1.0),
        (0.5, 6, 0.0),
    ]


# --- bus faults ---------------------------------------------------------------------------------
def test_no_ack_on_a_set_point_names_part_and_address(running):
    dev, _model, _bus, _clock, smbus = running
    smbus.inject(ADDR, BusFault("no_ack"))
    with pytest.raises(NoAckError, match=r"PCA9685 at i2c-1:0x40"):
        dev.set_duty(0, 0.5)
