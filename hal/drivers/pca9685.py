"""NXP PCA9685: 16-channel, 12-bit PWM for valves, pyro-arm relays and servo release mechanisms.

Each channel has four registers (LEDn_ON_L/H, LEDn_OFF_L/H, little-endian 12-bit counts within a
4096-tick period); bit 4 of ON_H forces the output fully on, bit 4 of OFF_H fully off, and full
off wins. The period comes from PRE_SCALE, which the chip only accepts while asleep. The chip has
no ID register; see :meth:`PCA9685.probe`.

Set-points are typed (channel 0..15, duty 0..1, pulse in microseconds within the period) and
checked before anything reaches the bus, because an actuator must never be driven by a value
that was silently clipped.
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
    "PCA9685",
    "PCA9685Reading",
    "channel_registers",
    "duty_from_registers",
    "prescale_for",
    "pulse_ticks",
    "pwm_hz_for",
]

# --- register map (datasheet table 3) ---------------------------------------------------------
REG_MODE1 = 0x00
REG_MODE2 = 0x01
REG_SUBADR1 = 0x02
REG_ALLCALLADR = 0x05
REG_LED0_ON_L = 0x06
REG_ALL_LED_ON_L = 0xFA
REG_ALL_LED_OFF_H = 0xFD
REG_PRE_SCALE = 0xFE

MODE1_RESTART = 1 << 7
MODE1_EXTCLK = 1 << 6
MODE1_AI = 1 << 5
MODE1_SLEEP = 1 << 4
MODE1_ALLCALL = 1 << 0
MODE2_RESERVED = 0b1110_0000
FULL_BIT = 1 << 4  # in ON_H (full on) and OFF_H (full off)

#: SUBADR1..3 and ALLCALLADR power-on values; this driver never writes them.
IDENTITY_VALUES = bytes([0xE2, 0xE4, 0xE8, 0xE0])

CHANNELS = 16
TICKS = 4096
OSCILLATOR_HZ = 25e6
PWM_HZ_MIN, PWM_HZ_MAX = 24.0, 1526.0
PRESCALE_MIN, PRESCALE_MAX = 3, 255
WAKE_SETTLE_S = 500e-6  # oscillator start-up before RESTART

DEFAULT_ADDRESS = 0x40


# --- pure conversions, tested without a bus ---------------------------------------------------
def prescale_for(pwm_hz: float) -> int:
    """``round(25 MHz / (4096 * f)) - 1`` clamped to the hardware's 3..255 (50 Hz -> 121)."""
    value = round(OSCILLATOR_HZ / (TICKS * pwm_hz)) - 1
    return max(PRESCALE_MIN, min(PRESCALE_MAX, value))


def pwm_hz_for(prescale: int) -> float:
    """The output frequency a PRE_SCALE value actually gives."""
    return OSCILLATOR_HZ / (TICKS * (prescale + 1))


def pulse_ticks(pulse_us: float, pwm_hz: float) -> int:
    """Ticks of a 4096-tick period for a pulse (1.0/1.5/2.0 ms at 50 Hz -> ~205/307/410)."""
    return round(pulse_us * TICKS * pwm_hz / 1e6)


def channel_registers(on: int, off: int, *, full_on: bool = False, full_off: bool = False) -> bytes:
    """LEDn_ON_L, ON_H, OFF_L, OFF_H for counts ``on`` and ``off`` (0..4095)."""
    return bytes(
        [
            on & 0xFF,
            ((on >> 8) & 0x0F) | (FULL_BIT if full_on else 0),
            off & 0xFF,
            ((off >> 8) & 0x0F) | (FULL_BIT if full_off else 0),
        ]
    )


def duty_from_registers(regs: bytes) -> float:
    """Duty fraction of a channel from its four registers; full off wins over full on.

    Equal ON and OFF counts give 0: the output is switched on and off at the same tick.
    """
    on_l, on_h, off_l, off_h = regs[:4]
    if off_h & FULL_BIT:
        return 0.0
    if on_h & FULL_BIT:
        return 1.0
    on = ((on_h & 0x0F) << 8) | on_l
    off = ((off_h & 0x0F) << 8) | off_l
    return ((off - on) % TICKS) / TICKS


@dataclass(frozen=True)
class PCA9685Reading(Reading):
    pwm_hz: float
    #: Commanded duty fraction of channels 0..15, read back from the chip's registers.
    duty: tuple[float, ...]


class PCA9685(I2CDevice):
    """PWM actuator driver.

    Args:
        bus: the shared I2C bus.
        address: 0x40..0x7F.
        pwm_hz: output frequency, 24..1526 Hz (50 Hz for servos).

    Raises:
        ConfigError: an option is out of range (the message names it).
    """

    part: ClassVar[str] = "PCA9685"
    actuator: ClassVar[bool] = True

    def __init__(
        self,
        bus: I2CBus,
        address: int = DEFAULT_ADDRESS,
        *,
        name: str,
        clock: Clock,
        pwm_hz: float = 50.0,
    ) -> None:
        if isinstance(address, bool) or not isinstance(address, int) or not 0x40 <= address <= 0x7F:
            raise ConfigError(f"PCA9685 {name}: option address must be 0x40..0x7F, got {address!r}")
        super().__init__(bus, address, name=name, clock=clock)
        if (
            isinstance(pwm_hz, bool)
            or not isinstance(pwm_hz, int | float)
            or not PWM_HZ_MIN <= pwm_hz <= PWM_HZ_MAX
        ):
            raise ConfigError(
                f"{self.where}: option pwm_hz must be {PWM_HZ_MIN:g}..{PWM_HZ_MAX:g} Hz, "
                f"got {pwm_hz!r}"
            )
        self.prescale = prescale_for(float(pwm_hz))
        #: The frequency PRE_SCALE really gives (50 Hz asks for 121 -> 50.03 Hz).
        self.pwm_hz = pwm_hz_for(self.prescale)

    # --- Device ----------------------------------------------------------------------------------
    def probe(self) -> str:
        """Identify the chip without changing any output.

        With no ID register, reset values are the evidence, but MODE1 changes as soon as anyone
        configures the chip. SUBADR1..3 and ALLCALLADR (0xE2 0xE4 0xE8 0xE0) only change if
        software programs sub-addresses, which this framework never does, so they are checked
        together with MODE2's reserved bits 7:5 (always 0). Each register is read on its own:
        on a freshly powered chip auto-increment is off and a block read would repeat MODE1.

        Raises:
            DeviceIdentityError: the identity registers hold other values.
            BusError: the chip did not answer.
        """
        mode1 = self._read_u8(REG_MODE1)
        mode2 = self._read_u8(REG_MODE2)
        ident = bytes(self._read_u8(REG_SUBADR1 + i) for i in range(4))
        if ident != IDENTITY_VALUES or mode2 & MODE2_RESERVED:
            raise DeviceIdentityError(
                f"{self.where}: SUBADR1..ALLCALLADR read {ident.hex(' ')} and MODE2 0x{mode2:02X}; "
                f"expected {IDENTITY_VALUES.hex(' ')} and MODE2 bits 7:5 clear"
            )
        state = "asleep" if mode1 & MODE1_SLEEP else "running"
        return f"PCA9685 (MODE1 0x{mode1:02X} {state}, MODE2 0x{mode2:02X})"

    def configure(self) -> None:
        """Set the PWM frequency and start the oscillator; channel set-points are kept.

        The datasheet's sequence: sleep, write PRE_SCALE (ignored while awake), wake, wait 500 us
        for the oscillator, then write RESTART to resume the channels and AI so set-points go
        out as one 4-byte burst.

        Raises:
            BusError: a transfer failed.
        """
        with self.bus.lock:
            mode1 = self._read_u8(REG_MODE1) & ~(MODE1_RESTART | MODE1_EXTCLK) & 0xFF
            self._write_u8(REG_MODE1, mode1 | MODE1_SLEEP)
            self._write_u8(REG_PRE_SCALE, self.prescale)
            awake = (mode1 & ~MODE1_SLEEP) | MODE1_AI
            self._write_u8(REG_MODE1, awake)
            self.clock.sleep(WAKE_SETTLE_S)
            self._write_u8(REG_MODE1, awake | MODE1_RESTART)

    def reset(self) -> None:
        """Every output off, then configure again. (The chip's SWRST is a general call that
        would reset every PCA96xx on the bus, so it is not used.)"""
        with self.bus.lock:
            self.configure()
            self.set_all_off()

    def read(self) -> PCA9685Reading:
        """PWM frequency and every channel's duty, read back from the chip.

        Raises:
            DeviceStateError: the chip is asleep or has lost auto-increment (it reset since
                :meth:`configure`), so its outputs are not what was commanded.
            BusError: a transfer failed.
        """
        with self.bus.lock:
            self._check_running()
            leds = self._read(REG_LED0_ON_L, 4 * CHANNELS)
            prescale = self._read_u8(REG_PRE_SCALE)
        duty = tuple(duty_from_registers(leds[4 * n : 4 * n + 4]) for n in range(CHANNELS))
        return PCA9685Reading(pwm_hz=pwm_hz_for(prescale), duty=duty)

    # --- set-points ------------------------------------------------------------------------------
    def set_duty(self, channel: int, fraction: float) -> None:
        """Drive ``channel`` at ``fraction`` of the period (0 and 1 use the full off/on bits).

        Raises:
            ConfigError: channel not 0..15 or fraction not within 0..1.
            DeviceStateError: the chip is not configured (asleep or auto-increment off).
            BusError: a transfer failed.
        """
        self._check_channel(channel)
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float)
            or not (math.isfinite(fraction) and 0.0 <= fraction <= 1.0)
        ):
            raise ConfigError(
                f"{self.where}: duty for channel {channel} must be 0..1, got {fraction!r}"
            )
        if fraction == 0.0:
            self.full_off(channel)
        elif fraction == 1.0:
            self.full_on(channel)
        else:
            off = max(1, min(TICKS - 1, round(fraction * TICKS)))
            self._set_channel(channel, channel_registers(0, off))

    def set_pulse_us(self, channel: int, pulse_us: float) -> None:
        """A servo-style pulse of ``pulse_us`` microseconds at the start of each period.

        Raises:
            ConfigError: channel not 0..15, or the pulse is negative or longer than the period.
            DeviceStateError: the chip is not configured.
            BusError: a transfer failed.
        """
        self._check_channel(channel)
        period_us = 1e6 / self.pwm_hz
        if (
            isinstance(pulse_us, bool)
            or not isinstance(pulse_us, int | float)
            or not (math.isfinite(pulse_us) and 0.0 <= pulse_us <= period_us)
        ):
            raise ConfigError(
                f"{self.where}: pulse for channel {channel} must be 0..{period_us:.0f} us at "
                f"{self.pwm_hz:.2f} Hz, got {pulse_us!r}"
            )
        ticks = pulse_ticks(float(pulse_us), self.pwm_hz)
        if ticks <= 0:
            self.full_off(channel)
        elif ticks >= TICKS:
            self.full_on(channel)
        else:
            self._set_channel(channel, channel_registers(0, ticks))

    def full_on(self, channel: int) -> None:
        """Output constantly on (clears full-off, which would otherwise win)."""
        self._check_channel(channel)
        self._set_channel(channel, channel_registers(0, 0, full_on=True))

    def full_off(self, channel: int) -> None:
        """Output constantly off."""
        self._check_channel(channel)
        self._set_channel(channel, channel_registers(0, 0, full_off=True))

    def set_all_off(self) -> None:
        """Every channel off in one write (ALL_LED_OFF_H full-off bit): the safing action.

        Works even when the chip has reset, because it is a single register write.

        Raises:
            BusError: the transfer failed.
        """
        self._write_u8(REG_ALL_LED_OFF_H, FULL_BIT)

    def channel_duty(self, channel: int) -> float:
        """The duty fraction the chip holds for ``channel``.

        Raises:
            ConfigError: channel not 0..15.
            DeviceStateError: the chip is not configured.
            BusError: a transfer failed.
        """
        self._check_channel(channel)
        with self.bus.lock:
            self._check_running()
            regs = self._read(REG_LED0_ON_L + 4 * channel, 4)
        return duty_from_registers(regs)

    # --- helpers ---------------------------------------------------------------------------------
    def _check_channel(self, channel: int) -> None:
        if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < CHANNELS:
            raise ConfigError(f"{self.where}: channel must be 0..{CHANNELS - 1}, got {channel!r}")

    def _check_running(self) -> None:
        mode1 = self._read_u8(REG_MODE1)
        if mode1 & MODE1_SLEEP or not mode1 & MODE1_AI:
            raise DeviceStateError(
                f"{self.where}: MODE1 is 0x{mode1:02X} (asleep or auto-increment off: not "
                "configured, or the chip reset); configure it again"
            )

    def _set_channel(self, channel: int, regs: bytes) -> None:
        with self.bus.lock:
            self._check_running()
            self._write(REG_LED0_ON_L + 4 * channel, regs)
