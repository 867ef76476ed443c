"""TI INA219: bus voltage, shunt current and power on the battery bus (power FDIR).

Registers are 16-bit, big-endian, and the register pointer does not auto-increment, so every
register is read with its own 2-byte block read. The chip has no ID register; see
:meth:`INA219.probe` for how it is identified.

Calibration follows the datasheet's procedure (section 8.5): pick a current LSB just above
``max_current_a / 2**15``, rounded up to a 1-2-5 value so register counts stay readable in a hex
dump; ``Cal = trunc(0.04096 / (Current_LSB * R_shunt))``; ``Power_LSB = 20 * Current_LSB``. The
chip then computes CURRENT = SHUNT * Cal / 4096 and POWER = CURRENT * BUS / 5000 itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from hal.clock import Clock
from hal.device import I2CDevice, Reading
from hal.errors import ConfigError, DeviceIdentityError, DeviceStateError
from hal.i2c import I2CBus

__all__ = [
    "INA219",
    "INA219Reading",
    "bus_voltage_v",
    "calibration_value",
    "config_word",
    "current_lsb_for",
    "pga_bits_for",
    "shunt_voltage_v",
]

# --- register map (datasheet table 2) ---------------------------------------------------------
REG_CONFIG = 0x00
REG_SHUNT_VOLTAGE = 0x01
REG_BUS_VOLTAGE = 0x02
REG_POWER = 0x03
REG_CURRENT = 0x04
REG_CALIBRATION = 0x05

CONFIG_RESET_VALUE = 0x399F
CONFIG_RST = 1 << 15
CONFIG_BRNG = 1 << 13  # 0: 16 V bus range, 1: 32 V
CONFIG_PG_SHIFT = 11  # PGA gain /1 /2 /4 /8 -> +-40/80/160/320 mV
CONFIG_BADC_SHIFT = 7
CONFIG_SADC_SHIFT = 3
MODE_SHUNT_BUS_CONTINUOUS = 0b111

BUS_CNVR = 1 << 1  # conversion ready
BUS_OVF = 1 << 0  # math overflow
BUS_RESERVED = 1 << 2  # reads 0 on every INA219

SHUNT_LSB_V = 10e-6
BUS_LSB_V = 4e-3
CAL_SCALE = 0.04096  # the datasheet's fixed constant (volts, from the ADC's internal scaling)

#: Full-scale shunt voltage of each PGA setting (CONFIG bits 12:11).
PGA_RANGES_V: tuple[float, ...] = (0.040, 0.080, 0.160, 0.320)
#: ADC sample count -> BADC/SADC code (12-bit resolution, with averaging above one sample).
ADC_CODES: dict[int, int] = {1: 0b0011, 2: 0b1001, 4: 0b1010, 8: 0b1011, 16: 0b1100, 32: 0b1101,
                             64: 0b1110, 128: 0b1111}  # fmt: skip

DEFAULT_ADDRESS = 0x41  # A0 high on the reference bench: 0x40 is the PCA9685


# --- pure conversions, tested without a bus ---------------------------------------------------
def current_lsb_for(max_current_a: float) -> float:
    """The smallest 1-2-5 value (amps per count) not below ``max_current_a / 2**15``.

    Raises:
        ConfigError: ``max_current_a`` is not a positive finite number.
    """
    if not (math.isfinite(max_current_a) and max_current_a > 0):
        raise ConfigError(f"INA219: max_current_a must be positive, got {max_current_a}")
    minimum = max_current_a / 2**15
    decade = 10.0 ** math.floor(math.log10(minimum))
    for step in (1.0, 2.0, 5.0, 10.0):
        candidate = step * decade
        # A relative tolerance so 1e-4 is not rejected for being 1e-4 * (1 + 1 ulp).
        if candidate >= minimum * (1 - 1e-12):
            return float(f"{candidate:.6g}")
    raise AssertionError("unreachable: 10 * decade always exceeds the minimum")


def calibration_value(current_lsb_a: float, shunt_ohms: float) -> int:
    """``trunc(0.04096 / (Current_LSB * R_shunt))``, the CALIBRATION register (bit 0 is void).

    The tiny tolerance keeps floating-point representation from turning the datasheet's own
    example (0.1 mA, 0.1 ohm -> exactly 4096) into 4095.

    Raises:
        ConfigError: the value does not fit the register (2..0xFFFE, even).
    """
    exact = CAL_SCALE / (current_lsb_a * shunt_ohms)
    cal = int(exact * (1 + 1e-9)) & ~1
    if not 2 <= cal <= 0xFFFE:
        raise ConfigError(
            f"INA219: calibration {cal} (from current LSB {current_lsb_a} A and shunt "
            f"{shunt_ohms} ohm) does not fit the 16-bit register; change max_current_a"
        )
    return cal


def pga_bits_for(max_shunt_v: float) -> int:
    """The PGA setting (0..3) with the smallest range covering ``max_shunt_v``.

    Raises:
        ConfigError: the expected shunt voltage exceeds the largest range (320 mV).
    """
    for bits, full_scale in enumerate(PGA_RANGES_V):
        if max_shunt_v <= full_scale + 1e-12:
            return bits
    raise ConfigError(
        f"INA219: max_current_a * shunt_ohms = {max_shunt_v * 1e3:.1f} mV exceeds the 320 mV "
        "shunt range"
    )


def config_word(*, bus_range_v: int, pga_bits: int, adc_samples: int) -> int:
    """The CONFIG value for continuous shunt and bus conversion."""
    brng = CONFIG_BRNG if bus_range_v == 32 else 0
    adc = ADC_CODES[adc_samples]
    return (
        brng
        | (pga_bits << CONFIG_PG_SHIFT)
        | (adc << CONFIG_BADC_SHIFT)
        | (adc << CONFIG_SADC_SHIFT)
        | MODE_SHUNT_BUS_CONTINUOUS
    )


def shunt_voltage_v(raw: int) -> float:
    """SHUNT register word (two's complement, 10 uV per count) -> volts."""
    return _s16(raw) * SHUNT_LSB_V


def bus_voltage_v(raw: int) -> tuple[float, bool, bool]:
    """BUS register word -> (volts, conversion ready, math overflow)."""
    return (raw >> 3) * BUS_LSB_V, bool(raw & BUS_CNVR), bool(raw & BUS_OVF)


def _s16(raw: int) -> int:
    raw &= 0xFFFF
    return raw - 0x10000 if raw & 0x8000 else raw


@dataclass(frozen=True)
class INA219Reading(Reading):
    bus_voltage_v: float
    shunt_voltage_v: float
    current_a: float
    power_w: float
    #: The chip's math overflowed: current or power is clipped and must not be trusted.
    overflow: bool


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"INA219: option {name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"INA219: option {name} must be positive and finite, got {value}")
    return float(value)


class INA219(I2CDevice):
    """Battery bus monitor.

    Args:
        bus: the shared I2C bus.
        address: 0x40..0x4F (0x41 on the reference bench).
        shunt_ohms: the shunt resistor on the board (0.1 ohm on common breakouts).
        max_current_a: the largest current to measure; sets the current LSB and PGA range.
        bus_range_v: 16 or 32 (the bus ADC's full scale).
        adc_samples: 1..128 (power of two): samples averaged per conversion.

    Raises:
        ConfigError: an option is out of range (the message names it).
    """

    part: ClassVar[str] = "INA219"

    def __init__(
        self,
        bus: I2CBus,
        address: int = DEFAULT_ADDRESS,
        *,
        name: str,
        clock: Clock,
        shunt_ohms: float = 0.1,
        max_current_a: float = 3.2,
        bus_range_v: int = 32,
        adc_samples: int = 1,
    ) -> None:
        if isinstance(address, bool) or not isinstance(address, int) or not 0x40 <= address <= 0x4F:
            raise ConfigError(f"INA219 {name}: option address must be 0x40..0x4F, got {address!r}")
        super().__init__(bus, address, name=name, clock=clock)
        self.shunt_ohms = _positive("shunt_ohms", shunt_ohms)
        self.max_current_a = _positive("max_current_a", max_current_a)
        if bus_range_v not in (16, 32) or isinstance(bus_range_v, bool):
            raise ConfigError(
                f"{self.where}: option bus_range_v must be 16 or 32, got {bus_range_v}"
            )
        if adc_samples not in ADC_CODES or isinstance(adc_samples, bool):
            raise ConfigError(
                f"{self.where}: option adc_samples must be one of {sorted(ADC_CODES)}, "
                f"got {adc_samples}"
            )
        self.current_lsb_a = current_lsb_for(self.max_current_a)
        self.power_lsb_w = 20 * self.current_lsb_a
        self.calibration = calibration_value(self.current_lsb_a, self.shunt_ohms)
        self._converted = False
        pga = pga_bits_for(self.max_current_a * self.shunt_ohms)
        self.config = config_word(bus_range_v=bus_range_v, pga_bits=pga, adc_samples=adc_samples)

    # --- register access: 16-bit big-endian words ---------------------------------------------
    def _read_word(self, register: int) -> int:
        data = self._read(register, 2)
        return (data[0] << 8) | data[1]

    def _write_word(self, register: int, value: int) -> None:
        self._write(register, bytes([(value >> 8) & 0xFF, value & 0xFF]))

    # --- Device ----------------------------------------------------------------------------------
    def probe(self) -> str:
        """Identify the chip by CONFIG without writing anything.

        With no ID register, the choice is between resetting the chip (and reading 0x399F) or
        reading what is there. A probe on a running spacecraft must not reset a configured
        monitor, so CONFIG is accepted if it holds either the power-on value 0x399F or exactly
        the value this driver writes; BUS bit 2, reserved and always 0, is checked as well.

        Raises:
            DeviceIdentityError: CONFIG holds anything else, or BUS bit 2 is set.
            BusError: the chip did not answer.
        """
        config = self._read_word(REG_CONFIG)
        if config == CONFIG_RESET_VALUE:
            how = "power-on value"
        elif config == self.config:
            how = "configured by this driver"
        else:
            raise DeviceIdentityError(
                f"{self.where}: CONFIG reads 0x{config:04X}; expected 0x{CONFIG_RESET_VALUE:04X} "
                f"(reset) or 0x{self.config:04X} (configured)"
            )
        bus = self._read_word(REG_BUS_VOLTAGE)
        if bus & BUS_RESERVED:
            raise DeviceIdentityError(f"{self.where}: BUS reserved bit 2 set (0x{bus:04X})")
        return f"INA219 (CONFIG 0x{config:04X}, {how})"

    def configure(self) -> None:
        """Write CALIBRATION, then CONFIG (continuous shunt and bus conversion)."""
        with self.bus.lock:
            self._write_word(REG_CALIBRATION, self.calibration)
            self._write_word(REG_CONFIG, self.config)
        self._converted = False

    def reset(self) -> None:
        """Software reset (CONFIG.RST, self-clearing: every register to its default), then
        configure again."""
        with self.bus.lock:
            self._write_word(REG_CONFIG, CONFIG_RST)
            self.configure()

    def read(self) -> INA219Reading:
        """Bus voltage, shunt voltage, current and power.

        CALIBRATION is read back first: a brown-out resets the chip to CAL = 0, after which it
        reports zero current forever. That is a power-FDIR blind spot, so it is an error here.

        Raises:
            DeviceStateError: CALIBRATION does not hold this driver's value (not configured, or
                the chip reset since).
            BusError: a transfer failed.
        """
        with self.bus.lock:
            cal = self._read_word(REG_CALIBRATION)
            if cal != self.calibration:
                raise DeviceStateError(
                    f"{self.where}: CALIBRATION reads {cal}, expected {self.calibration} "
                    "(not configured, or the chip reset); configure it again"
                )
            bus_raw = self._read_word(REG_BUS_VOLTAGE)
            shunt_raw = self._read_word(REG_SHUNT_VOLTAGE)
            current_raw = self._read_word(REG_CURRENT)
            power_raw = self._read_word(REG_POWER)  # read last: it clears CNVR
        volts, ready, overflow = bus_voltage_v(bus_raw)
        if not ready and not self._converted:
            # Straight after configure the registers still hold their reset zeros: a 0 V bus
            # reading would look like a dead battery to fault protection.
            raise DeviceStateError(f"{self.where}: no conversion finished since configure")
        self._converted = True
        return INA219Reading(
            bus_voltage_v=volts,
            shunt_voltage_v=shunt_voltage_v(shunt_raw),
            current_a=_s16(current_raw) * self.current_lsb_a,
            power_w=power_raw * self.power_lsb_w,
            overflow=overflow,
        )
