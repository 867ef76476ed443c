"""A serial port over pyserial, opened from a device path or any pyserial URL.

``loop://``, ``spy://`` and ``socket://`` URLs work as they do in pyserial, and a simulated device
(``hal.sim``) is handed in as a ready pyserial-compatible object. Reads never block the flight loop:
the port is opened with a zero timeout and drivers take what is waiting.
"""

from __future__ import annotations

import contextlib
import queue
from dataclasses import dataclass
from typing import Any

import serial

from hal.errors import BusIOError, BusTimeoutError, ConfigError

__all__ = ["SerialPort", "SerialStats"]


@dataclass
class SerialStats:
    bytes_in: int = 0
    bytes_out: int = 0
    errors: int = 0


class SerialPort:
    """A byte stream with the HAL's error mapping.

    Args:
        port: an open pyserial ``SerialBase`` (or compatible) object; owned by this instance.
        name: the path or URL, used in messages.
    """

    def __init__(self, port: Any, *, name: str) -> None:
        self._port = port
        self.name = name
        self.stats = SerialStats()

    @classmethod
    def open(cls, url: str, *, baudrate: int, timeout: float = 0.0) -> SerialPort:
        """Open a device path (``/dev/ttyAMA0``) or pyserial URL (``loop://``) at 8N1."""
        if baudrate <= 0:
            raise ConfigError(f"serial {url}: baudrate must be positive, got {baudrate}")
        try:
            port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, write_timeout=1.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise BusIOError(f"serial {url}: cannot open ({exc})") from exc
        return cls(port, name=url)

    @property
    def baudrate(self) -> int:
        return int(self._port.baudrate)

    @property
    def raw(self) -> Any:
        """The pyserial object beneath, for tools that need its own API (``spy://`` logging)."""
        return self._port

    def _ensure_open(self) -> None:
        # Once closed, pyserial's POSIX port fails with TypeError (its fd is None): say it plainly.
        if not getattr(self._port, "is_open", True):
            self.stats.errors += 1
            raise BusIOError(f"serial {self.name}: port is closed")

    def in_waiting(self) -> int:
        self._ensure_open()
        try:
            return int(self._port.in_waiting)
        except (serial.SerialException, OSError) as exc:
            self.stats.errors += 1
            raise BusIOError(f"serial {self.name}: {exc}") from exc

    def read_available(self, limit: int = 4096) -> bytes:
        """Whatever is waiting, up to ``limit`` bytes; never blocks."""
        self._ensure_open()
        try:
            n = min(int(self._port.in_waiting), limit)
            data = bytes(self._port.read(n)) if n else b""
        except (serial.SerialException, OSError) as exc:
            self.stats.errors += 1
            raise BusIOError(f"serial {self.name}: read failed ({exc})") from exc
        self.stats.bytes_in += len(data)
        return data

    def read_exactly(self, n: int) -> bytes:
        """``n`` bytes within the port's timeout, else :class:`BusTimeoutError`."""
        self._ensure_open()
        try:
            data = bytes(self._port.read(n))
        except (serial.SerialException, OSError) as exc:
            self.stats.errors += 1
            raise BusIOError(f"serial {self.name}: read failed ({exc})") from exc
        self.stats.bytes_in += len(data)
        if len(data) < n:
            self.stats.errors += 1
            raise BusTimeoutError(f"serial {self.name}: got {len(data)} of {n} bytes")
        return data

    def write(self, data: bytes) -> None:
        self._ensure_open()
        try:
            self._port.write(data)
        except (serial.SerialTimeoutException, queue.Full) as exc:
            # queue.Full: pyserial's loop:// raises it, unwrapped, when its 4 KiB queue stays full.
            self.stats.errors += 1
            raise BusTimeoutError(f"serial {self.name}: write timed out") from exc
        except (serial.SerialException, OSError) as exc:
            self.stats.errors += 1
            raise BusIOError(f"serial {self.name}: write failed ({exc})") from exc
        self.stats.bytes_out += len(data)

    def reset_input(self) -> None:
        """Discard what is buffered, e.g. after a driver reset."""
        self._ensure_open()
        try:
            self._port.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise BusIOError(f"serial {self.name}: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()
