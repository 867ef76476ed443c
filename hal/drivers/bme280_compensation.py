"""Bosch BME280 / BMP280 compensation: the datasheet's integer formulas, pure and bit-exact.

The chip reports raw 20-bit temperature and pressure and 16-bit humidity ADC counts; turning them
into physical values needs the part's factory calibration words and the fixed-point formulas of
the datasheet (BME280 section 4.2.3 / 8.1, BMP280 section 3.11.3): 32-bit temperature giving
``t_fine``, 64-bit pressure in Q24.8 pascal, 32-bit humidity in Q22.10 %RH.

Two things make a naive transcription wrong, and both are handled here:

* C's ``/`` truncates toward zero; Python's ``//`` floors. The pressure formula divides a value
  that is negative for very low pressures, so it uses :func:`c_div`.
* C's ``>>`` on a negative signed value is an arithmetic shift on every compiler the formulas were
  written for; Python's ``>>`` on ``int`` is the same, so shifts are transcribed as they are.

Python integers never overflow, but C's do: with a calibration at the edge of the production
spread and a raw value at the top of its range (a temperature far beyond the part's rating, or a
bus returning 0xFF bytes), the 32-bit temperature product wraps. To be bit-exact with the C code
in every case, each intermediate is wrapped to the width C gives it (:func:`_i32`, :func:`_i64`,
two's complement as on every target the formulas run on), and the pressure gets the final
``(BME280_U32_t)`` cast.

This module is shared by the driver (raw -> physical) and the simulated chip (which inverts it by
bisection), and is tested on its own against the datasheet's worked example and a compiled copy
of the C formulas, so a bug here cannot hide behind the two agreeing with each other.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "Calibration",
    "HumidityCalibration",
    "c_div",
    "compensate_humidity",
    "compensate_pressure",
    "compensate_temperature",
    "parse_calibration",
    "parse_humidity_calibration",
]

#: Upper clamp of the humidity formula: 100 %RH in Q22.10, shifted left by 12.
_HUMIDITY_MAX = 419_430_400


@dataclass(frozen=True)
class Calibration:
    """Temperature and pressure trimming words (0x88..0x9F), common to BME280 and BMP280."""

    t1: int
    t2: int
    t3: int
    p1: int
    p2: int
    p3: int
    p4: int
    p5: int
    p6: int
    p7: int
    p8: int
    p9: int


@dataclass(frozen=True)
class HumidityCalibration:
    """Humidity trimming words (0xA1 and 0xE1..0xE7), BME280 only."""

    h1: int
    h2: int
    h3: int
    h4: int
    h5: int
    h6: int


def _i32(value: int) -> int:
    """Wrap to a C ``int32_t``."""
    return ((value + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000


def _i64(value: int) -> int:
    """Wrap to a C ``int64_t``."""
    return ((value + 0x8000_0000_0000_0000) & 0xFFFF_FFFF_FFFF_FFFF) - 0x8000_0000_0000_0000


def c_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, as C's ``/`` does (Python's ``//`` floors).

    Raises:
        ZeroDivisionError: ``b`` is zero.
    """
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def parse_calibration(block: bytes) -> Calibration:
    """Decode the 24 bytes read from 0x88..0x9F: T1 u16, T2 T3 s16, P1 u16, P2..P9 s16, all LE.

    Raises:
        ValueError: ``block`` is not 24 bytes long.
    """
    if len(block) != 24:
        raise ValueError(f"temperature/pressure calibration is 24 bytes, got {len(block)}")
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9 = struct.unpack("<HhhHhhhhhhhh", block)
    return Calibration(t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9)


def _s12(value: int) -> int:
    value &= 0xFFF
    return value - 0x1000 if value & 0x800 else value


def parse_humidity_calibration(h1: int, block: bytes) -> HumidityCalibration:
    """Decode H1 (register 0xA1) and the 7 bytes read from 0xE1..0xE7.

    H4 and H5 share register 0xE5 nibble-wise and are signed 12-bit: H4 = E4[7:0]:E5[3:0],
    H5 = E6[7:0]:E5[7:4]. Treating them as unsigned gives a humidity error of tens of percent on
    parts whose H4 or H5 is negative.

    Raises:
        ValueError: ``block`` is not 7 bytes long.
    """
    if len(block) != 7:
        raise ValueError(f"humidity calibration 0xE1..0xE7 is 7 bytes, got {len(block)}")
    h2 = struct.unpack_from("<h", block, 0)[0]
    h3 = block[2]
    e4, e5, e6 = block[3], block[4], block[5]
    h4 = _s12((e4 << 4) | (e5 & 0x0F))
    h5 = _s12((e6 << 4) | (e5 >> 4))
    h6 = struct.unpack_from("<b", block, 6)[0]
    return HumidityCalibration(h1 & 0xFF, h2, h3, h4, h5, h6)


def compensate_temperature(adc_t: int, cal: Calibration) -> tuple[int, int]:
    """Raw 20-bit temperature -> (temperature in 0.01 degC, ``t_fine``).

    ``t_fine`` is the fine-resolution temperature (1/5120 degC) that the pressure and humidity
    formulas need; it must come from the same burst as their raw values.
    """
    var1 = _i32(((adc_t >> 3) - (cal.t1 << 1)) * cal.t2) >> 11
    delta = (adc_t >> 4) - cal.t1
    var2 = _i32((_i32(delta * delta) >> 12) * cal.t3) >> 14
    t_fine = _i32(var1 + var2)
    return _i32(t_fine * 5 + 128) >> 8, t_fine


def compensate_pressure(adc_p: int, t_fine: int, cal: Calibration) -> int:
    """Raw 20-bit pressure -> pressure in Q24.8 pascal (divide by 256), as an unsigned 32-bit value.

    Returns 0 where the datasheet does (a calibration that would divide by zero). Raw values so
    high that the formula goes negative wrap through the C code's unsigned cast, exactly as on a
    microcontroller; a caller treats anything outside the part's range as out of spec.
    """
    var1 = t_fine - 128000
    var2 = _i64(var1 * var1 * cal.p6)
    var2 = _i64(var2 + _i64((var1 * cal.p5) << 17))
    var2 = _i64(var2 + (cal.p4 << 35))
    var1 = _i64((_i64(var1 * var1 * cal.p3) >> 8) + _i64((var1 * cal.p2) << 12))
    var1 = _i64(((1 << 47) + var1) * cal.p1) >> 33
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    p = _i64(c_div(_i64(_i64((p << 31) - var2) * 3125), var1))
    var1 = _i64(cal.p9 * (p >> 13) * (p >> 13)) >> 25
    var2 = _i64(cal.p8 * p) >> 19
    p = _i64((_i64(p + var1 + var2) >> 8) + (cal.p7 << 4))
    return p & 0xFFFFFFFF


def compensate_humidity(adc_h: int, t_fine: int, cal: HumidityCalibration) -> int:
    """Raw 16-bit humidity -> relative humidity in Q22.10 %RH (divide by 1024), clamped 0..100."""
    v = _i32(t_fine - 76800)
    scaled = _i32(_i32((adc_h << 14) - (cal.h4 << 20) - _i32(cal.h5 * v)) + 16384) >> 15
    gain = _i32(_i32(v * cal.h6) >> 10) * _i32(_i32(_i32(v * cal.h3) >> 11) + 32768)
    gain = _i32(_i32(_i32((_i32(gain) >> 10) + 2097152) * cal.h2) + 8192) >> 14
    v = _i32(scaled * gain)
    v = _i32(v - (_i32(_i32(_i32((v >> 15) * (v >> 15)) >> 7) * cal.h1) >> 4))
    v = min(max(v, 0), _HUMIDITY_MAX)
    return v >> 12
