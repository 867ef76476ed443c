"""InvenSense MPU-6050 IMU: specific force and angular rate (burn delta-v, EDL deceleration,
touchdown detection).

The chip powers up asleep (PWR_MGMT_1 = 0x40) and reads zeros until woken;
:meth:`MPU6050.configure` clears SLEEP and selects the X gyro PLL as clock source, which the
register map recommends over the internal 8 MHz oscillator for stability. All 14 output bytes
(accel, temperature, gyro; int16 big-endian) are read in one burst so they come from one sample.

EDL deceleration reaches 8-10 g, which is why the default accelerometer range is +-16 g: at +-2 g
the outputs clip, and the reading says ``saturated``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from hal.clock import Clock
from hal.device import I2CDevice, Reading
from hal.errors import ConfigError, DeviceStateError
from hal.i2c import I2CBus

__all__ = [
    "ACCEL_LSB_PER_G",
    "GYRO_LSB_PER_DPS",
    "MPU6050",
    "STANDARD_GRAVITY",
    "MPU6050Reading",
    "accel_raw_to_mps2",
    "gyro_raw_to_dps",
    "temperature_raw_to_celsius",
]

# --- register map (register map document RM-MPU-6000A) -----------------------------------------
REG_SMPLRT_DIV = 0x19
REG_CONFIG = 0x1A  # EXT_SYNC_SET[5:3] DLPF_CFG[2:0]
REG_GYRO_CONFIG = 0x1B  # FS_SEL[4:3]
REG_ACCEL_CONFIG = 0x1C  # AFS_SEL[4:3]
REG_ACCEL_XOUT_H = 0x3B  # 0x3B..0x48: accel xyz, temperature, gyro xyz
REG_PWR_MGMT_1 = 0x6B  # DEVICE_RESET[7] SLEEP[6] CYCLE[5] TEMP_DIS[3] CLKSEL[2:0]
REG_WHO_AM_I = 0x75
OUTPUT_LENGTH = 14

WHO_AM_I_VALUE = 0x68  # also at address 0x69: the register does not reflect AD0
PWR1_DEVICE_RESET = 1 << 7
PWR1_SLEEP = 1 << 6
CLKSEL_PLL_GYRO_X = 0x01

STANDARD_GRAVITY = 9.80665
#: Range -> sensitivity, register map sections 4.17 and 4.19.
ACCEL_LSB_PER_G: dict[int, float] = {2: 16384.0, 4: 8192.0, 8: 4096.0, 16: 2048.0}
GYRO_LSB_PER_DPS: dict[int, float] = {250: 131.0, 500: 65.5, 1000: 32.8, 2000: 16.4}
_ACCEL_CODES = {2: 0, 4: 1, 8: 2, 16: 3}
_GYRO_CODES = {250: 0, 500: 1, 1000: 2, 2000: 3}

#: After DEVICE_RESET the register map asks for 100 ms before the next access. A reset is a rare
#: recovery action, not part of polling, so this one wait is accepted.
RESET_SETTLE_S = 0.1


def accel_raw_to_mps2(raw: int, range_g: int) -> float:
    """Accelerometer count at a range (2, 4, 8, 16 g) -> m/s^2 of specific force.

    Raises:
        KeyError: unknown range.
    """
    return raw / ACCEL_LSB_PER_G[range_g] * STANDARD_GRAVITY


def gyro_raw_to_dps(raw: int, range_dps: int) -> float:
    """Gyro count at a range (250, 500, 1000, 2000 deg/s) -> deg/s.

    Raises:
        KeyError: unknown range.
    """
    return raw / GYRO_LSB_PER_DPS[range_dps]


def temperature_raw_to_celsius(raw: int) -> float:
    """TEMP_OUT -> degC: raw / 340 + 36.53 (register map section 4.18)."""
    return raw / 340.0 + 36.53


@dataclass(frozen=True)
class MPU6050Reading(Reading):
    """One sample: specific force (what an accelerometer measures), rates and die temperature."""

    accel_x_mps2: float
    accel_y_mps2: float
    accel_z_mps2: float
    gyro_x_dps: float
    gyro_y_dps: float
    gyro_z_dps: float
    temperature_c: float
    #: Some accel or gyro axis sits at the int16 limit: the true value may be larger.
    saturated: bool


def _int_choice(where: str, option: str, value: object, allowed: list[int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise ConfigError(f"{where}: {option} must be one of {allowed}, got {value!r}")
    return value


class MPU6050(I2CDevice):
    """An MPU-6050 on an I2C bus.

    Args:
        bus: the shared bus.
        address: 0x68 (AD0 low) or 0x69.
        name: the device's name in the device map.
        clock: for the settle time after a device reset.
        accel_range_g: 2, 4, 8 or 16.
        gyro_range_dps: 250, 500, 1000 or 2000.
        dlpf: digital low-pass filter setting 0..6 (DLPF_CFG; 3 = 44 Hz accel / 42 Hz gyro).
        sample_rate_divider: 0..255; sample rate = gyro output rate / (1 + divider), where the gyro
            output rate is 1 kHz with the filter on (dlpf 1..6) and 8 kHz with it off.

    Raises:
        ConfigError: an option is out of range (the message names it).
    """

    part: ClassVar[str] = "MPU6050"

    def __init__(
        self,
        bus: I2CBus,
        address: int = 0x68,
        *,
        name: str,
        clock: Clock,
        accel_range_g: int = 16,
        gyro_range_dps: int = 500,
        dlpf: int = 3,
        sample_rate_divider: int = 9,
    ) -> None:
        super().__init__(bus, address, name=name, clock=clock)
        where = self.where
        if address not in (0x68, 0x69):
            raise ConfigError(f"{where}: address must be 0x68 or 0x69, got 0x{address:02X}")
        self.accel_range_g = _int_choice(where, "accel_range_g", accel_range_g, list(_ACCEL_CODES))
        self.gyro_range_dps = _int_choice(
            where, "gyro_range_dps", gyro_range_dps, list(_GYRO_CODES)
        )
        self.dlpf = _int_choice(where, "dlpf", dlpf, list(range(7)))
        self.sample_rate_divider = _int_choice(
            where, "sample_rate_divider", sample_rate_divider, list(range(256))
        )
        self._configured = False

    def probe(self) -> str:
        """Read WHO_AM_I (0x75), which is 0x68 at either address.

        Raises:
            DeviceIdentityError: any other value.
            BusError: the chip did not answer.
        """
        who = self._check_id(REG_WHO_AM_I, WHO_AM_I_VALUE)
        return f"MPU6050 (WHO_AM_I 0x{who:02X})"

    def configure(self) -> None:
        """Identify the chip, wake it on the gyro PLL clock, and set ranges, filter and rate.

        Raises:
            DeviceIdentityError: it is not an MPU-6050.
            BusError: a transfer failed.
        """
        self.probe()
        with self.bus.lock:
            self._write_u8(REG_PWR_MGMT_1, CLKSEL_PLL_GYRO_X)  # SLEEP cleared
            self._write_u8(REG_SMPLRT_DIV, self.sample_rate_divider)
            self._write_u8(REG_CONFIG, self.dlpf)
            self._write_u8(REG_GYRO_CONFIG, _GYRO_CODES[self.gyro_range_dps] << 3)
            self._write_u8(REG_ACCEL_CONFIG, _ACCEL_CODES[self.accel_range_g] << 3)
        self._configured = True

    def read(self) -> MPU6050Reading:
        """Accelerations, rates and temperature from one 14-byte burst.

        Raises:
            DeviceStateError: read() before configure().
            BusError: a transfer failed.
        """
        if not self._configured:
            raise DeviceStateError(f"{self.where}: read() before configure()")
        ax, ay, az, temp, gx, gy, gz = struct.unpack(
            ">7h", self._read(REG_ACCEL_XOUT_H, OUTPUT_LENGTH)
        )
        a, g = self.accel_range_g, self.gyro_range_dps
        return MPU6050Reading(
            accel_x_mps2=accel_raw_to_mps2(ax, a),
            accel_y_mps2=accel_raw_to_mps2(ay, a),
            accel_z_mps2=accel_raw_to_mps2(az, a),
            gyro_x_dps=gyro_raw_to_dps(gx, g),
            gyro_y_dps=gyro_raw_to_dps(gy, g),
            gyro_z_dps=gyro_raw_to_dps(gz, g),
            temperature_c=temperature_raw_to_celsius(temp),
            saturated=any(v in (-32768, 32767) for v in (ax, ay, az, gx, gy, gz)),
        )

    def reset(self) -> None:
        """DEVICE_RESET (all registers to power-on values, asleep), wait 100 ms, configure.

        Raises:
            DeviceIdentityError, BusError: as :meth:`configure`.
        """
        self._configured = False
        self._write_u8(REG_PWR_MGMT_1, PWR1_DEVICE_RESET)
        self.clock.sleep(RESET_SETTLE_S)
        self.configure()
