"""The base of every simulated I2C chip: a register file with the rules real silicon enforces.

A subclass declares its reset values and read-only registers and overrides the hooks where the
chip has behaviour (a write that starts a conversion, a register that ignores writes in the wrong
mode, data registers that latch physical values). The base handles auto-increment, read-only
enforcement, stuck values and the transaction history that tests assert on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from hal.clock import Clock
from hal.sim.environment import Environment

__all__ = ["RegisterModel", "Transfer"]


@dataclass(frozen=True)
class Transfer:
    """One register access as the chip saw it, for tests and ``spy``-style logs."""

    time: float
    op: str  # "r" or "w"
    register: int
    data: bytes


class RegisterModel:
    """A 256-register I2C device model.

    Args:
        env: the physical inputs.
        clock: time, for conversion delays and output histories.
    """

    part: ClassVar[str] = "device"
    default_address: ClassVar[int] = 0x00
    #: Power-on values of registers that are not zero.
    reset_values: ClassVar[dict[int, int]] = {}
    #: Registers a write cannot change (status, data, chip id, calibration).
    read_only: ClassVar[frozenset[int]] = frozenset()
    history_length: ClassVar[int] = 256

    def __init__(self, env: Environment, *, clock: Clock) -> None:
        self.env = env
        self.clock = clock
        self.regs = bytearray(256)
        self.history: deque[Transfer] = deque(maxlen=self.history_length)
        self.stuck = False
        self.power_on_reset()

    # --- behaviour hooks -------------------------------------------------------------------------
    def power_on_reset(self) -> None:
        """Load the power-on register values (also what a soft reset does, unless overridden)."""
        self.regs[:] = bytes(256)
        for reg, value in self.reset_values.items():
            self.regs[reg] = value
        self.on_reset()

    def on_reset(self) -> None:
        """Extra state to clear on reset (calibration constants are re-written here)."""

    def begin_read(self, register: int) -> None:
        """Called once at the start of each read transaction: latch sensor data here."""

    def on_write(self, register: int, value: int) -> None:
        """Called after a byte is written (read-only bits already enforced)."""

    def next_register(self, register: int) -> int:
        """Auto-increment rule: the register the next byte of a burst comes from."""
        return (register + 1) & 0xFF

    def register_for(self, register: int) -> int:
        """Decode a register address byte (strip flag bits a chip uses for auto-increment)."""
        return register & 0xFF

    def writable(self, register: int, value: int) -> bool:
        """False where the chip silently ignores the write (read-only, wrong mode)."""
        return register not in self.read_only

    # --- the bus side ----------------------------------------------------------------------------
    def read(self, register: int, length: int) -> bytes:
        """A burst read of ``length`` bytes starting at ``register``."""
        reg = self.register_for(register)
        if not self.stuck:
            self.begin_read(reg)
        out = bytearray()
        for _ in range(length):
            out.append(self.regs[reg])
            reg = self.next_register(reg)
        self.history.append(
            Transfer(self.clock.monotonic(), "r", self.register_for(register), bytes(out))
        )
        return bytes(out)

    def write(self, register: int, data: bytes) -> None:
        """A burst write starting at ``register``."""
        reg = self.register_for(register)
        self.history.append(Transfer(self.clock.monotonic(), "w", reg, bytes(data)))
        for value in data:
            if self.writable(reg, value):
                self.regs[reg] = value & 0xFF
                self.on_write(reg, value & 0xFF)
            reg = self.next_register(reg)

    # --- helpers for subclasses ------------------------------------------------------------------
    def set_u16_be(self, register: int, value: int) -> None:
        value &= 0xFFFF
        self.regs[register] = value >> 8
        self.regs[register + 1] = value & 0xFF

    def set_u16_le(self, register: int, value: int) -> None:
        value &= 0xFFFF
        self.regs[register] = value & 0xFF
        self.regs[register + 1] = value >> 8

    def u16_be(self, register: int) -> int:
        return (self.regs[register] << 8) | self.regs[register + 1]

    def u16_le(self, register: int) -> int:
        return self.regs[register] | (self.regs[register + 1] << 8)
