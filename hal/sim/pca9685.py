"""A register model of the NXP PCA9685 16-channel PWM controller, with recorded outputs.

Rules enforced (datasheet rev. 4, sections 7.3.1 and 7.3.5, table 3):

* Power-on: MODE1 0x11 (asleep, ALLCALL), MODE2 0x04, SUBADR1..3 0xE2 0xE4 0xE8, ALLCALLADR 0xE0,
  every LEDn_OFF_H 0x10 (full off), PRE_SCALE 0x1E (200 Hz).
* Auto-increment only with MODE1.AI set: without it a burst reads or writes the same register
  again and again (so the last byte of a burst write wins). With AI, register 0x45 (LED15_OFF_H)
  rolls over to MODE1 and 0xFE (PRE_SCALE) rolls over to 0x00, as the datasheet states.
* PRE_SCALE writes are ignored unless MODE1.SLEEP = 1; values below 3 are forced to 3.
* ALL_LED_ON/OFF (0xFA..0xFD) write that byte of every channel and read back zero.
* Reserved bits 7:5 of LEDn_ON_H/OFF_H and MODE2 read 0; TestMode 0xFF and the reserved block
  0x46..0xF9 ignore writes.
* RESTART (MODE1 bit 7) is set when the chip is put to sleep; writing 1 clears it and resumes the
  channels, writing 0 does nothing. After waking with RESTART still set, the outputs stay off until
  RESTART is written (or a channel is written, which also clears it). A RESTART earlier than
  500 us after waking is recorded in :attr:`timing_violations`: the oscillator is not yet stable.
* While asleep every output is off.

Outputs change at the end of a write transaction (the STOP, with MODE2.OCH = 0), so a 4-byte
channel write is one change in :attr:`output_history`, not four. INVRT/OUTDRV/OE are not modelled:
:meth:`duty` is the internal PWM signal.
"""

from __future__ import annotations

from typing import ClassVar

from hal.clock import Clock
from hal.sim.environment import Environment
from hal.sim.register import RegisterModel, Transfer

__all__ = ["PCA9685Model"]

MODE1, MODE2, PRE_SCALE = 0x00, 0x01, 0xFE
LED0, LED15_OFF_H = 0x06, 0x45
ALL_LED_ON_L, ALL_LED_OFF_H = 0xFA, 0xFD
TEST_MODE = 0xFF
RESTART, AI, SLEEP = 0x80, 0x20, 0x10
FULL = 0x10
OSCILLATOR_HZ = 25e6
WAKE_SETTLE_S = 500e-6

_RESET: dict[int, int] = {MODE1: 0x11, MODE2: 0x04, 0x02: 0xE2, 0x03: 0xE4, 0x04: 0xE8, 0x05: 0xE0}
_RESET.update({LED0 + 4 * n + 3: FULL for n in range(16)})
_RESET[PRE_SCALE] = 0x1E


class PCA9685Model(RegisterModel):
    """The PCA9685 as the driver sees it, plus what its 16 outputs are doing.

    Attributes:
        output_history: ``(time, channel, duty)`` for every output change, for the mission
            simulator (which turns duties into valve and pyro states) and for tests. (``history``
            is the base class's log of register transfers.)
        timing_violations: descriptions of sequences the real chip would not tolerate.
    """

    part: ClassVar[str] = "PCA9685"
    default_address: ClassVar[int] = 0x40
    reset_values: ClassVar[dict[int, int]] = _RESET

    def __init__(self, env: Environment, *, clock: Clock) -> None:
        self.output_history: list[tuple[float, int, float]] = []
        self.timing_violations: list[str] = []
        self._outputs = [0.0] * 16
        self._halted = False  # woke with RESTART pending: outputs off until restarted
        self._woke_at = -1.0
        super().__init__(env, clock=clock)

    def on_reset(self) -> None:
        self._halted = False
        self._woke_at = -1.0
        self._refresh_outputs()

    # --- register rules --------------------------------------------------------------------------
    def next_register(self, register: int) -> int:
        if not self.regs[MODE1] & AI:
            return register
        if register in (LED15_OFF_H, PRE_SCALE):
            return MODE1
        return (register + 1) & 0xFF

    def writable(self, register: int, value: int) -> bool:
        if register == PRE_SCALE:
            return bool(self.regs[MODE1] & SLEEP)
        return not (LED15_OFF_H < register < ALL_LED_ON_L or register == TEST_MODE)

    def _apply(self, register: int, value: int, mode1_before: int) -> None:
        """Side effects of one byte stored in ``register`` (``regs`` already holds it)."""
        if register == MODE1:
            self._write_mode1(value, mode1_before)
        elif register == MODE2:
            self.regs[MODE2] = value & 0x1F
        elif register == PRE_SCALE:
            self.regs[PRE_SCALE] = max(3, value)  # the hardware forces a minimum of 3
        elif LED0 <= register <= LED15_OFF_H:
            if (register - LED0) % 2 == 1:  # ON_H / OFF_H: bits 7:5 are read-only zero
                self.regs[register] = value & 0x1F
            self._channel_written()
        elif ALL_LED_ON_L <= register <= ALL_LED_OFF_H:
            offset = register - ALL_LED_ON_L
            byte = value & 0x1F if offset % 2 else value
            for n in range(16):
                self.regs[LED0 + 4 * n + offset] = byte
            self.regs[register] = 0  # write-only: reads zero
            self._channel_written()

    def _write_mode1(self, value: int, old: int) -> None:
        now = self.clock.monotonic()
        restart_pending = bool(old & RESTART)
        new = value & 0x7F
        if new & SLEEP and not old & SLEEP:
            restart_pending = True  # going to sleep arms RESTART
        if not new & SLEEP and old & SLEEP:
            self._woke_at = now
            self._halted = restart_pending
        if value & RESTART and restart_pending:  # write 1 to clear, and resume the channels
            if not new & SLEEP and now - self._woke_at < WAKE_SETTLE_S - 1e-12:
                self.timing_violations.append(
                    f"t={now:.6f}: RESTART {1e6 * (now - self._woke_at):.0f} us after wake "
                    f"(needs {1e6 * WAKE_SETTLE_S:.0f} us)"
                )
            restart_pending = False
            self._halted = False
        self.regs[MODE1] = new | (RESTART if restart_pending else 0)

    def _channel_written(self) -> None:
        # Writing a PWM register clears RESTART (MODE2.OCH = 0): the new values run.
        self.regs[MODE1] &= ~RESTART & 0xFF
        self._halted = False

    # --- bus side: outputs change once per transaction ------------------------------------------
    def write(self, register: int, data: bytes) -> None:
        reg = self.register_for(register)
        self.history.append(Transfer(self.clock.monotonic(), "w", reg, bytes(data)))
        for value in data:
            if self.writable(reg, value):
                mode1_before = self.regs[MODE1]
                self.regs[reg] = value & 0xFF
                self._apply(reg, value & 0xFF, mode1_before)
            reg = self.next_register(reg)
        self._refresh_outputs()

    def _refresh_outputs(self) -> None:
        now = self.clock.monotonic()
        for channel in range(16):
            duty = self._compute_duty(channel)
            if duty != self._outputs[channel]:
                self._outputs[channel] = duty
                self.output_history.append((now, channel, duty))

    def _compute_duty(self, channel: int) -> float:
        if self.regs[MODE1] & SLEEP or self._halted:
            return 0.0
        on_l, on_h, off_l, off_h = self.regs[LED0 + 4 * channel : LED0 + 4 * channel + 4]
        if off_h & FULL:
            return 0.0
        if on_h & FULL:
            return 1.0
        on = ((on_h & 0x0F) << 8) | on_l
        off = ((off_h & 0x0F) << 8) | off_l
        return ((off - on) % 4096) / 4096

    # --- what the outputs do ---------------------------------------------------------------------
    def duty(self, channel: int) -> float:
        """Fraction of each period channel ``channel`` is on (0 while asleep or halted)."""
        return self._outputs[channel]

    @property
    def pwm_hz(self) -> float:
        """Output frequency from PRE_SCALE and the 25 MHz internal oscillator."""
        return OSCILLATOR_HZ / (4096 * (self.regs[PRE_SCALE] + 1))

    def pulse_us(self, channel: int) -> float:
        """Length of the channel's on-pulse in microseconds."""
        return self.duty(channel) * 1e6 / self.pwm_hz
