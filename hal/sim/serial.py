"""A base for simulated serial devices: a pyserial port object whose far end is a model.

A subclass produces its bytes lazily from the clock (a sensor streaming frames at a fixed rate
only computes them when someone looks), and answers what the host writes. This base owns the
pyserial surface (``in_waiting``, ``read``, ``write``, ``reset_input_buffer``, ``close``,
``baudrate``, ``is_open``) and the receive buffer, which is bounded like a UART FIFO plus the
kernel's tty buffer: when the host does not read in time the oldest bytes are lost, exactly the
failure a slow flight loop causes on the board.

A read with a positive ``timeout`` waits on the model's clock for more data (a simulated clock
just advances), so ``SerialPort.read_exactly`` behaves as it does on a real port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import serial

from hal.clock import Clock

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["SimSerialPort"]


class SimSerialPort(serial.SerialBase):
    """A pyserial-compatible port backed by a device model.

    Subclasses override :meth:`produce` (append what the device has sent up to now with
    :meth:`deliver`), :meth:`next_data_time` (when the device will next send, for blocking reads)
    and :meth:`on_host_write` (what the device does with bytes the host sends).

    Args:
        clock: the time that drives the device.
        name: the "port" name, shown in messages (``sim://tfmini``).
        baudrate: the host's setting; stored, not enforced.
        buffer_size: receive buffer capacity in bytes (oldest dropped beyond it).
    """

    def __init__(
        self, *, clock: Clock, name: str, baudrate: int = 115200, buffer_size: int = 4096
    ) -> None:
        if buffer_size <= 0:
            raise ValueError(f"{name}: buffer_size must be positive, got {buffer_size}")
        self.clock = clock
        self.buffer_size = buffer_size
        self._rx = bytearray()
        #: Bytes lost because the receive buffer was full.
        self.bytes_dropped = 0
        #: ``(time, bytes)`` of everything the host wrote.
        self.host_writes: list[tuple[float, bytes]] = []
        super().__init__(port=None, baudrate=baudrate, timeout=0)
        self.port = name
        self.open()

    # --- hooks for the device model --------------------------------------------------------------
    def produce(self) -> None:
        """Append, with :meth:`deliver`, everything the device has sent up to the clock's now."""

    def next_data_time(self) -> float | None:
        """When the device will next send something (``None``: not on its own)."""
        return None

    def on_host_write(self, data: bytes) -> None:
        """React to bytes from the host (commands)."""

    def deliver(self, data: bytes) -> None:
        """Put bytes on the wire to the host, dropping the oldest if the buffer is full."""
        self._rx.extend(data)
        excess = len(self._rx) - self.buffer_size
        if excess > 0:
            del self._rx[:excess]
            self.bytes_dropped += excess

    # --- pyserial surface ------------------------------------------------------------------------
    def open(self) -> None:
        if self.is_open:
            raise serial.SerialException(f"{self.port}: already open")
        self.is_open = True

    def close(self) -> None:
        # Not io.RawIOBase.close(): a closed io object can never reopen, a serial port can.
        self.is_open = False

    def _reconfigure_port(self, *args: object) -> None:
        """Settings are stored by SerialBase; a model has no line to configure."""

    def _check_open(self) -> None:
        if not self.is_open:
            raise serial.PortNotOpenError()

    @property
    def in_waiting(self) -> int:
        self._check_open()
        self.produce()
        return len(self._rx)

    @property
    def out_waiting(self) -> int:
        return 0

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes (all waiting for ``size < 0``); waits up to ``timeout`` on the
        model's clock when fewer are waiting."""
        self._check_open()
        self.produce()
        timeout = self.timeout
        if size > 0 and len(self._rx) < size and timeout:
            deadline = self.clock.monotonic() + timeout
            while len(self._rx) < size:
                upcoming = self.next_data_time()
                now = self.clock.monotonic()
                if upcoming is None or upcoming > deadline:
                    self.clock.sleep(max(0.0, deadline - now))
                    self.produce()
                    break
                self.clock.sleep(max(upcoming - now, 1e-9))
                self.produce()
        n = len(self._rx) if size < 0 else min(size, len(self._rx))
        out = bytes(self._rx[:n])
        del self._rx[:n]
        return out

    def write(self, b: ReadableBuffer, /) -> int:
        self._check_open()
        data = bytes(b)
        self.host_writes.append((self.clock.monotonic(), data))
        self.produce()  # the device's earlier output is already on the wire
        self.on_host_write(data)
        return len(data)

    def reset_input_buffer(self) -> None:
        self._check_open()
        self.produce()
        self._rx.clear()

    def reset_output_buffer(self) -> None:
        self._check_open()

    def flush(self) -> None:
        """Writes reach the model at once; nothing to wait for."""
