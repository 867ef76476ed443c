"""A register-accurate BME280 (or BMP280): what the driver sees on the bus, from the environment.

The chip's data registers hold raw ADC counts, not physical values, so the model inverts the
datasheet's compensation formulas: given the environment's temperature it searches (bisection) for
the raw count whose compensated value is closest, then does the same for pressure and humidity at
that temperature's ``t_fine``. Temperature rises with its raw count, pressure falls with its raw
count, humidity rises with its raw count, so each search is over a monotonic function.

Rules reproduced from the datasheet:

* chip id 0xD0 (0x60, or 0x58 with ``variant="bmp280"``); soft reset by writing 0xB6 to 0xE0;
* calibration registers 0x88..0xA1 and 0xE1..0xE7 hold the datasheet's worked-example words;
* ``ctrl_hum`` takes effect only on the next ``ctrl_meas`` write;
* ``config`` writes are ignored in normal mode;
* data registers reset to 0x80000 / 0x8000 ("no measurement"); a channel with oversampling 0
  (skipped) reads that value too; sleep mode holds the last conversion;
* forced mode converts once and returns to sleep;
* the resolution follows the oversampling setting (16 bits at x1 up to 20 bits at x16).

Modelling choices: the IIR filter and the standby time do not change the output (normal mode
samples the environment at each read); a forced conversion is instant unless
``measurement_delay=True``, which keeps the status ``measuring`` bit set for the datasheet's
typical conversion time and leaves the previous result in the data registers until then.

Range: with this calibration the raw pressure range spans about -3.5 kPa .. +131 kPa at -140 degC
and -9.5 .. +217 kPa at +187 degC, so Mars surface pressure (~600 Pa) and even vacuum are
representable; the part is just out of its specified range there. Pressures above what the raw
range expresses, negative pressures and temperatures beyond -140..187 degC are clamped to the
nearest raw value, and :attr:`BME280Model.clamped` says so for the last conversion.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import ClassVar

from hal.clock import Clock
from hal.drivers.bme280_compensation import (
    Calibration,
    HumidityCalibration,
    compensate_humidity,
    compensate_pressure,
    compensate_temperature,
)
from hal.sim.environment import Environment
from hal.sim.register import RegisterModel

__all__ = ["DATASHEET_CALIBRATION", "DEFAULT_HUMIDITY_CALIBRATION", "BME280Model"]

_log = logging.getLogger(__name__)

CHIP_ID = 0xD0
RESET = 0xE0
CTRL_HUM = 0xF2
STATUS = 0xF3
CTRL_MEAS = 0xF4
CONFIG = 0xF5
PRESS_MSB = 0xF7
HUM_MSB = 0xFD
DATA = slice(PRESS_MSB, PRESS_MSB + 8)  # 0xF7..0xFE

STATUS_MEASURING = 1 << 3
RESET_COMMAND = 0xB6
MODE_SLEEP = 0b00
MODE_NORMAL = 0b11
ADC_SKIPPED = 0x80000
HUM_SKIPPED = 0x8000
ADC_MAX = (1 << 20) - 1
HUM_MAX = (1 << 16) - 1

#: The worked example of the datasheet (BMP280 section 3.12), also plausible for a BME280.
DATASHEET_CALIBRATION = Calibration(
    t1=27504, t2=26435, t3=-1000,
    p1=36477, p2=-10685, p3=3024, p4=2855, p5=140, p6=-7, p7=15500, p8=-14600, p9=6000,
)  # fmt: skip
#: Humidity words typical of production parts (the datasheet gives no example for them).
DEFAULT_HUMIDITY_CALIBRATION = HumidityCalibration(h1=75, h2=362, h3=0, h4=313, h5=50, h6=30)

VARIANTS = {"bme280": 0x60, "bmp280": 0x58}


def _typical_conversion_s(osrs_t: int, osrs_p: int, osrs_h: int) -> float:
    """Datasheet appendix B typical measurement time: 1 + 2*T + (2*P + 0.5) + (2*H + 0.5) ms."""
    factors = (0, 1, 2, 4, 8, 16, 16, 16)
    ms = 1.0 + 2.0 * factors[osrs_t]
    if osrs_p:
        ms += 2.0 * factors[osrs_p] + 0.5
    if osrs_h:
        ms += 2.0 * factors[osrs_h] + 0.5
    return ms / 1000.0


def _nearest(f: Callable[[int], int], target: float, count: int) -> tuple[int, bool]:
    """Index k in 0..count-1 whose f(k) is nearest ``target``, for non-decreasing ``f``.

    Returns (k, clamped): clamped is True if ``target`` lies outside f's range.
    """
    lo, hi = 0, count - 1
    if target <= f(lo):
        return lo, target < f(lo)
    if target >= f(hi):
        return hi, target > f(hi)
    while hi - lo > 1:  # invariant: f(lo) < target <= f(hi)
        mid = (lo + hi) // 2
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo if target - f(lo) < f(hi) - target else hi), False


def _step(osrs: int) -> int:
    """Raw-count step of a 20-bit channel: 16-bit resolution at x1 .. 20-bit at x16."""
    bits = 15 + min(osrs, 5)
    return 1 << (20 - bits)


class BME280Model(RegisterModel):
    """The chip; physical inputs from ``env.temperature_c``, ``pressure_pa`` and ``humidity_pct``.

    Args:
        env: the physical inputs.
        clock: time, for the optional conversion delay.
        variant: ``"bme280"`` or ``"bmp280"`` (no humidity, chip id 0x58).
        measurement_delay: forced conversions take the datasheet's typical time instead of none.

    Raises:
        ValueError: unknown variant.
    """

    part: ClassVar[str] = "BME280"
    default_address: ClassVar[int] = 0x76
    read_only: ClassVar[frozenset[int]] = frozenset(
        [*range(0x88, 0xA2), CHIP_ID, *range(0xE1, 0xF2), STATUS, *range(PRESS_MSB, 0x100)]
    )

    def __init__(
        self,
        env: Environment,
        *,
        clock: Clock,
        variant: str = "bme280",
        measurement_delay: bool = False,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"BME280Model: variant must be one of {sorted(VARIANTS)}")
        self.variant = variant
        self.measurement_delay = measurement_delay
        self.calibration = DATASHEET_CALIBRATION
        self.humidity_calibration = DEFAULT_HUMIDITY_CALIBRATION if variant == "bme280" else None
        #: True if the last conversion had to clamp an environment value to the raw range.
        self.clamped = False
        self._osrs_h = 0  # the humidity oversampling in effect (ctrl_hum as last latched)
        self._pending: tuple[float, bytes] | None = None  # (done at, data registers)
        super().__init__(env, clock=clock)

    # --- reset and calibration -------------------------------------------------------------------
    def on_reset(self) -> None:
        self.regs[CHIP_ID] = VARIANTS[self.variant]
        c = self.calibration
        self.regs[0x88:0xA0] = struct.pack(
            "<HhhHhhhhhhhh", c.t1, c.t2, c.t3, c.p1, c.p2, c.p3, c.p4, c.p5, c.p6, c.p7, c.p8, c.p9
        )
        h = self.humidity_calibration
        if h is not None:
            self.regs[0xA1] = h.h1
            h4, h5 = h.h4 & 0xFFF, h.h5 & 0xFFF
            self.regs[0xE1:0xE8] = struct.pack(
                "<hBBBBb", h.h2, h.h3, h4 >> 4, ((h5 & 0x0F) << 4) | (h4 & 0x0F), h5 >> 4, h.h6
            )
        self.regs[PRESS_MSB] = 0x80
        self.regs[PRESS_MSB + 3] = 0x80
        if h is not None:
            self.regs[HUM_MSB] = 0x80
        self._osrs_h = 0
        self._pending = None
        self.clamped = False

    # --- register rules --------------------------------------------------------------------------
    @property
    def mode(self) -> int:
        return self.regs[CTRL_MEAS] & 0b11

    def writable(self, register: int, value: int) -> bool:
        if register == CONFIG and self.mode == MODE_NORMAL:
            return False
        if register == CTRL_HUM and self.humidity_calibration is None:
            return False
        return super().writable(register, value)

    def on_write(self, register: int, value: int) -> None:
        if register == RESET:
            self.regs[RESET] = 0  # write-only: reads 0
            if value == RESET_COMMAND:
                self.power_on_reset()
        elif register == CTRL_MEAS:
            self._osrs_h = self.regs[CTRL_HUM] & 0b111
            if value & 0b11 in (0b01, 0b10):
                self._start_forced()

    def begin_read(self, register: int) -> None:
        self._finish_pending()
        if self.mode == MODE_NORMAL:
            self.regs[DATA] = self._convert()

    # --- conversions -----------------------------------------------------------------------------
    def _start_forced(self) -> None:
        if self.stuck:
            self.regs[CTRL_MEAS] &= ~0b11 & 0xFF
            return
        data = self._convert()
        if not self.measurement_delay:
            self.regs[DATA] = data
            self.regs[CTRL_MEAS] &= ~0b11 & 0xFF
            return
        c = self.regs[CTRL_MEAS]
        done = self.clock.monotonic() + _typical_conversion_s(c >> 5, (c >> 2) & 7, self._osrs_h)
        self._pending = (done, data)
        self.regs[STATUS] |= STATUS_MEASURING

    def _finish_pending(self) -> None:
        if self._pending is None or self.clock.monotonic() < self._pending[0]:
            return
        self.regs[DATA] = self._pending[1]
        self._pending = None
        self.regs[STATUS] &= ~STATUS_MEASURING & 0xFF
        self.regs[CTRL_MEAS] &= ~0b11 & 0xFF

    def _convert(self) -> bytes:
        """The eight data registers for one conversion of the current environment."""
        ctrl = self.regs[CTRL_MEAS]
        osrs_t, osrs_p = ctrl >> 5, (ctrl >> 2) & 0b111
        adc_t, clamp_t = self._invert_temperature(self.env.temperature_c, max(osrs_t, 1))
        _, t_fine = compensate_temperature(adc_t, self.calibration)
        adc_p, clamp_p = self._invert_pressure(self.env.pressure_pa, t_fine, max(osrs_p, 1))
        clamp_h = False
        adc_h = HUM_SKIPPED
        if self.humidity_calibration is not None and self._osrs_h:
            adc_h, clamp_h = self._invert_humidity(self.env.humidity_pct, t_fine)
        self.clamped = clamp_t or clamp_p or clamp_h
        if self.clamped:
            _log.debug("BME280 model: environment clamped to the raw range (%s)", self.env)
        if not osrs_t:
            adc_t = ADC_SKIPPED
        if not osrs_p:
            adc_p = ADC_SKIPPED
        out = bytearray(8)
        out[0:3] = (adc_p << 4).to_bytes(3, "big")
        out[3:6] = (adc_t << 4).to_bytes(3, "big")
        out[6:8] = adc_h.to_bytes(2, "big")
        if self.humidity_calibration is None:
            out[6:8] = b"\x00\x00"
        return bytes(out)

    def _invert_temperature(self, celsius: float, osrs: int) -> tuple[int, bool]:
        step = _step(osrs)
        cal = self.calibration

        def t_fine(k: int) -> int:
            return compensate_temperature(k * step, cal)[1]

        k, clamped = _nearest(t_fine, celsius * 5120.0, (ADC_MAX + 1) // step)
        return k * step, clamped

    def _invert_pressure(self, pascal: float, t_fine: int, osrs: int) -> tuple[int, bool]:
        step = _step(osrs)
        count = (ADC_MAX + 1) // step
        cal = self.calibration

        def signed_q24_8(adc: int) -> int:
            value = compensate_pressure(adc, t_fine, cal)
            return value - (1 << 32) if value >= 1 << 31 else value  # undo the C unsigned cast

        def rising(k: int) -> int:  # pressure falls with the raw count: search it backwards
            return signed_q24_8((count - 1 - k) * step)

        target = max(pascal, 0.0)
        k, clamped = _nearest(rising, target * 256.0, count)
        adc = (count - 1 - k) * step
        if signed_q24_8(adc) < 0:  # nearest to 0 Pa lies just below zero: take the step above
            adc -= step
        return adc, clamped or pascal < 0

    def _invert_humidity(self, percent: float, t_fine: int) -> tuple[int, bool]:
        cal = self.humidity_calibration
        assert cal is not None

        def q22_10(adc: int) -> int:
            return compensate_humidity(adc, t_fine, cal)

        target = min(max(percent, 0.0), 100.0)
        adc, clamped = _nearest(q22_10, target * 1024.0, HUM_MAX + 1)
        return adc, clamped or target != percent
