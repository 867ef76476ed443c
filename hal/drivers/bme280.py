"""Bosch BME280 (and BMP280) barometer: pressure, temperature and humidity.

Used for atmosphere science and as an EDL backup altimeter. The compensation arithmetic lives in
:mod:`hal.drivers.bme280_compensation`; this module talks to the chip.

Register rules the driver follows (datasheet section 5):

* ``config`` (0xF5) writes may be ignored in normal mode, so :meth:`BME280.configure` puts the chip
  to sleep before writing it.
* ``ctrl_hum`` (0xF2) only takes effect on the next write to ``ctrl_meas`` (0xF4), so it is
  written first.
* Data registers 0xF7..0xFE are read in one burst: the chip shadows them during a burst, so
  temperature, pressure and humidity come from the same conversion.

The part is specified for 300..1100 hPa and -40..85 degC. Outside that (Mars ambient is ~6 hPa) it
still reports what its formulas give, and the reading says ``out_of_spec``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from hal.clock import Clock
from hal.device import I2CDevice, Reading
from hal.drivers.bme280_compensation import (
    Calibration,
    HumidityCalibration,
    compensate_humidity,
    compensate_pressure,
    compensate_temperature,
    parse_calibration,
    parse_humidity_calibration,
)
from hal.errors import ConfigError, DeviceIdentityError, DeviceStateError
from hal.i2c import I2CBus

__all__ = ["BME280", "BME280Reading"]

_log = logging.getLogger(__name__)

# --- register map (BME280 datasheet table 18) -------------------------------------------------
REG_CALIB_TP = 0x88  # 0x88..0x9F: T1..T3, P1..P9
CALIB_TP_LENGTH = 24
REG_CALIB_H1 = 0xA1
REG_CHIP_ID = 0xD0
REG_RESET = 0xE0
REG_CALIB_H2 = 0xE1  # 0xE1..0xE7: H2..H6
CALIB_H_LENGTH = 7
REG_CTRL_HUM = 0xF2
REG_STATUS = 0xF3
REG_CTRL_MEAS = 0xF4
REG_CONFIG = 0xF5
REG_PRESS_MSB = 0xF7  # press msb/lsb/xlsb, temp msb/lsb/xlsb, hum msb/lsb

CHIP_ID_BME280 = 0x60
CHIP_ID_BMP280 = 0x58
RESET_COMMAND = 0xB6

STATUS_MEASURING = 1 << 3
STATUS_IM_UPDATE = 1 << 0  # NVM calibration being copied: calibration registers not valid yet

MODE_SLEEP = 0b00
MODE_FORCED = 0b01
MODE_NORMAL = 0b11

#: Value of a 20-bit data register that holds no measurement (reset value, or skipped channel).
ADC_SKIPPED = 0x80000

#: Oversampling factor -> osrs_x field.
OVERSAMPLING_CODES: dict[int, int] = {1: 0b001, 2: 0b010, 4: 0b011, 8: 0b100, 16: 0b101}
#: IIR filter coefficient (0 = off) -> config.filter field.
FILTER_CODES: dict[int, int] = {0: 0b000, 2: 0b001, 4: 0b010, 8: 0b011, 16: 0b100}
#: Normal-mode standby in ms -> config.t_sb. Only the codes BME280 and BMP280 share (codes 6 and 7
#: mean 10/20 ms on the BME280 but 2000/4000 ms on the BMP280).
STANDBY_CODES: dict[float, int] = {0.5: 0, 62.5: 1, 125.0: 2, 250.0: 3, 500.0: 4, 1000.0: 5}

SPEC_PRESSURE_PA = (30_000.0, 110_000.0)
SPEC_TEMPERATURE_C = (-40.0, 85.0)

#: Start-up time after power-on or soft reset (datasheet table 1: 2 ms).
RESET_SETTLE_S = 0.002

MODES = ("normal", "forced")


@dataclass(frozen=True)
class BME280Reading(Reading):
    """One conversion. ``humidity_pct`` is None on a BMP280, which has no humidity sensor."""

    pressure_pa: float
    temperature_c: float
    humidity_pct: float | None
    #: Pressure or temperature outside the part's specified range: the value is what the
    #: calibration formulas give, not a guaranteed measurement.
    out_of_spec: bool


def _choice(where: str, option: str, value: object, allowed: list[int] | list[float]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value not in allowed:
        raise ConfigError(f"{where}: {option} must be one of {allowed}, got {value!r}")


class BME280(I2CDevice):
    """A BME280 (or BMP280) on an I2C bus.

    Args:
        bus: the shared bus.
        address: 0x76 (SDO low) or 0x77.
        name: the device's name in the device map.
        clock: for the 2 ms start-up after a soft reset.
        oversampling: 1, 2, 4, 8 or 16, applied to temperature, pressure and humidity.
        mode: ``"normal"`` (the chip converts continuously; each read takes the latest) or
            ``"forced"`` (each read triggers one conversion; the chip sleeps in between).
        iir_filter: IIR filter coefficient 0 (off), 2, 4, 8 or 16.
        standby_ms: normal-mode pause between conversions: 0.5, 62.5, 125, 250, 500 or 1000.

    Raises:
        ConfigError: an option is out of range (the message names it).
    """

    part: ClassVar[str] = "BME280"

    def __init__(
        self,
        bus: I2CBus,
        address: int = 0x76,
        *,
        name: str,
        clock: Clock,
        oversampling: int = 1,
        mode: str = "normal",
        iir_filter: int = 0,
        standby_ms: float = 0.5,
    ) -> None:
        super().__init__(bus, address, name=name, clock=clock)
        where = self.where
        if address not in (0x76, 0x77):
            raise ConfigError(f"{where}: address must be 0x76 or 0x77, got 0x{address:02X}")
        _choice(where, "oversampling", oversampling, list(OVERSAMPLING_CODES))
        _choice(where, "iir_filter", iir_filter, list(FILTER_CODES))
        _choice(where, "standby_ms", standby_ms, list(STANDBY_CODES))
        if not isinstance(mode, str) or mode not in MODES:
            raise ConfigError(f"{where}: mode must be one of {list(MODES)}, got {mode!r}")
        self.oversampling = oversampling
        self.mode = mode
        self.iir_filter = iir_filter
        self.standby_ms = float(standby_ms)
        self.chip_id: int | None = None
        self._cal: Calibration | None = None
        self._hum_cal: HumidityCalibration | None = None

    @property
    def has_humidity(self) -> bool:
        """True once probed as a BME280 (a BMP280 has no humidity sensor)."""
        return self.chip_id == CHIP_ID_BME280

    def probe(self) -> str:
        """Read the chip id (0xD0): 0x60 is a BME280, 0x58 a BMP280.

        Raises:
            DeviceIdentityError: any other id.
            BusError: the chip did not answer.
        """
        chip_id = self._read_u8(REG_CHIP_ID)
        if chip_id == CHIP_ID_BME280:
            self.chip_id = chip_id
            return f"BME280 (chip id 0x{chip_id:02X})"
        if chip_id == CHIP_ID_BMP280:
            self.chip_id = chip_id
            return f"BMP280 (chip id 0x{chip_id:02X}; no humidity)"
        raise DeviceIdentityError(
            f"{self.where}: chip id register 0x{REG_CHIP_ID:02X} read 0x{chip_id:02X}, expected "
            f"0x{CHIP_ID_BME280:02X} (BME280) or 0x{CHIP_ID_BMP280:02X} (BMP280)"
        )

    def configure(self) -> None:
        """Identify the chip, read its calibration and start it in the configured mode.

        Raises:
            DeviceIdentityError: it is not a BME280/BMP280.
            DeviceStateError: the calibration is still being loaded or reads as blank.
            BusError: a transfer failed.
        """
        self.probe()
        with self.bus.lock:
            if self._read_u8(REG_STATUS) & STATUS_IM_UPDATE:
                raise DeviceStateError(f"{self.where}: calibration NVM copy still in progress")
            self._read_calibration()
            osrs = OVERSAMPLING_CODES[self.oversampling]
            # Sleep first: config writes in normal mode may be ignored (datasheet 5.4.6).
            self._write_u8(REG_CTRL_MEAS, MODE_SLEEP)
            t_sb = STANDBY_CODES[self.standby_ms]
            self._write_u8(REG_CONFIG, (t_sb << 5) | (FILTER_CODES[self.iir_filter] << 2))
            if self.has_humidity:
                # ctrl_hum latches only on the following ctrl_meas write.
                self._write_u8(REG_CTRL_HUM, osrs)
            mode = MODE_NORMAL if self.mode == "normal" else MODE_SLEEP
            self._write_u8(REG_CTRL_MEAS, self._ctrl_meas(mode))

    def _ctrl_meas(self, mode: int) -> int:
        osrs = OVERSAMPLING_CODES[self.oversampling]
        return (osrs << 5) | (osrs << 2) | mode

    def _read_calibration(self) -> None:
        block = self._read(REG_CALIB_TP, CALIB_TP_LENGTH)
        blank = (bytes(CALIB_TP_LENGTH), b"\xff" * CALIB_TP_LENGTH)
        cal = parse_calibration(block)
        if block in blank or cal.t1 == 0 or cal.p1 == 0:
            raise DeviceStateError(
                f"{self.where}: calibration registers 0x88..0x9F read blank ({block.hex()})"
            )
        self._cal = cal
        if self.has_humidity:
            h1 = self._read_u8(REG_CALIB_H1)
            self._hum_cal = parse_humidity_calibration(h1, self._read(REG_CALIB_H2, CALIB_H_LENGTH))
        else:
            self._hum_cal = None

    def read(self) -> BME280Reading:
        """The latest conversion (normal mode) or a freshly triggered one (forced mode).

        In forced mode each call writes ``ctrl_meas`` to start a conversion. If the status says it
        is already done the result is read at once; otherwise the burst returns the previous
        conversion (the chip keeps it in its data registers), and this call's result arrives with
        the next poll. Nothing here waits for the chip.

        Raises:
            DeviceStateError: not configured, or the chip has no completed conversion yet.
            BusError: a transfer failed.
        """
        cal = self._cal
        if cal is None:
            raise DeviceStateError(f"{self.where}: read() before configure()")
        length = 8 if self.has_humidity else 6
        with self.bus.lock:
            if self.mode == "forced":
                self._trigger_forced()
            data = self._read(REG_PRESS_MSB, length)
        adc_p = (data[0] << 12) | (data[1] << 4) | (data[2] >> 4)
        adc_t = (data[3] << 12) | (data[4] << 4) | (data[5] >> 4)
        if adc_t == ADC_SKIPPED and adc_p == ADC_SKIPPED:
            raise DeviceStateError(f"{self.where}: no completed conversion yet")
        centi_c, t_fine = compensate_temperature(adc_t, cal)
        pressure_pa = compensate_pressure(adc_p, t_fine, cal) / 256.0
        temperature_c = centi_c / 100.0
        humidity: float | None = None
        if self._hum_cal is not None:
            adc_h = (data[6] << 8) | data[7]
            humidity = compensate_humidity(adc_h, t_fine, self._hum_cal) / 1024.0
        out_of_spec = not (
            SPEC_PRESSURE_PA[0] <= pressure_pa <= SPEC_PRESSURE_PA[1]
            and SPEC_TEMPERATURE_C[0] <= temperature_c <= SPEC_TEMPERATURE_C[1]
        )
        return BME280Reading(pressure_pa, temperature_c, humidity, out_of_spec)

    def _trigger_forced(self) -> None:
        # A conversion still running from the previous poll is left alone: re-triggering it would
        # restart it, and a poll faster than the conversion would then never see a result.
        if self._read_u8(REG_STATUS) & STATUS_MEASURING:
            _log.debug("%s: conversion still running; reading the previous one", self.where)
            return
        self._write_u8(REG_CTRL_MEAS, self._ctrl_meas(MODE_FORCED))
        if self._read_u8(REG_STATUS) & STATUS_MEASURING:
            _log.debug("%s: conversion started; this poll reads the previous one", self.where)

    def reset(self) -> None:
        """Soft reset (0xB6 to 0xE0), wait the 2 ms start-up time, then configure again.

        Raises:
            DeviceIdentityError, DeviceStateError, BusError: as :meth:`configure`.
        """
        self._cal = None
        self._write_u8(REG_RESET, RESET_COMMAND)
        self.clock.sleep(RESET_SETTLE_S)
        self.configure()
