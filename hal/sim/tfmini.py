"""A simulated Benewake TFmini Plus: a pyserial-compatible port streaming frames from the clock.

Frame ``k`` leaves the sensor at ``t0 + k / frame_rate_hz``. Nothing runs in the background:
when the host looks (``in_waiting``, ``read``), every frame due by ``clock.monotonic()`` is
generated from the environment as it is at that moment (``env.range_m``, ``env.range_strength``,
``env.lidar_temperature_c``) and appended to the 4 KiB receive buffer, oldest bytes lost when
full, as on a real port read too slowly.

The frame encoding here is written independently of the driver's, so the driver's tests check
it against a second reading of the datasheet rather than against itself.

Faults, all deterministic for a given ``seed`` and call sequence: :meth:`garbage` (random bytes
now), :meth:`corrupt_next` (bad checksums), :meth:`truncate_next` (frames cut short),
:meth:`dropout` (silence for a while).

Commands handled (``0x5A len id payload checksum``): 0x01 version, 0x02 system reset,
0x03 frame rate (0 stops output), 0x07 output on/off, 0x10 factory reset, 0x11 save settings;
a command with a bad checksum is ignored, as the sensor does.

Long-range extension: ``distance_unit_cm`` scales the distance field (see
``hal.drivers.tfmini``), so the same model serves as the mission's radar altimeter, e.g.
``TFminiModel(env, clock=clock, max_range_m=20_000, distance_unit_cm=100)``.
"""

from __future__ import annotations

import math
import random

from hal.clock import Clock
from hal.errors import ConfigError
from hal.sim.environment import Environment
from hal.sim.serial import SimSerialPort

__all__ = ["TFminiModel"]

_FRAME_LEN = 9
_FIRMWARE = (2, 0, 5)  # reported as "2.0.5" (a simulated firmware, not a claim about a release)


def _u16(value: float) -> int:
    return max(0, min(0xFFFF, round(value)))


def _with_checksum(body: bytes) -> bytes:
    return body + bytes([sum(body) & 0xFF])


class TFminiModel(SimSerialPort):
    """The sensor and its UART, as a pyserial port object.

    Args:
        env: the physical inputs.
        clock: paces the frames.
        max_range_m: beyond this (or with ``env.range_m`` None) the sensor reports no return.
        frame_rate_hz: frames per second (1000 / n; 0 for silence until commanded).
        seed: for noise and fault bytes.
        distance_unit_cm: centimetres per distance count (1 for the stock sensor).
        range_noise_m: standard deviation of Gaussian noise added to the range.
        name: the port name in messages.
    """

    def __init__(
        self,
        env: Environment,
        *,
        clock: Clock,
        max_range_m: float = 12.0,
        frame_rate_hz: float = 100.0,
        seed: int = 0,
        distance_unit_cm: int = 1,
        range_noise_m: float = 0.0,
        name: str = "sim://tfmini",
    ) -> None:
        if not distance_unit_cm >= 1:
            raise ConfigError(f"{name}: distance_unit_cm must be >= 1, got {distance_unit_cm}")
        if not (math.isfinite(max_range_m) and 0 < max_range_m * 100 / distance_unit_cm <= 0xFFFF):
            raise ConfigError(
                f"{name}: max_range_m {max_range_m} does not fit a u16 of {distance_unit_cm} cm"
            )
        if not (math.isfinite(frame_rate_hz) and 0 <= frame_rate_hz <= 1000):
            raise ConfigError(f"{name}: frame_rate_hz must be 0..1000, got {frame_rate_hz}")
        self.env = env
        self.max_range_m = max_range_m
        self.distance_unit_cm = distance_unit_cm
        self.range_noise_m = range_noise_m
        self._default_rate = float(frame_rate_hz)
        self._noise_rng = random.Random(f"{seed}:noise")
        self._fault_rng = random.Random(f"{seed}:faults")
        self._cmd_buf = bytearray()
        self._corrupt = 0
        self._truncate: list[int | None] = []
        self._dropouts: list[tuple[float, float]] = []
        #: Frames put on the wire, frames suppressed by a dropout, frames lost to a full buffer.
        self.frames_sent = 0
        self.frames_dropped = 0
        self.frames_overrun = 0
        #: ``(time, command id, payload)`` of every valid command received.
        self.commands: list[tuple[float, int, bytes]] = []
        self.frame_rate_hz = 0.0
        self.output_enabled = True
        self._t0 = 0.0
        self._k = 0
        super().__init__(clock=clock, name=name, baudrate=115200)
        self._set_rate(self._default_rate, first_now=True)

    # --- frame schedule --------------------------------------------------------------------------
    def _set_rate(self, hz: float, *, first_now: bool = False) -> None:
        """Re-anchor the schedule: the next frame is at now (power-on) or one period later."""
        self.frame_rate_hz = hz
        self._t0 = self.clock.monotonic()
        self._k = 0 if first_now else 1

    def _frame_time(self, k: int) -> float:
        return self._t0 + k / self.frame_rate_hz

    def _due(self) -> int:
        """Number of frames (indices ``0..n-1``) due by now."""
        if self.frame_rate_hz <= 0 or not self.output_enabled:
            return self._k
        return math.floor((self.clock.monotonic() - self._t0) * self.frame_rate_hz + 1e-6) + 1

    def next_data_time(self) -> float | None:
        if self.frame_rate_hz <= 0 or not self.output_enabled:
            return None
        return self._frame_time(self._k)

    def produce(self) -> None:
        due = self._due()
        count = due - self._k
        if count <= 0:
            return
        # After a long gap only the newest frames can survive the buffer; skip the rest cheaply
        # (fault counters still apply to them in order).
        keep = self.buffer_size // _FRAME_LEN + 2
        if count > keep:
            skipped = count - keep
            self.frames_overrun += skipped
            self.bytes_dropped += skipped * _FRAME_LEN
            self._corrupt = max(0, self._corrupt - skipped)
            del self._truncate[:skipped]
            self._k += skipped
        for k in range(self._k, due):
            if self._in_dropout(self._frame_time(k)):
                self.frames_dropped += 1
                continue
            self.deliver(self._frame_bytes())
            self.frames_sent += 1
        self._k = due
        now = self.clock.monotonic()
        self._dropouts = [(a, b) for a, b in self._dropouts if b > now]

    def _in_dropout(self, t: float) -> bool:
        return any(start <= t < end for start, end in self._dropouts)

    def _frame_bytes(self) -> bytes:
        env = self.env
        strength = _u16(env.range_strength)
        r = env.range_m
        if r is None or not math.isfinite(r) or r < 0 or r > self.max_range_m:
            distance, strength = 0, 0
        else:
            if self.range_noise_m > 0:
                r = max(0.0, r + self._noise_rng.gauss(0.0, self.range_noise_m))
            distance = _u16(r * 100 / self.distance_unit_cm)
            if strength < 100 or strength == 0xFFFF:
                distance = 0  # the sensor's "no valid return"
        temp = _u16((env.lidar_temperature_c + 256) * 8)
        body = bytes([0x59, 0x59])
        for value in (distance, strength, temp):
            body += bytes([value & 0xFF, value >> 8])
        frame = bytearray(_with_checksum(body))
        if self._corrupt:
            self._corrupt -= 1
            frame[8] ^= 0xFF
        if self._truncate:
            keep = self._truncate.pop(0)
            if keep is None:
                keep = self._fault_rng.randint(1, _FRAME_LEN - 1)
            del frame[keep:]
        return bytes(frame)

    # --- fault injection -------------------------------------------------------------------------
    def garbage(self, n_bytes: int) -> None:
        """Put ``n_bytes`` random bytes on the wire now (after the frames already due)."""
        self.produce()
        self.deliver(bytes(self._fault_rng.randrange(256) for _ in range(n_bytes)))

    def corrupt_next(self, n: int = 1) -> None:
        """The next ``n`` frames carry a wrong checksum."""
        self._corrupt += n

    def truncate_next(self, n: int = 1, *, keep: int | None = None) -> None:
        """The next ``n`` frames are cut to ``keep`` bytes (1..8; random when None)."""
        if keep is not None and not 1 <= keep < _FRAME_LEN:
            raise ValueError(f"keep must be 1..8, got {keep}")
        self._truncate.extend([keep] * n)

    def dropout(self, duration_s: float) -> None:
        """Send nothing for ``duration_s`` from now (frames due before now are already sent)."""
        self.produce()
        now = self.clock.monotonic()
        self._dropouts.append((now, now + duration_s))

    # --- commands --------------------------------------------------------------------------------
    def on_host_write(self, data: bytes) -> None:
        buf = self._cmd_buf
        buf.extend(data)
        while True:
            start = buf.find(0x5A)
            if start < 0:
                buf.clear()
                return
            del buf[:start]
            if len(buf) < 2:
                return
            length = buf[1]
            if not 4 <= length <= 16:
                del buf[:1]
                continue
            if len(buf) < length:
                if len(buf) > 64:  # never grow without bound on a stream of junk
                    del buf[:1]
                    continue
                return
            cmd = bytes(buf[:length])
            if sum(cmd[:-1]) & 0xFF != cmd[-1]:
                del buf[:1]
                continue
            del buf[:length]
            self._execute(cmd[2], cmd[3:-1])

    def _reply(self, command_id: int, payload: bytes) -> None:
        self.deliver(_with_checksum(bytes([0x5A, len(payload) + 4, command_id]) + payload))

    def _execute(self, command_id: int, payload: bytes) -> None:
        self.commands.append((self.clock.monotonic(), command_id, payload))
        if command_id == 0x01:
            self._reply(0x01, bytes(reversed(_FIRMWARE)))
        elif command_id == 0x02:
            self._reply(0x02, b"\x00")
            self.output_enabled = True
            self._set_rate(self._default_rate)
        elif command_id == 0x03 and len(payload) == 2:
            self._reply(0x03, payload)
            self._set_rate(float(int.from_bytes(payload, "little")))
        elif command_id == 0x07 and len(payload) == 1:
            self._reply(0x07, payload)
            self.output_enabled = bool(payload[0])
            self._set_rate(self.frame_rate_hz)
        elif command_id in (0x10, 0x11):
            self._reply(command_id, b"\x00")
