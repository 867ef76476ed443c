"""INA219 driver and register model: datasheet conversions, calibration, mode rules, bus faults."""

from __future__ import annotations

import pytest

from flight.clock import SimClock
from hal.drivers.ina219 import (
    INA219,
    REG_BUS_VOLTAGE,
    REG_CALIBRATION,
    REG_CONFIG,
    REG_CURRENT,
    REG_POWER,
    REG_SHUNT_VOLTAGE,
    bus_voltage_v,
    calibration_value,
    config_word,
    current_lsb_for,
    pga_bits_for,
    shunt_voltage_v,
)
from hal.errors import (
    BusTimeoutError,
    ConfigError,
    DeviceIdentityError,
    DeviceStateError,
    NoAckError,
)
from hal.i2c import I2CBus
from hal.sim import BusFault, Environment, SimSMBus
from hal.sim.ina219 import INA219Model
from hal.sim.pca9685 import PCA9685Model

ADDR = 0x41


@pytest.fixture
def rig():
    clock = SimClock()
    env = Environment()
    smbus = SimSMBus()
    model = smbus.attach(ADDR, INA219Model(env, clock=clock))
    bus = I2CBus(smbus, name="i2c-1")
    return clock, env, smbus, model, bus


def driver(bus, clock, **options):
    return INA219(bus, name="power", clock=clock, **options)


def write_word(bus, register, value):
    bus.write_block(ADDR, register, bytes([value >> 8, value & 0xFF]))


def read_word(bus, register):
    data = bus.read_block(ADDR, register, 2)
    return (data[0] << 8) | data[1]


# --- pure conversions against datasheet numbers -----------------------------------------------
def test_calibration_matches_the_devices_md_example():
    # 0.1 ohm, 0.1 mA -> Cal 4096, Power_LSB 2 mW
    lsb = current_lsb_for(3.2)
    assert lsb == pytest.approx(100e-6)
    assert calibration_value(lsb, 0.1) == 4096
    assert 20 * lsb == pytest.approx(2e-3)


@pytest.mark.parametrize(
    ("current_lsb", "shunt", "cal"),
    [(40e-6, 0.1, 10240), (50e-6, 0.1, 8192), (100e-6, 0.01, 40960), (1e-3, 0.1, 408)],
)
def test_calibration_truncates_per_datasheet_formula(current_lsb, shunt, cal):
    assert calibration_value(current_lsb, shunt) == cal


@pytest.mark.parametrize(
    ("max_current", "lsb"), [(3.2, 100e-6), (1.0, 50e-6), (0.4, 20e-6), (15.0, 500e-6)]
)
def test_current_lsb_rounds_up_to_a_1_2_5_value(max_current, lsb):
    assert current_lsb_for(max_current) == pytest.approx(lsb)
    assert current_lsb_for(max_current) * 2**15 >= max_current


def test_calibration_that_cannot_fit_the_register_is_refused():
    with pytest.raises(ConfigError, match="calibration"):
        calibration_value(1e-6, 0.1)  # 409600


def test_default_options_reproduce_the_power_on_config():
    # 32 V range, PGA /8 (320 mV), 12-bit ADCs, continuous: exactly the datasheet reset value.
    assert config_word(bus_range_v=32, pga_bits=3, adc_samples=1) == 0x399F
    assert config_word(bus_range_v=16, pga_bits=0, adc_samples=128) == 0x07FF


@pytest.mark.parametrize(("shunt_v", "bits"), [(0.04, 0), (0.041, 1), (0.16, 2), (0.32, 3)])
def test_pga_is_the_smallest_range_covering_the_shunt_voltage(shunt_v, bits):
    assert pga_bits_for(shunt_v) == bits


def test_shunt_voltage_beyond_320_mv_is_refused():
    with pytest.raises(ConfigError, match="320 mV"):
        pga_bits_for(0.33)


def test_register_words_convert_to_volts():
    assert shunt_voltage_v(0x7D00) == pytest.approx(0.32)  # +32000 counts
    assert shunt_voltage_v(0x8300) == pytest.approx(-0.32)  # -32000 counts
    assert shunt_voltage_v(0xFFFF) == pytest.approx(-10e-6)
    assert bus_voltage_v(0x5DC2) == (pytest.approx(12.0), True, False)  # 3000 * 4 mV, CNVR
    assert bus_voltage_v(0x0001)[2] is True


# --- options ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"shunt_ohms": 0}, "shunt_ohms"),
        ({"shunt_ohms": "0.1"}, "shunt_ohms"),
        ({"max_current_a": -1.0}, "max_current_a"),
        ({"max_current_a": float("nan")}, "max_current_a"),
        ({"bus_range_v": 24}, "bus_range_v"),
        ({"adc_samples": 3}, "adc_samples"),
        ({"max_current_a": 10.0}, "320 mV"),
        ({"max_current_a": 0.01}, "calibration"),
    ],
)
def test_bad_options_raise_config_error_naming_them(rig, options, named):
    clock, _env, _smbus, _model, bus = rig
    with pytest.raises(ConfigError, match=named):
        driver(bus, clock, **options)


def test_address_outside_the_ina219_range_is_refused(rig):
    clock, _env, _smbus, _model, bus = rig
    with pytest.raises(ConfigError, match="address"):
        INA219(bus, 0x68, name="power", clock=clock)


# --- probe --------------------------------------------------------------------------------------
def test_probe_accepts_the_power_on_value(rig):
    clock, _env, _smbus, _model, bus = rig
    assert "0x399F" in driver(bus, clock).probe()


def test_probe_accepts_a_device_this_driver_configured_without_resetting_it(rig):
    clock, _env, _smbus, model, bus = rig
    dev = driver(bus, clock, max_current_a=0.4, adc_samples=8)
    dev.configure()
    assert "configured" in dev.probe()
    assert model.word(REG_CALIBRATION) == dev.calibration
    assert all(t.op == "r" for t in list(model.history)[-2:])


def test_probe_rejects_a_foreign_config(rig):
    clock, _env, _smbus, _model, bus = rig
    driver(bus, clock, adc_samples=8).configure()  # someone else's settings
    with pytest.raises(DeviceIdentityError, match="0x41"):
        driver(bus, clock).probe()


def test_probe_rejects_a_different_chip_at_the_address():
    clock, env, smbus = SimClock(), Environment(), SimSMBus()
    smbus.attach(ADDR, PCA9685Model(env, clock=clock))
    with pytest.raises(DeviceIdentityError, match="CONFIG"):
        driver(I2CBus(smbus, name="i2c-1"), clock).probe()


def test_probe_of_an_empty_address_names_part_and_address(rig):
    clock, _env, smbus, _model, bus = rig
    smbus.detach(ADDR)
    with pytest.raises(NoAckError, match=r"INA219 at i2c-1:0x41"):
        driver(bus, clock).probe()


# --- reading against the environment ----------------------------------------------------------
@pytest.mark.parametrize(
    ("volts", "amps"), [(12.0, 0.5), (11.1, -1.234), (0.0, 0.0), (25.996, 3.1999), (5.002, 0.0001)]
)
def test_read_matches_environment_within_quantisation(rig, volts, amps):
    clock, env, _smbus, _model, bus = rig
    dev = driver(bus, clock)
    dev.configure()
    env.bus_voltage_v, env.current_a = volts, amps
    clock.advance(0.01)
    r = dev.read()
    assert r.bus_voltage_v == pytest.approx(volts, abs=2e-3)  # 4 mV LSB
    assert r.shunt_voltage_v == pytest.approx(amps * 0.1, abs=5e-6)  # 10 uV LSB
    assert r.current_a == pytest.approx(amps, abs=100e-6)
    assert r.power_w == pytest.approx(
        abs(volts * amps), abs=2e-3 + 100e-6 * volts + 4e-3 * abs(amps)
    )
    assert r.overflow is False


def test_model_shunt_resistance_is_what_the_driver_must_be_told(rig):
    clock, env, smbus, _model, bus = rig
    smbus.attach(0x44, INA219Model(env, clock=clock, shunt_ohms=0.01))
    dev = INA219(bus, 0x44, name="power", clock=clock, shunt_ohms=0.01, max_current_a=20.0)
    dev.configure()
    env.current_a = 12.5
    clock.advance(0.01)
    assert dev.read().current_a == pytest.approx(12.5, abs=dev.current_lsb_a)


def test_math_overflow_is_reported(rig):
    clock, env, _smbus, _model, bus = rig
    dev = driver(bus, clock, max_current_a=0.2)  # 40 mV range, Cal 40960
    dev.configure()
    env.current_a = 1.0  # shunt saturates at 4000 counts -> 40000 > s16
    clock.advance(0.01)
    r = dev.read()
    assert r.overflow is True
    assert r.shunt_voltage_v == pytest.approx(0.040)


# --- mode rules in the model ------------------------------------------------------------------
def test_calibration_zero_reads_zero_current_and_power(rig):
    clock, env, _smbus, _model, bus = rig
    env.current_a = 2.0
    clock.advance(0.01)
    assert shunt_voltage_v(read_word(bus, REG_SHUNT_VOLTAGE)) == pytest.approx(0.2)
    assert read_word(bus, REG_CURRENT) == 0
    assert read_word(bus, REG_POWER) == 0
    with pytest.raises(DeviceStateError, match="CALIBRATION"):
        driver(bus, clock).read()


def test_a_brownout_reset_is_detected_and_reconfigure_recovers(rig):
    clock, _env, _smbus, model, bus = rig
    dev = driver(bus, clock)
    dev.configure()
    clock.advance(0.01)
    dev.read()
    model.power_on_reset()
    with pytest.raises(DeviceStateError, match="reset"):
        dev.read()
    dev.configure()
    clock.advance(0.01)
    assert dev.read().current_a == pytest.approx(0.5, abs=1e-4)


def test_rst_bit_resets_every_register_and_clears_itself(rig):
    clock, _env, _smbus, _model, bus = rig
    dev = driver(bus, clock, adc_samples=4)
    dev.configure()
    write_word(bus, REG_CONFIG, 0x8000 | dev.config)
    assert read_word(bus, REG_CONFIG) == 0x399F
    assert read_word(bus, REG_CALIBRATION) == 0


def test_driver_reset_leaves_the_chip_configured(rig):
    clock, _env, _smbus, model, bus = rig
    dev = driver(bus, clock, adc_samples=2)
    dev.reset()
    assert model.word(REG_CONFIG) == dev.config
    assert model.word(REG_CALIBRATION) == dev.calibration
    assert model.history[0].data == b"\x80\x00"


def test_data_registers_change_only_when_a_conversion_completes(rig):
    clock, env, _smbus, model, bus = rig
    clock.advance(0.01)
    first = read_word(bus, REG_BUS_VOLTAGE)
    env.bus_voltage_v = 6.0
    assert read_word(bus, REG_BUS_VOLTAGE) >> 3 == first >> 3  # no time passed: same result
    clock.advance(model.conversion_period_s)
    assert bus_voltage_v(read_word(bus, REG_BUS_VOLTAGE))[0] == pytest.approx(6.0)


def test_cnvr_sets_on_conversion_and_clears_on_power_read(rig):
    clock, _env, _smbus, _model, bus = rig
    assert not read_word(bus, REG_BUS_VOLTAGE) & 0b10  # nothing converted yet at power-on
    clock.advance(0.002)
    assert read_word(bus, REG_BUS_VOLTAGE) & 0b10
    read_word(bus, REG_POWER)
    assert not read_word(bus, REG_BUS_VOLTAGE) & 0b10


def test_triggered_mode_converts_once_per_config_write(rig):
    clock, env, _smbus, model, bus = rig
    write_word(bus, REG_CONFIG, 0x399F & ~0b111 | 0b011)  # shunt and bus, triggered
    clock.advance(0.01)
    read_word(bus, REG_BUS_VOLTAGE)
    env.bus_voltage_v = 3.0
    clock.advance(0.01)
    assert bus_voltage_v(read_word(bus, REG_BUS_VOLTAGE))[0] == pytest.approx(12.0)
    assert model.conversions == 1


def test_read_only_registers_ignore_writes_and_cal_bit0_is_void(rig):
    clock, _env, _smbus, _model, bus = rig
    clock.advance(0.01)
    before = read_word(bus, REG_BUS_VOLTAGE)
    write_word(bus, REG_BUS_VOLTAGE, 0x1234)
    assert read_word(bus, REG_BUS_VOLTAGE) == before
    write_word(bus, REG_CALIBRATION, 0x1001)
    assert read_word(bus, REG_CALIBRATION) == 0x1000


# --- bus faults ---------------------------------------------------------------------------------
def test_transient_no_ack_is_retried_by_the_bus(rig):
    clock, _env, smbus, _model, bus = rig
    dev = driver(bus, clock)
    dev.configure()
    clock.advance(0.01)
    smbus.inject(ADDR, BusFault("no_ack", count=1))
    assert dev.read().bus_voltage_v == pytest.approx(12.0)
    assert bus.stats.retries == 1


def test_persistent_faults_map_to_hal_errors_naming_the_device(rig):
    clock, _env, smbus, _model, bus = rig
    dev = driver(bus, clock)
    dev.configure()
    smbus.inject(ADDR, BusFault("no_ack"))
    with pytest.raises(NoAckError, match=r"INA219 at i2c-1:0x41"):
        dev.read()
    smbus.inject(ADDR, BusFault("timeout"))
    with pytest.raises(BusTimeoutError, match="0x41"):
        dev.configure()
