"""hal.serialport.SerialPort when things go wrong: every failure is a HAL error naming the port.

Real pyserial objects throughout: ``loop://`` for the in-process cases and a pseudo-terminal
(``os.openpty``) where a real tty matters (a far end that hangs up, a far end that stops reading).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import serial

from hal.errors import BusError, BusIOError, BusTimeoutError, ConfigError
from hal.serialport import SerialPort


@pytest.fixture
def loop() -> Iterator[SerialPort]:
    port = SerialPort.open("loop://", baudrate=115200)
    yield port
    port.close()


class Pty:
    """A pseudo-terminal: ``port`` is our side, opened by pyserial; ``master`` is the far end."""

    def __init__(self, *, write_timeout: float = 1.0) -> None:
        self.master, self._slave = os.openpty()
        self.path = os.ttyname(self._slave)
        raw = serial.serial_for_url(
            self.path, baudrate=115200, timeout=0, write_timeout=write_timeout
        )
        self.port = SerialPort(raw, name=self.path)

    def hang_up(self) -> None:
        os.close(self.master)
        self.master = -1

    def close(self) -> None:
        self.port.close()
        if self.master >= 0:
            os.close(self.master)
        os.close(self._slave)


@pytest.fixture
def pty() -> Iterator[Pty]:
    p = Pty()
    yield p
    p.close()


def wait_for(port: SerialPort, n: int, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while port.in_waiting() < n:
        assert time.monotonic() < deadline, f"{n} bytes never arrived"
        time.sleep(0.001)


# --- opening --------------------------------------------------------------------------------------
def test_unknown_url_scheme_is_an_io_error_naming_the_url() -> None:
    with pytest.raises(BusIOError, match=r"serial nosuch://x: cannot open") as info:
        SerialPort.open("nosuch://x", baudrate=9600)
    assert isinstance(info.value.__cause__, serial.SerialException | ValueError)


def test_missing_device_path_is_an_io_error() -> None:
    with pytest.raises(BusIOError, match=r"/dev/ttyNOPE9: cannot open") as info:
        SerialPort.open("/dev/ttyNOPE9", baudrate=115200)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("baud", [0, -9600])
def test_non_positive_baud_rate_is_a_config_error(baud: int) -> None:
    with pytest.raises(ConfigError, match="baudrate must be positive"):
        SerialPort.open("loop://", baudrate=baud)


# --- short reads --------------------------------------------------------------------------------
def test_short_read_is_a_timeout_and_counts_the_bytes_it_got(loop: SerialPort) -> None:
    loop.write(b"\x59\x59\x01")
    with pytest.raises(BusTimeoutError, match=r"serial loop://: got 3 of 9 bytes") as info:
        loop.read_exactly(9)
    assert isinstance(info.value, TimeoutError)
    assert loop.stats.bytes_in == 3
    assert loop.stats.errors == 1


def test_read_available_on_a_quiet_line_is_empty_not_an_error(loop: SerialPort) -> None:
    assert loop.read_available() == b""
    assert loop.stats.errors == 0


def test_read_available_respects_its_limit(loop: SerialPort) -> None:
    loop.write(bytes(range(10)))
    assert loop.read_available(limit=4) == bytes(range(4))
    assert loop.read_available() == bytes(range(4, 10))


# --- writes that cannot finish ------------------------------------------------------------------
def test_loop_queue_full_is_a_write_timeout() -> None:
    # loop:// holds 4 KiB; a write that finds it full waits write_timeout, then must not escape
    # as queue.Full (what pyserial itself raises there). The high baud rate keeps pyserial's own
    # "this would take longer than write_timeout" check out of the way.
    port = SerialPort(
        serial.serial_for_url("loop://", baudrate=4_000_000, timeout=0, write_timeout=0.02),
        name="loop://",
    )
    try:
        port.write(b"x" * 4096)
        with pytest.raises(BusTimeoutError, match="write timed out"):
            port.write(b"y")
        assert port.stats.errors == 1
        assert port.stats.bytes_out == 4096
    finally:
        port.close()


def test_far_end_that_stops_reading_is_a_write_timeout() -> None:
    p = Pty(write_timeout=0.05)
    try:
        with pytest.raises(BusTimeoutError, match=f"serial {p.path}: write timed out"):
            for _ in range(1000):  # the pty's buffer fills: nobody reads the master side
                p.port.write(b"z" * 4096)
        assert p.port.stats.errors == 1
    finally:
        p.close()


# --- a far end that hangs up --------------------------------------------------------------------
def test_hang_up_makes_every_operation_an_io_error(pty: Pty) -> None:
    pty.hang_up()
    with pytest.raises(BusIOError, match=pty.path):
        pty.port.in_waiting()
    with pytest.raises(BusIOError, match=f"serial {pty.path}: read failed"):
        pty.port.read_exactly(1)
    with pytest.raises(BusIOError, match=f"serial {pty.path}: write failed") as info:
        pty.port.write(b"ping")
    assert info.value.__cause__ is not None
    assert pty.port.stats.errors == 3


def test_hang_up_during_read_available(pty: Pty) -> None:
    pty.hang_up()
    with pytest.raises(BusIOError, match="read failed"):
        pty.port.read_available()


# --- a closed port ------------------------------------------------------------------------------
def test_closed_port_fails_cleanly_and_closing_twice_is_harmless(loop: SerialPort) -> None:
    loop.close()
    loop.close()
    for op in (loop.in_waiting, loop.read_available, lambda: loop.read_exactly(1),
               lambda: loop.write(b"x"), loop.reset_input):  # fmt: skip
        with pytest.raises(BusError, match="serial loop://"):
            op()


def test_reset_input_discards_what_was_waiting(pty: Pty) -> None:
    os.write(pty.master, b"garbage")
    wait_for(pty.port, 7)
    pty.port.reset_input()
    assert pty.port.in_waiting() == 0
    os.write(pty.master, b"ok")
    wait_for(pty.port, 2)
    assert pty.port.read_exactly(2) == b"ok"
