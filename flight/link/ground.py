"""The ground's half of the link: encode authenticated commands, decode the telemetry stream.

:class:`CommandEncoder` builds exactly what :class:`~flight.link.uplink.UplinkProcessor` accepts:
ASM + TC frame (type BD) whose data field is SDLS security header + one command space packet
(APID COMMAND, CBOR ``[seq, opcode, args]``) + MAC. The anti-replay sequence number is persisted
(before the frame is returned) so a restarted console never reuses one; a reused number is
refused on board as a replay.

:class:`TelemetryDecoder` is frame sync + TM deframer + packet decoding in one object: feed it the
bytes read from any transport and it yields the messages they complete. Bad frames, gaps and
undecodable packets are counted in its stats, never raised.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flight import codec
from flight.link.framesync import ASM, FrameSync, tm_frame_sync
from flight.link.sdls import (
    MAC_LEN,
    MAX_ARSN,
    SECURITY_HEADER_LEN,
    CounterStore,
    FileCounterStore,
    KeyRing,
    protect,
)
from flight.link.spacepacket import (
    Apid,
    PacketError,
    PacketType,
    SequenceCounters,
    SpacePacket,
    packet_to_message,
)
from flight.link.tcframe import TcFrame
from flight.link.tmframe import DEFAULT_FRAME_LEN, PLAYBACK_VCID, TmDeframer
from flight.messages import Message

__all__ = ["ArsnExhaustedError", "CommandEncoder", "Received", "TelemetryDecoder"]

log = logging.getLogger(__name__)


class ArsnExhaustedError(ValueError):
    """Every anti-replay number of this SPI has been used: switch to another key slot."""


class CommandEncoder:
    """Builds authenticated command frames for one spacecraft, key slot and virtual channel.

    Args:
        key: the 32-byte key of slot ``spi``, or a key ring holding it.
        spi: the key slot (security parameter index).
        scid: the spacecraft id.
        counters: the ARSN store, or a path for a :class:`~flight.link.sdls.FileCounterStore`.
        vcid: the TC virtual channel.
        asm: prefix each frame with the sync marker (off for one-frame-per-datagram transports).

    Raises (on construction):
        ValueError: a key of the wrong length; UnknownSpiError if the key ring lacks ``spi``.
        CounterStoreError: the counter file is corrupt.
    """

    def __init__(
        self,
        *,
        key: bytes | KeyRing,
        spi: int,
        scid: int,
        counters: CounterStore | str | os.PathLike[str],
        vcid: int = 0,
        asm: bool = True,
    ) -> None:
        self._key = key.key(spi) if isinstance(key, KeyRing) else KeyRing({spi: key}).key(spi)
        self.spi = spi
        self.scid = scid
        self.vcid = vcid
        self._asm = ASM if asm else b""
        self._store: CounterStore = (
            FileCounterStore(counters) if isinstance(counters, str | os.PathLike) else counters
        )
        self._packet_counts = SequenceCounters()
        self._fsn = 0

    @property
    def last_arsn(self) -> int | None:
        return self._store.get(self.spi)

    def encode_command(self, seq: int, opcode: int, args: Sequence[Any]) -> bytes:
        """One command as ASM + authenticated TC frame.

        Raises:
            CodecError: an argument CBOR cannot carry.
            TcFrameError: the command is too long for one frame.
            ArsnExhaustedError: no anti-replay numbers left under this SPI.
            OSError: the counter could not be persisted (nothing was consumed).
        """
        return self.encode_packet_data(codec.encode([seq, opcode, list(args)]))

    def encode_packet_data(self, data: bytes) -> bytes:
        """Wrap an already encoded command data field (for tests and raw tools)."""
        packet = SpacePacket(
            Apid.COMMAND,
            self._packet_counts.next(Apid.COMMAND),
            data,
            packet_type=PacketType.TC,
        ).encode()
        last = self._store.get(self.spi)
        arsn = 0 if last is None else last + 1
        if arsn > MAX_ARSN:
            raise ArsnExhaustedError(f"SPI {self.spi}: anti-replay numbers exhausted")
        filler = bytes(SECURITY_HEADER_LEN + len(packet) + MAC_LEN)
        header = TcFrame(self.scid, self.vcid, self._fsn, filler).header()
        field = protect(key=self._key, spi=self.spi, arsn=arsn, tc_header=header, data=packet)
        frame = TcFrame(self.scid, self.vcid, self._fsn, field).encode()
        self._store.set(self.spi, arsn)  # durable before the frame can leave
        self._fsn = (self._fsn + 1) & 0xFF
        return self._asm + frame


@dataclass(frozen=True)
class Received:
    """A decoded downlink message and where it came from."""

    message: Message
    vcid: int
    apid: int
    seq_count: int
    #: True for archived messages re-sent on the playback channel.
    playback: bool


@dataclass
class DecoderStats:
    messages: int = 0
    packet_errors: int = 0


class TelemetryDecoder:
    """Bytes from the downlink in, :class:`~flight.messages.Message` out.

    Args:
        scid: only frames from this spacecraft are decoded (all if ``None``).
        frame_length: the spacecraft's fixed TM frame length.
        asm: whether frames on the stream are preceded by the sync marker.
    """

    def __init__(
        self,
        *,
        scid: int | None = None,
        frame_length: int = DEFAULT_FRAME_LEN,
        asm: bool = True,
    ) -> None:
        self.sync: FrameSync = tm_frame_sync(
            frame_length=frame_length, scid=scid, asm=ASM if asm else b""
        )
        self.deframer = TmDeframer(frame_length=frame_length, scid=scid)
        self.stats = DecoderStats()

    def feed_packets(self, data: bytes) -> list[Received]:
        """Every message completed by ``data``, with its channel and packet details."""
        out: list[Received] = []
        for frame in self.sync.feed(data):
            for vcid, raw in self.deframer.feed_frame(frame):
                try:
                    packet = SpacePacket.decode(raw)
                    message = packet_to_message(packet)
                except PacketError as exc:
                    self.stats.packet_errors += 1
                    log.warning("undecodable downlink packet on VC %d: %s", vcid, exc)
                    continue
                self.stats.messages += 1
                playback = packet.apid == Apid.PLAYBACK or vcid == PLAYBACK_VCID
                out.append(Received(message, vcid, packet.apid, packet.seq_count, playback))
        return out

    def feed(self, data: bytes) -> list[Message]:
        """The messages completed by ``data``, in order."""
        return [received.message for received in self.feed_packets(data)]
