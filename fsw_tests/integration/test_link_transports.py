"""Every transport carries authenticated commands up and telemetry down, end to end through the
real uplink, downlink and ground codecs, and none raises when its peer goes away.

Transports: MemoryPipe, TCP on 127.0.0.1 (port 0), UDP on 127.0.0.1, and a serial port over a real
pty pair (os.openpty), which pyserial opens like a device.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from flight import codec
from flight.clock import SimClock
from flight.events import EventLog
from flight.link.downlink import Downlink
from flight.link.ground import CommandEncoder, TelemetryDecoder
from flight.link.sdls import KeyRing, MemoryCounterStore
from flight.link.tmframe import TmFramer
from flight.link.transports import (
    MemoryPipe,
    SerialTransport,
    TcpClientTransport,
    TcpServerTransport,
    UdpTransport,
)
from flight.link.uplink import UplinkProcessor
from flight.messages import Message, MessageKind

KEY = bytes(range(32))
SCID = 0x0F1


class PtyMaster:
    """The ground's end of a pty pair: the master file descriptor as a transport."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)

    @property
    def connected(self) -> bool:
        return True

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def read_available(self) -> bytes:
        try:
            return os.read(self.fd, 65536)
        except (BlockingIOError, OSError):
            return b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def until(condition: Callable[[], bool], *pump: Callable[[], object], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in pump:
            p()
        if condition():
            return True
        time.sleep(0.002)
    return False


@contextlib.contextmanager
def memory() -> Iterator[tuple[object, object]]:
    a, b = MemoryPipe.pair()
    yield a, b


@contextlib.contextmanager
def tcp() -> Iterator[tuple[object, object]]:
    server = TcpServerTransport("127.0.0.1", 0)
    client = TcpClientTransport(*server.address)
    try:
        assert until(
            lambda: server.connected and client.connected,
            server.read_available,
            client.read_available,
        )
        yield server, client
    finally:
        client.close()
        server.close()


@contextlib.contextmanager
def udp() -> Iterator[tuple[object, object]]:
    flight = UdpTransport(("127.0.0.1", 0))  # answers whoever spoke last
    ground = UdpTransport(("127.0.0.1", 0), remote=flight.address)
    try:
        yield flight, ground
    finally:
        ground.close()
        flight.close()


@contextlib.contextmanager
def pty_serial() -> Iterator[tuple[object, object]]:
    master, slave = os.openpty()
    flight = SerialTransport(url=os.ttyname(slave), baudrate=115200)
    ground = PtyMaster(master)
    try:
        assert flight.connected
        yield flight, ground
    finally:
        flight.close()
        ground.close()
        os.close(slave)


TRANSPORTS = {"memory": memory, "tcp": tcp, "udp": udp, "serial-pty": pty_serial}


@pytest.mark.parametrize("name", TRANSPORTS)
def test_commands_up_and_telemetry_down(name):
    with TRANSPORTS[name]() as (flight, ground):
        clock = SimClock()
        events = EventLog(now=clock.monotonic)
        got: list[bytes] = []
        uplink = UplinkProcessor(
            keyring=KeyRing({1: KEY}),
            spacecraft_id=SCID,
            counter_store=MemoryCounterStore(),
            events=events,
            on_command=got.append,
            now=clock.monotonic,
        )
        downlink = Downlink(
            framer=TmFramer(scid=SCID),
            transport_write=flight.write,
            byte_rate=50_000,
            now=clock.monotonic,
        )
        encoder = CommandEncoder(key=KEY, spi=1, scid=SCID, counters=MemoryCounterStore())
        decoder = TelemetryDecoder(scid=SCID)
        received: list[Message] = []

        def flight_tick():
            uplink.feed(flight.read_available())
            downlink.tick()
            clock.advance(0.05)

        def ground_tick():
            received.extend(decoder.feed(ground.read_available()))

        for seq in range(5):
            ground.write(encoder.encode_command(seq, 0x0002, [seq * 11]))
        assert until(lambda: len(got) == 5, flight_tick)
        assert [codec.decode(d) for d in got] == [[s, 2, [s * 11]] for s in range(5)]

        sent = [Message(MessageKind.COMMAND_RESPONSE, 2, float(s), {"seq": s}) for s in range(5)]
        sent.append(Message(MessageKind.TELEMETRY, 0x20, 9.0, list(range(300))))
        for m in sent:
            downlink.send(m)
        assert until(lambda: len(received) == len(sent), flight_tick, ground_tick)
        assert received == sent
        assert uplink.counters["frames_ok"] == 5
        assert decoder.deframer.stats.vc_gaps == 0


def test_tcp_server_survives_client_disconnects_and_accepts_the_next():
    server = TcpServerTransport("127.0.0.1", 0)
    try:
        server.write(b"nobody listening")  # dropped, not raised
        assert server.stats.bytes_dropped == 16
        client = TcpClientTransport(*server.address)
        assert until(lambda: server.connected, server.read_available, client.read_available)
        client.close()
        assert until(lambda: not server.connected, server.read_available)
        server.write(b"x" * 100)
        assert server.read_available() == b""
        again = TcpClientTransport(*server.address)
        assert until(
            lambda: server.connected and again.connected,
            server.read_available,
            again.read_available,
        )
        again.write(b"hello")
        data = bytearray()
        assert until(lambda: data == b"hello", lambda: data.extend(server.read_available()))
        server.write(b"back")
        back = bytearray()
        assert until(lambda: back == b"back", lambda: back.extend(again.read_available()))
        again.close()
    finally:
        server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tcp_client_waits_for_the_server_and_reconnects():
    port = free_port()
    clock = SimClock()
    client = TcpClientTransport("127.0.0.1", port, now=clock.monotonic, retry_s=1.0)
    try:
        client.read_available()
        assert not client.connected
        client.write(b"lost")
        assert client.stats.bytes_dropped == 4
        server = TcpServerTransport("127.0.0.1", port)
        try:
            # Paced by the injected clock: no retry before retry_s has passed.
            assert not until(lambda: client.connected, client.read_available, timeout=0.1)
            clock.advance(1.0)
            assert until(
                lambda: client.connected and server.connected,
                client.read_available,
                server.read_available,
            )
            server.close()
            assert until(lambda: not client.connected, client.read_available)
            client.write(b"still no exception")
        finally:
            server.close()
    finally:
        client.close()


def test_serial_link_down_when_the_pty_goes_away():
    master, slave = os.openpty()
    flight = SerialTransport(url=os.ttyname(slave), baudrate=57600)
    os.close(slave)
    try:
        assert flight.connected
        os.close(master)
        assert until(lambda: not flight.connected, flight.read_available, timeout=2.0)
        flight.write(b"into the void")
        assert flight.read_available() == b""
        assert flight.stats.disconnects == 1
    finally:
        flight.close()


def test_serial_transport_over_an_open_hal_port():
    from hal.serialport import SerialPort

    port = SerialPort.open("loop://", baudrate=57600)
    transport = SerialTransport(port)
    transport.write(b"\x1a\xcf\xfc\x1d")
    assert until(lambda: transport.stats.bytes_in == 4, transport.read_available)


def test_serial_transport_with_a_missing_device_is_down_not_raising(tmp_path):
    transport = SerialTransport(url=str(tmp_path / "ttyUSB9"), baudrate=57600)
    assert not transport.connected
    transport.write(b"x")
    assert transport.read_available() == b""
    assert transport.stats.bytes_dropped == 1


def test_udp_to_a_closed_port_does_not_raise():
    sender = UdpTransport(("127.0.0.1", 0), remote=("127.0.0.1", free_port()))
    try:
        for _ in range(3):
            sender.write(b"anyone?")
            assert sender.read_available() == b""
        unknown = UdpTransport(("127.0.0.1", 0))
        unknown.write(b"no destination yet")
        assert not unknown.connected and unknown.stats.bytes_dropped == 18
        unknown.close()
    finally:
        sender.close()


def test_memory_pipe_drops_while_disconnected():
    a, b = MemoryPipe.pair()
    a.set_connected(False)
    a.write(b"lost")
    assert b.read_available() == b"" and a.stats.bytes_dropped == 4
    a.set_connected(True)
    a.write(b"ok")
    assert b.read_available() == b"ok"
