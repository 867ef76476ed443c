"""A register-accurate MPU-6050 IMU, sensing ``env.acceleration_mps2``, ``angular_rate_dps`` and
``imu_temperature_c``.

Rules reproduced from the register map: every register resets to 0 except PWR_MGMT_1 (0x40,
SLEEP) and WHO_AM_I (0x68); outputs read 0 while SLEEP is set; ACCEL_CONFIG AFS_SEL and
GYRO_CONFIG FS_SEL set the counts per unit; outputs are int16 big-endian and saturate at
-32768..32767; DEVICE_RESET restores the power-on values and clears itself; WHO_AM_I, INT_STATUS
and the output registers are read-only. The 14 output bytes are latched at the start of each read
transaction, so a burst is one coherent sample (the real part updates them as a set at the sample
rate).

Modelling choices: the sample-rate divider and DLPF do not shape the output (each read samples the
environment), and TEMP_DIS and the per-axis standby bits are not modelled.
"""

from __future__ import annotations

import struct
from typing import ClassVar

from hal.sim.environment import STANDARD_GRAVITY
from hal.sim.register import RegisterModel

__all__ = ["MPU6050Model"]

GYRO_CONFIG = 0x1B
ACCEL_CONFIG = 0x1C
INT_STATUS = 0x3A
ACCEL_XOUT_H = 0x3B
GYRO_ZOUT_L = 0x48
EXT_SENS_DATA_END = 0x60
PWR_MGMT_1 = 0x6B
WHO_AM_I = 0x75
OUTPUTS = slice(ACCEL_XOUT_H, GYRO_ZOUT_L + 1)

PWR1_DEVICE_RESET = 1 << 7
PWR1_SLEEP = 1 << 6

ACCEL_LSB_PER_G = (16384.0, 8192.0, 4096.0, 2048.0)  # AFS_SEL 0..3
GYRO_LSB_PER_DPS = (131.0, 65.5, 32.8, 16.4)  # FS_SEL 0..3


def _int16(value: float) -> int:
    return max(-32768, min(32767, round(value)))


class MPU6050Model(RegisterModel):
    """The chip; see the module docstring for what is and is not modelled."""

    part: ClassVar[str] = "MPU6050"
    default_address: ClassVar[int] = 0x68
    reset_values: ClassVar[dict[int, int]] = {PWR_MGMT_1: PWR1_SLEEP, WHO_AM_I: 0x68}
    read_only: ClassVar[frozenset[int]] = frozenset(
        [*range(INT_STATUS, EXT_SENS_DATA_END + 1), WHO_AM_I]
    )

    @property
    def asleep(self) -> bool:
        return bool(self.regs[PWR_MGMT_1] & PWR1_SLEEP)

    def on_write(self, register: int, value: int) -> None:
        if register == PWR_MGMT_1 and value & PWR1_DEVICE_RESET:
            self.power_on_reset()  # restores 0x40: DEVICE_RESET reads back 0

    def begin_read(self, register: int) -> None:
        if self.asleep:
            self.regs[OUTPUTS] = bytes(GYRO_ZOUT_L + 1 - ACCEL_XOUT_H)
            return
        accel_lsb = ACCEL_LSB_PER_G[(self.regs[ACCEL_CONFIG] >> 3) & 0b11]
        gyro_lsb = GYRO_LSB_PER_DPS[(self.regs[GYRO_CONFIG] >> 3) & 0b11]
        env = self.env
        accel = [_int16(a / STANDARD_GRAVITY * accel_lsb) for a in env.acceleration_mps2]
        gyro = [_int16(w * gyro_lsb) for w in env.angular_rate_dps]
        temp = _int16((env.imu_temperature_c - 36.53) * 340.0)
        self.regs[OUTPUTS] = struct.pack(">7h", *accel, temp, *gyro)
