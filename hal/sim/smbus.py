"""A simulated I2C bus with the interface of ``smbus2.SMBus``.

Drivers get an :class:`hal.i2c.I2CBus` wrapped around this object exactly as they would around a
real ``smbus2.SMBus``; the difference is only where the bytes go. Faults are injected per address
and fail the way the Linux kernel fails: ``OSError`` with errno 121 (no ACK), 110 (timeout) or 5.
"""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hal.sim.register import RegisterModel

__all__ = ["BusFault", "SimSMBus"]

_FAULT_ERRNO = {"no_ack": errno.EREMOTEIO, "timeout": errno.ETIMEDOUT, "io": errno.EIO}


@dataclass
class BusFault:
    """A fault on one address.

    Args:
        kind: ``"no_ack"``, ``"timeout"`` or ``"io"``.
        count: fail this many transfers then clear (``None``: until cleared).
        rate: probability that a transfer fails, drawn from the bus's seeded generator.
    """

    kind: str
    count: int | None = None
    rate: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in _FAULT_ERRNO:
            raise ValueError(f"unknown bus fault {self.kind!r}; one of {sorted(_FAULT_ERRNO)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {self.rate}")


class SimSMBus:
    """An ``smbus2.SMBus`` stand-in routing transfers to register models by address."""

    def __init__(self, bus: int = 1, *, seed: int = 0) -> None:
        self.bus = bus
        self.devices: dict[int, RegisterModel] = {}
        self.faults: dict[int, BusFault] = {}
        self._rng = random.Random(seed)
        self.closed = False

    # --- wiring and faults -----------------------------------------------------------------------
    def attach(self, address: int, model: RegisterModel) -> RegisterModel:
        if address in self.devices:
            raise ValueError(f"i2c-{self.bus}: address 0x{address:02X} already taken")
        self.devices[address] = model
        return model

    def detach(self, address: int) -> None:
        self.devices.pop(address, None)

    def inject(self, address: int, fault: BusFault) -> None:
        self.faults[address] = fault

    def clear_fault(self, address: int) -> None:
        self.faults.pop(address, None)

    def _device(self, address: int) -> RegisterModel:
        if self.closed:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        fault = self.faults.get(address)
        if fault is not None and (fault.rate >= 1.0 or self._rng.random() < fault.rate):
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    del self.faults[address]
            code = _FAULT_ERRNO[fault.kind]
            raise OSError(code, os.strerror(code))
        model = self.devices.get(address)
        if model is None:
            raise OSError(errno.EREMOTEIO, os.strerror(errno.EREMOTEIO))
        return model

    # --- the smbus2.SMBus interface --------------------------------------------------------------
    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        return self._device(i2c_addr).read(register, 1)[0]

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        self._device(i2c_addr).write(register, bytes([value & 0xFF]))

    def read_word_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        data = self._device(i2c_addr).read(register, 2)
        return data[0] | (data[1] << 8)  # SMBus words are little-endian on the wire

    def write_word_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        self._device(i2c_addr).write(register, bytes([value & 0xFF, (value >> 8) & 0xFF]))

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        if not 0 < length <= 32:
            raise ValueError("Desired block length over 32 bytes")  # smbus2's own refusal
        return list(self._device(i2c_addr).read(register, length))

    def write_i2c_block_data(
        self, i2c_addr: int, register: int, data: Iterable[int], force: bool | None = None
    ) -> None:
        payload = bytes(int(b) & 0xFF for b in data)
        if len(payload) > 32:
            raise ValueError("Data length cannot exceed 32 bytes")
        self._device(i2c_addr).write(register, payload)

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        """Combined transfers: a write of the register address followed by reads or writes."""
        register: int | None = None
        for msg in i2c_msgs:
            model = self._device(msg.addr)
            if msg.flags & 0x0001:  # I2C_M_RD
                start = register if register is not None else 0
                data = model.read(start, msg.len)
                for i, b in enumerate(data):
                    msg.buf[i] = b
            else:
                raw = bytes(msg)
                if not raw:
                    continue
                register = raw[0]
                if len(raw) > 1:
                    model.write(register, raw[1:])

    def close(self) -> None:
        self.closed = True
