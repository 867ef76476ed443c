"""The BME280 compensation formulas against the datasheet, a C-width transcription and real C.

The driver and the simulated chip both use :mod:`hal.drivers.bme280_compensation`, so a round
trip through them cannot catch a mistake in it; these tests check it on its own.
"""

from __future__ import annotations

import ctypes
import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.drivers.bme280_compensation import (
    Calibration,
    HumidityCalibration,
    c_div,
    compensate_humidity,
    compensate_pressure,
    compensate_temperature,
    parse_calibration,
    parse_humidity_calibration,
)

# The worked example of the BMP280 datasheet (section 3.12); the BME280 uses the same formulas.
EXAMPLE = Calibration(
    t1=27504, t2=26435, t3=-1000,
    p1=36477, p2=-10685, p3=3024, p4=2855, p5=140, p6=-7, p7=15500, p8=-14600, p9=6000,
)  # fmt: skip
EXAMPLE_ADC_T = 519888
EXAMPLE_ADC_P = 415148
HUMIDITY = HumidityCalibration(h1=75, h2=362, h3=0, h4=313, h5=50, h6=30)


# --- the datasheet's worked example --------------------------------------------------------------
def test_example_temperature_is_25_08_degc_with_t_fine_128422():
    assert compensate_temperature(EXAMPLE_ADC_T, EXAMPLE) == (2508, 128422)


def test_example_pressure_is_100653_pa():
    # The datasheet's table prints 25767236 (100653.27 Pa), computed with floating point; the
    # published 64-bit integer formula itself yields 25767233 (100653.254 Pa). Both agree to
    # 0.02 Pa, far below the part's 1 Pa resolution; the C check below pins the integer value.
    q24_8 = compensate_pressure(EXAMPLE_ADC_P, 128422, EXAMPLE)
    assert q24_8 / 256 == pytest.approx(100653.27, abs=0.02)
    assert round(q24_8 / 256) == 100653  # the figure of the 32-bit formula in the same table


def test_c_div_truncates_toward_zero_unlike_floor_division():
    assert c_div(-7, 2) == -3 and -7 // 2 == -4
    assert c_div(7, -2) == -3
    assert c_div(-7, -2) == 3
    assert c_div(7, 2) == 3


def test_pressure_uses_truncating_division_for_negative_numerators():
    # Near the top of the raw range the dividend is negative; floor division would be one count
    # lower at the division and differ after the final >> 8 for some raw values.
    _, t_fine = compensate_temperature(EXAMPLE_ADC_T, EXAMPLE)
    differs = 0
    for adc_p in range(1_040_000, 1_048_575, 7):
        assert compensate_pressure(adc_p, t_fine, EXAMPLE) == _reference_pressure(
            adc_p, t_fine, EXAMPLE
        )
        differs += compensate_pressure(adc_p, t_fine, EXAMPLE) != _floor_pressure(
            adc_p, t_fine, EXAMPLE
        )
    assert differs > 0  # the test would notice a // in place of c_div


def test_zero_p1_returns_zero_instead_of_dividing_by_zero():
    broken = dataclasses.replace(EXAMPLE, p1=0)
    assert compensate_pressure(EXAMPLE_ADC_P, 128422, broken) == 0


# --- register decoding (golden bytes) ------------------------------------------------------------
def test_parse_calibration_decodes_little_endian_words_with_signs():
    block = bytes.fromhex("706b 4367 18fc 7d8e 43d6 d00b 270b 8c00 f9ff 8c3c f8c6 7017")
    assert parse_calibration(block) == EXAMPLE


def test_parse_humidity_calibration_splits_the_shared_nibble_register():
    # E1 E2 = H2 0x016A; E3 = H3; E4 E5[3:0] = H4 0x13D; E6 E5[7:4] = H5 0x032; E7 = H6.
    hum = parse_humidity_calibration(75, bytes.fromhex("6a0100132d031e"))
    assert hum == HumidityCalibration(h1=75, h2=362, h3=0, h4=317, h5=50, h6=30)


def test_h4_and_h5_are_signed_12_bit():
    hum = parse_humidity_calibration(0, bytes.fromhex("0000 00 f0 8f 80 ff"))
    assert hum.h4 == 0xF0F - 0x1000  # -241
    assert hum.h5 == 0x808 - 0x1000  # -2040
    assert hum.h6 == -1


@pytest.mark.parametrize("length", [0, 23, 25])
def test_parse_calibration_rejects_wrong_length(length):
    with pytest.raises(ValueError, match="24 bytes"):
        parse_calibration(bytes(length))


def test_parse_humidity_calibration_rejects_wrong_length():
    with pytest.raises(ValueError, match="7 bytes"):
        parse_humidity_calibration(0, bytes(6))


# --- shape of the functions the simulated chip inverts -------------------------------------------
def test_temperature_rises_and_pressure_falls_with_raw_counts():
    previous_t = None
    for adc_t in range(0, 1 << 20, 4099):
        t, t_fine = compensate_temperature(adc_t, EXAMPLE)
        assert previous_t is None or t >= previous_t
        previous_t = t
        pressures = [compensate_pressure(a, t_fine, EXAMPLE) for a in range(0, 980_000, 9973)]
        assert pressures == sorted(pressures, reverse=True)


def test_humidity_rises_with_raw_counts_and_is_clamped_to_0_100():
    _, t_fine = compensate_temperature(EXAMPLE_ADC_T, EXAMPLE)
    values = [compensate_humidity(a, t_fine, HUMIDITY) for a in range(0, 1 << 16, 17)]
    assert values == sorted(values)
    assert values[0] == 0 and values[-1] == 100 * 1024


# --- a line-by-line transcription of the C, with C's integer widths ------------------------------
def _s32(v: int) -> int:
    return ctypes.c_int32(v).value


def _s64(v: int) -> int:
    return ctypes.c_int64(v).value


def _trunc(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _reference_temperature(adc_t: int, c: Calibration) -> tuple[int, int]:
    var1 = _s32(_s32(((adc_t >> 3) - (c.t1 << 1)) * c.t2) >> 11)
    d = (adc_t >> 4) - c.t1
    var2 = _s32(_s32((_s32(d * d) >> 12) * c.t3) >> 14)
    t_fine = _s32(var1 + var2)
    return _s32(t_fine * 5 + 128) >> 8, t_fine


def _reference_pressure(adc_p: int, t_fine: int, c: Calibration, div=_trunc) -> int:
    var1 = _s64(t_fine - 128000)
    var2 = _s64(var1 * var1 * c.p6)
    var2 = _s64(var2 + _s64(_s64(var1 * c.p5) << 17))
    var2 = _s64(var2 + _s64(c.p4 << 35))
    var1 = _s64((_s64(var1 * var1 * c.p3) >> 8) + _s64(_s64(var1 * c.p2) << 12))
    var1 = _s64(_s64(((1 << 47) + var1) * c.p1) >> 33)
    if var1 == 0:
        return 0
    p = _s64(1048576 - adc_p)
    p = _s64(div(_s64(_s64(_s64(p << 31) - var2) * 3125), var1))
    var1 = _s64(_s64(c.p9 * (p >> 13) * (p >> 13)) >> 25)
    var2 = _s64(_s64(c.p8 * p) >> 19)
    p = _s64((_s64(p + var1 + var2) >> 8) + (c.p7 << 4))
    return p & 0xFFFFFFFF


def _floor_pressure(adc_p: int, t_fine: int, c: Calibration) -> int:
    return _reference_pressure(adc_p, t_fine, c, div=lambda a, b: a // b)


def _reference_humidity(adc_h: int, t_fine: int, c: HumidityCalibration) -> int:
    v = _s32(t_fine - 76800)
    a = _s32(_s32(_s32((adc_h << 14) - (c.h4 << 20) - _s32(c.h5 * v)) + 16384) >> 15)
    b = _s32(_s32(_s32(v * c.h6) >> 10) * _s32(_s32(_s32(v * c.h3) >> 11) + 32768)) >> 10
    b = _s32(_s32(_s32(b + 2097152) * c.h2) + 8192) >> 14
    v = _s32(a * b)
    v = _s32(v - (_s32(_s32(_s32((v >> 15) * (v >> 15)) >> 7) * c.h1) >> 4))
    v = min(max(v, 0), 419430400)
    return v >> 12


def _around(value: int, spread: int) -> st.SearchStrategy[int]:
    return st.integers(value - spread, value + spread)


# Calibrations within the spread seen on production parts, centred on the datasheet example.
calibrations = st.builds(
    Calibration,
    t1=_around(27504, 2000), t2=_around(26435, 1500), t3=st.integers(-1000, 100),
    p1=_around(36477, 2500), p2=_around(-10685, 1000), p3=_around(3024, 500),
    p4=_around(2855, 4000), p5=st.integers(-200, 300), p6=st.integers(-20, 20),
    p7=_around(15500, 500), p8=_around(-14600, 2000), p9=_around(6000, 1500),
)  # fmt: skip
humidity_calibrations = st.builds(
    HumidityCalibration,
    h1=st.integers(0, 255), h2=_around(362, 40), h3=st.integers(0, 10),
    h4=_around(313, 40), h5=_around(50, 20), h6=_around(30, 10),
)  # fmt: skip
u16, s16 = st.integers(0, 0xFFFF), st.integers(-0x8000, 0x7FFF)
# Any value the registers can hold: far outside real parts, where C's fixed widths wrap.
register_calibrations = st.builds(
    Calibration, t1=u16, t2=s16, t3=s16,
    p1=u16, p2=s16, p3=s16, p4=s16, p5=s16, p6=s16, p7=s16, p8=s16, p9=s16,
)  # fmt: skip
register_humidity_calibrations = st.builds(
    HumidityCalibration, h1=st.integers(0, 255), h2=s16, h3=st.integers(0, 255),
    h4=st.integers(-2048, 2047), h5=st.integers(-2048, 2047), h6=st.integers(-128, 127),
)  # fmt: skip
any_calibrations = st.one_of(calibrations, register_calibrations)
any_humidity_calibrations = st.one_of(humidity_calibrations, register_humidity_calibrations)
adc20 = st.integers(0, (1 << 20) - 1)
adc16 = st.integers(0, (1 << 16) - 1)


@settings(max_examples=300, deadline=None)
@given(cal=any_calibrations, hum=any_humidity_calibrations, adc_t=adc20, adc_p=adc20, adc_h=adc16)
def test_module_matches_c_width_transcription(cal, hum, adc_t, adc_p, adc_h):
    t = compensate_temperature(adc_t, cal)
    assert t == _reference_temperature(adc_t, cal)
    t_fine = t[1]
    assert compensate_pressure(adc_p, t_fine, cal) == _reference_pressure(adc_p, t_fine, cal)
    assert compensate_humidity(adc_h, t_fine, hum) == _reference_humidity(adc_h, t_fine, hum)


# --- and against the datasheet's C compiled by the system compiler -------------------------------
_C_SOURCE = r"""
#include <stdint.h>
typedef int32_t S32; typedef uint32_t U32; typedef int64_t S64;
static uint16_t dig_T1; static int16_t dig_T2, dig_T3;
static uint16_t dig_P1; static int16_t dig_P2, dig_P3, dig_P4, dig_P5, dig_P6, dig_P7, dig_P8,
    dig_P9;
static uint8_t dig_H1, dig_H3; static int16_t dig_H2, dig_H4, dig_H5; static int8_t dig_H6;
static S32 t_fine;

void set_cal(const int32_t *c) {
    dig_T1 = c[0]; dig_T2 = c[1]; dig_T3 = c[2];
    dig_P1 = c[3]; dig_P2 = c[4]; dig_P3 = c[5]; dig_P4 = c[6]; dig_P5 = c[7]; dig_P6 = c[8];
    dig_P7 = c[9]; dig_P8 = c[10]; dig_P9 = c[11];
    dig_H1 = c[12]; dig_H2 = c[13]; dig_H3 = c[14]; dig_H4 = c[15]; dig_H5 = c[16];
    dig_H6 = c[17];
}

S32 comp_T(S32 adc_T, S32 *fine) {
    S32 var1, var2, T;
    var1 = ((((adc_T>>3) - ((S32)dig_T1<<1))) * ((S32)dig_T2)) >> 11;
    var2 = (((((adc_T>>4) - ((S32)dig_T1)) * ((adc_T>>4) - ((S32)dig_T1))) >> 12) *
        ((S32)dig_T3)) >> 14;
    t_fine = var1 + var2;
    T = (t_fine * 5 + 128) >> 8;
    *fine = t_fine;
    return T;
}

U32 comp_P(S32 adc_P) {
    S64 var1, var2, p;
    var1 = ((S64)t_fine) - 128000;
    var2 = var1 * var1 * (S64)dig_P6;
    var2 = var2 + ((var1*(S64)dig_P5)<<17);
    var2 = var2 + (((S64)dig_P4)<<35);
    var1 = ((var1 * var1 * (S64)dig_P3)>>8) + ((var1 * (S64)dig_P2)<<12);
    var1 = (((((S64)1)<<47)+var1))*((S64)dig_P1)>>33;
    if (var1 == 0) return 0;
    p = 1048576-adc_P;
    p = (((p<<31)-var2)*3125)/var1;
    var1 = (((S64)dig_P9) * (p>>13) * (p>>13)) >> 25;
    var2 = (((S64)dig_P8) * p) >> 19;
    p = ((p + var1 + var2) >> 8) + (((S64)dig_P7)<<4);
    return (U32)p;
}

U32 comp_H(S32 adc_H) {
    S32 v;
    v = (t_fine - ((S32)76800));
    v = (((((adc_H << 14) - (((S32)dig_H4) << 20) - (((S32)dig_H5) * v)) + ((S32)16384)) >> 15)
        * (((((((v * ((S32)dig_H6)) >> 10) * (((v * ((S32)dig_H3)) >> 11) + ((S32)32768)))
        >> 10) + ((S32)2097152)) * ((S32)dig_H2) + 8192) >> 14));
    v = (v - (((((v >> 15) * (v >> 15)) >> 7) * ((S32)dig_H1)) >> 4));
    v = (v < 0 ? 0 : v);
    v = (v > 419430400 ? 419430400 : v);
    return (U32)(v>>12);
}
"""


@pytest.fixture(scope="module")
def datasheet_c(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the datasheet's reference code")
    work: Path = tmp_path_factory.mktemp("bme280c")
    source = work / "bme280.c"
    source.write_text(_C_SOURCE)
    library = work / "bme280.so"
    subprocess.run(
        [compiler, "-O1", "-fwrapv", "-shared", "-fPIC", str(source), "-o", str(library)],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(library))
    lib.comp_T.argtypes = [ctypes.c_int32, ctypes.POINTER(ctypes.c_int32)]
    lib.comp_T.restype = ctypes.c_int32
    lib.comp_P.argtypes = [ctypes.c_int32]
    lib.comp_P.restype = ctypes.c_uint32
    lib.comp_H.argtypes = [ctypes.c_int32]
    lib.comp_H.restype = ctypes.c_uint32
    return lib


def _run_c(lib: ctypes.CDLL, cal: Calibration, hum: HumidityCalibration, adc_t, adc_p, adc_h):
    words = [*dataclasses.astuple(cal), *dataclasses.astuple(hum)]
    lib.set_cal((ctypes.c_int32 * 18)(*words))
    fine = ctypes.c_int32()
    t = lib.comp_T(adc_t, ctypes.byref(fine))
    return (t, fine.value), lib.comp_P(adc_p), lib.comp_H(adc_h)


def test_example_against_compiled_c(datasheet_c):
    (t, t_fine), p, _ = _run_c(datasheet_c, EXAMPLE, HUMIDITY, EXAMPLE_ADC_T, EXAMPLE_ADC_P, 0)
    assert (t, t_fine) == compensate_temperature(EXAMPLE_ADC_T, EXAMPLE)
    assert p == compensate_pressure(EXAMPLE_ADC_P, t_fine, EXAMPLE)


@settings(max_examples=300, deadline=None)
@given(cal=any_calibrations, hum=any_humidity_calibrations, adc_t=adc20, adc_p=adc20, adc_h=adc16)
def test_module_matches_compiled_c(datasheet_c, cal, hum, adc_t, adc_p, adc_h):
    (t, t_fine), p, h = _run_c(datasheet_c, cal, hum, adc_t, adc_p, adc_h)
    assert compensate_temperature(adc_t, cal) == (t, t_fine)
    assert compensate_pressure(adc_p, t_fine, cal) == p
    assert compensate_humidity(adc_h, t_fine, hum) == h
