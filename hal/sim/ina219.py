"""A register model of the TI INA219 power monitor.

The INA219's registers are 16-bit words behind an 8-bit pointer that never auto-increments, so
this model keeps six words instead of the base class's byte file: a read returns the pointed
word MSB first (and repeats it if the master keeps clocking), a write needs both bytes.

Conversions follow the chip's timing: in a continuous mode a new result is ready every
conversion period (532 us per 12-bit sample, times the averaging count, for each of shunt and
bus), and the data registers only change then. Inputs are ``env.current_a`` through the
model's own shunt (``shunt_ohms``) and ``env.bus_voltage_v``. CURRENT and POWER are computed
with the chip's integer math, which is what the driver's calibration must get right.
"""

from __future__ import annotations

import math
from typing import ClassVar

from hal.clock import Clock
from hal.sim.environment import Environment
from hal.sim.register import RegisterModel, Transfer

__all__ = ["INA219Model"]

CONFIG, SHUNT, BUS, POWER, CURRENT, CALIBRATION = range(6)
CONFIG_RESET = 0x399F
_READ_ONLY = frozenset({SHUNT, BUS, POWER, CURRENT})
#: Conversion time in seconds per ADC code (BADC/SADC): 9..12-bit, then 2..128 averaged samples.
_CONVERSION_S = {0: 84e-6, 1: 148e-6, 2: 276e-6, 3: 532e-6}
_CONVERSION_S.update({8 + n: 532e-6 * (1 << n) for n in range(8)})
_SHUNT_LIMIT = (4000, 8000, 16000, 32000)  # counts of 10 uV for PGA /1 /2 /4 /8


def _conversion_s(code: int) -> float:
    return _CONVERSION_S[code] if code in _CONVERSION_S else _CONVERSION_S[code & 0b0011]


class INA219Model(RegisterModel):
    """The INA219 as the driver sees it over I2C.

    Args:
        env: ``current_a`` and ``bus_voltage_v`` are the inputs.
        clock: paces conversions.
        shunt_ohms: the board's shunt resistor (what the driver must be told it is).
    """

    part: ClassVar[str] = "INA219"
    default_address: ClassVar[int] = 0x41

    def __init__(self, env: Environment, *, clock: Clock, shunt_ohms: float = 0.1) -> None:
        if not (math.isfinite(shunt_ohms) and shunt_ohms > 0):
            raise ValueError(f"INA219Model: shunt_ohms must be positive, got {shunt_ohms}")
        self.shunt_ohms = shunt_ohms
        self.words = [0] * 6
        self._next_conversion = math.inf
        self._continuous = False
        self.conversions = 0
        super().__init__(env, clock=clock)

    # --- reset and modes -------------------------------------------------------------------------
    def on_reset(self) -> None:
        self.words = [CONFIG_RESET, 0, 0, 0, 0, 0]
        self._start_conversions()

    def _start_conversions(self) -> None:
        """Arm the conversion schedule from CONFIG, as a CONFIG write does on the chip."""
        mode = self.words[CONFIG] & 0b111
        self._continuous = bool(mode & 0b100)
        if mode in (0b000, 0b100):  # power-down, ADC off
            self._next_conversion = math.inf
        else:
            self._next_conversion = self.clock.monotonic() + self.conversion_period_s

    @property
    def conversion_period_s(self) -> float:
        """Time for one shunt-and-bus conversion at the current CONFIG."""
        config = self.words[CONFIG]
        mode = config & 0b111
        period = 0.0
        if mode & 0b001:
            period += _conversion_s((config >> 3) & 0xF)
        if mode & 0b010:
            period += _conversion_s((config >> 7) & 0xF)
        return period

    def _convert(self) -> None:
        """Latch the environment into SHUNT and BUS, then compute CURRENT and POWER."""
        config = self.words[CONFIG]
        mode = config & 0b111
        if mode & 0b001:
            limit = _SHUNT_LIMIT[(config >> 11) & 0b11]
            raw = round(self.env.current_a * self.shunt_ohms / 10e-6)
            self.words[SHUNT] = max(-limit, min(limit, raw)) & 0xFFFF
        if mode & 0b010:
            full_scale = 8000 if config & (1 << 13) else 4000  # 32 V or 16 V range, 4 mV counts
            bus_counts = max(0, min(full_scale, round(self.env.bus_voltage_v / 4e-3)))
        else:
            bus_counts = self.words[BUS] >> 3
        shunt = self.words[SHUNT] - 0x10000 if self.words[SHUNT] & 0x8000 else self.words[SHUNT]
        cal = self.words[CALIBRATION]
        overflow = False
        current = int(shunt * cal / 4096)  # the chip truncates toward zero
        if not -0x8000 <= current <= 0x7FFF:
            overflow, current = True, max(-0x8000, min(0x7FFF, current))
        # The POWER register is unsigned: the chip multiplies the current's magnitude.
        power = abs(current) * bus_counts // 5000
        if power > 0xFFFF:
            overflow, power = True, 0xFFFF
        self.words[CURRENT] = current & 0xFFFF
        self.words[POWER] = power
        self.words[BUS] = (bus_counts << 3) | 0b10 | int(overflow)  # CNVR set
        self.conversions += 1

    def _update(self) -> None:
        now = self.clock.monotonic()
        if now < self._next_conversion:
            return
        self._convert()
        if self._continuous:
            period = self.conversion_period_s
            missed = math.floor((now - self._next_conversion) / period)
            self._next_conversion += (missed + 1) * period
        else:
            self._next_conversion = math.inf  # triggered: one shot per CONFIG write

    # --- the bus side: 16-bit words, no auto-increment -------------------------------------------
    def read(self, register: int, length: int) -> bytes:
        pointer = register & 0xFF
        if not self.stuck:
            self._update()
        word = self.words[pointer] if pointer < len(self.words) else 0
        pair = bytes([word >> 8, word & 0xFF])
        out = (pair * (length // 2 + 1))[:length]
        self.history.append(Transfer(self.clock.monotonic(), "r", pointer, out))
        if pointer == POWER and length >= 1:
            self.words[BUS] &= ~0b10 & 0xFFFF  # reading POWER clears CNVR
        return out

    def write(self, register: int, data: bytes) -> None:
        pointer = register & 0xFF
        self.history.append(Transfer(self.clock.monotonic(), "w", pointer, bytes(data)))
        if len(data) < 2 or pointer >= len(self.words) or pointer in _READ_ONLY:
            return  # a half word or a read-only register: the chip keeps what it had
        value = (data[0] << 8) | data[1]
        if pointer == CONFIG:
            if value & 0x8000:  # RST: every register to its default; the bit clears itself
                self.power_on_reset()
                return
            self.words[CONFIG] = value
            self.words[BUS] &= ~0b10 & 0xFFFF
            self._start_conversions()
        elif pointer == CALIBRATION:
            self.words[CALIBRATION] = value & 0xFFFE  # bit 0 is void and reads 0

    # --- for tests -------------------------------------------------------------------------------
    def word(self, register: int) -> int:
        """A register's value without the side effects of a bus read."""
        return self.words[register]
