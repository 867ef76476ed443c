"""The BME280 driver against its simulated chip, through the same I2CBus code the board runs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw_tests.chip_rig import ChipRig, make_chip_rig
from hal.drivers import driver_class
from hal.drivers.bme280 import BME280, BME280Reading
from hal.drivers.bme280_compensation import compensate_pressure, compensate_temperature
from hal.errors import (
    BusTimeoutError,
    ConfigError,
    DeviceIdentityError,
    DeviceStateError,
    NoAckError,
)
from hal.i2c import I2CBus
from hal.sim import BusFault, SimSMBus, model_class
from hal.sim.bme280 import DATASHEET_CALIBRATION, BME280Model
from hal.sim.mpu6050 import MPU6050Model

ADDRESS = 0x76
# Largest pressure change per raw count with the model's calibration over -140..187 degC
# (3.6 Pa per 16-count step at x1, at the hot end); the temperature equivalent in degC.
PA_PER_COUNT = 0.23
DEGC_PER_COUNT = 0.00033


Rig = ChipRig[BME280Model, BME280]


def make_rig(**model_options) -> Rig:
    return make_chip_rig(BME280Model, BME280, ADDRESS, "baro", **model_options)


@pytest.fixture
def rig() -> Rig:
    return make_rig()


def test_registered_names_resolve_to_these_classes():
    assert driver_class("bme280") is BME280
    assert model_class("bme280") is BME280Model
    assert BME280Model.default_address == ADDRESS


# --- identity ------------------------------------------------------------------------------------
def test_probe_identifies_a_bme280(rig):
    assert "BME280" in rig.driver().probe()


def test_probe_identifies_a_bmp280_which_reads_no_humidity():
    rig = make_rig(variant="bmp280")
    drv = rig.driver()
    assert "BMP280" in drv.probe()
    drv.configure()
    reading = drv.read()
    assert reading.humidity_pct is None
    assert reading.pressure_pa == pytest.approx(rig.env.pressure_pa, abs=2)
    # A BMP280 has no humidity calibration, so the driver must not read or write those registers.
    touched = {t.register for t in rig.model.history}
    assert not touched & {0xA1, 0xE1, 0xF2}


def test_probe_of_another_chip_names_part_address_and_value(rig):
    smbus = SimSMBus()
    smbus.attach(ADDRESS, MPU6050Model(rig.env, clock=rig.clock))
    drv = BME280(I2CBus(smbus, name="i2c-1"), name="baro", clock=rig.clock)
    with pytest.raises(DeviceIdentityError) as err:
        drv.probe()
    message = str(err.value)
    assert "BME280" in message and "0x76" in message and "read 0x00" in message


# --- configuration -------------------------------------------------------------------------------
def test_configure_writes_config_asleep_and_ctrl_hum_before_ctrl_meas(rig):
    drv = rig.driver(oversampling=4, iir_filter=4, standby_ms=62.5)
    drv.configure()
    writes = [(t.register, t.data[0]) for t in rig.model.history if t.op == "w"]
    osrs = 0b011  # x4
    assert writes == [
        (0xF4, 0x00),  # sleep, so the config write is accepted
        (0xF5, (0b001 << 5) | (0b010 << 2)),  # t_sb 62.5 ms, filter 4
        (0xF2, osrs),
        (0xF4, (osrs << 5) | (osrs << 2) | 0b11),  # normal mode
    ]
    assert rig.model.regs[0xF5] == 0x28  # really taken, not ignored


def test_configure_reads_calibration_blocks(rig):
    rig.driver().configure()
    reads = {(t.register, len(t.data)) for t in rig.model.history if t.op == "r"}
    assert {(0x88, 24), (0xA1, 1), (0xE1, 7)} <= reads


def test_read_before_configure_is_a_state_error(rig):
    with pytest.raises(DeviceStateError, match="configure"):
        rig.driver().read()


def test_blank_calibration_is_refused(rig):
    rig.model.regs[0x88:0xA0] = bytes(24)
    with pytest.raises(DeviceStateError, match="calibration"):
        rig.driver().configure()


def test_calibration_still_loading_is_refused(rig):
    rig.model.regs[0xF3] = 0x01  # im_update
    with pytest.raises(DeviceStateError, match="NVM"):
        rig.driver().configure()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("oversampling", 3),
        ("oversampling", 0),
        ("oversampling", True),
        ("oversampling", "4"),
        ("mode", "turbo"),
        ("mode", 1),
        ("iir_filter", 3),
        ("standby_ms", 10),
    ],
)
def test_bad_option_is_a_config_error_naming_it(rig, option, value):
    with pytest.raises(ConfigError, match=option):
        rig.driver(**{option: value})


def test_address_other_than_the_parts_two_is_refused(rig):
    with pytest.raises(ConfigError, match="address"):
        BME280(rig.bus, 0x40, name="baro", clock=rig.clock)


# --- readings ------------------------------------------------------------------------------------
def test_read_matches_the_environment(rig):
    drv = rig.driver()
    drv.configure()
    reading = drv.read()
    assert isinstance(reading, BME280Reading)
    assert reading.pressure_pa == pytest.approx(rig.env.pressure_pa, abs=16 * PA_PER_COUNT)
    assert reading.temperature_c == pytest.approx(rig.env.temperature_c, abs=0.01)
    assert reading.humidity_pct == pytest.approx(rig.env.humidity_pct, abs=0.02)
    assert not reading.out_of_spec
    assert reading.as_dict().keys() == {
        "pressure_pa",
        "temperature_c",
        "humidity_pct",
        "out_of_spec",
    }


def test_normal_mode_follows_the_environment(rig):
    drv = rig.driver()
    drv.configure()
    rig.env.pressure_pa = 85_000.0
    rig.env.temperature_c = -12.5
    reading = drv.read()
    assert reading.pressure_pa == pytest.approx(85_000.0, abs=16 * PA_PER_COUNT)
    assert reading.temperature_c == pytest.approx(-12.5, abs=0.01)


def test_mars_surface_pressure_is_reported_and_flagged_out_of_spec(rig):
    rig.env.pressure_pa = 600.0
    rig.env.temperature_c = -60.0
    drv = rig.driver()
    drv.configure()
    reading = drv.read()
    assert reading.pressure_pa == pytest.approx(600.0, abs=16 * PA_PER_COUNT)
    assert reading.out_of_spec
    assert not rig.model.clamped  # representable: no clamping was needed


def test_vacuum_reads_near_zero_not_a_wrapped_huge_value(rig):
    rig.env.pressure_pa = 0.0
    drv = rig.driver()
    drv.configure()
    reading = drv.read()
    assert 0.0 <= reading.pressure_pa < 16 * PA_PER_COUNT
    assert reading.out_of_spec


def test_pressure_beyond_the_raw_range_is_clamped_and_flagged(rig):
    rig.env.pressure_pa = 400_000.0
    drv = rig.driver()
    drv.configure()
    reading = drv.read()
    _, t_fine = compensate_temperature(_adc_t(rig), DATASHEET_CALIBRATION)
    ceiling = compensate_pressure(0, t_fine, DATASHEET_CALIBRATION) / 256
    assert rig.model.clamped
    assert reading.pressure_pa == ceiling
    assert reading.out_of_spec


def _adc_t(rig: Rig) -> int:
    data = rig.raw(0xFA, 3)
    return (data[0] << 12) | (data[1] << 4) | (data[2] >> 4)


def test_cold_mars_night_is_out_of_spec_by_temperature(rig):
    rig.env.temperature_c = -80.0
    drv = rig.driver()
    drv.configure()
    reading = drv.read()
    assert reading.temperature_c == pytest.approx(-80.0, abs=0.01)
    assert reading.out_of_spec


def test_oversampling_sets_the_resolution_of_the_raw_values(rig):
    for oversampling, step in ((1, 16), (2, 8), (4, 4), (8, 2)):
        drv = rig.driver(oversampling=oversampling)
        drv.configure()
        drv.read()
        assert _adc_t(rig) % step == 0
    drv = rig.driver(oversampling=16)  # 20-bit: single counts, so odd ones turn up too
    drv.configure()
    parities = set()
    for tenth_mdeg in range(40):  # ~0.3 mdegC per count: this sweep spans about 13 counts
        rig.env.temperature_c = 21.0 + tenth_mdeg * 1e-4
        drv.read()
        parities.add(_adc_t(rig) % 2)
    assert parities == {0, 1}


@settings(max_examples=200, deadline=None)
@given(
    pressure=st.floats(0.0, 110_000.0),
    temperature=st.floats(-120.0, 150.0),
    humidity=st.floats(0.0, 100.0),
    oversampling=st.sampled_from([1, 2, 4, 8, 16]),
)
def test_round_trip_through_model_and_driver(pressure, temperature, humidity, oversampling):
    rig = make_rig()
    rig.env.pressure_pa, rig.env.temperature_c, rig.env.humidity_pct = (
        pressure,
        temperature,
        humidity,
    )
    drv = rig.driver(oversampling=oversampling)
    drv.configure()
    reading = drv.read()
    step = 16 // oversampling
    # Half a raw step of the chosen resolution, plus the output's own rounding; a whole step next
    # to 0 Pa, where the model avoids the raw value that would compensate to below zero.
    half_step = PA_PER_COUNT * step / 2
    tolerance = (2 * half_step if pressure < 2 * half_step else half_step) + 0.01
    assert reading.pressure_pa == pytest.approx(pressure, abs=tolerance)
    # The temperature formula starts with adc_T >> 3, so it resolves 8 counts at best; the output
    # is rounded to 0.01 degC.
    temperature_tolerance = DEGC_PER_COUNT * max(step, 8) / 2 + 0.005 + 1e-9
    assert reading.temperature_c == pytest.approx(temperature, abs=temperature_tolerance)
    assert reading.humidity_pct == pytest.approx(humidity, abs=0.01)
    assert not rig.model.clamped
    assert reading.out_of_spec == (
        not (30_000 <= reading.pressure_pa <= 110_000 and -40 <= reading.temperature_c <= 85)
    )


# --- mode rules of the chip ----------------------------------------------------------------------
def test_config_writes_are_ignored_in_normal_mode(rig):
    rig.bus.write_u8(ADDRESS, 0xF4, 0b001_001_11)  # normal
    rig.bus.write_u8(ADDRESS, 0xF5, 0xA0)
    assert rig.raw(0xF5)[0] == 0x00
    rig.bus.write_u8(ADDRESS, 0xF4, 0b001_001_00)  # sleep
    rig.bus.write_u8(ADDRESS, 0xF5, 0xA0)
    assert rig.raw(0xF5)[0] == 0xA0


def test_ctrl_hum_takes_effect_only_after_a_ctrl_meas_write(rig):
    rig.bus.write_u8(ADDRESS, 0xF4, 0b001_001_11)  # normal, humidity still skipped
    assert rig.raw(0xFD, 2) == b"\x80\x00"
    rig.bus.write_u8(ADDRESS, 0xF2, 0b001)
    assert rig.raw(0xFD, 2) == b"\x80\x00"  # not latched yet
    rig.bus.write_u8(ADDRESS, 0xF4, 0b001_001_11)
    assert rig.raw(0xFD, 2) != b"\x80\x00"


def test_data_registers_reset_to_no_measurement(rig):
    assert rig.raw(0xF7, 8) == bytes([0x80, 0, 0, 0x80, 0, 0, 0x80, 0])


def test_sleep_mode_holds_the_last_conversion(rig):
    drv = rig.driver()
    drv.configure()
    before = drv.read()
    rig.bus.write_u8(ADDRESS, 0xF4, 0b001_001_00)
    rig.env.pressure_pa = 50_000.0
    assert drv.read() == before


def test_skipped_pressure_channel_reads_0x80000(rig):
    rig.bus.write_u8(ADDRESS, 0xF4, 0b001_000_11)  # osrs_p = 0
    data = rig.raw(0xF7, 6)
    assert data[0:3] == b"\x80\x00\x00" and data[3:6] != b"\x80\x00\x00"


@pytest.mark.parametrize(
    ("register", "length"), [(0xD0, 1), (0x88, 24), (0xE1, 7), (0xF3, 1), (0xF7, 8)]
)
def test_read_only_registers_ignore_writes(rig, register, length):
    before = rig.raw(register, length)
    rig.bus.write_block(ADDRESS, register, bytes([0x5A] * length))
    assert rig.raw(register, length) == before


def test_soft_reset_restores_power_on_state(rig):
    drv = rig.driver(oversampling=2)
    drv.configure()
    drv.read()
    rig.bus.write_u8(ADDRESS, 0xE0, 0x12)  # any other value is no reset
    assert rig.raw(0xF4)[0] != 0
    rig.bus.write_u8(ADDRESS, 0xE0, 0xB6)
    assert rig.raw(0xF2, 4) == bytes(4)
    assert rig.raw(0xF7, 8) == bytes([0x80, 0, 0, 0x80, 0, 0, 0x80, 0])
    assert rig.raw(0xE0)[0] == 0  # write-only
    assert rig.raw(0xD0)[0] == 0x60


def test_driver_reset_soft_resets_waits_and_reconfigures(rig):
    drv = rig.driver()
    drv.configure()
    rig.model.history.clear()
    drv.reset()
    writes = [(t.register, t.data[0]) for t in rig.model.history if t.op == "w"]
    assert writes[0] == (0xE0, 0xB6)
    assert rig.clock.monotonic() == pytest.approx(0.002)
    assert rig.raw(0xF4)[0] & 0b11 == 0b11
    assert drv.read().pressure_pa == pytest.approx(rig.env.pressure_pa, abs=16 * PA_PER_COUNT)


# --- forced mode ---------------------------------------------------------------------------------
def test_forced_mode_triggers_one_conversion_per_read(rig):
    drv = rig.driver(mode="forced")
    drv.configure()
    assert rig.raw(0xF4)[0] & 0b11 == 0  # sleeping until asked
    first = drv.read()
    assert first.pressure_pa == pytest.approx(rig.env.pressure_pa, abs=16 * PA_PER_COUNT)
    assert rig.raw(0xF4)[0] & 0b11 == 0  # back to sleep after the conversion
    rig.env.pressure_pa = 70_000.0
    assert drv.read().pressure_pa == pytest.approx(70_000.0, abs=16 * PA_PER_COUNT)
    triggers = [t for t in rig.model.history if t.op == "w" and t.register == 0xF4]
    assert [t.data[0] & 0b11 for t in triggers[-2:]] == [0b01, 0b01]


def test_forced_mode_with_conversion_time_reads_the_result_in_the_next_poll():
    rig = make_rig(measurement_delay=True)
    drv = rig.driver(mode="forced")
    drv.configure()
    rig.env.pressure_pa = 90_000.0
    with pytest.raises(DeviceStateError, match="no completed conversion"):
        drv.read()  # triggered; nothing converted before it
    rig.clock.advance(0.1)
    rig.env.pressure_pa = 80_000.0
    assert drv.read().pressure_pa == pytest.approx(90_000.0, abs=4)  # last poll's trigger
    rig.clock.advance(0.1)
    assert drv.read().pressure_pa == pytest.approx(80_000.0, abs=4)


def test_forced_mode_does_not_retrigger_a_running_conversion():
    rig = make_rig(measurement_delay=True)
    drv = rig.driver(mode="forced")
    drv.configure()
    with pytest.raises(DeviceStateError):
        drv.read()
    with pytest.raises(DeviceStateError):
        drv.read()  # still converting (no time passed): no second trigger
    triggers = [t for t in rig.model.history if t.op == "w" and t.register == 0xF4]
    assert sum(t.data[0] & 0b11 == 0b01 for t in triggers) == 1


# --- faults --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "error"), [("no_ack", NoAckError), ("timeout", BusTimeoutError)])
def test_bus_fault_names_part_and_address(rig, kind, error):
    drv = rig.driver()
    drv.configure()
    rig.smbus.inject(ADDRESS, BusFault(kind))
    with pytest.raises(error) as err:
        drv.read()
    assert "BME280" in str(err.value) and "0x76" in str(err.value)


def test_transient_fault_is_retried_by_the_bus(rig):
    drv = rig.driver()
    drv.configure()
    rig.smbus.inject(ADDRESS, BusFault("no_ack", count=1))
    assert drv.read().pressure_pa == pytest.approx(rig.env.pressure_pa, abs=16 * PA_PER_COUNT)
    assert rig.bus.stats.retries == 1


@pytest.mark.parametrize("mode", ["normal", "forced"])
def test_stuck_chip_stops_updating(rig, mode):
    drv = rig.driver(mode=mode)
    drv.configure()
    before = drv.read()
    rig.model.stuck = True
    rig.env.pressure_pa = 60_000.0
    rig.env.temperature_c = 40.0
    assert drv.read() == before
    rig.model.stuck = False
    assert drv.read().pressure_pa == pytest.approx(60_000.0, abs=16 * PA_PER_COUNT)
