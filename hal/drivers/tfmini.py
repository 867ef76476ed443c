"""Benewake TFmini Plus LiDAR on a UART (115200 8N1), and the streaming parser for its frames.

The sensor streams 9-byte frames, by default 100 per second::

    0x59 0x59 Dist_L Dist_H Strength_L Strength_H Temp_L Temp_H Checksum

Dist is in cm, temperature in degC is ``raw / 8 - 256``, the checksum is the low byte of the sum
of bytes 0..7, and a strength below 100 or equal to 65535 means no valid return (Dist reads 0).
Commands from the host are ``0x5A len id payload checksum`` (same checksum rule); the sensor
answers in the same format, in between its data frames.

Long-range extension (not in Benewake's protocol): the Mars reference mission's radar altimeter
is modelled as a TFmini-protocol device whose distance field counts ``distance_unit_cm``
centimetres (default 1, the stock sensor). A u16 of centimetres stops at 655.35 m; with
``distance_unit_cm=100`` the same frame carries up to 65.535 km in metres. Driver and simulated
device must be given the same unit.

:class:`TFminiParser` is pure (bytes in, frames out) so it is property-tested on its own; the
driver only drains the port into it.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from hal.clock import Clock
from hal.device import Reading, SerialDevice
from hal.errors import (
    BusTimeoutError,
    ConfigError,
    DeviceIdentityError,
    DeviceStateError,
)
from hal.serialport import SerialPort

__all__ = [
    "Frame",
    "Response",
    "TFminiParser",
    "TFminiPlus",
    "TFminiReading",
    "checksum",
    "encode_command",
    "encode_frame",
]

_log = logging.getLogger(__name__)

HEADER = 0x59
FRAME_LEN = 9
CMD_HEADER = 0x5A
CMD_MIN_LEN, CMD_MAX_LEN = 4, 16
CMD_VERSION = 0x01
CMD_FRAME_RATE = 0x03
STRENGTH_MIN_VALID = 100
STRENGTH_SATURATED = 65535
MAX_FRAME_RATE_HZ = 1000

PROBE_WINDOW_S = 0.2
POLL_STEP_S = 0.01
BAUDRATE = 115200


# --- pure protocol functions ------------------------------------------------------------------
def checksum(data: bytes | bytearray) -> int:
    """Low byte of the sum of ``data`` (the frame's and the command protocol's checksum)."""
    return sum(data) & 0xFF


def encode_frame(distance: int, strength: int, temperature_raw: int) -> bytes:
    """One data frame; every field is a u16 (little-endian)."""
    body = bytes([HEADER, HEADER]) + b"".join(
        (v & 0xFFFF).to_bytes(2, "little") for v in (distance, strength, temperature_raw)
    )
    return body + bytes([checksum(body)])


def encode_command(command_id: int, payload: bytes = b"") -> bytes:
    """A host command: ``0x5A len id payload checksum`` with ``len`` counting every byte."""
    body = bytes([CMD_HEADER, len(payload) + 4, command_id]) + payload
    return body + bytes([checksum(body)])


def temperature_c(raw: int) -> float:
    """Temperature field -> degC (``raw / 8 - 256``)."""
    return raw / 8 - 256


@dataclass(frozen=True, slots=True)
class Frame:
    """One data frame as received (raw fields)."""

    distance: int  # in distance units (cm for the stock sensor)
    strength: int
    temperature_raw: int

    @property
    def temperature_c(self) -> float:
        return temperature_c(self.temperature_raw)

    def encode(self) -> bytes:
        return encode_frame(self.distance, self.strength, self.temperature_raw)


@dataclass(frozen=True, slots=True)
class Response:
    """A reply to a host command (``0x5A`` format)."""

    command_id: int
    payload: bytes


class TFminiParser:
    """Incremental frame parser that survives any byte stream.

    Sync is two 0x59 bytes, but 0x59 can also occur in a payload (a distance of 89 cm), so after
    a bad checksum the parser advances ONE byte and tries again rather than skipping a frame's
    length: a real header may start inside the rejected bytes. At most one incomplete frame or
    response is buffered between calls, so memory is bounded whatever arrives.

    With ``accept_responses`` the parser also extracts ``0x5A`` command replies into
    :attr:`responses`; it is off by default, because in a pure data stream a stray 0x5A is more
    likely garbage than a reply, and only the code that just sent a command expects one.

    Counters always satisfy ``bytes_in == 9 * frames_ok + response_bytes + bytes_skipped +
    pending``.
    """

    def __init__(self, *, accept_responses: bool = False) -> None:
        self.accept_responses = accept_responses
        self.frames_ok = 0
        self.checksum_errors = 0
        self.bytes_skipped = 0
        self.bytes_in = 0
        self.response_bytes = 0
        #: Replies to commands, newest last (bounded: only the latest few matter).
        self.responses: deque[Response] = deque(maxlen=8)
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back as the start of an incomplete frame or response."""
        return len(self._buf)

    def reset(self) -> None:
        """Drop any partial frame (after a port flush); counters are kept."""
        self.bytes_skipped += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> list[Frame]:
        """Every complete, checksum-valid frame in the stream so far, in order. Never raises."""
        self.bytes_in += len(data)
        buf = self._buf
        buf.extend(data)
        frames: list[Frame] = []
        i, n = 0, len(buf)
        while n - i >= 2:
            if buf[i] == HEADER and buf[i + 1] == HEADER:
                if n - i < FRAME_LEN:
                    break
                if checksum(buf[i : i + 8]) == buf[i + 8]:
                    frames.append(
                        Frame(
                            buf[i + 2] | (buf[i + 3] << 8),
                            buf[i + 4] | (buf[i + 5] << 8),
                            buf[i + 6] | (buf[i + 7] << 8),
                        )
                    )
                    i += FRAME_LEN
                    continue
                self.checksum_errors += 1
                i += 1
                self.bytes_skipped += 1
                continue
            if self.accept_responses and buf[i] == CMD_HEADER:
                length = buf[i + 1]
                if CMD_MIN_LEN <= length <= CMD_MAX_LEN:
                    if n - i < length:
                        break
                    if checksum(buf[i : i + length - 1]) == buf[i + length - 1]:
                        self.responses.append(
                            Response(buf[i + 2], bytes(buf[i + 3 : i + length - 1]))
                        )
                        self.response_bytes += length
                        i += length
                        continue
                i += 1
                self.bytes_skipped += 1
                continue
            j = self._next_candidate(buf, i + 1)
            self.bytes_skipped += j - i
            i = j
        if n - i == 1 and not self._could_start(buf[i]):
            i += 1
            self.bytes_skipped += 1
        del buf[:i]
        self.frames_ok += len(frames)
        return frames

    def _could_start(self, byte: int) -> bool:
        return byte == HEADER or (self.accept_responses and byte == CMD_HEADER)

    def _next_candidate(self, buf: bytearray, start: int) -> int:
        j = buf.find(HEADER, start)
        if self.accept_responses:
            k = buf.find(CMD_HEADER, start)
            if k != -1 and (j == -1 or k < j):
                j = k
        return len(buf) if j == -1 else j


# --- the driver -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TFminiReading(Reading):
    #: Metres to the target, or None when there is no valid return (weak, saturated, out of range).
    distance_m: float | None
    strength: int
    temperature_c: float
    #: Valid frames and checksum errors since the driver started (monotonic counters).
    frames: int
    checksum_errors: int
    #: How long ago (clock time) the reported frame arrived.
    age_s: float


class TFminiPlus(SerialDevice):
    """LiDAR altimeter driver; never blocks the flight loop in :meth:`read`.

    Args:
        port: the serial port (115200 8N1), or a ``hal.sim.tfmini.TFminiModel`` wrapped in one.
        max_range_m: distances beyond this are reported as no return (12 m for the stock sensor).
        min_strength: signal strength below which a distance is not trusted (datasheet: 100).
        timeout_s: :meth:`read` raises once no valid frame has arrived for this long.
        distance_unit_cm: centimetres per distance count; 1 for the stock sensor (see the
            module docstring for the long-range extension).
        frame_rate_hz: if set, :meth:`configure` commands this output rate (1000 / n Hz).

    Raises:
        ConfigError: an option is out of range (the message names it).
    """

    part: ClassVar[str] = "TFmini Plus"

    def __init__(
        self,
        port: SerialPort,
        *,
        name: str,
        clock: Clock,
        max_range_m: float = 12.0,
        min_strength: int = STRENGTH_MIN_VALID,
        timeout_s: float = 0.2,
        distance_unit_cm: int = 1,
        frame_rate_hz: int | None = None,
    ) -> None:
        super().__init__(port, name=name, clock=clock)
        self.distance_unit_cm = self._int_option("distance_unit_cm", distance_unit_cm, 1, 100_000)
        self.max_range_m = self._float_option("max_range_m", max_range_m)
        if self.max_range_m * 100 / self.distance_unit_cm > 0xFFFF:
            raise ConfigError(
                f"{self.where}: option max_range_m {max_range_m} m cannot be encoded in a u16 of "
                f"{self.distance_unit_cm} cm units; raise distance_unit_cm"
            )
        self.min_strength = self._int_option(
            "min_strength", min_strength, 1, STRENGTH_SATURATED - 1
        )
        self.timeout_s = self._float_option("timeout_s", timeout_s)
        self.frame_rate_hz = (
            None
            if frame_rate_hz is None
            else self._frame_rate_option("frame_rate_hz", frame_rate_hz)
        )
        self.parser = TFminiParser()
        self._latest: Frame | None = None
        self._latest_at = clock.monotonic()  # also where the no-frame timeout starts counting

    # --- option checks ----------------------------------------------------------------------------
    def _int_option(self, option: str, value: object, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(
                f"{self.where}: option {option} must be an integer {low}..{high}, got {value!r}"
            )
        return value

    def _float_option(self, option: str, value: object) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (math.isfinite(value) and value > 0)
        ):
            raise ConfigError(
                f"{self.where}: option {option} must be a positive number, got {value!r}"
            )
        return float(value)

    def _frame_rate_option(self, option: str, value: object) -> int:
        hz = self._int_option(option, value, 1, MAX_FRAME_RATE_HZ)
        if MAX_FRAME_RATE_HZ % hz:
            raise ConfigError(f"{self.where}: option {option} must divide 1000 Hz, got {hz}")
        return hz

    # --- conversion -------------------------------------------------------------------------------
    def distance_m(self, frame: Frame) -> float | None:
        """The frame's distance in metres, or None when the return is not valid."""
        if frame.strength < self.min_strength or frame.strength == STRENGTH_SATURATED:
            return None
        if frame.distance == 0:
            return None
        metres = frame.distance * self.distance_unit_cm / 100
        return metres if metres <= self.max_range_m else None

    def _reading(self, frame: Frame, now: float) -> TFminiReading:
        return TFminiReading(
            distance_m=self.distance_m(frame),
            strength=frame.strength,
            temperature_c=frame.temperature_c,
            frames=self.parser.frames_ok,
            checksum_errors=self.parser.checksum_errors,
            age_s=now - self._latest_at,
        )

    # --- stream handling --------------------------------------------------------------------------
    def _drain(self) -> tuple[int, int]:
        """Feed everything waiting to the parser; returns (bytes read, frames found)."""
        total = frames_found = 0
        for _ in range(4):  # bounded: a port that never empties must not stall the loop
            data = self.port.read_available()
            if not data:
                break
            total += len(data)
            frames = self.parser.feed(data)
            if frames:
                frames_found += len(frames)
                self._latest = frames[-1]
                self._latest_at = self.clock.monotonic()
        return total, frames_found

    # --- Device ----------------------------------------------------------------------------------
    def probe(self) -> str:
        """Listen for up to 0.2 s (in 10 ms clock steps) and measure the frame rate.

        Raises:
            BusTimeoutError: nothing arrived at all (unpowered, unplugged, wrong port).
            DeviceIdentityError: bytes arrived but never a valid frame (wrong baud rate or not a
                TFmini).
            BusError: the port failed.
        """
        backlog_bytes, backlog_frames = self._drain()
        start = self.clock.monotonic()
        window_bytes = window_frames = 0
        while self.clock.monotonic() - start < PROBE_WINDOW_S - 1e-9:
            self.clock.sleep(POLL_STEP_S)
            got, found = self._drain()
            window_bytes += got
            window_frames += found
        elapsed = self.clock.monotonic() - start
        if window_frames:
            return f"TFmini Plus frames at {round(window_frames / elapsed)} Hz"
        if backlog_frames:
            raise BusTimeoutError(
                f"{self.where}: {backlog_frames} buffered frames but none in {elapsed:.2f} s "
                "(output stopped?)"
            )
        if backlog_bytes or window_bytes:
            raise DeviceIdentityError(
                f"{self.where}: {backlog_bytes + window_bytes} bytes in {elapsed:.2f} s but no "
                f"valid frame ({self.parser.checksum_errors} checksum errors; wrong baud rate or "
                "not a TFmini?)"
            )
        raise BusTimeoutError(f"{self.where}: nothing received in {elapsed:.2f} s")

    def configure(self) -> None:
        """Set the frame rate if the options ask for one; restart the no-frame timeout.

        Raises:
            BusTimeoutError: the sensor did not acknowledge the frame-rate command.
            DeviceStateError: it acknowledged a different rate.
            BusError: the port failed.
        """
        if self.frame_rate_hz is not None:
            self.set_frame_rate(self.frame_rate_hz)
        self._latest_at = self.clock.monotonic()

    def reset(self) -> None:
        """Flush the port and the parser, forget the last frame, and configure again."""
        self.port.reset_input()
        self.parser.reset()
        self._latest = None
        self.configure()

    def read(self) -> TFminiReading:
        """The latest valid frame (stale up to ``timeout_s`` if none arrived since last time).

        Raises:
            BusTimeoutError: no valid frame for longer than ``timeout_s`` (silence or garbage).
            DeviceStateError: no frame yet, and the timeout has not run out.
            BusError: the port failed.
        """
        self._drain()
        now = self.clock.monotonic()
        silent = now - self._latest_at
        if silent > self.timeout_s:
            raise BusTimeoutError(
                f"{self.where}: no valid frame for {silent:.3f} s ({self.parser.bytes_skipped} "
                f"bytes skipped, {self.parser.checksum_errors} checksum errors)"
            )
        if self._latest is None:
            raise DeviceStateError(f"{self.where}: no frame received yet")
        return self._reading(self._latest, now)

    # --- commands ---------------------------------------------------------------------------------
    def set_frame_rate(self, hz: int) -> None:
        """Command the output rate (0x03, echoed by the sensor). 1000 must be divisible by it.

        Raises:
            ConfigError: ``hz`` is not a divisor of 1000.
            BusTimeoutError: no reply within ``timeout_s``.
            DeviceStateError: the reply carries a different rate.
        """
        hz = self._frame_rate_option("frame rate", hz)
        reply = self.command(CMD_FRAME_RATE, hz.to_bytes(2, "little"))
        if reply.payload[:2] != hz.to_bytes(2, "little"):
            raise DeviceStateError(
                f"{self.where}: frame rate {hz} Hz answered with {reply.payload.hex()}"
            )
        _log.info("%s: frame rate set to %d Hz", self.where, hz)

    def firmware_version(self) -> str:
        """The sensor's firmware version (command 0x01), e.g. ``"2.0.5"``.

        Raises:
            BusTimeoutError: no reply within ``timeout_s``.
        """
        reply = self.command(CMD_VERSION)
        if len(reply.payload) != 3:
            raise DeviceStateError(f"{self.where}: malformed version reply {reply.payload.hex()}")
        return ".".join(str(b) for b in reversed(reply.payload))

    def command(self, command_id: int, payload: bytes = b"") -> Response:
        """Send a command and wait (clock steps of 5 ms, up to ``timeout_s``) for its reply.

        Frames that arrive meanwhile are kept as the latest reading.

        Raises:
            BusTimeoutError: no reply with ``command_id`` in time.
            BusError: the port failed.
        """
        self.parser.responses.clear()
        self.parser.accept_responses = True
        try:
            self.port.write(encode_command(command_id, payload))
            deadline = self.clock.monotonic() + self.timeout_s
            while True:
                self._drain()
                for reply in self.parser.responses:
                    if reply.command_id == command_id:
                        return reply
                if self.clock.monotonic() >= deadline:
                    break
                self.clock.sleep(POLL_STEP_S / 2)
        finally:
            self.parser.accept_responses = False
        raise BusTimeoutError(
            f"{self.where}: no reply to command 0x{command_id:02X} in {self.timeout_s} s"
        )
