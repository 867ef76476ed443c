"""The downlink: prioritised messages into TM frames at the radio's byte rate.

:class:`Downlink` turns messages into space packets at once (so each gets its sequence count and a
refused message is noticed where it was produced) and queues them by priority:

1. command responses, 2. events, 3. telemetry and file data (realtime, virtual channel 0);
playback (archived messages re-sent, virtual channel 1) has its own queue.

Each :meth:`Downlink.tick` refills a token bucket at ``byte_rate`` (capacity ``burst_frames``
frames) and emits whole frames while the bucket holds one frame's worth, ASM included. A frame is
filled from the highest-priority queue first, so a command response waits for at most the frame
already being sent. A frame that cannot be filled goes out padded rather than waiting: latency of
responses matters more than the few bytes of idle fill.

When both virtual channels have data, playback gets ``playback_share`` of the frames (0.5 by
default: alternate); when either is idle the other gets everything, so neither starves the other.

Queues are bounded. A full telemetry queue drops its *oldest* packet (fresh housekeeping beats
stale); the response and event queues have a much larger hard bound and, if it is ever hit, drop
the *newest* (the first events of a storm say what caused it). Every drop is counted, and a
WARNING_LO event reports drops at most once per tick. A full playback queue refuses the message
(:meth:`Downlink.send_playback` returns False): the archive still holds it and can retry.
:attr:`Downlink.playback_sent` counts the playback packets whose last byte has gone out, so the
caller can tell how far the ground may have got, as opposed to how far it has queued.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from flight.commands import Arg, ArgType, CommandSpec
from flight.events import EventLog, EventSpec, Severity
from flight.link.framesync import ASM
from flight.link.spacepacket import (
    PacketError,
    Packetizer,
)
from flight.link.tmframe import PLAYBACK_VCID, REALTIME_VCID, TmFramer
from flight.messages import Message, MessageKind

__all__ = ["Downlink", "DownlinkStats", "Priority"]

log = logging.getLogger(__name__)

OP_DL_RATE_SET = 0x0610
OP_DL_PLAYBACK_SHARE_SET = 0x0611
MAX_BYTE_RATE = 1_000_000.0

EV_QUEUE_OVERFLOW = EventSpec(
    0x0610,
    "link.DOWNLINK_QUEUE_OVERFLOW",
    Severity.WARNING_LO,
    "downlink queues full: {dropped} packet(s) dropped this tick ({total} in all)",
    throttle=20,
    description="More was produced than the downlink rate can carry; oldest telemetry dropped.",
)
EV_RATE_SET = EventSpec(
    0x0611,
    "link.DOWNLINK_RATE_SET",
    Severity.ACTIVITY_HI,
    "downlink {what} set to {value}",
    description="The downlink byte rate or playback share was changed by command.",
)


@enum.unique
class Priority(enum.IntEnum):
    RESPONSE = 0
    EVENT = 1
    TELEMETRY = 2


_PRIORITY = {
    MessageKind.COMMAND_RESPONSE: Priority.RESPONSE,
    MessageKind.EVENT: Priority.EVENT,
    MessageKind.TELEMETRY: Priority.TELEMETRY,
    MessageKind.FILE: Priority.TELEMETRY,
}


@dataclass
class DownlinkStats:
    bytes_sent: int = 0
    frames_sent: int = 0
    realtime_frames: int = 0
    playback_frames: int = 0
    idle_frames: int = 0
    #: Bytes of real space packets (not idle fill, headers of frames or ASMs) put into frames.
    user_bytes: int = 0
    drops: dict[str, int] = field(
        default_factory=lambda: {p.name.lower(): 0 for p in Priority} | {"playback": 0}
    )
    encode_errors: int = 0
    write_errors: int = 0


class Downlink:
    """Prioritised, rate-limited TM frame output.

    Args:
        framer: packs packets into frames (its frame length sets the unit of sending).
        transport_write: sends bytes; an ``OSError`` from it is counted, not raised.
        byte_rate: bytes per second on the wire (ASM and frame headers included).
        now: seconds on the flight clock.
        asm: put the sync marker in front of each frame (off for packetised transports).
        telemetry_limit: packets the telemetry queue holds before dropping the oldest.
        priority_limit: hard bound of the response and event queues each.
        playback_limit: packets the playback queue holds before refusing more.
        playback_share: fraction of frames playback gets while realtime is also busy.
        burst_frames: bucket capacity in frames.
        idle_frames: send all-idle frames when nothing is queued (keeps a modem's link alive).
        events: where drops and rate changes are reported (optional).

    Raises (on construction):
        ValueError: a rate, share or limit out of range.
    """

    def __init__(
        self,
        *,
        framer: TmFramer,
        transport_write: Callable[[bytes], None],
        byte_rate: float,
        now: Callable[[], float],
        asm: bool = True,
        telemetry_limit: int = 64,
        priority_limit: int = 1024,
        playback_limit: int = 16,
        playback_share: float = 0.5,
        burst_frames: int = 2,
        idle_frames: bool = False,
        events: EventLog | None = None,
    ) -> None:
        self._framer = framer
        self._write = transport_write
        self._now = now
        self._asm = ASM if asm else b""
        self._wire_len = framer.frame_length + len(self._asm)
        if min(telemetry_limit, priority_limit, playback_limit, burst_frames) < 1:
            raise ValueError("queue limits and burst_frames must be at least 1")
        self._limits = {
            Priority.RESPONSE: priority_limit,
            Priority.EVENT: priority_limit,
            Priority.TELEMETRY: telemetry_limit,
        }
        self._playback_limit = playback_limit
        self._burst = burst_frames
        self.set_byte_rate(byte_rate)
        self.set_playback_share(playback_share)
        self.idle_frames = idle_frames
        self._events = events
        self._queues: dict[Priority, deque[bytes]] = {p: deque() for p in Priority}
        self._playback: deque[bytes] = deque()
        # Where each playback packet handed to the framer ends in virtual channel 1's stream.
        self._playback_ends: deque[int] = deque()
        #: Playback packets whose last byte has gone out in a frame, since construction.
        self.playback_sent = 0
        #: Turns messages into packets: it holds the sequence counts, and the fixed telemetry
        #: layouts the link service gives it (``LinkService.fix_layouts``).
        self.packetizer = Packetizer()
        self._tokens = float(self._capacity)
        self._last: float | None = None
        self._contended = {REALTIME_VCID: 0, PLAYBACK_VCID: 0}
        self._drops_reported = 0
        self.stats = DownlinkStats()

    # ------------------------------------------------------------------ configuration

    @property
    def byte_rate(self) -> float:
        return self._rate

    def set_byte_rate(self, byte_rate: float) -> None:
        """Raises: ValueError: not a positive rate up to 1 MB/s."""
        if not 0 < byte_rate <= MAX_BYTE_RATE:
            raise ValueError(f"byte rate {byte_rate} outside (0, {MAX_BYTE_RATE:.0f}]")
        self._rate = float(byte_rate)

    @property
    def playback_share(self) -> float:
        return self._share

    def set_playback_share(self, share: float) -> None:
        """Raises: ValueError: outside 0..1."""
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"playback share {share} outside 0..1")
        self._share = float(share)

    @property
    def _capacity(self) -> int:
        return self._burst * self._wire_len

    # ------------------------------------------------------------------ input

    def send(self, msg: Message) -> None:
        """Queue a realtime message; never raises (a refused message is logged and counted)."""
        try:
            packet = self.packetizer.realtime(msg)
        except (PacketError, KeyError) as exc:
            self.stats.encode_errors += 1
            log.error("downlink cannot encode %s %s: %s", msg.kind, msg.id, exc)
            return
        prio = _PRIORITY[msg.kind]
        queue = self._queues[prio]
        if len(queue) >= self._limits[prio]:
            self.stats.drops[prio.name.lower()] += 1
            if prio is not Priority.TELEMETRY:
                return  # keep the oldest responses and events
            queue.popleft()
        queue.append(packet)

    def send_playback(self, msg: Message) -> bool:
        """Queue an archived message for virtual channel 1.

        Returns:
            False if the playback queue is full (or the message cannot be encoded); the caller
            keeps it and retries later.
        """
        if len(self._playback) >= self._playback_limit:
            return False
        try:
            self._playback.append(self.packetizer.playback(msg))
        except (PacketError, KeyError) as exc:
            self.stats.encode_errors += 1
            log.error("downlink cannot encode playback %s %s: %s", msg.kind, msg.id, exc)
            return False
        return True

    def drop_playback(self) -> int:
        """Forget the playback packets not yet in a frame (the archive will send them again);
        returns how many. Those already partly framed still go out."""
        dropped = len(self._playback)
        self._playback.clear()
        return dropped

    def playback_room(self) -> int:
        """How many more playback messages would be accepted now."""
        return self._playback_limit - len(self._playback)

    def queued(self, priority: Priority | None = None) -> int:
        """Packets waiting (not yet in a frame) at one priority, or in all realtime queues."""
        if priority is not None:
            return len(self._queues[priority])
        return sum(len(q) for q in self._queues.values())

    def idle(self) -> bool:
        """Nothing waiting on either virtual channel: no queued packet, no partly sent frame."""
        return not (self._realtime_busy() or self._playback_busy())

    # ------------------------------------------------------------------ output

    def _realtime_busy(self) -> bool:
        return self._framer.pending(REALTIME_VCID) > 0 or any(self._queues.values())

    def _playback_busy(self) -> bool:
        return self._framer.pending(PLAYBACK_VCID) > 0 or bool(self._playback)

    def _choose(self) -> int | None:
        rt, pb = self._realtime_busy(), self._playback_busy()
        if not (rt and pb):
            self._contended = {REALTIME_VCID: 0, PLAYBACK_VCID: 0}
            return REALTIME_VCID if rt else PLAYBACK_VCID if pb else None
        total = self._contended[REALTIME_VCID] + self._contended[PLAYBACK_VCID]
        vcid = (
            PLAYBACK_VCID if self._contended[PLAYBACK_VCID] < self._share * total else REALTIME_VCID
        )
        if self._share >= 1.0:
            vcid = PLAYBACK_VCID
        self._contended[vcid] += 1
        return vcid

    def _fill(self, vcid: int) -> None:
        """Move packets into the framer until one frame's worth is waiting (or nothing is)."""
        need = self._framer.data_len
        while self._framer.pending(vcid) < need:
            if vcid == PLAYBACK_VCID:
                source = self._playback
            else:
                source = next((q for q in self._queues.values() if q), deque())
            if not source:
                return
            packet = source.popleft()
            end = self._framer.add_packet(vcid, packet)
            self.stats.user_bytes += len(packet)
            if vcid == PLAYBACK_VCID:
                self._playback_ends.append(end)

    def tick(self) -> int:
        """Send the frames the byte budget allows now; returns how many were sent."""
        now = self._now()
        if self._last is not None and now > self._last:
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        sent = 0
        while self._tokens >= self._wire_len:
            vcid = self._choose()
            if vcid is None:
                if not self.idle_frames:
                    break
                frame = self._framer.idle_frame()
                self.stats.idle_frames += 1
            else:
                self._fill(vcid)
                frame = self._framer.next_frame(vcid) or self._framer.idle_frame()
                if vcid == PLAYBACK_VCID:
                    self.stats.playback_frames += 1
                    self._count_playback_sent()
                else:
                    self.stats.realtime_frames += 1
            self._tokens -= self._wire_len
            self._emit(frame)
            sent += 1
        self._report_drops()
        return sent

    def _count_playback_sent(self) -> None:
        # A packet may straddle frames: it counts once the frame with its last byte is out.
        emitted = self._framer.emitted(PLAYBACK_VCID)
        ends = self._playback_ends
        while ends and ends[0] <= emitted:
            ends.popleft()
            self.playback_sent += 1

    def _emit(self, frame: bytes) -> None:
        data = self._asm + frame
        try:
            self._write(data)
        except OSError as exc:
            self.stats.write_errors += 1
            log.warning("downlink write failed: %s", exc)
            return
        self.stats.frames_sent += 1
        self.stats.bytes_sent += len(data)

    def _report_drops(self) -> None:
        # Reported from tick, never from send: an event about a full queue must not be queued
        # re-entrantly into the very queue that is overflowing.
        total = sum(self.stats.drops.values())
        if total != self._drops_reported and self._events is not None:
            self._events.emit(EV_QUEUE_OVERFLOW, dropped=total - self._drops_reported, total=total)
        self._drops_reported = total

    # ------------------------------------------------------------------ commands

    def _rate_set(self, bytes_per_s: float) -> str:
        self.set_byte_rate(bytes_per_s)
        if self._events is not None:
            self._events.emit(EV_RATE_SET, what="byte rate", value=bytes_per_s)
        return f"downlink rate {bytes_per_s} B/s"

    def _share_set(self, share: float) -> str:
        self.set_playback_share(share)
        if self._events is not None:
            self._events.emit(EV_RATE_SET, what="playback share", value=share)
        return f"playback share {share}"

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                OP_DL_RATE_SET,
                "link.DOWNLINK_RATE_SET",
                self._rate_set,
                (Arg("bytes_per_s", ArgType.FLOAT, "B/s", minimum=1.0, maximum=MAX_BYTE_RATE),),
                description="Match the downlink byte rate to the radio's current data rate.",
            ),
            CommandSpec(
                OP_DL_PLAYBACK_SHARE_SET,
                "link.DOWNLINK_PLAYBACK_SHARE_SET",
                self._share_set,
                (Arg("share", ArgType.FLOAT, minimum=0.0, maximum=1.0),),
                description="Fraction of frames playback gets while realtime is also busy.",
            ),
        ]

    def events(self) -> list[EventSpec]:
        return [EV_QUEUE_OVERFLOW, EV_RATE_SET]
