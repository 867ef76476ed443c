"""The space link as one flight component: uplink in, downlink out, store and forward.

:class:`LinkService` joins the flight executive to a byte-stream transport. Each base tick it
feeds received bytes to the authenticated uplink (accepted commands go to the dispatcher), then
lets the downlink emit what its byte budget allows. Every outgoing message is archived by the
executive; the link sends it in real time only while the link is up.

When is the link up? The transport must be connected (a TCP client attached, a serial port open),
downlink must be enabled (by command, e.g. off through a solar conjunction), and, when a carrier
timeout is configured, a valid uplink frame must have arrived within it: a deep-space radio learns
that the ground is listening from the ground's own transmissions. While the link is down nothing is
sent into the void. When it comes back, everything archived since it went down is played back on
virtual channel 1, oldest first, sharing the budget with real-time traffic so neither starves. The
playback cursor is kept in the state store and marks the last record that has gone out in a
frame, not the last one queued, so a reboot during an outage or a playback loses nothing.

A lost carrier is only noticed a timeout after the ground's last frame, and what was sent in
between may have gone nowhere; so the next playback starts where the ground was last heard, not
where the loss was noticed: at the archive's end then, or, if a playback was running, at the
record it had reached. That position is kept in the state store too, so a reboot before the loss
is noticed does not skip what went into the void. The ground may receive some of those records
twice (live and played back); it keeps the first.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from flight.commands import Arg, ArgType, CommandError, CommandSpec
from flight.datapool import DataPool
from flight.dispatcher import Dispatcher
from flight.events import EventLog, EventSpec, Severity
from flight.link.downlink import Downlink
from flight.link.sdls import MAX_SPI, KeyRing, StateStoreCounters
from flight.link.tmframe import DEFAULT_FRAME_LEN, TmFramer
from flight.link.transports import Transport
from flight.link.uplink import UplinkProcessor
from flight.messages import Message
from flight.persistence.archive import Archive, Cursor
from flight.persistence.state import StateStore
from flight.telemetry import ChannelSpec

__all__ = ["LinkConfig", "LinkService"]

log = logging.getLogger(__name__)

EV_LINK_UP = EventSpec(
    0x0680, "link.UP", Severity.ACTIVITY_HI, "link up; playing back {pending} from the archive"
)
EV_LINK_DOWN = EventSpec(
    0x0681, "link.DOWN", Severity.WARNING_LO, "link down ({reason}); recording for playback"
)
EV_PLAYBACK_DONE = EventSpec(
    0x0682, "link.PLAYBACK_DONE", Severity.ACTIVITY_LO, "playback complete: {count} message(s)"
)

_CURSOR_KEY = "link.playback_cursor"
_HEARD_KEY = "link.heard_cursor"
_ENABLED_KEY = "link.downlink_enabled"
_DISABLED_SLOTS_KEY = "link.key_slots_disabled"
_FLUSH_STEP_S = 0.02  # how often a flush at stop refills the byte budget (one base tick)


@dataclass(frozen=True)
class LinkConfig:
    """Link settings; the defaults fit a SiK-class radio at 57600 baud (reference/devices.md)."""

    spacecraft_id: int = 0x0C8
    frame_length: int = DEFAULT_FRAME_LEN
    byte_rate: float = 2500.0
    asm: bool = True
    carrier_timeout_s: float | None = None
    playback_share: float = 0.5
    #: Telemetry packets of numeric channels in fixed layouts (:meth:`LinkService.fix_layouts`).
    fixed_layouts: bool = True


def _saved_slots(store: StateStore) -> tuple[int, ...]:
    """The key slots disabled by command, as last saved (anything malformed: none)."""
    value = store.get(_DISABLED_SLOTS_KEY, None)
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if type(v) is int and 0 <= v <= MAX_SPI)


def _saved_cursor(store: StateStore, key: str) -> Cursor | None:
    """An archive position as saved under ``key`` (anything malformed: none)."""
    saved = store.get(key, None)
    if not (isinstance(saved, list) and len(saved) == 2 and all(type(v) is int for v in saved)):
        return None
    return Cursor(saved[0], saved[1])


class LinkService:
    """Uplink, downlink and playback over one transport.

    Args:
        transport: the byte stream to the ground (radio serial port, TCP, a simulated link).
        keyring: uplink keys by slot.
        config: framing, budget and carrier settings.
        dispatcher, events, store, archive, now: the executive's components.
        record: if given, every downlink byte as it leaves is also written here.
    """

    def __init__(
        self,
        *,
        transport: Transport,
        keyring: KeyRing,
        config: LinkConfig,
        dispatcher: Dispatcher,
        events: EventLog,
        store: StateStore,
        archive: Archive,
        now: Callable[[], float],
        record: BinaryIO | None = None,
    ) -> None:
        self.transport = transport
        self.config = config
        self._events = events
        self._store = store
        self._archive = archive
        self._now = now
        self._record = record
        self.uplink = UplinkProcessor(
            keyring=keyring,
            spacecraft_id=config.spacecraft_id,
            counter_store=StateStoreCounters(store),
            events=events,
            on_command=lambda data: dispatcher.dispatch_bytes(data, source="ground"),
            now=now,
            disabled_slots=_saved_slots(store),
            save_disabled=lambda slots: store.set_durably(_DISABLED_SLOTS_KEY, list(slots)),
        )
        self.downlink = Downlink(
            framer=TmFramer(scid=config.spacecraft_id, frame_length=config.frame_length),
            transport_write=self._write,
            byte_rate=config.byte_rate,
            now=now,
            asm=config.asm,
            playback_share=config.playback_share,
            events=events,
        )
        self.up = False
        self._had_carrier = False  # the carrier as last looked at (a timeout may end it)
        self._heard_at: float | None = None  # the uplink's last_command_time when last looked at
        # Where playback must start if the ground turns out to have gone since it was last heard.
        self._heard_cursor: Cursor | None = None
        self._playback: Iterator[tuple[Cursor, Message]] | None = None
        self._playback_end: Cursor | None = None
        self._pending: tuple[Cursor, Message] | None = None
        self._ranged = False  # the playback is a range asked for by command
        self._auto_end = archive.end_cursor()  # where the automatic playback stops
        # For each playback packet handed to the downlink and not yet out, oldest first: the
        # automatic playback's cursor after it, or None (a range, or a record to be played again).
        self._in_flight: deque[Cursor | None] = deque()
        self._sent_seen = 0  # the downlink's playback_sent when last looked at
        self.played_back = 0
        self.enabled = bool(store.get(_ENABLED_KEY, True))
        start = _saved_cursor(store, _CURSOR_KEY)
        if start is None:
            # The link starts down: what is recorded until it first comes up is played back then.
            start = archive.end_cursor()
        heard = _saved_cursor(store, _HEARD_KEY)
        if config.carrier_timeout_s is not None and heard is not None and heard < start:
            # Rebooted before a lost carrier was noticed: what was sent since the ground was last
            # heard may have gone nowhere.
            start = heard
        # The saved cursor is the last record the automatic playback has got out; this is where
        # it goes on (None: no automatic playback unfinished). They differ by what is queued.
        self._auto_next: Cursor | None = start
        store.set(_CURSOR_KEY, list(start))

    @property
    def playing_back(self) -> bool:
        """True while archived data is still being sent."""
        return self._playback is not None

    def fix_layouts(self, layouts: Mapping[int, Sequence[str]]) -> list[int]:
        """Send the telemetry packets whose channels are all numbers in fixed layouts.

        ``layouts`` maps packet id to its channels' types, in body order. Nothing changes when
        :attr:`LinkConfig.fixed_layouts` is off (a link so slow that the few bytes a fixed layout
        costs matter more than the CPU it saves).

        Returns:
            The ids that now have one.
        """
        if not self.config.fixed_layouts:
            return []
        fix = self.downlink.packetizer.fix_layout
        return [packet_id for packet_id, types in layouts.items() if fix(packet_id, types)]

    # --- data flow -------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        self.transport.write(data)
        if self._record is not None:
            self._record.write(data)

    def send(self, message: Message) -> None:
        """The executive's output: send now if the link is up (it is archived either way)."""
        if self.up:
            self.downlink.send(message)

    def receive(self) -> None:
        """Fast-group task, first: take in uplink bytes, then decide whether the link is up."""
        try:
            data = self.transport.read_available()
        except OSError as exc:
            log.warning("uplink read failed: %s", exc)
            data = b""
        self._update_state()  # first: a command's response must not be lost to a stale "down"
        self.uplink.feed(data)
        heard = self.uplink.last_command_time
        if heard is not None and heard != self._heard_at:
            self._heard_at = heard
            self._heard_cursor = self._archive.end_cursor()
            # A playback under way (or about to start, if this frame brings the link up) has
            # not sent what lies after its cursor yet: that may go into the void as well.
            at = _saved_cursor(self._store, _CURSOR_KEY)
            if at is not None and at < self._heard_cursor:
                self._heard_cursor = at
            self._store.set(_HEARD_KEY, list(self._heard_cursor))
        self._update_state()  # again: an accepted command is the carrier the link waits for

    def transmit(self) -> None:
        """Fast-group task, last: feed playback, then emit frames within the budget."""
        if self.up:
            self._feed_playback()
            self.downlink.tick()
            self._note_sent()

    def flush(self, sleep: Callable[[float], None], timeout_s: float) -> bool:
        """Send what is already queued, at the link's rate, as the program stops: the last
        responses and events (the stop's own notice among them) would otherwise never leave,
        and a restart archives on from the end, so no playback would send them either.

        Returns:
            False if ``timeout_s`` ran out with data still queued; True once it has all gone,
            or if the link is down (what is recorded meanwhile waits for the playback).
        """
        # Bounded by steps, not by reading a clock: a clock that did not move could not hang it.
        for _ in range(math.ceil(timeout_s / _FLUSH_STEP_S)):
            if not self.up or self.downlink.idle():
                return True
            self.downlink.tick()
            self._note_sent()
            sleep(_FLUSH_STEP_S)
        return not self.up or self.downlink.idle()

    # --- link state ------------------------------------------------------------------------------
    def _carrier(self) -> bool:
        timeout = self.config.carrier_timeout_s
        if timeout is None:
            return True
        last = self.uplink.last_command_time
        return last is not None and self._now() - last <= timeout

    def _update_state(self) -> None:
        carrier = self._carrier()
        lost, self._had_carrier = self._had_carrier and not carrier, carrier
        if lost and not self.up and self._heard_cursor is not None:
            # The ground went while the link was down for another reason (switched off, no
            # transport): what was sent between its last frame and then may have gone nowhere.
            self._restart_from(self._heard_cursor)
            self._store.commit()
        up = self.enabled and self.transport.connected and carrier
        if up == self.up:
            return
        self.up = up
        if up:
            self._start_playback()
        else:
            reason = (
                "disabled"
                if not self.enabled
                else "transport disconnected"
                if not self.transport.connected
                else "no carrier"
            )
            if reason == "no carrier" and self._heard_cursor is not None:
                # The ground may have gone any time since it was last heard, mid-playback or not.
                self._restart_from(self._heard_cursor)
            elif self._auto_next is None:
                # No automatic playback unfinished: what is recorded from now on is what is owed.
                self._auto_next = self._archive.end_cursor()
                if not self._auto_in_flight():  # else the records still going out set it
                    self._store.set(_CURSOR_KEY, list(self._auto_next))
            # else a playback was cut short by command or by the transport, and the link knew at
            # once: what it queued goes out first on the next pass, then it goes on from there.
            self._store.commit()
            self._playback = None
            self._pending = None
            self._events.emit(EV_LINK_DOWN, reason=reason)

    def _restart_from(self, cursor: Cursor) -> None:
        """Play everything after ``cursor`` again, whatever has been queued or sent since."""
        for _ in range(self.downlink.drop_playback()):
            self._in_flight.pop()
        # Partly framed: those still go out, but must not move the cursor past the restart.
        self._in_flight = deque(None for _ in self._in_flight)
        self._auto_next = cursor
        self._store.set(_CURSOR_KEY, list(cursor))

    def _auto_in_flight(self) -> bool:
        return any(cursor is not None for cursor in self._in_flight)

    def _note_sent(self) -> None:
        """Move the saved cursor over the automatic playback's records that have gone out."""
        sent = self.downlink.playback_sent
        last = None
        for _ in range(sent - self._sent_seen):
            cursor = self._in_flight.popleft()
            if cursor is not None:
                last = cursor
        self._sent_seen = sent
        if last is not None:
            self._store.set(_CURSOR_KEY, list(last))
        if (
            self._auto_next is None
            and self._store.get(_CURSOR_KEY, None) is not None
            and not self._auto_in_flight()
        ):
            # The automatic playback is over and its last record out: nothing is owed.
            self._store.delete(_CURSOR_KEY)
            self._store.commit()

    def _start_playback(self) -> None:
        cursor = self._auto_next
        if cursor is None:
            self._events.emit(EV_LINK_UP, pending="nothing")
            return
        self._auto_end = self._archive.end_cursor()
        self._play(self._archive.read_since(cursor), self._auto_end, ranged=False)
        self._events.emit(EV_LINK_UP, pending="what was recorded while down")

    def _play(
        self, records: Iterator[tuple[Cursor, Message]], end: Cursor, *, ranged: bool
    ) -> None:
        """Play ``records`` up to ``end``; only an automatic playback (not a range asked for by
        command) moves the saved cursor."""
        self._playback_end = end
        self._playback = records
        self._ranged = ranged
        self._pending = None
        self.played_back = 0

    def _feed_playback(self) -> None:
        if self._playback is None:
            return
        end = self._playback_end
        while self.downlink.playback_room() > 0:
            item = self._pending or next(self._playback, None)
            self._pending = None
            if item is None or (end is not None and tuple(item[0]) > tuple(end)):
                self._finish_playback()
                return
            cursor, message = item
            if not self.downlink.send_playback(message):
                self._pending = item  # queue full after all: retry next tick
                return
            self.played_back += 1
            if self._ranged:
                self._in_flight.append(None)
            else:
                self._in_flight.append(cursor)
                self._auto_next = cursor

    def _finish_playback(self) -> None:
        self._playback = None
        self._events.emit(EV_PLAYBACK_DONE, count=self.played_back)
        if self._ranged:
            # The range may have cut short an automatic playback: that one goes on.
            if self._auto_next is not None:
                self._play(self._archive.read_since(self._auto_next), self._auto_end, ranged=False)
            return
        self._auto_next = None  # the saved cursor goes once the last records are out

    # --- commands and telemetry ------------------------------------------------------------------
    def _enable(self, enabled: bool) -> str:
        self.enabled = enabled
        self._store.set(_ENABLED_KEY, enabled)
        self._store.commit()
        return f"downlink {'enabled' if enabled else 'disabled'}"

    def _playback_range(self, t_start: float, t_end: float) -> str:
        if t_end < t_start:
            raise CommandError("t_end is before t_start")
        if not self.up:
            raise CommandError("link is down: playback starts by itself when it returns")

        def ranged() -> Iterator[tuple[Cursor, Message]]:
            for cursor, msg in self._archive.read_since(None):
                if t_start <= msg.time <= t_end:
                    yield cursor, msg

        self._play(ranged(), self._archive.end_cursor(), ranged=True)
        return f"playing back MET {t_start:.0f}..{t_end:.0f}"

    def commands(self) -> list[CommandSpec]:
        return [
            *self.uplink.commands(),
            *self.downlink.commands(),
            CommandSpec(
                0x0680,
                "link.DOWNLINK_ENABLE",
                self._enable,
                (Arg("enabled", ArgType.BOOL),),
                description="Stop or resume transmitting (e.g. through solar conjunction); "
                "what is recorded meanwhile is played back on resumption.",
            ),
            CommandSpec(
                0x0681,
                "link.PLAYBACK",
                self._playback_range,
                (
                    Arg("t_start", ArgType.FLOAT, "s", 0.0, math.inf),
                    Arg("t_end", ArgType.FLOAT, "s", 0.0, math.inf),
                ),
                description="Play back the archive between two MET times; a playback of "
                "an outage under way goes on afterwards.",
            ),
        ]

    def events(self) -> list[EventSpec]:
        return [
            *self.uplink.events(),
            *self.downlink.events(),
            EV_LINK_UP,
            EV_LINK_DOWN,
            EV_PLAYBACK_DONE,
        ]

    def channels(self) -> list[ChannelSpec]:
        return [
            ChannelSpec(0x0690, "link.up", "bool", description="Link up (sending in real time)."),
            ChannelSpec(0x0691, "link.frames_ok", "int"),
            ChannelSpec(0x0692, "link.auth_failures", "int"),
            ChannelSpec(0x0693, "link.replays", "int"),
            ChannelSpec(0x0694, "link.bytes_sent", "int", "B"),
            ChannelSpec(0x0695, "link.played_back", "int"),
        ]

    def publish(self, pool: DataPool, now: float) -> None:
        c = self.uplink.counters
        pool.set("link.up", self.up, now)
        pool.set("link.frames_ok", c.get("frames_ok", 0), now)
        pool.set("link.auth_failures", c.get("auth_failures", 0), now)
        pool.set("link.replays", c.get("replays", 0), now)
        pool.set("link.bytes_sent", self.downlink.stats.bytes_sent, now)
        pool.set("link.played_back", self.played_back, now)

    def close(self) -> None:
        self.transport.close()
