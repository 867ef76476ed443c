"""The LIS3MDL driver and conversions, against its simulated chip."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw_tests.chip_rig import ChipRig, make_chip_rig
from hal.drivers import driver_class
from hal.drivers.lis3mdl import LIS3MDL, LIS3MDLReading, raw_to_celsius, raw_to_tesla
from hal.errors import (
    BusTimeoutError,
    ConfigError,
    DeviceIdentityError,
    DeviceStateError,
    NoAckError,
)
from hal.i2c import I2CBus
from hal.sim import BusFault, SimSMBus, model_class
from hal.sim.bme280 import BME280Model
from hal.sim.lis3mdl import LIS3MDLModel

ADDRESS = 0x1C
# Datasheet table 3: counts per gauss at each full scale.
SENSITIVITY = {4: 6842, 8: 3421, 12: 2281, 16: 1711}


Rig = ChipRig[LIS3MDLModel, LIS3MDL]


def make_rig() -> Rig:
    return make_chip_rig(LIS3MDLModel, LIS3MDL, ADDRESS, "mag")


@pytest.fixture
def rig() -> Rig:
    return make_rig()


def test_registered_names_resolve_to_these_classes():
    assert driver_class("lis3mdl") is LIS3MDL
    assert model_class("lis3mdl") is LIS3MDLModel
    assert LIS3MDLModel.default_address == ADDRESS


# --- pure conversions ----------------------------------------------------------------------------
@pytest.mark.parametrize("full_scale", [4, 8, 12, 16])
def test_one_gauss_of_counts_is_100_microtesla(full_scale):
    assert raw_to_tesla(SENSITIVITY[full_scale], full_scale) == pytest.approx(100e-6)
    assert raw_to_tesla(-SENSITIVITY[full_scale], full_scale) == pytest.approx(-100e-6)


def test_full_scale_counts_cover_the_range():
    # int16 full scale is a little beyond the nominal range at every setting (32767 / 6842 = 4.79).
    for full_scale, sensitivity in SENSITIVITY.items():
        assert raw_to_tesla(32767, full_scale) > full_scale * 1e-4
        assert 32767 / sensitivity < full_scale * 1.25


def test_temperature_is_8_counts_per_degree_from_25():
    assert raw_to_celsius(0) == 25.0
    assert raw_to_celsius(8) == 26.0
    assert raw_to_celsius(-80) == 15.0


# --- identity and reset values -------------------------------------------------------------------
def test_probe_identifies_the_chip(rig):
    assert "0x3D" in rig.driver().probe()


def test_probe_of_another_chip_names_part_address_and_value(rig):
    smbus = SimSMBus()
    smbus.attach(ADDRESS, BME280Model(rig.env, clock=rig.clock))
    drv = LIS3MDL(I2CBus(smbus, name="i2c-1"), name="mag", clock=rig.clock)
    with pytest.raises(DeviceIdentityError) as err:
        drv.probe()
    assert "LIS3MDL" in str(err.value) and "0x1C" in str(err.value) and "0x00" in str(err.value)


def test_power_on_values(rig):
    assert rig.raw(0x0F)[0] == 0x3D
    assert rig.raw(0x20, 5) == bytes([0x10, 0x00, 0x03, 0x00, 0x00])
    assert rig.raw(0x30)[0] == 0xE8


def test_outputs_read_zero_while_powered_down(rig):
    rig.env.magnetic_field_t = (300e-6, -200e-6, 100e-6)
    assert rig.raw(0x28, 8) == bytes(8)


def test_writing_power_down_clears_the_outputs(rig):
    drv = rig.driver()
    drv.configure()
    drv.read()
    assert rig.raw(0x28, 6) != bytes(6)
    rig.bus.write_u8(ADDRESS, 0x22, 0b11)
    assert rig.raw(0x28, 6) == bytes(6)


# --- configuration -------------------------------------------------------------------------------
def test_configure_sets_mode_rate_scale_and_block_update(rig):
    rig.driver(full_scale_gauss=12, data_rate_hz=40, performance="high").configure()
    ctrl1, ctrl2, ctrl3, ctrl4, ctrl5 = rig.raw(0x20, 5)
    assert ctrl1 == 0x80 | (0b10 << 5) | (0b110 << 2)  # TEMP_EN, OM high, DO 40 Hz
    assert ctrl2 == 0b10 << 5  # FS +-12 gauss
    assert ctrl3 & 0b11 == 0b00  # continuous
    assert ctrl4 == 0b10 << 2  # OMZ high
    assert ctrl5 == 0x40  # BDU
    last_write = [t for t in rig.model.history if t.op == "w"][-1]
    assert last_write.register == 0x22  # conversion starts only once everything else is set


def test_read_before_configure_is_a_state_error(rig):
    with pytest.raises(DeviceStateError, match="configure"):
        rig.driver().read()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("full_scale_gauss", 6),
        ("full_scale_gauss", True),
        ("data_rate_hz", 100),
        ("data_rate_hz", "10"),
        ("performance", "turbo"),
        ("temperature", 1),
    ],
)
def test_bad_option_is_a_config_error_naming_it(rig, option, value):
    with pytest.raises(ConfigError, match=option):
        rig.driver(**{option: value})


def test_data_rate_accepts_the_datasheet_values(rig):
    assert rig.driver(data_rate_hz=0.625).data_rate_hz == 0.625
    assert rig.driver(data_rate_hz=80).data_rate_hz == 80.0


def test_address_other_than_the_parts_two_is_refused(rig):
    with pytest.raises(ConfigError, match="address"):
        LIS3MDL(rig.bus, 0x1D, name="mag", clock=rig.clock)


# --- readings ------------------------------------------------------------------------------------
@pytest.mark.parametrize("full_scale", [4, 8, 12, 16])
def test_read_matches_the_environment_within_half_a_count(rig, full_scale):
    rig.env.magnetic_field_t = (20e-6, -7.5e-6, -42e-6)
    rig.env.temperature_c = -10.0
    drv = rig.driver(full_scale_gauss=full_scale)
    drv.configure()
    reading = drv.read()
    assert isinstance(reading, LIS3MDLReading)
    half_count_t = 0.5 / SENSITIVITY[full_scale] * 1e-4
    got = (reading.field_x_t, reading.field_y_t, reading.field_z_t)
    assert got == pytest.approx(rig.env.magnetic_field_t, abs=half_count_t)
    assert reading.temperature_c == pytest.approx(-10.0, abs=1 / 16)
    assert not reading.saturated


def test_temperature_disabled_reads_none(rig):
    drv = rig.driver(temperature=False)
    drv.configure()
    assert drv.read().temperature_c is None
    assert rig.raw(0x2E, 2) == bytes(2)


def test_field_beyond_full_scale_saturates(rig):
    rig.env.magnetic_field_t = (500e-6, -500e-6, 0.0)  # 5 gauss
    drv = rig.driver(full_scale_gauss=4)
    drv.configure()
    reading = drv.read()
    assert reading.saturated
    assert struct.unpack("<hhh", rig.raw(0x28, 6))[:2] == (32767, -32768)
    drv = rig.driver(full_scale_gauss=8)
    drv.configure()
    reading = drv.read()
    assert not reading.saturated
    assert reading.field_x_t == pytest.approx(500e-6, abs=1e-8)


def test_auto_increment_works_with_and_without_bit_7(rig):
    drv = rig.driver()
    drv.configure()
    drv.read()
    assert any(t.register == 0x28 for t in rig.model.history)  # 0xA8 arrived as 0x28
    assert rig.raw(0xA8, 8) == rig.raw(0x28, 8)
    # Little-endian counts of the default field (0.2, 0, -0.42 gauss) at 6842 counts per gauss.
    assert rig.raw(0x28, 6) == struct.pack("<hhh", round(0.2 * 6842), 0, round(-0.42 * 6842))


def test_single_conversion_holds_its_result_and_powers_down(rig):
    rig.bus.write_u8(ADDRESS, 0x22, 0b01)
    assert rig.raw(0x22)[0] & 0b11 == 0b11
    first = rig.raw(0x28, 6)
    assert first != bytes(6)
    rig.env.magnetic_field_t = (0.0, 0.0, 0.0)
    assert rig.raw(0x28, 6) == first


@pytest.mark.parametrize(("register", "length"), [(0x0F, 1), (0x27, 1), (0x28, 8)])
def test_read_only_registers_ignore_writes(rig, register, length):
    before = rig.raw(register, length)
    rig.bus.write_block(ADDRESS, register, bytes([0x5A] * length))
    assert rig.raw(register, length) == before


def test_soft_reset_restores_power_on_values_and_clears_itself(rig):
    drv = rig.driver(full_scale_gauss=16)
    drv.configure()
    rig.bus.write_u8(ADDRESS, 0x21, 0x04)
    assert rig.raw(0x20, 5) == bytes([0x10, 0x00, 0x03, 0x00, 0x00])


def test_driver_reset_soft_resets_then_reconfigures(rig):
    drv = rig.driver(full_scale_gauss=8)
    drv.configure()
    rig.model.history.clear()
    drv.reset()
    writes = [(t.register, t.data[0]) for t in rig.model.history if t.op == "w"]
    assert writes[0] == (0x21, 0x04)
    assert rig.raw(0x21)[0] == 0b01 << 5
    assert drv.read().field_x_t == pytest.approx(rig.env.magnetic_field_t[0], abs=2e-8)


# --- faults --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "error"), [("no_ack", NoAckError), ("timeout", BusTimeoutError)])
def test_bus_fault_names_part_and_address(rig, kind, error):
    drv = rig.driver()
    drv.configure()
    rig.smbus.inject(ADDRESS, BusFault(kind))
    with pytest.raises(error) as err:
        drv.read()
    assert "LIS3MDL" in str(err.value) and "0x1C" in str(err.value)


def test_stuck_chip_stops_updating(rig):
    drv = rig.driver()
    drv.configure()
    before = drv.read()
    rig.model.stuck = True
    rig.env.magnetic_field_t = (-1e-4, 1e-4, 0.0)
    assert drv.read() == before
    rig.model.stuck = False
    assert drv.read().field_x_t == pytest.approx(-1e-4, abs=2e-8)


# --- property: the forward (model) and inverse (driver) mappings agree ---------------------------
@settings(max_examples=200, deadline=None)
@given(
    field=st.tuples(*[st.floats(-2e-3, 2e-3)] * 3),  # +-20 gauss: beyond every full scale
    full_scale=st.sampled_from([4, 8, 12, 16]),
)
def test_round_trip_or_saturation(field, full_scale):
    rig = make_rig()
    rig.env.magnetic_field_t = field
    drv = rig.driver(full_scale_gauss=full_scale)
    drv.configure()
    reading = drv.read()
    got = (reading.field_x_t, reading.field_y_t, reading.field_z_t)
    counts_per_tesla = SENSITIVITY[full_scale] * 1e4
    limit_t = (32767 / counts_per_tesla, -32768 / counts_per_tesla)
    clipped = False
    for want, have in zip(field, got, strict=True):
        if -32768 <= want * counts_per_tesla <= 32767 - 0.5:
            assert have == pytest.approx(want, abs=0.5 / counts_per_tesla + 1e-15)
        elif abs(want * counts_per_tesla) > 32768.5:
            clipped = True
            assert have == pytest.approx(limit_t[0] if want > 0 else limit_t[1])
    if clipped:
        assert reading.saturated
