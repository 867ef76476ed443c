"""ST LIS3MDL three-axis magnetometer (magnetic field science).

The chip powers up in power-down (CTRL_REG3 MD = 11); :meth:`LIS3MDL.configure` sets the
operating mode, data rate and full scale, enables block data update (so the low and high bytes of
an axis always come from the same sample) and starts continuous conversion.

Outputs are int16 little-endian. A multi-byte read sets bit 7 of the register address, which is
the datasheet's auto-increment flag on I2C (section 5.1.1); the part also accepts plain addresses
from drivers that do not set it.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import ClassVar

from hal.clock import Clock
from hal.device import I2CDevice, Reading
from hal.errors import ConfigError, DeviceStateError
from hal.i2c import I2CBus

__all__ = [
    "LIS3MDL",
    "SENSITIVITY_LSB_PER_GAUSS",
    "LIS3MDLReading",
    "raw_to_celsius",
    "raw_to_tesla",
]

# --- register map (datasheet table 16) --------------------------------------------------------
REG_WHO_AM_I = 0x0F
REG_CTRL_REG1 = 0x20  # TEMP_EN[7] OM[6:5] DO[4:2] FAST_ODR[1] ST[0]
REG_CTRL_REG2 = 0x21  # FS[6:5] REBOOT[3] SOFT_RST[2]
REG_CTRL_REG3 = 0x22  # LP[5] SIM[2] MD[1:0]
REG_CTRL_REG4 = 0x23  # OMZ[3:2] BLE[1]
REG_CTRL_REG5 = 0x24  # FAST_READ[7] BDU[6]
REG_STATUS = 0x27
REG_OUT_X_L = 0x28  # X, Y, Z int16 LE, then TEMP_OUT_L/H at 0x2E/0x2F
AUTO_INCREMENT = 0x80

WHO_AM_I_VALUE = 0x3D
CTRL1_TEMP_EN = 1 << 7
CTRL2_SOFT_RST = 1 << 2
CTRL5_BDU = 1 << 6
MD_CONTINUOUS = 0b00

#: Full scale in gauss -> (FS field, sensitivity in LSB/gauss), datasheet table 3.
SENSITIVITY_LSB_PER_GAUSS: dict[int, int] = {4: 6842, 8: 3421, 12: 2281, 16: 1711}
_FS_CODES: dict[int, int] = {4: 0b00, 8: 0b01, 12: 0b10, 16: 0b11}
#: Output data rate in Hz -> DO field (FAST_ODR off).
DATA_RATE_CODES: dict[float, int] = {
    0.625: 0b000, 1.25: 0b001, 2.5: 0b010, 5.0: 0b011, 10.0: 0b100, 20.0: 0b101, 40.0: 0b110,
    80.0: 0b111,
}  # fmt: skip
#: Operating mode -> OM (X, Y) and OMZ (Z) field: more power buys less noise.
PERFORMANCE_CODES: dict[str, int] = {"low_power": 0b00, "medium": 0b01, "high": 0b10,
                                     "ultra_high": 0b11}  # fmt: skip

TESLA_PER_GAUSS = 1e-4
TEMPERATURE_LSB_PER_C = 8.0
TEMPERATURE_OFFSET_C = 25.0  # TEMP_OUT reads 0 at 25 degC

#: Soft-reset settle time: not specified by the datasheet; a few register-load cycles.
RESET_SETTLE_S = 0.001


def raw_to_tesla(raw: int, full_scale_gauss: int) -> float:
    """An output count (int16) at a full scale -> tesla.

    Raises:
        KeyError: ``full_scale_gauss`` is not 4, 8, 12 or 16.
    """
    return raw / SENSITIVITY_LSB_PER_GAUSS[full_scale_gauss] * TESLA_PER_GAUSS


def raw_to_celsius(raw: int) -> float:
    """TEMP_OUT (int16, 8 LSB/degC, 0 at 25 degC) -> degC."""
    return raw / TEMPERATURE_LSB_PER_C + TEMPERATURE_OFFSET_C


@dataclass(frozen=True)
class LIS3MDLReading(Reading):
    """One sample. ``temperature_c`` is None when the temperature sensor is disabled."""

    field_x_t: float
    field_y_t: float
    field_z_t: float
    temperature_c: float | None
    #: An axis is at the int16 limit: the field exceeds the full scale and the value is clipped.
    saturated: bool


class LIS3MDL(I2CDevice):
    """A LIS3MDL on an I2C bus.

    Args:
        bus: the shared bus.
        address: 0x1C (SDO/SA1 low) or 0x1E.
        name: the device's name in the device map.
        clock: for the settle time after a soft reset.
        full_scale_gauss: 4, 8, 12 or 16.
        data_rate_hz: 0.625, 1.25, 2.5, 5, 10, 20, 40 or 80.
        performance: ``"low_power"``, ``"medium"``, ``"high"`` or ``"ultra_high"`` (all axes).
        temperature: enable the die temperature sensor.

    Raises:
        ConfigError: an option is out of range (the message names it).
    """

    part: ClassVar[str] = "LIS3MDL"

    def __init__(
        self,
        bus: I2CBus,
        address: int = 0x1C,
        *,
        name: str,
        clock: Clock,
        full_scale_gauss: int = 4,
        data_rate_hz: float = 10.0,
        performance: str = "high",
        temperature: bool = True,
    ) -> None:
        super().__init__(bus, address, name=name, clock=clock)
        where = self.where
        if address not in (0x1C, 0x1E):
            raise ConfigError(f"{where}: address must be 0x1C or 0x1E, got 0x{address:02X}")
        if not _is_number(full_scale_gauss) or full_scale_gauss not in _FS_CODES:
            raise ConfigError(
                f"{where}: full_scale_gauss must be one of {list(_FS_CODES)}, "
                f"got {full_scale_gauss!r}"
            )
        rate = next(
            (
                r
                for r in DATA_RATE_CODES
                if _is_number(data_rate_hz) and math.isclose(r, data_rate_hz)
            ),
            None,
        )
        if rate is None:
            raise ConfigError(
                f"{where}: data_rate_hz must be one of {list(DATA_RATE_CODES)}, "
                f"got {data_rate_hz!r}"
            )
        if not isinstance(performance, str) or performance not in PERFORMANCE_CODES:
            raise ConfigError(
                f"{where}: performance must be one of {list(PERFORMANCE_CODES)}, "
                f"got {performance!r}"
            )
        if not isinstance(temperature, bool):
            raise ConfigError(f"{where}: temperature must be true or false, got {temperature!r}")
        self.full_scale_gauss = full_scale_gauss
        self.data_rate_hz = rate
        self.performance = performance
        self.temperature = temperature
        self._configured = False

    def probe(self) -> str:
        """Read WHO_AM_I (0x0F), which is 0x3D on every LIS3MDL.

        Raises:
            DeviceIdentityError: any other value.
            BusError: the chip did not answer.
        """
        who = self._check_id(REG_WHO_AM_I, WHO_AM_I_VALUE)
        return f"LIS3MDL (WHO_AM_I 0x{who:02X})"

    def configure(self) -> None:
        """Identify the chip and start continuous conversion with the configured options.

        Raises:
            DeviceIdentityError: it is not a LIS3MDL.
            BusError: a transfer failed.
        """
        self.probe()
        om = PERFORMANCE_CODES[self.performance]
        ctrl1 = (om << 5) | (DATA_RATE_CODES[self.data_rate_hz] << 2)
        if self.temperature:
            ctrl1 |= CTRL1_TEMP_EN
        with self.bus.lock:
            self._write_u8(REG_CTRL_REG1, ctrl1)
            self._write_u8(REG_CTRL_REG2, _FS_CODES[self.full_scale_gauss] << 5)
            self._write_u8(REG_CTRL_REG4, om << 2)
            self._write_u8(REG_CTRL_REG5, CTRL5_BDU)
            # Last: conversions start only once scale and rate are set.
            self._write_u8(REG_CTRL_REG3, MD_CONTINUOUS)
        self._configured = True

    def read(self) -> LIS3MDLReading:
        """The three field components (and the die temperature) from one burst.

        Raises:
            DeviceStateError: read() before configure().
            BusError: a transfer failed.
        """
        if not self._configured:
            raise DeviceStateError(f"{self.where}: read() before configure()")
        length = 8 if self.temperature else 6
        data = self._read(REG_OUT_X_L | AUTO_INCREMENT, length)
        x, y, z = struct.unpack_from("<hhh", data, 0)
        temperature = (
            raw_to_celsius(struct.unpack_from("<h", data, 6)[0]) if self.temperature else None
        )
        fs = self.full_scale_gauss
        return LIS3MDLReading(
            field_x_t=raw_to_tesla(x, fs),
            field_y_t=raw_to_tesla(y, fs),
            field_z_t=raw_to_tesla(z, fs),
            temperature_c=temperature,
            saturated=any(v in (-32768, 32767) for v in (x, y, z)),
        )

    def reset(self) -> None:
        """Soft reset (CTRL_REG2 SOFT_RST: registers back to power-on values), then configure.

        Raises:
            DeviceIdentityError, BusError: as :meth:`configure`.
        """
        self._configured = False
        self._write_u8(REG_CTRL_REG2, CTRL2_SOFT_RST)
        self.clock.sleep(RESET_SETTLE_S)
        self.configure()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
