"""An I2C bus over any smbus2.SMBus-compatible object.

One :class:`I2CBus` per bus number, shared by every driver on that bus behind one lock (smbus2's
own advice: the kernel serialises transfers, but a driver's read-modify-write must not interleave
with another's). The bus owns retries and the mapping of kernel errors into the HAL's tree, so no
driver repeats that logic. The object beneath may be ``smbus2.SMBus`` on the board or
``hal.sim.SimSMBus`` in CI: drivers cannot tell which.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from hal.errors import BusError, ConfigError, bus_error_from_oserror

__all__ = ["I2CBus", "I2CStats", "SMBusLike"]

#: The SMBus block transfer limit; longer reads are split (every reference chip auto-increments).
SMBUS_BLOCK_MAX = 32


class SMBusLike(Protocol):
    """The part of smbus2.SMBus's interface the HAL uses."""

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int: ...

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None: ...

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]: ...

    def write_i2c_block_data(
        self, i2c_addr: int, register: int, data: list[int], force: bool | None = None
    ) -> None: ...

    def i2c_rdwr(self, *i2c_msgs: Any) -> None: ...

    def close(self) -> None: ...


@dataclass
class I2CStats:
    """Counters a ground operator sees in telemetry: how healthy is this bus?"""

    transfers: int = 0
    retries: int = 0
    failures: int = 0
    errors_by_errno: dict[int, int] = field(default_factory=dict)


class I2CBus:
    """A shared, locked I2C bus with bounded retries.

    Args:
        smbus: the SMBus-compatible object (owned: :meth:`close` closes it).
        name: how messages name the bus, e.g. ``"i2c-1"``.
        retries: extra attempts after a failed transfer. Every reference register access is
            idempotent (reads have no side effects that a retry would repeat harmfully, writes
            set absolute values), so retrying is safe; the count is visible in :attr:`stats`.
    """

    def __init__(self, smbus: SMBusLike, *, name: str = "i2c", retries: int = 2) -> None:
        if retries < 0:
            raise ConfigError(f"{name}: retries must be >= 0, got {retries}")
        self._smbus = smbus
        self.name = name
        self.retries = retries
        self.stats = I2CStats()
        self._lock = threading.RLock()

    @property
    def lock(self) -> threading.RLock:
        """Held by a driver across a multi-transfer sequence that must not be interleaved."""
        return self._lock

    def _where(self, address: int, part: str) -> str:
        return f"{part} at {self.name}:0x{address:02X}"

    def _call(self, address: int, part: str, fn: Any, *args: Any) -> Any:
        last: OSError | None = None
        with self._lock:
            for attempt in range(self.retries + 1):
                self.stats.transfers += 1
                if attempt:
                    self.stats.retries += 1
                try:
                    return fn(*args)
                except BusError:
                    raise
                except OSError as exc:
                    last = exc
                    if exc.errno is not None:
                        counts = self.stats.errors_by_errno
                        counts[exc.errno] = counts.get(exc.errno, 0) + 1
            self.stats.failures += 1
            assert last is not None
            raise bus_error_from_oserror(last, self._where(address, part)) from last

    def read_u8(self, address: int, register: int, *, part: str = "device") -> int:
        """One register byte."""
        value: int = self._call(address, part, self._smbus.read_byte_data, address, register)
        return value & 0xFF

    def write_u8(self, address: int, register: int, value: int, *, part: str = "device") -> None:
        """Write one register byte."""
        if not 0 <= value <= 0xFF:
            raise ConfigError(f"{self._where(address, part)}: byte value {value} out of range")
        self._call(address, part, self._smbus.write_byte_data, address, register, value)

    def read_block(
        self, address: int, register: int, length: int, *, part: str = "device"
    ) -> bytes:
        """``length`` bytes from consecutive registers (auto-increment), split into SMBus blocks."""
        out = bytearray()
        while len(out) < length:
            n = min(SMBUS_BLOCK_MAX, length - len(out))
            chunk = self._call(
                address, part, self._smbus.read_i2c_block_data, address, register + len(out), n
            )
            out.extend(int(b) & 0xFF for b in chunk)
        return bytes(out)

    def write_block(
        self, address: int, register: int, data: bytes, *, part: str = "device"
    ) -> None:
        """Write consecutive registers in SMBus blocks."""
        for offset in range(0, len(data), SMBUS_BLOCK_MAX):
            chunk = list(data[offset : offset + SMBUS_BLOCK_MAX])
            self._call(
                address, part, self._smbus.write_i2c_block_data, address, register + offset, chunk
            )

    def write_read(
        self, address: int, write: bytes, read_length: int, *, part: str = "device"
    ) -> bytes:
        """A combined write-then-read with a repeated start (``i2c_rdwr``).

        Needed where a chip wants more than 32 bytes in one burst or a register address with
        flag bits (the LIS3MDL's auto-increment bit) that plain SMBus calls would not send.
        """
        from smbus2 import i2c_msg  # imported here: only this call needs smbus2's message type

        def transfer() -> bytes:
            w = i2c_msg.write(address, list(write))
            r = i2c_msg.read(address, read_length)
            self._smbus.i2c_rdwr(w, r)
            return bytes(r)

        result: bytes = self._call(address, part, transfer)
        return result

    def close(self) -> None:
        with self._lock:
            self._smbus.close()
