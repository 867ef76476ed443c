"""One contract per bus interface, run against every backend reachable here.

I2C: hal.i2c.I2CBus over
  * ``sim``    - hal.sim.SimSMBus, the simulated bus CI runs the drivers on;
  * ``ioctl``  - smbus2's own ``SMBus`` class, unmodified, with its module-level ``ioctl`` replaced
    by :class:`FakeI2CDev`, which plays the kernel's i2c-dev driver: it decodes the I2C_SMBUS and
    I2C_RDWR structures from raw memory (laid out here from ``uapi/linux/i2c.h`` and
    ``i2c-dev.h``, independently of smbus2's definitions) and serves the same register model.
So the bytes our bus asks for are checked down to the ioctls a Raspberry Pi's kernel would see.

Serial: hal.serialport.SerialPort over pyserial's ``loop://`` and over a real pseudo-terminal that
pyserial opens by path like any UART; a wired loopback (TX to RX) joins with ``-m bench`` and
``FSW_SERIAL_LOOPBACK=/dev/ttyAMA0``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import smbus2
import smbus2.smbus2

from flight.clock import SimClock
from hal.errors import BusError, BusIOError, BusTimeoutError, NoAckError
from hal.i2c import I2CBus
from hal.serialport import SerialPort
from hal.sim import BusFault, Environment, RegisterModel, SimSMBus

ADDR = 0x1C
WHO_AM_I, WHO_AM_I_VALUE = 0x0F, 0x3D
RETRIES = 2
FAULT_ERRNO = {"no_ack": errno.EREMOTEIO, "timeout": errno.ETIMEDOUT, "io": errno.EIO}


class ContractChip(RegisterModel):
    """A plain auto-incrementing register file with one read-only identity register."""

    part: ClassVar[str] = "CHIP"
    default_address: ClassVar[int] = ADDR
    reset_values: ClassVar[dict[int, int]] = {WHO_AM_I: WHO_AM_I_VALUE}
    read_only: ClassVar[frozenset[int]] = frozenset({WHO_AM_I})


# --- the kernel side of /dev/i2c-N, for smbus2 ----------------------------------------------------
# ioctl request numbers and constants from uapi/linux/i2c-dev.h and uapi/linux/i2c.h.
I2C_SLAVE, I2C_SLAVE_FORCE, I2C_FUNCS, I2C_RDWR, I2C_SMBUS = 0x0703, 0x0706, 0x0705, 0x0707, 0x0720
I2C_SMBUS_READ = 1
I2C_SMBUS_BYTE_DATA, I2C_SMBUS_WORD_DATA, I2C_SMBUS_I2C_BLOCK_DATA = 2, 3, 8
I2C_SMBUS_BLOCK_MAX = 32
I2C_M_RD = 0x0001
I2C_RDWR_IOCTL_MAX_MSGS = 42
I2C_FUNC_I2C, I2C_FUNC_SMBUS_EMUL = 0x00000001, 0x0EFF0008


class SmbusIoctlData(ctypes.Structure):
    _fields_: ClassVar = [
        ("read_write", ctypes.c_uint8),
        ("command", ctypes.c_uint8),
        ("size", ctypes.c_uint32),
        ("data", ctypes.c_void_p),  # union i2c_smbus_data *: byte, word or block[34]
    ]


class I2cMsg(ctypes.Structure):
    _fields_: ClassVar = [
        ("addr", ctypes.c_uint16),
        ("flags", ctypes.c_uint16),
        ("len", ctypes.c_uint16),
        ("buf", ctypes.c_void_p),
    ]


class RdwrIoctlData(ctypes.Structure):
    _fields_: ClassVar = [("msgs", ctypes.c_void_p), ("nmsgs", ctypes.c_uint32)]


def _fail(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class FakeI2CDev:
    """The i2c-dev character device as smbus2 drives it: one open file, ioctls only.

    ``faults`` holds errnos to fail the next transfers with, one each, as an adapter reports a
    NAK (EREMOTEIO), a stuck bus (ETIMEDOUT) or anything else (EIO).
    """

    def __init__(self, chips: dict[int, RegisterModel]) -> None:
        self.chips = chips
        self.fd: int | None = None
        self.address: int | None = None
        self.faults: list[int] = []
        self.requests: list[int] = []

    def ioctl(self, fd: int, request: int, arg: Any = 0, mutate_flag: bool = True) -> int:
        assert self.fd is None or fd == self.fd, "ioctl on a file descriptor nobody opened"
        self.requests.append(request)
        if request == I2C_FUNCS:
            arg.value = I2C_FUNC_I2C | I2C_FUNC_SMBUS_EMUL
        elif request in (I2C_SLAVE, I2C_SLAVE_FORCE):
            if not 0 <= int(arg) <= 0x7F:
                raise _fail(errno.EINVAL)
            self.address = int(arg)
        elif request == I2C_SMBUS:
            self._transfer_started()
            self._smbus(SmbusIoctlData.from_address(ctypes.addressof(arg)))
        elif request == I2C_RDWR:
            self._transfer_started()
            self._rdwr(RdwrIoctlData.from_address(ctypes.addressof(arg)))
        else:
            raise _fail(errno.ENOTTY)
        return 0

    def _transfer_started(self) -> None:
        if self.faults:
            raise _fail(self.faults.pop(0))

    def _chip(self, address: int | None) -> RegisterModel:
        if address is None:
            raise _fail(errno.EINVAL)  # no I2C_SLAVE yet
        chip = self.chips.get(address)
        if chip is None:
            raise _fail(errno.EREMOTEIO)  # nobody acknowledged the address byte
        return chip

    def _smbus(self, req: SmbusIoctlData) -> None:
        chip = self._chip(self.address)
        reading = req.read_write == I2C_SMBUS_READ
        data = req.data
        if req.size == I2C_SMBUS_BYTE_DATA:
            if reading:
                ctypes.memmove(data, chip.read(req.command, 1), 1)
            else:
                chip.write(req.command, ctypes.string_at(data, 1))
        elif req.size == I2C_SMBUS_WORD_DATA:
            if reading:
                ctypes.memmove(data, chip.read(req.command, 2), 2)  # little-endian on the wire
            else:
                chip.write(req.command, ctypes.string_at(data, 2))
        elif req.size == I2C_SMBUS_I2C_BLOCK_DATA:
            block = ctypes.string_at(data, I2C_SMBUS_BLOCK_MAX + 2)
            length = block[0]
            if not 1 <= length <= I2C_SMBUS_BLOCK_MAX:
                raise _fail(errno.EINVAL)
            if reading:
                ctypes.memmove(data, bytes([length]) + chip.read(req.command, length), length + 1)
            else:
                chip.write(req.command, block[1 : 1 + length])
        else:
            raise _fail(errno.EOPNOTSUPP)

    def _rdwr(self, req: RdwrIoctlData) -> None:
        if not 1 <= req.nmsgs <= I2C_RDWR_IOCTL_MAX_MSGS:
            raise _fail(errno.EINVAL)
        size = ctypes.sizeof(I2cMsg)
        msgs = [I2cMsg.from_address(req.msgs + i * size) for i in range(req.nmsgs)]
        pointer: int | None = None  # the chip's register pointer, set by a write's first byte
        for msg in msgs:
            chip = self._chip(msg.addr)
            if msg.flags & I2C_M_RD:
                data = chip.read(pointer or 0, msg.len)
                ctypes.memmove(msg.buf, data, msg.len)
            elif msg.len:
                raw = ctypes.string_at(msg.buf, msg.len)
                pointer = raw[0]
                if len(raw) > 1:
                    chip.write(pointer, raw[1:])


# --- I2C backends ------------------------------------------------------------------------------
@dataclass
class I2CBackend:
    bus: I2CBus
    chip: ContractChip
    inject: Callable[[str, int], None]  # fault kind, number of transfers to fail


def _chip() -> ContractChip:
    return ContractChip(Environment(), clock=SimClock())


@pytest.fixture(params=["sim", "ioctl"])
def i2c(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[I2CBackend]:
    chip = _chip()
    if request.param == "sim":
        sim = SimSMBus(1)
        sim.attach(ADDR, chip)
        bus = I2CBus(sim, name="i2c-1", retries=RETRIES)
        yield I2CBackend(bus, chip, lambda kind, n: sim.inject(ADDR, BusFault(kind, count=n)))
        bus.close()
        return
    kernel = FakeI2CDev({ADDR: chip})
    monkeypatch.setattr(smbus2.smbus2, "ioctl", kernel.ioctl)
    smbus = smbus2.SMBus("/dev/null")  # a real, harmless descriptor; every ioctl goes to the fake
    kernel.fd = smbus.fd
    assert kernel.requests == [I2C_FUNCS]
    bus = I2CBus(smbus, name="i2c-1", retries=RETRIES)
    yield I2CBackend(bus, chip, lambda kind, n: kernel.faults.extend([FAULT_ERRNO[kind]] * n))
    bus.close()
    assert smbus.fd is None


def reads(chip: RegisterModel) -> list[tuple[int, int]]:
    """(register, length) of every read transaction the chip saw."""
    return [(t.register, len(t.data)) for t in chip.history if t.op == "r"]


def test_byte_round_trip(i2c: I2CBackend) -> None:
    i2c.bus.write_u8(ADDR, 0x20, 0xA5)
    assert i2c.chip.regs[0x20] == 0xA5
    assert i2c.bus.read_u8(ADDR, 0x20) == 0xA5
    assert i2c.bus.read_u8(ADDR, WHO_AM_I) == WHO_AM_I_VALUE


def test_read_only_register_ignores_writes(i2c: I2CBackend) -> None:
    i2c.bus.write_u8(ADDR, WHO_AM_I, 0x00)
    assert i2c.bus.read_u8(ADDR, WHO_AM_I) == WHO_AM_I_VALUE


@pytest.mark.parametrize("length", [1, 2, 6, 31, 32])
def test_block_round_trip_within_one_smbus_block(i2c: I2CBackend, length: int) -> None:
    payload = bytes((0x30 + 7 * i) & 0xFF for i in range(length))
    i2c.bus.write_block(ADDR, 0x40, payload)
    assert bytes(i2c.chip.regs[0x40 : 0x40 + length]) == payload
    assert i2c.bus.read_block(ADDR, 0x40, length) == payload
    assert reads(i2c.chip)[-1] == (0x40, length)


@pytest.mark.parametrize(("length", "chunks"), [(33, [32, 1]), (64, [32, 32]), (70, [32, 32, 6])])
def test_long_block_is_split_into_consecutive_smbus_blocks(
    i2c: I2CBackend, length: int, chunks: list[int]
) -> None:
    payload = bytes(range(0x80, 0x80 + length))
    i2c.bus.write_block(ADDR, 0x80, payload)
    writes = [(t.register, len(t.data)) for t in i2c.chip.history if t.op == "w"]
    starts = [0x80 + sum(chunks[:i]) for i in range(len(chunks))]
    assert writes == list(zip(starts, chunks, strict=True))
    assert i2c.bus.read_block(ADDR, 0x80, length) == payload
    assert reads(i2c.chip) == list(zip(starts, chunks, strict=True))


def test_write_read_is_one_combined_transfer_of_any_length(i2c: I2CBackend) -> None:
    i2c.chip.regs[0x10:0x40] = bytes(range(48))
    assert i2c.bus.write_read(ADDR, bytes([0x10]), 48) == bytes(range(48))
    assert reads(i2c.chip) == [(0x10, 48)]


def test_write_read_can_write_registers_then_read_back(i2c: I2CBackend) -> None:
    assert i2c.bus.write_read(ADDR, bytes([0x60, 1, 2, 3]), 0) == b""
    assert i2c.bus.write_read(ADDR, bytes([0x60]), 3) == b"\x01\x02\x03"


@pytest.mark.parametrize(
    ("kind", "code", "error"),
    [("no_ack", 121, NoAckError), ("timeout", 110, BusTimeoutError), ("io", 5, BusIOError)],
)
def test_persistent_fault_maps_errno_after_every_retry(
    i2c: I2CBackend, kind: str, code: int, error: type[BusError]
) -> None:
    i2c.inject(kind, RETRIES + 1)
    with pytest.raises(error, match=r"CHIP at i2c-1:0x1C") as info:
        i2c.bus.read_u8(ADDR, WHO_AM_I, part="CHIP")
    assert info.value.errno == code
    assert isinstance(info.value.__cause__, OSError)
    stats = i2c.bus.stats
    assert (stats.transfers, stats.retries, stats.failures) == (RETRIES + 1, RETRIES, 1)
    assert stats.errors_by_errno == {code: RETRIES + 1}
    assert i2c.bus.read_u8(ADDR, WHO_AM_I) == WHO_AM_I_VALUE  # recovered once the fault ends


@pytest.mark.parametrize("kind", sorted(FAULT_ERRNO))
def test_transient_fault_is_hidden_by_retries_but_counted(i2c: I2CBackend, kind: str) -> None:
    i2c.inject(kind, RETRIES)
    i2c.bus.write_block(ADDR, 0x50, b"\x0a\x0b")
    assert i2c.bus.read_block(ADDR, 0x50, 2) == b"\x0a\x0b"
    assert i2c.bus.stats.retries == RETRIES
    assert i2c.bus.stats.failures == 0
    assert i2c.bus.stats.errors_by_errno == {FAULT_ERRNO[kind]: RETRIES}


def test_fault_in_a_combined_transfer_is_mapped(i2c: I2CBackend) -> None:
    i2c.inject("timeout", RETRIES + 1)
    with pytest.raises(BusTimeoutError):
        i2c.bus.write_read(ADDR, bytes([WHO_AM_I]), 1)


def test_absent_address_is_no_ack(i2c: I2CBackend) -> None:
    with pytest.raises(NoAckError, match="0x2A") as info:
        i2c.bus.read_u8(0x2A, 0)
    assert info.value.errno == errno.EREMOTEIO


def test_fake_kernel_decodes_what_smbus2_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake itself: it must see the requests a kernel would, in order."""
    chip = _chip()
    kernel = FakeI2CDev({ADDR: chip})
    monkeypatch.setattr(smbus2.smbus2, "ioctl", kernel.ioctl)
    with smbus2.SMBus("/dev/null") as smbus:
        smbus.write_byte_data(ADDR, 0x21, 0x44)
        assert smbus.read_word_data(ADDR, 0x21) == 0x0044
        smbus.write_word_data(ADDR, 0x22, 0xBEEF)
        assert chip.regs[0x22:0x24] == b"\xef\xbe"
        with pytest.raises(OSError) as info:
            smbus.read_block_data(ADDR, 0)  # SMBus block read: not emulated by Pi adapters
        assert info.value.errno == errno.EOPNOTSUPP
    assert kernel.requests[:4] == [I2C_FUNCS, I2C_SLAVE, I2C_SMBUS, I2C_SMBUS]


# --- serial --------------------------------------------------------------------------------------
class LoopPeer:
    """pyserial's ``loop://``: the far end is the port's own input."""

    def __init__(self) -> None:
        self.port = SerialPort.open("loop://", baudrate=115200)

    def send(self, data: bytes) -> None:
        self.port.raw.write(data)

    def echo(self) -> None:
        """Everything written is already looped back."""

    def close(self) -> None:
        self.port.close()


class PtyPeer:
    """A pseudo-terminal: pyserial opens the slave by path; the test plays the far end."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.port = SerialPort.open(os.ttyname(self.slave), baudrate=115200)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def echo(self) -> None:
        os.set_blocking(self.master, False)
        try:
            while True:
                try:
                    data = os.read(self.master, 4096)
                except BlockingIOError:
                    return
                os.write(self.master, data)
        finally:
            os.set_blocking(self.master, True)

    def close(self) -> None:
        self.port.close()
        os.close(self.master)
        os.close(self.slave)


class WiredLoopback:
    """A real UART with TX jumpered to RX (bench only)."""

    def __init__(self, path: str) -> None:
        self.port = SerialPort.open(path, baudrate=115200)
        self.port.reset_input()

    def send(self, data: bytes) -> None:
        self.port.raw.write(data)

    def echo(self) -> None:
        """The wire echoes."""

    def close(self) -> None:
        self.port.close()


Peer = LoopPeer | PtyPeer | WiredLoopback


@pytest.fixture(
    params=["loop", "pty", pytest.param("wired", marks=pytest.mark.bench)],
)
def serial_peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    peer: Peer
    if request.param == "loop":
        peer = LoopPeer()
    elif request.param == "pty":
        peer = PtyPeer()
    else:
        path = os.environ.get("FSW_SERIAL_LOOPBACK")
        if not path:
            pytest.skip("set FSW_SERIAL_LOOPBACK to a UART with TX wired to RX")
        peer = WiredLoopback(path)
    yield peer
    peer.close()


def settle(peer: Peer, n: int, timeout: float = 2.0) -> None:
    """Until ``n`` bytes wait at our side (a tty hands bytes over asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        peer.echo()
        if peer.port.in_waiting() >= n:
            return
        assert time.monotonic() < deadline, f"only {peer.port.in_waiting()} of {n} bytes arrived"
        time.sleep(0.001)


def test_serial_bytes_come_back_intact_and_in_order(serial_peer: Peer) -> None:
    every_byte = bytes(range(256))  # XON/XOFF, CR/LF, ^C: a raw line must pass them all
    serial_peer.port.write(every_byte)
    settle(serial_peer, 256)
    assert serial_peer.port.read_exactly(256) == every_byte
    stats = serial_peer.port.stats
    assert (stats.bytes_out, stats.bytes_in, stats.errors) == (256, 256, 0)


def test_serial_bytes_from_the_far_end(serial_peer: Peer) -> None:
    frame = bytes([0x59, 0x59, 0xF4, 0x01, 0xD0, 0x07, 0x00, 0x09, 0x00])
    serial_peer.send(frame * 3)
    settle(serial_peer, 27)
    assert serial_peer.port.in_waiting() == 27
    assert serial_peer.port.read_available(limit=9) == frame
    assert serial_peer.port.read_available() == frame * 2
    assert serial_peer.port.read_available() == b""


def test_serial_short_read_times_out_without_blocking(serial_peer: Peer) -> None:
    started = time.monotonic()
    with pytest.raises(BusTimeoutError, match="got 0 of 4 bytes"):
        serial_peer.port.read_exactly(4)
    assert time.monotonic() - started < 0.5
    assert serial_peer.port.stats.errors == 1


def test_serial_reset_input_discards_what_waits(serial_peer: Peer) -> None:
    serial_peer.send(b"stale")
    settle(serial_peer, 5)
    serial_peer.port.reset_input()
    assert serial_peer.port.in_waiting() == 0
    serial_peer.send(b"new")
    settle(serial_peer, 3)
    assert serial_peer.port.read_exactly(3) == b"new"


def test_serial_closed_port_is_a_bus_error(serial_peer: Peer) -> None:
    serial_peer.port.close()
    with pytest.raises(BusError):
        serial_peer.port.read_available()
    with pytest.raises(BusError):
        serial_peer.port.write(b"x")
