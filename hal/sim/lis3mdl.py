"""A register-accurate LIS3MDL magnetometer, sensing ``env.magnetic_field_t``.

Rules reproduced from the datasheet: power-on values (CTRL_REG1 0x10, CTRL_REG3 0x03 power-down,
INT_CFG 0xE8, WHO_AM_I 0x3D); read-only identity, status and output registers; the full scale in
CTRL_REG2 sets the counts per gauss; outputs saturate at the int16 limits; SOFT_RST restores the
power-on values and clears itself; single-conversion mode (MD = 01) converts once and drops to
power-down. Bit 7 of the register address (the auto-increment flag) is accepted and stripped, and
bursts auto-increment with or without it, because drivers differ.

Modelling choices: in continuous mode every read transaction samples the environment (the output
data rate does not gate updates); the whole output block is latched at the start of the
transaction, which is what BDU guarantees on the real part. Writing a power-down mode clears the
outputs, so a powered-down chip reads 0. The die temperature follows ``env.temperature_c`` (the
magnetometer shares the ambient of the instrument deck) and updates only while TEMP_EN is set.
"""

from __future__ import annotations

from typing import ClassVar

from hal.sim.register import RegisterModel

__all__ = ["LIS3MDLModel"]

WHO_AM_I = 0x0F
CTRL_REG1 = 0x20
CTRL_REG2 = 0x21
CTRL_REG3 = 0x22
STATUS_REG = 0x27
OUT_X_L = 0x28
TEMP_OUT_L = 0x2E
INT_CFG = 0x30
INT_SRC = 0x31
OUTPUTS = slice(OUT_X_L, TEMP_OUT_L + 2)

CTRL1_TEMP_EN = 1 << 7
CTRL2_REBOOT = 1 << 3
CTRL2_SOFT_RST = 1 << 2
MD_CONTINUOUS = 0b00
MD_SINGLE = 0b01
MD_POWER_DOWN = 0b11
STATUS_XYZ_NEW = 0x0F  # ZYXDA | ZDA | YDA | XDA

SENSITIVITY_LSB_PER_GAUSS = (6842, 3421, 2281, 1711)  # FS = 00, 01, 10, 11
GAUSS_PER_TESLA = 1e4


def _int16(value: float) -> int:
    return max(-32768, min(32767, round(value)))


class LIS3MDLModel(RegisterModel):
    """The chip; see the module docstring for what is and is not modelled."""

    part: ClassVar[str] = "LIS3MDL"
    default_address: ClassVar[int] = 0x1C
    reset_values: ClassVar[dict[int, int]] = {
        CTRL_REG1: 0x10,
        CTRL_REG3: 0x03,
        INT_CFG: 0xE8,
        WHO_AM_I: 0x3D,
    }
    read_only: ClassVar[frozenset[int]] = frozenset(
        [WHO_AM_I, STATUS_REG, *range(OUT_X_L, TEMP_OUT_L + 2), INT_SRC]
    )

    def register_for(self, register: int) -> int:
        return register & 0x7F

    @property
    def operating_mode(self) -> int:
        """CTRL_REG3 MD: 00 continuous, 01 single, 10/11 power-down."""
        return self.regs[CTRL_REG3] & 0b11

    @property
    def full_scale_code(self) -> int:
        return (self.regs[CTRL_REG2] >> 5) & 0b11

    def on_write(self, register: int, value: int) -> None:
        if register == CTRL_REG2:
            if value & CTRL2_SOFT_RST:
                self.power_on_reset()
            elif value & CTRL2_REBOOT:
                # Reboot reloads trimming from NVM: nothing the model holds; the bit self-clears.
                self.regs[CTRL_REG2] &= ~CTRL2_REBOOT & 0xFF
        elif register == CTRL_REG3:
            mode = value & 0b11
            if mode == MD_SINGLE:
                if not self.stuck:
                    self._sample()
                self.regs[CTRL_REG3] |= MD_POWER_DOWN
            elif mode != MD_CONTINUOUS:
                self.regs[OUTPUTS] = bytes(TEMP_OUT_L + 2 - OUT_X_L)
                self.regs[STATUS_REG] = 0

    def begin_read(self, register: int) -> None:
        if self.operating_mode == MD_CONTINUOUS:
            self._sample()

    def _sample(self) -> None:
        sensitivity = SENSITIVITY_LSB_PER_GAUSS[self.full_scale_code]
        for i, tesla in enumerate(self.env.magnetic_field_t):
            raw = _int16(tesla * GAUSS_PER_TESLA * sensitivity)
            self.set_u16_le(OUT_X_L + 2 * i, raw)
        if self.regs[CTRL_REG1] & CTRL1_TEMP_EN:
            self.set_u16_le(TEMP_OUT_L, _int16((self.env.temperature_c - 25.0) * 8.0))
        self.regs[STATUS_REG] = STATUS_XYZ_NEW
