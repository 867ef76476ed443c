"""Byte-stream transports for the link: serial radio modem, TCP and UDP for the bench, memory pipes.

Every transport has the same small interface (:class:`Transport`): ``write(bytes)``,
``read_available() -> bytes`` and ``close()``, plus a ``connected`` property. None of them ever
blocks the flight loop and none raises because the other end went away: a peer that disconnects,
a USB modem that is unplugged, a refused UDP port all turn ``connected`` false, and the transport
quietly reconnects (or accepts a new client) on later calls. Bytes written while nobody listens are
dropped and counted, as a radio would lose them; frames are what the link protects, not bytes.

Transport           who connects                         unit of ``write``
``SerialTransport``  opens a device path / pyserial URL   bytes on a stream
``TcpServerTransport`` listens, accepts one client at a time (a newer client replaces the older)
``TcpClientTransport`` connects out, retries after ``retry_s``
``UdpTransport``     connectionless; one datagram per ``write`` (so one frame per datagram)
``MemoryPipe``       two ends in one process, for tests
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hal.errors import HALError
from hal.serialport import SerialPort

__all__ = [
    "MemoryPipe",
    "SerialTransport",
    "TcpClientTransport",
    "TcpServerTransport",
    "Transport",
    "TransportStats",
    "UdpTransport",
]

log = logging.getLogger(__name__)

#: Most bytes one ``read_available`` returns, and most bytes held for a slow TCP peer.
READ_LIMIT = 65536
SEND_BUFFER_LIMIT = 256 * 1024
_MAX_DATAGRAM = 65507


class Transport(Protocol):
    """A non-blocking byte stream that survives its peer going away."""

    @property
    def connected(self) -> bool: ...

    def write(self, data: bytes) -> None: ...

    def read_available(self) -> bytes: ...

    def close(self) -> None: ...


@dataclass
class TransportStats:
    bytes_in: int = 0
    bytes_out: int = 0
    #: Written while disconnected, or beyond what a slow peer could take.
    bytes_dropped: int = 0
    connects: int = 0
    disconnects: int = 0


# ------------------------------------------------------------------------------------ memory


class MemoryPipe:
    """One end of an in-process byte pipe; :meth:`pair` makes two connected ends."""

    def __init__(self, inbox: deque[bytes], outbox: deque[bytes], link: list[bool]) -> None:
        self._inbox = inbox
        self._outbox = outbox
        self._link = link  # shared by both ends: [up]
        self.stats = TransportStats()

    @classmethod
    def pair(cls) -> tuple[MemoryPipe, MemoryPipe]:
        a_to_b: deque[bytes] = deque()
        b_to_a: deque[bytes] = deque()
        link = [True]
        return cls(b_to_a, a_to_b, link), cls(a_to_b, b_to_a, link)

    @property
    def connected(self) -> bool:
        return self._link[0]

    def set_connected(self, up: bool) -> None:
        """Simulate losing (or regaining) the link; bytes written meanwhile are dropped."""
        self._link[0] = up

    def write(self, data: bytes) -> None:
        if not self._link[0]:
            self.stats.bytes_dropped += len(data)
            return
        self._outbox.append(bytes(data))
        self.stats.bytes_out += len(data)

    def read_available(self) -> bytes:
        data = b"".join(self._inbox)
        self._inbox.clear()
        self.stats.bytes_in += len(data)
        return data

    def close(self) -> None:
        self._link[0] = False


# ------------------------------------------------------------------------------------ serial


class SerialTransport:
    """The radio modem's serial port.

    Give either an open :class:`~hal.serialport.SerialPort` or a ``url`` (device path or pyserial
    URL) and ``baudrate``; only the latter can be reopened after the device disappears (a USB
    modem unplugged and plugged back in), which is tried on each call while it is down.
    """

    def __init__(
        self,
        port: SerialPort | None = None,
        *,
        url: str | None = None,
        baudrate: int = 57600,
    ) -> None:
        if port is None and url is None:
            raise ValueError("SerialTransport needs a port or a url")
        self._port = port
        self._url = url
        self._baudrate = baudrate
        self.stats = TransportStats()
        if port is None:
            self._reopen()
        else:
            self.stats.connects += 1

    @property
    def connected(self) -> bool:
        return self._port is not None

    def _reopen(self) -> None:
        if self._url is None:
            return
        try:
            self._port = SerialPort.open(self._url, baudrate=self._baudrate)
        except HALError as exc:
            log.debug("serial link %s still down: %s", self._url, exc)
            return
        self.stats.connects += 1
        log.info("serial link %s up", self._url)

    def _down(self, exc: Exception) -> None:
        log.warning("serial link down: %s", exc)
        self.stats.disconnects += 1
        if self._port is not None:
            self._port.close()
        self._port = None

    def write(self, data: bytes) -> None:
        if self._port is None:
            self._reopen()
        if self._port is None:
            self.stats.bytes_dropped += len(data)
            return
        try:
            self._port.write(data)
        except HALError as exc:
            self.stats.bytes_dropped += len(data)
            self._down(exc)
            return
        self.stats.bytes_out += len(data)

    def read_available(self) -> bytes:
        if self._port is None:
            self._reopen()
        if self._port is None:
            return b""
        try:
            data = self._port.read_available(READ_LIMIT)
        except HALError as exc:
            self._down(exc)
            return b""
        self.stats.bytes_in += len(data)
        return data

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
        self._port = None
        self._url = None  # closed on purpose: do not reopen


# ------------------------------------------------------------------------------------ TCP


class _TcpStream:
    """The connected-socket half shared by the TCP server and client."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._out = bytearray()
        self.stats = TransportStats()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def _attach(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._out.clear()
        self.stats.connects += 1

    def _drop(self, why: object) -> None:
        if self._sock is not None:
            log.info("tcp link down: %s", why)
            self.stats.disconnects += 1
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self.stats.bytes_dropped += len(self._out)
        self._out.clear()

    def _flush(self) -> None:
        while self._out and self._sock is not None:
            try:
                n = self._sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._drop(exc)
                return
            self.stats.bytes_out += n
            del self._out[:n]

    def _write(self, data: bytes) -> None:
        if self._sock is None:
            self.stats.bytes_dropped += len(data)
            return
        if len(self._out) + len(data) > SEND_BUFFER_LIMIT:
            # The peer is not reading; losing whole writes keeps frame boundaries intact.
            self.stats.bytes_dropped += len(data)
        else:
            self._out += data
        self._flush()

    def _read(self) -> bytes:
        if self._sock is None:
            return b""
        self._flush()
        chunks: list[bytes] = []
        size = 0
        while self._sock is not None and size < READ_LIMIT:
            try:
                chunk = self._sock.recv(READ_LIMIT - size)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._drop(exc)
                break
            if not chunk:
                self._drop("peer closed the connection")
                break
            chunks.append(chunk)
            size += len(chunk)
        self.stats.bytes_in += size
        return b"".join(chunks)


class TcpServerTransport(_TcpStream):
    """Listens on ``host:port`` (port 0 picks a free one, see :attr:`address`) and serves one
    client at a time without ever blocking.

    Raises (on construction):
        OSError: the address cannot be bound (in use, not local).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self._listener = socket.create_server((host, port))
        self._listener.setblocking(False)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def _accept(self) -> None:
        if self._listener.fileno() < 0:
            return
        while True:
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("tcp accept failed: %s", exc)
                return
            if self._sock is not None:
                self._drop("replaced by a new client")
            log.info("tcp client %s connected", peer)
            self._attach(sock)

    def write(self, data: bytes) -> None:
        self._accept()
        self._write(data)

    def read_available(self) -> bytes:
        self._accept()
        return self._read()

    def close(self) -> None:
        self._drop("closed")
        self._listener.close()


class TcpClientTransport(_TcpStream):
    """Connects to ``host:port`` without blocking and reconnects when the connection drops.

    Args:
        now: clock for pacing reconnection attempts (every ``retry_s``); without one every call
            may try.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        now: Callable[[], float] | None = None,
        retry_s: float = 1.0,
    ) -> None:
        super().__init__()
        self._addr = (host, port)
        self._now = now
        self._retry_s = retry_s
        self._next_try: float | None = None
        self._pending: socket.socket | None = None
        self._closed = False
        self._connect()

    def _connect(self) -> None:
        if self._closed or self._sock is not None:
            return
        if self._pending is not None:
            self._poll_pending()
            return
        if self._now is not None and self._next_try is not None and self._now() < self._next_try:
            return
        if self._now is not None:
            self._next_try = self._now() + self._retry_s
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex(self._addr)
        if err == 0:
            self._attach(sock)
        elif err in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            self._pending = sock
            self._poll_pending()
        else:
            sock.close()

    def _poll_pending(self) -> None:
        sock = self._pending
        if sock is None:
            return
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == 0:
            try:
                sock.getpeername()
            except OSError:
                return  # still connecting
            self._pending = None
            self._attach(sock)
        elif err not in (errno.EINPROGRESS, errno.EALREADY):
            self._pending = None
            sock.close()

    def write(self, data: bytes) -> None:
        self._connect()
        self._write(data)

    def read_available(self) -> bytes:
        self._connect()
        return self._read()

    def close(self) -> None:
        self._closed = True
        self._drop("closed")
        if self._pending is not None:
            self._pending.close()
            self._pending = None


# ------------------------------------------------------------------------------------ UDP


class UdpTransport:
    """Datagrams between ``local`` and ``remote``; each :meth:`write` is one datagram.

    With ``remote=None`` replies go to whoever sent the last datagram (a bench flight computer
    answering whichever ground console spoke to it). ``connected`` means a destination is known.

    Raises (on construction):
        OSError: ``local`` cannot be bound.
    """

    def __init__(self, local: tuple[str, int], remote: tuple[str, int] | None = None) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(local)
        self._sock.setblocking(False)
        self._remote = remote
        self._fixed_remote = remote is not None
        self.stats = TransportStats()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def connected(self) -> bool:
        return self._remote is not None and self._sock.fileno() >= 0

    def write(self, data: bytes) -> None:
        if self._remote is None or self._sock.fileno() < 0 or len(data) > _MAX_DATAGRAM:
            self.stats.bytes_dropped += len(data)
            return
        try:
            self._sock.sendto(data, self._remote)
        except OSError as exc:  # refused (ICMP), no route, buffer full: a lost datagram
            log.debug("udp send to %s failed: %s", self._remote, exc)
            self.stats.bytes_dropped += len(data)
            return
        self.stats.bytes_out += len(data)

    def read_available(self) -> bytes:
        chunks: list[bytes] = []
        size = 0
        errors = 0
        while self._sock.fileno() >= 0 and size < READ_LIMIT and errors < 8:
            try:
                data, peer = self._sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ECONNREFUSED reported for an earlier send
                log.debug("udp receive: %s", exc)
                errors += 1
                continue
            if not self._fixed_remote:
                self._remote = (str(peer[0]), int(peer[1]))
            chunks.append(data)
            size += len(data)
        self.stats.bytes_in += size
        return b"".join(chunks)

    def close(self) -> None:
        self._sock.close()
