"""The MPU-6050 driver and conversions, against its simulated chip."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw_tests.chip_rig import ChipRig, make_chip_rig
from hal.drivers import driver_class
from hal.drivers.mpu6050 import (
    MPU6050,
    MPU6050Reading,
    accel_raw_to_mps2,
    gyro_raw_to_dps,
    temperature_raw_to_celsius,
)
from hal.errors import (
    BusTimeoutError,
    ConfigError,
    DeviceIdentityError,
    DeviceStateError,
    NoAckError,
)
from hal.i2c import I2CBus
from hal.sim import STANDARD_GRAVITY, BusFault, SimSMBus, model_class
from hal.sim.lis3mdl import LIS3MDLModel
from hal.sim.mpu6050 import MPU6050Model

ADDRESS = 0x68
G = 9.80665
# Register map sections 4.17 and 4.19: counts per g and per deg/s at each range.
ACCEL_LSB = {2: 16384, 4: 8192, 8: 4096, 16: 2048}
GYRO_LSB = {250: 131.0, 500: 65.5, 1000: 32.8, 2000: 16.4}


Rig = ChipRig[MPU6050Model, MPU6050]


def make_rig() -> Rig:
    return make_chip_rig(MPU6050Model, MPU6050, ADDRESS, "imu")


@pytest.fixture
def rig() -> Rig:
    return make_rig()


def test_registered_names_resolve_to_these_classes():
    assert driver_class("mpu6050") is MPU6050
    assert model_class("mpu6050") is MPU6050Model
    assert MPU6050Model.default_address == ADDRESS


# --- pure conversions ----------------------------------------------------------------------------
@pytest.mark.parametrize("range_g", [2, 4, 8, 16])
def test_one_g_of_counts_is_standard_gravity(range_g):
    assert accel_raw_to_mps2(ACCEL_LSB[range_g], range_g) == pytest.approx(G)
    assert accel_raw_to_mps2(-ACCEL_LSB[range_g], range_g) == pytest.approx(-G)
    assert STANDARD_GRAVITY == G


@pytest.mark.parametrize("range_dps", [250, 500, 1000, 2000])
def test_gyro_counts_per_degree_per_second(range_dps):
    assert gyro_raw_to_dps(round(GYRO_LSB[range_dps] * 10), range_dps) == pytest.approx(10, 1e-3)


def test_temperature_formula():
    assert temperature_raw_to_celsius(0) == pytest.approx(36.53)
    assert temperature_raw_to_celsius(340) == pytest.approx(37.53)
    assert temperature_raw_to_celsius(-3581) == pytest.approx(25.998, abs=1e-3)


# --- identity and reset values -------------------------------------------------------------------
def test_probe_identifies_the_chip(rig):
    assert "0x68" in rig.driver().probe()


def test_probe_of_another_chip_names_part_address_and_value(rig):
    smbus = SimSMBus()
    smbus.attach(ADDRESS, LIS3MDLModel(rig.env, clock=rig.clock))
    drv = MPU6050(I2CBus(smbus, name="i2c-1"), name="imu", clock=rig.clock)
    with pytest.raises(DeviceIdentityError) as err:
        drv.probe()
    assert "MPU6050" in str(err.value) and "0x68" in str(err.value) and "0x00" in str(err.value)


def test_probe_of_an_empty_address_is_no_ack(rig):
    drv = MPU6050(rig.bus, 0x69, name="imu", clock=rig.clock)
    with pytest.raises(NoAckError, match="MPU6050 at i2c-1:0x69"):
        drv.probe()


def test_power_on_values_are_zero_except_sleep_and_who_am_i(rig):
    registers = {reg: rig.raw(reg)[0] for reg in range(0x0D, 0x76)}
    nonzero = {reg: value for reg, value in registers.items() if value}
    assert nonzero == {0x6B: 0x40, 0x75: 0x68}


def test_outputs_read_zero_while_asleep(rig):
    rig.env.acceleration_mps2 = (1.0, 2.0, 3.0)
    rig.env.angular_rate_dps = (10.0, 20.0, 30.0)
    assert rig.raw(0x3B, 14) == bytes(14)


# --- configuration -------------------------------------------------------------------------------
def test_configure_wakes_on_the_gyro_pll_and_sets_ranges(rig):
    rig.driver(accel_range_g=8, gyro_range_dps=1000, dlpf=5, sample_rate_divider=19).configure()
    assert rig.raw(0x6B)[0] == 0x01  # SLEEP clear, CLKSEL = PLL with X gyro
    assert rig.raw(0x19)[0] == 19
    assert rig.raw(0x1A)[0] == 5
    assert rig.raw(0x1B)[0] == 0b10 << 3  # FS_SEL 1000 deg/s
    assert rig.raw(0x1C)[0] == 0b10 << 3  # AFS_SEL 8 g


def test_defaults_suit_edl(rig):
    drv = rig.driver()
    assert (drv.accel_range_g, drv.gyro_range_dps, drv.dlpf) == (16, 500, 3)


def test_read_before_configure_is_a_state_error(rig):
    with pytest.raises(DeviceStateError, match="configure"):
        rig.driver().read()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("accel_range_g", 3),
        ("accel_range_g", 16.0),
        ("gyro_range_dps", 750),
        ("dlpf", 7),
        ("dlpf", True),
        ("sample_rate_divider", 256),
        ("sample_rate_divider", -1),
    ],
)
def test_bad_option_is_a_config_error_naming_it(rig, option, value):
    with pytest.raises(ConfigError, match=option):
        rig.driver(**{option: value})


def test_address_other_than_the_parts_two_is_refused(rig):
    with pytest.raises(ConfigError, match="address"):
        MPU6050(rig.bus, 0x6A, name="imu", clock=rig.clock)


# --- readings ------------------------------------------------------------------------------------
def test_read_matches_the_environment_within_half_a_count(rig):
    rig.env.acceleration_mps2 = (0.5, -1.25, G)
    rig.env.angular_rate_dps = (3.0, -45.5, 120.0)
    rig.env.imu_temperature_c = -5.0
    drv = rig.driver()
    drv.configure()
    reading = drv.read()
    assert isinstance(reading, MPU6050Reading)
    accel = (reading.accel_x_mps2, reading.accel_y_mps2, reading.accel_z_mps2)
    gyro = (reading.gyro_x_dps, reading.gyro_y_dps, reading.gyro_z_dps)
    assert accel == pytest.approx(rig.env.acceleration_mps2, abs=0.5 / 2048 * G)
    assert gyro == pytest.approx(rig.env.angular_rate_dps, abs=0.5 / 65.5)
    assert reading.temperature_c == pytest.approx(-5.0, abs=0.5 / 340)
    assert not reading.saturated


def test_burst_is_big_endian_accel_temp_gyro(rig):
    rig.env.acceleration_mps2 = (G, -G, 0.0)
    rig.env.angular_rate_dps = (1.0, 0.0, -2.0)
    rig.env.imu_temperature_c = 36.53
    rig.driver(accel_range_g=2, gyro_range_dps=250).configure()
    assert rig.raw(0x3B, 14) == struct.pack(">7h", 16384, -16384, 0, 0, 131, 0, -262)


def test_edl_deceleration_saturates_the_2g_range_but_not_16g(rig):
    rig.env.acceleration_mps2 = (0.0, 0.0, 9 * G)
    low = rig.driver(accel_range_g=2)
    low.configure()
    reading = low.read()
    assert reading.saturated
    assert rig.raw(0x3F, 2) == struct.pack(">h", 32767)
    assert reading.accel_z_mps2 == pytest.approx(32767 / 16384 * G)
    rig.env.acceleration_mps2 = (0.0, 0.0, -9 * G)
    assert rig.raw(0x3F, 2) == struct.pack(">h", -32768)
    high = rig.driver(accel_range_g=16)
    high.configure()
    reading = high.read()
    assert not reading.saturated
    assert reading.accel_z_mps2 == pytest.approx(-9 * G, abs=0.5 / 2048 * G)


def test_outputs_are_latched_at_the_start_of_a_read_transaction(rig):
    rig.driver().configure()
    first = rig.raw(0x3B, 14)
    rig.env.acceleration_mps2 = (G, G, G)
    assert bytes(rig.model.regs[0x3B:0x49]) == first  # nothing changes between transactions
    rig.model.history.clear()
    assert rig.raw(0x3B, 14) != first  # the next transaction samples again
    assert [(t.op, len(t.data)) for t in rig.model.history] == [("r", 14)]  # in one burst


@pytest.mark.parametrize(("register", "length"), [(0x75, 1), (0x3A, 1), (0x3B, 14)])
def test_read_only_registers_ignore_writes(rig, register, length):
    rig.driver().configure()
    rig.model.stuck = True  # keep the outputs still so only the write could change them
    before = rig.raw(register, length)
    rig.bus.write_block(ADDRESS, register, bytes([0x5A] * length))
    assert rig.raw(register, length) == before


def test_device_reset_self_clears_and_restores_power_on_values(rig):
    rig.driver(accel_range_g=4).configure()
    rig.bus.write_u8(ADDRESS, 0x6B, 0x80)
    assert rig.raw(0x6B)[0] == 0x40  # DEVICE_RESET reads back clear; SLEEP set again
    assert rig.raw(0x1C)[0] == 0
    assert rig.raw(0x3B, 14) == bytes(14)


def test_driver_reset_waits_then_reconfigures(rig):
    drv = rig.driver()
    drv.configure()
    rig.model.history.clear()
    drv.reset()
    writes = [(t.register, t.data[0]) for t in rig.model.history if t.op == "w"]
    assert writes[0] == (0x6B, 0x80)
    assert rig.clock.monotonic() == pytest.approx(0.1)
    assert drv.read().accel_z_mps2 == pytest.approx(G, abs=0.5 / 2048 * G)


# --- faults --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "error"), [("no_ack", NoAckError), ("timeout", BusTimeoutError)])
def test_bus_fault_names_part_and_address(rig, kind, error):
    drv = rig.driver()
    drv.configure()
    rig.smbus.inject(ADDRESS, BusFault(kind))
    with pytest.raises(error) as err:
        drv.read()
    assert "MPU6050" in str(err.value) and "0x68" in str(err.value)


def test_stuck_chip_stops_updating(rig):
    drv = rig.driver()
    drv.configure()
    before = drv.read()
    rig.model.stuck = True
    rig.env.acceleration_mps2 = (5.0, 5.0, 5.0)
    assert drv.read() == before
    rig.model.stuck = False
    assert drv.read().accel_x_mps2 == pytest.approx(5.0, abs=0.5 / 2048 * G)


# --- property: the forward (model) and inverse (driver) mappings agree ---------------------------
@settings(max_examples=200, deadline=None)
@given(
    accel=st.tuples(*[st.floats(-20 * G, 20 * G)] * 3),
    rate=st.tuples(*[st.floats(-2500.0, 2500.0)] * 3),
    accel_range=st.sampled_from([2, 4, 8, 16]),
    gyro_range=st.sampled_from([250, 500, 1000, 2000]),
)
def test_round_trip_or_saturation(accel, rate, accel_range, gyro_range):
    rig = make_rig()
    rig.env.acceleration_mps2 = accel
    rig.env.angular_rate_dps = rate
    drv = rig.driver(accel_range_g=accel_range, gyro_range_dps=gyro_range)
    drv.configure()
    reading = drv.read()
    got_accel = (reading.accel_x_mps2, reading.accel_y_mps2, reading.accel_z_mps2)
    got_rate = (reading.gyro_x_dps, reading.gyro_y_dps, reading.gyro_z_dps)
    clipped = False
    for want, have, per_unit in [
        *((w, h, ACCEL_LSB[accel_range] / G) for w, h in zip(accel, got_accel, strict=True)),
        *((w, h, GYRO_LSB[gyro_range]) for w, h in zip(rate, got_rate, strict=True)),
    ]:
        counts = want * per_unit
        if -32768 <= counts <= 32766.5:
            assert have == pytest.approx(want, abs=0.5 / per_unit + 1e-12)
        elif abs(counts) > 32768.5:
            clipped = True
            assert have == pytest.approx((32767 if want > 0 else -32768) / per_unit)
    if clipped:
        assert reading.saturated
