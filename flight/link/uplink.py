"""The flight side of the uplink: authenticated TC frames in, command packet data out.

:class:`UplinkProcessor` takes bytes from a transport (:meth:`~UplinkProcessor.feed`) or whole
frames (:meth:`~UplinkProcessor.accept_frame`) and hands the data field of each authenticated,
fresh command space packet to ``on_command`` (normally the dispatcher's ``dispatch_bytes``).
Nothing reaches ``on_command`` unless, in this order:

1. the frame was found in the stream (ASM, sane header, CRC) and its length field matches;
2. it is addressed to this spacecraft and virtual channel;
3. its SPI names a loaded, enabled key slot;
4. its MAC verifies (constant time), before any byte of the data is interpreted;
5. its ARSN is above the last one accepted under that SPI, and the new ARSN has been committed
   to the counter store (so a crash right after cannot let the same frame in again);
6. the data is exactly one unsegmented TC space packet on the command APID.

Each refusal increments a counter in :attr:`UplinkProcessor.counters` and raises an event
(security refusals at WARNING_HI); nothing about a refused frame's contents is ever echoed.

Key slots: the ground picks the SPI of each frame; ``link.KEY_SLOT_SET`` makes one slot the only
enabled one (rekeying: load the new key in a spare slot, then switch), ``link.KEY_SLOT_ENABLE``
turns a single slot on or off but refuses to disable the last enabled slot, which would lock the
uplink for good. Both are hazardous (armed first).

A slot switched off by command stays off across reboots: the set of disabled slots is made
durable (``save_disabled``) before a command changes it, and handed back at start
(``disabled_slots``), so a key retired after a suspected compromise cannot come back with a
power cycle. Slots never disabled by command are enabled as the configuration loads them. If the
saved set would leave no loaded slot enabled, the configuration's slots are used instead and a
WARNING_HI event says so: an uplink nobody can command is the one failure that cannot be fixed
from the ground.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from flight.commands import Arg, ArgType, CommandError, CommandSpec
from flight.events import EventLog, EventSpec, Severity
from flight.link.framesync import ASM, tc_frame_sync
from flight.link.sdls import (
    MAX_SPI,
    AuthenticationError,
    CounterStore,
    KeyRing,
    SecuredData,
    UnknownSpiError,
)
from flight.link.spacepacket import Apid, PacketError, PacketType, SequenceFlags, SpacePacket
from flight.link.tcframe import HEADER_LEN, TcCrcError, TcFrame, TcFrameError

__all__ = ["UplinkProcessor"]

log = logging.getLogger(__name__)

OP_KEY_SLOT_SET = 0x0600
OP_KEY_SLOT_ENABLE = 0x0601

_THROTTLE = 20

EV_CRC_ERROR = EventSpec(
    0x0600,
    "link.UPLINK_CRC_ERROR",
    Severity.WARNING_LO,
    "uplink frame failed its CRC ({count} so far)",
    throttle=_THROTTLE,
    description="A TC frame was corrupted in transit and dropped.",
)
EV_BAD_FRAME = EventSpec(
    0x0601,
    "link.UPLINK_BAD_FRAME",
    Severity.WARNING_LO,
    "uplink frame refused: {reason}",
    throttle=_THROTTLE,
    description="A TC frame with a bad header, length, spacecraft id or virtual channel.",
)
EV_UNKNOWN_SPI = EventSpec(
    0x0602,
    "link.UPLINK_UNKNOWN_SPI",
    Severity.WARNING_HI,
    "uplink frame under SPI {spi} refused: no enabled key slot",
    throttle=_THROTTLE,
    description="A frame named a key slot that is not loaded or not enabled.",
)
EV_AUTH_FAILED = EventSpec(
    0x0603,
    "link.UPLINK_AUTH_FAILED",
    Severity.WARNING_HI,
    "uplink frame failed authentication under SPI {spi}",
    throttle=_THROTTLE,
    description="A frame's MAC did not verify: forged, or sent with the wrong key.",
)
EV_REPLAY = EventSpec(
    0x0604,
    "link.UPLINK_REPLAY",
    Severity.WARNING_HI,
    "uplink frame SPI {spi} ARSN {arsn} refused: last accepted {last}",
    throttle=_THROTTLE,
    description="An authentic frame with an old anti-replay number: a replay or a ground reset.",
)
EV_MALFORMED = EventSpec(
    0x0605,
    "link.UPLINK_MALFORMED_PACKET",
    Severity.WARNING_HI,
    "authenticated frame held no valid command packet: {reason}",
    throttle=_THROTTLE,
    description="An authentic frame whose data is not one command space packet (ground bug).",
)
EV_STORE_FAILED = EventSpec(
    0x0606,
    "link.UPLINK_COUNTER_STORE_FAILED",
    Severity.WARNING_HI,
    "anti-replay counter could not be read or committed ({error}); command dropped",
    throttle=_THROTTLE,
    description="Commands are refused while the anti-replay counter cannot be made durable.",
)
EV_KEY_SLOTS = EventSpec(
    0x0607,
    "link.KEY_SLOTS_CHANGED",
    Severity.ACTIVITY_HI,
    "uplink key slots enabled: {enabled}",
    description="The set of key slots the uplink accepts changed.",
)
EV_HANDLER_FAULT = EventSpec(
    0x0608,
    "link.COMMAND_HANDLER_FAULT",
    Severity.WARNING_HI,
    "command consumer raised {error}",
    throttle=_THROTTLE,
    description="The command consumer raised; a software bug (see the log).",
)
EV_KEY_SLOTS_RESTORE_REFUSED = EventSpec(
    0x0609,
    "link.KEY_SLOTS_RESTORE_REFUSED",
    Severity.WARNING_HI,
    "saved disabled key slots {disabled} would disable every loaded slot; enabled: {enabled}",
    description="The saved key slot state would have locked the uplink; configuration used.",
)

_COUNTER_NAMES = (
    "frames_ok",
    "crc_errors",
    "bad_frames",
    "unknown_spi",
    "auth_failures",
    "replays",
    "malformed",
    "store_failures",
    "handler_faults",
    "bytes_skipped",
    "stalled",
)


class UplinkProcessor:
    """Checks TC frames and passes authenticated command data to ``on_command``.

    Args:
        keyring: the key slots; its enabled set is changed by the ``link.KEY_SLOT_*`` commands.
        spacecraft_id: frames for any other spacecraft are refused.
        counter_store: durable last accepted ARSN per SPI (:class:`~.sdls.CounterStore`).
        events: where refusals are reported.
        on_command: receives the data field of each accepted command packet (CBOR
            ``[seq, opcode, args]``); it should not raise, but if it does the uplink survives.
        now: spacecraft time, for :attr:`last_command_time` and to abandon a frame whose end
            never arrives (call :meth:`feed` every tick, with ``b""`` if nothing came).
        vcid: the virtual channel commands arrive on.
        asm: sync marker in front of each frame on the byte stream (``b""`` for none).
        disabled_slots: the slots disabled by command before the last restart (what
            ``save_disabled`` last saved); they are disabled again unless none would be left.
        save_disabled: makes a new set of disabled slots durable before a key slot command
            takes effect; raises :class:`OSError` if it cannot, and the command then changes
            nothing. ``None``: the set is not kept.
    """

    def __init__(
        self,
        *,
        keyring: KeyRing,
        spacecraft_id: int,
        counter_store: CounterStore,
        events: EventLog,
        on_command: Callable[[bytes], Any],
        now: Callable[[], float],
        vcid: int = 0,
        asm: bytes = ASM,
        disabled_slots: Iterable[int] = (),
        save_disabled: Callable[[tuple[int, ...]], None] | None = None,
    ) -> None:
        self.keyring = keyring
        self.spacecraft_id = spacecraft_id
        self.vcid = vcid
        self._store = counter_store
        self._events = events
        self._on_command = on_command
        self._now = now
        self._sync = tc_frame_sync(asm=asm, now=now)
        self.counters: dict[str, int] = dict.fromkeys(_COUNTER_NAMES, 0)
        self.last_command_time: float | None = None
        self._save_disabled = save_disabled
        self._disabled = frozenset(disabled_slots)
        self._restore_disabled()

    def _restore_disabled(self) -> None:
        """Switch off again what was switched off by command, unless nothing would be left."""
        if not self._disabled & set(self.keyring.enabled):
            return
        if not [spi for spi in self.keyring.enabled if spi not in self._disabled]:
            self._events.emit(
                EV_KEY_SLOTS_RESTORE_REFUSED,
                disabled=str(sorted(self._disabled)),
                enabled=str(list(self.keyring.enabled)),
            )
            self._disabled -= set(self.keyring.enabled)  # what is in force now
            return
        for spi in self._disabled:
            self.keyring.disable(spi)

    # ------------------------------------------------------------------ input

    def feed(self, data: bytes) -> int:
        """Find frames in ``data`` (plus what was buffered) and process them.

        Returns:
            How many frames were accepted.
        """
        before_crc = self._sync.stats.crc_errors
        before_bad = self._sync.stats.bad_headers
        frames = self._sync.feed(data)
        self.counters["bytes_skipped"] = self._sync.stats.bytes_skipped
        self.counters["stalled"] = self._sync.stats.stalled
        new_crc = self._sync.stats.crc_errors - before_crc
        if new_crc:
            self.counters["crc_errors"] += new_crc
            self._events.emit(EV_CRC_ERROR, count=self.counters["crc_errors"])
        if self._sync.stats.bad_headers - before_bad:
            self.counters["bad_frames"] += self._sync.stats.bad_headers - before_bad
            self._events.emit(EV_BAD_FRAME, reason="sync marker not followed by a TC header")
        return sum(self.accept_frame(frame) for frame in frames)

    def accept_frame(self, frame: bytes) -> bool:
        """Check one complete TC frame (no ASM) and pass its command on if it is authentic.

        Returns:
            True if the command was handed to ``on_command``. Never raises.
        """
        try:
            tc = TcFrame.decode(frame)
        except TcCrcError:
            self.counters["crc_errors"] += 1
            self._events.emit(EV_CRC_ERROR, count=self.counters["crc_errors"])
            return False
        except TcFrameError as exc:
            return self._bad(str(exc))
        if tc.scid != self.spacecraft_id:
            return self._bad(f"spacecraft id {tc.scid}")
        if tc.vcid != self.vcid:
            return self._bad(f"virtual channel {tc.vcid}")
        try:
            secured = SecuredData(tc.data)
        except AuthenticationError as exc:
            return self._bad(str(exc))
        spi = secured.spi
        try:
            key = self.keyring.key(spi)
        except UnknownSpiError:
            self.counters["unknown_spi"] += 1
            self._events.emit(EV_UNKNOWN_SPI, spi=spi)
            return False
        try:
            secured.verify(key, bytes(frame[:HEADER_LEN]))
        except AuthenticationError:
            self.counters["auth_failures"] += 1
            self._events.emit(EV_AUTH_FAILED, spi=spi)
            return False
        if not self._fresh(spi, secured.arsn):
            return False
        return self._deliver(secured.data)

    # ------------------------------------------------------------------ steps

    def _bad(self, reason: str) -> bool:
        self.counters["bad_frames"] += 1
        self._events.emit(EV_BAD_FRAME, reason=reason)
        return False

    def _fresh(self, spi: int, arsn: int) -> bool:
        """Check the ARSN and commit it; False (counted, reported) if it is old or cannot be
        committed."""
        try:
            last = self._store.get(spi)
        except Exception as exc:  # the store is outside this module: any failure refuses
            return self._store_failed(exc)
        if last is not None and arsn <= last:
            self.counters["replays"] += 1
            self._events.emit(EV_REPLAY, spi=spi, arsn=arsn, last=last)
            return False
        try:
            self._store.set(spi, arsn)
        except Exception as exc:
            return self._store_failed(exc)
        return True

    def _store_failed(self, exc: Exception) -> bool:
        log.error("anti-replay counter store failed: %s", exc)
        self.counters["store_failures"] += 1
        self._events.emit(EV_STORE_FAILED, error=type(exc).__name__)
        return False

    def _deliver(self, data: bytes) -> bool:
        try:
            packet = SpacePacket.decode(data)
            if packet.packet_type is not PacketType.TC:
                raise PacketError("not a TC packet")
            if packet.apid != Apid.COMMAND:
                raise PacketError(f"APID {packet.apid:#x} is not the command APID")
            if packet.seq_flags is not SequenceFlags.UNSEGMENTED or packet.sec_header:
                raise PacketError("segmented packet or unexpected secondary header")
        except PacketError as exc:
            self.counters["malformed"] += 1
            self._events.emit(EV_MALFORMED, reason=str(exc))
            return False
        self.counters["frames_ok"] += 1
        self.last_command_time = self._now()
        try:
            self._on_command(packet.data)
        except Exception as exc:  # a consumer bug must not take the uplink down
            log.exception("command consumer raised")
            self.counters["handler_faults"] += 1
            self._events.emit(EV_HANDLER_FAULT, error=type(exc).__name__)
        return True

    # ------------------------------------------------------------------ commands

    def _key_slot_set(self, slot: int) -> str:
        if slot not in self.keyring.slots:
            raise CommandError(f"key slot {slot} holds no key")
        self._commit_disabled((self._disabled | set(self.keyring.slots)) - {slot})
        self.keyring.set_active(slot)
        self._events.emit(EV_KEY_SLOTS, enabled=str(list(self.keyring.enabled)))
        return f"key slot {slot} is now the only enabled slot"

    def _key_slot_enable(self, slot: int, enabled: bool) -> str:
        if enabled:
            if slot not in self.keyring.slots:
                raise CommandError(f"key slot {slot} holds no key")
            self._commit_disabled(self._disabled - {slot})
            self.keyring.enable(slot)
        else:
            if self.keyring.enabled == (slot,):
                raise CommandError(f"slot {slot} is the last enabled slot; refusing to lock out")
            self._commit_disabled(self._disabled | {slot})
            self.keyring.disable(slot)
        self._events.emit(EV_KEY_SLOTS, enabled=str(list(self.keyring.enabled)))
        return f"enabled slots {list(self.keyring.enabled)}"

    def _commit_disabled(self, disabled: Iterable[int]) -> None:
        """Make ``disabled`` durable, then remember it; a failure changes nothing."""
        new = frozenset(disabled)
        if self._save_disabled is not None and new != self._disabled:
            try:
                self._save_disabled(tuple(sorted(new)))
            except OSError as exc:
                raise CommandError(
                    f"key slot state could not be made durable ({exc}); nothing changed"
                ) from exc
        self._disabled = new

    def commands(self) -> list[CommandSpec]:
        slot = Arg("slot", ArgType.INT, minimum=0, maximum=MAX_SPI, description="Key slot (SPI).")
        return [
            CommandSpec(
                OP_KEY_SLOT_SET,
                "link.KEY_SLOT_SET",
                self._key_slot_set,
                (slot,),
                hazardous=True,
                description="Accept uplink frames only under this key slot (it must hold a key).",
            ),
            CommandSpec(
                OP_KEY_SLOT_ENABLE,
                "link.KEY_SLOT_ENABLE",
                self._key_slot_enable,
                (slot, Arg("enabled", ArgType.BOOL)),
                hazardous=True,
                description="Enable or disable one key slot; the last enabled slot stays on.",
            ),
        ]

    def events(self) -> list[EventSpec]:
        return [
            EV_CRC_ERROR,
            EV_BAD_FRAME,
            EV_UNKNOWN_SPI,
            EV_AUTH_FAILED,
            EV_REPLAY,
            EV_MALFORMED,
            EV_STORE_FAILED,
            EV_KEY_SLOTS,
            EV_HANDLER_FAULT,
            EV_KEY_SLOTS_RESTORE_REFUSED,
        ]
