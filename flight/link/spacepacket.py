"""CCSDS space packets (133.0-B) and the mapping of flight messages onto them.

Primary header, six bytes, big-endian::

    bits  3  version (0)            1  type (TM 0, TC 1)     1  secondary header flag
         11  APID                   2  sequence flags (0b11 unsegmented)
         14  sequence count        16  data length = len(data field) - 1

Every packet this project sends is unsegmented and carries no secondary header: the time stamp
lives in the CBOR data field, which keeps one self-describing format end to end.

APIDs (:class:`Apid`) say what a packet holds, so the ground can route it before decoding:
commands, command responses, events, playback, files and time on fixed APIDs, and telemetry packet
``N`` on APID ``0x100 + N`` for ``N`` up to 0x6FE (APID 0x7FF is the idle packet of 133.0-B and
never carries data). Telemetry packet ids above 0x6FE (the id ranges of components from 0x0700 up)
do not fit in the 11-bit APID; they share APID ``TELEMETRY_EXTENDED`` with the id in the data.

Data fields (CBOR via :mod:`flight.codec`):

- telemetry: ``[time, body]`` (the packet id is implied by the APID);
- extended telemetry, event, command response, file: ``[time, id, body]``;
- playback (an archived message re-sent): ``[kind, id, time, body]``;
- command (uplink): ``[seq, opcode, [arg, ...]]``, decoded by the dispatcher, not here.

A telemetry packet whose channels are all numbers can be given a fixed layout
(:meth:`Packetizer.fix_layout`): the same data field with the time stamp a float64 and the body a
:class:`~flight.codec.FixedArray`, so the packet has one size whatever its values. A body that
does not fit (a missing value, a negative int) goes in the canonical form instead; the decoder
reads either.

Decoding never trusts its input: anything malformed raises :class:`PacketError` (a
``ValueError``) naming what was wrong.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from flight import codec
from flight.messages import Message, MessageKind

__all__ = [
    "HEADER_LEN",
    "IDLE_APID",
    "MAX_DATA_LEN",
    "MAX_TELEMETRY_ID",
    "Apid",
    "PacketError",
    "PacketType",
    "Packetizer",
    "SequenceCounters",
    "SequenceFlags",
    "SpacePacket",
    "idle_packet",
    "message_to_packet",
    "packet_length",
    "packet_to_message",
    "playback_packet",
    "split_packets",
]

HEADER_LEN = 6
MAX_APID = 0x7FF
#: The idle packet's APID (133.0-B): fill, discarded by every receiver.
IDLE_APID = 0x7FF
#: The data length field holds len - 1 in 16 bits.
MAX_DATA_LEN = 0x10000
SEQ_COUNT_MODULO = 1 << 14
#: Highest telemetry packet id with an APID of its own: 0x100 + 0x6FE = 0x7FE, the last APID
#: below the idle APID. Higher ids go on ``Apid.TELEMETRY_EXTENDED``.
MAX_TELEMETRY_ID = 0x6FE


class PacketError(ValueError):
    """A space packet (or its data field) that is malformed, or a message that cannot be one."""


@enum.unique
class PacketType(enum.IntEnum):
    TM = 0
    TC = 1


@enum.unique
class SequenceFlags(enum.IntEnum):
    CONTINUATION = 0b00
    FIRST = 0b01
    LAST = 0b10
    UNSEGMENTED = 0b11


@enum.unique
class Apid(enum.IntEnum):
    COMMAND = 0x010
    COMMAND_RESPONSE = 0x011
    EVENT = 0x012
    PLAYBACK = 0x013
    FILE = 0x014
    TIME = 0x015
    TELEMETRY_EXTENDED = 0x016
    TELEMETRY_BASE = 0x100


@dataclass(frozen=True, slots=True)
class SpacePacket:
    """One space packet; :meth:`encode` validates every field before packing."""

    apid: int
    seq_count: int
    data: bytes
    packet_type: PacketType = PacketType.TM
    sec_header: bool = False
    seq_flags: SequenceFlags = SequenceFlags.UNSEGMENTED

    def encode(self) -> bytes:
        """The packet's bytes.

        Raises:
            PacketError: APID, sequence count or data length out of range.
        """
        if not 0 <= self.apid <= MAX_APID:
            raise PacketError(f"APID {self.apid:#x} outside 0..{MAX_APID:#x}")
        if not 0 <= self.seq_count < SEQ_COUNT_MODULO:
            raise PacketError(f"sequence count {self.seq_count} outside 0..{SEQ_COUNT_MODULO - 1}")
        if not 1 <= len(self.data) <= MAX_DATA_LEN:
            raise PacketError(f"data field of {len(self.data)} bytes outside 1..{MAX_DATA_LEN}")
        word0 = (int(self.packet_type) << 12) | (int(self.sec_header) << 11) | self.apid
        word1 = (int(self.seq_flags) << 14) | self.seq_count
        header = (
            word0.to_bytes(2, "big")
            + word1.to_bytes(2, "big")
            + (len(self.data) - 1).to_bytes(2, "big")
        )
        return header + bytes(self.data)

    @classmethod
    def decode(cls, raw: bytes | bytearray | memoryview) -> SpacePacket:
        """Parse exactly one packet that fills ``raw``.

        Raises:
            PacketError: too short, wrong version, or a length field that disagrees with ``raw``.
        """
        raw = bytes(raw)
        if len(raw) < HEADER_LEN + 1:
            raise PacketError(f"{len(raw)} bytes is shorter than the smallest packet (7)")
        version = raw[0] >> 5
        if version != 0:
            raise PacketError(f"packet version {version}, expected 0")
        expected = packet_length(raw)
        if expected != len(raw):
            raise PacketError(f"length field says {expected} bytes, got {len(raw)}")
        word0 = int.from_bytes(raw[0:2], "big")
        word1 = int.from_bytes(raw[2:4], "big")
        return cls(
            apid=word0 & MAX_APID,
            seq_count=word1 & (SEQ_COUNT_MODULO - 1),
            data=raw[HEADER_LEN:],
            packet_type=PacketType((word0 >> 12) & 1),
            sec_header=bool((word0 >> 11) & 1),
            seq_flags=SequenceFlags(word1 >> 14),
        )


def packet_length(header: bytes | bytearray | memoryview) -> int:
    """Total packet length announced by a header (at least its first six bytes).

    Raises:
        PacketError: fewer than six bytes.
    """
    if len(header) < HEADER_LEN:
        raise PacketError(f"{len(header)} bytes is shorter than a packet header")
    return HEADER_LEN + int.from_bytes(bytes(header[4:6]), "big") + 1


def split_packets(raw: bytes) -> Iterator[SpacePacket]:
    """The packets that exactly fill ``raw``, in order.

    Raises:
        PacketError: a packet is malformed or the last one is cut short.
    """
    pos = 0
    while pos < len(raw):
        length = packet_length(raw[pos : pos + HEADER_LEN])
        if pos + length > len(raw):
            raise PacketError(f"packet at offset {pos} needs {length} bytes, {len(raw) - pos} left")
        yield SpacePacket.decode(raw[pos : pos + length])
        pos += length


def idle_packet(length: int, seq_count: int = 0, fill: int = 0x55) -> bytes:
    """An idle packet (APID 0x7FF) of exactly ``length`` bytes (at least 7) to pad a frame.

    Raises:
        PacketError: ``length`` below 7 or above the largest packet.
    """
    if length < HEADER_LEN + 1:
        raise PacketError(f"an idle packet needs at least 7 bytes, not {length}")
    data = bytes([fill]) * (length - HEADER_LEN)
    return SpacePacket(IDLE_APID, seq_count % SEQ_COUNT_MODULO, data).encode()


class SequenceCounters:
    """The 14-bit source sequence count of each APID, so the ground sees lost packets."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def next(self, apid: int) -> int:
        """The count for the next packet on ``apid`` (wraps at 16384)."""
        value = self._next.get(apid, 0)
        self._next[apid] = (value + 1) % SEQ_COUNT_MODULO
        return value

    def peek(self, apid: int) -> int:
        return self._next.get(apid, 0)


_ID_IN_DATA = {
    MessageKind.EVENT: Apid.EVENT,
    MessageKind.COMMAND_RESPONSE: Apid.COMMAND_RESPONSE,
    MessageKind.FILE: Apid.FILE,
}
_KIND_OF_APID: dict[int, MessageKind] = {apid: kind for kind, apid in _ID_IN_DATA.items()}


def _telemetry_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise PacketError(f"telemetry packet id {value!r} outside 0..0xFFFF")
    return value


def _apid_for(msg: Message) -> int:
    if msg.kind is MessageKind.TELEMETRY:
        if _telemetry_id(msg.id) <= MAX_TELEMETRY_ID:
            return Apid.TELEMETRY_BASE + msg.id
        return Apid.TELEMETRY_EXTENDED
    _ident(msg.id)
    return _ID_IN_DATA[msg.kind]


#: A TM packet's primary header: APID (version, type and secondary header flag all 0), flags
#: and count, data length - 1.
_TM_HEADER = struct.Struct(">HHH")
_UNSEGMENTED = SequenceFlags.UNSEGMENTED << 14
_TELEMETRY_BASE = int(Apid.TELEMETRY_BASE)
_TELEMETRY_EXTENDED = int(Apid.TELEMETRY_EXTENDED)
_TELEMETRY = MessageKind.TELEMETRY
_COUNT_MASK = SEQ_COUNT_MODULO - 1
#: CBOR initial bytes of two- and three-element arrays: a telemetry packet's ``[time, body]``,
#: and the ``[time, id, body]`` of the others.
_PAIR = b"\x82"
_TRIPLE = b"\x83"


@dataclass(slots=True)
class _FixedPacket:
    """A telemetry packet in a fixed layout: one struct packs all of it, header included, from
    an argument list in which only the sequence word, the time and the values change."""

    apid: int
    pack: Callable[..., bytes]
    args: list[Any]
    #: The last body did not fit (most often a value was missing). A packet whose values keep
    #: failing for another reason (a negative int) pays a failed pack each time.
    misfit: bool = False


#: Where the changing arguments of a _FixedPacket go: after the APID, the sequence word, the
#: data length and the data field's constant start come the time stamp, the constant bytes
#: before the first value, and then each value after its marker byte.
_SEQ_WORD = 1
_DATA_LENGTH = 2  # constant: the data field's length - 1
_TIME = 4
_VALUES = slice(7, None, 2)


def _fixed_packet(packet_id: int, array: codec.FixedArray) -> _FixedPacket:
    time_marker, time_code = codec.FIXED_WIDTH["float"]
    if packet_id <= MAX_TELEMETRY_ID:  # [time, body]
        apid, before, after = _TELEMETRY_BASE + packet_id, _PAIR, array.head
    else:  # [time, id, body]
        apid, before, after = _TELEMETRY_EXTENDED, _TRIPLE, codec.encode(packet_id) + array.head
    before += bytes([time_marker])
    layout = struct.Struct(f">HHH{len(before)}s{time_code}{len(after)}s{array.codes}")
    if layout.size - HEADER_LEN > MAX_DATA_LEN:
        raise PacketError(f"a fixed layout of {len(array.markers)} values is too large a packet")
    args: list[Any] = [apid, 0, layout.size - HEADER_LEN - 1, before, 0.0, after]
    for marker in array.markers:
        args += (marker, 0)
    return _FixedPacket(apid, layout.pack, args)


class Packetizer:
    """Turns flight messages into TM space packets for one downlink.

    It owns the per-APID sequence counts, so the ground sees a gap wherever a packet is lost, and
    it is built for the telemetry path, which runs for every packet of every tick. A packet with a
    fixed layout (:meth:`fix_layout`) is one :mod:`struct` call, header and all. Any other has one
    reused CBOR encoder, the header packed by one struct call, and the time stamp encoded once for
    all the packets of a tick (they share it) and prefixed to each body. The bytes are those of
    :meth:`SpacePacket.encode` over the data fields in the module docstring: canonical CBOR, or
    the fixed layout's form when the packet has one and its values fit.
    """

    def __init__(self, counters: SequenceCounters | None = None) -> None:
        self.counters = counters if counters is not None else SequenceCounters()
        self._cbor = codec.reusable_encoder()
        # The time stamp last encoded, as the start of a [time, body] and a [time, id, body].
        self._stamp_of: object = None
        self._pair = self._triple = b""
        self._fixed: dict[int, _FixedPacket] = {}

    def fix_layout(self, packet_id: int, channel_types: Sequence[str]) -> bool:
        """Send telemetry packet ``packet_id`` in the fixed layout of its channels' types.

        Returns:
            Whether it will be: not (and nothing changes) unless every channel is a float or an
            int, the types a fixed width can carry.

        Raises:
            PacketError: an id outside 0..0xFFFF, or more values than a packet holds.
        """
        array = codec.FixedArray.of(channel_types)
        if array is None:
            return False
        self._fixed[_telemetry_id(packet_id)] = _fixed_packet(packet_id, array)
        return True

    def fixed_length(self, packet_id: int) -> int | None:
        """Bytes of telemetry packet ``packet_id`` whenever its values fit its fixed layout
        (``None``: it has none)."""
        fixed = self._fixed.get(packet_id)
        return None if fixed is None else HEADER_LEN + fixed.args[_DATA_LENGTH] + 1

    def realtime(self, msg: Message) -> bytes:
        """The message as a TM space packet on its kind's APID.

        Raises:
            PacketError: an id out of range or a body CBOR cannot carry (a software bug upstream).
        """
        kind, ident, time, body = msg
        cbor = self._cbor
        try:
            if kind is _TELEMETRY and type(ident) is int and 0 <= ident <= 0xFFFF:
                fixed = self._fixed.get(ident)
                # Looking for a None costs a third of a failed pack: only once one has failed.
                if fixed is not None and type(body) is list and not (fixed.misfit and None in body):
                    counts = self.counters._next
                    apid = fixed.apid
                    count = counts.get(apid, 0)
                    args = fixed.args
                    try:
                        args[_VALUES] = body  # ValueError unless as many values as slots
                        args[_TIME] = time
                        args[_SEQ_WORD] = _UNSEGMENTED | count
                        packet = fixed.pack(*args)
                    except (ValueError, struct.error):
                        fixed.misfit = True  # a value the layout cannot hold: canonical form
                    else:
                        fixed.misfit = False
                        counts[apid] = (count + 1) & _COUNT_MASK
                        return packet
                if time is not self._stamp_of:
                    self._stamp(time)
                if ident <= MAX_TELEMETRY_ID:
                    apid = _TELEMETRY_BASE + ident
                    data = self._pair + cbor(body)
                else:
                    apid = _TELEMETRY_EXTENDED
                    data = self._triple + cbor(ident) + cbor(body)
            else:
                apid = _apid_for(msg)
                if time is not self._stamp_of:
                    self._stamp(time)
                if _TELEMETRY_BASE <= apid < IDLE_APID:  # [time, body]
                    data = self._pair + cbor(body)
                else:  # [time, id, body]
                    data = self._triple + cbor(ident) + cbor(body)
        except codec.ENCODE_ERRORS as exc:
            raise PacketError(f"cannot encode message: {exc}") from exc
        return self._packet(apid, data)

    def _stamp(self, time: Any) -> None:
        """Encode a new time stamp as the start of a [time, body] and a [time, id, body]."""
        stamp = self._cbor(time)
        self._pair, self._triple = _PAIR + stamp, _TRIPLE + stamp
        self._stamp_of = time

    def playback(self, msg: Message) -> bytes:
        """An archived message wrapped for re-sending on the playback APID.

        Raises:
            PacketError: as :meth:`realtime`.
        """
        _apid_for(msg)  # the same id checks as realtime
        try:
            data = self._cbor([int(msg.kind), msg.id, msg.time, msg.body])
        except codec.ENCODE_ERRORS as exc:
            raise PacketError(f"cannot encode message: {exc}") from exc
        return self._packet(Apid.PLAYBACK, data)

    def _packet(self, apid: int, data: bytes) -> bytes:
        size = len(data)
        if size > MAX_DATA_LEN:
            raise PacketError(f"data field of {size} bytes outside 1..{MAX_DATA_LEN}")
        # Counted only once the packet is known to be valid, so a refused message leaves no false
        # gap in the sequence the ground checks. SequenceCounters.next, inlined: this runs for
        # every packet sent.
        counts = self.counters._next
        count = counts.get(apid, 0)
        counts[apid] = (count + 1) & _COUNT_MASK
        return _TM_HEADER.pack(apid, _UNSEGMENTED | count, size - 1) + data


def message_to_packet(msg: Message, counters: SequenceCounters) -> bytes:
    """A realtime message as a TM space packet (:meth:`Packetizer.realtime`, for one message).

    Raises:
        PacketError: an id out of range or a body CBOR cannot carry.
    """
    return Packetizer(counters).realtime(msg)


def playback_packet(msg: Message, counters: SequenceCounters) -> bytes:
    """An archived message on the playback APID (:meth:`Packetizer.playback`, for one message).

    Raises:
        PacketError: as :func:`message_to_packet`.
    """
    return Packetizer(counters).playback(msg)


def _decode_data(data: bytes) -> Any:
    try:
        return codec.decode(data)
    except codec.CodecError as exc:
        raise PacketError(f"bad data field: {exc}") from exc


def _time(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PacketError(f"time must be a number, got {type(value).__name__}")
    t = float(value)
    if not math.isfinite(t):
        raise PacketError(f"time {value!r} is not finite")
    return t


def _ident(value: Any) -> int:
    # -1 is the opcode of a response to a command too malformed to have one (see the dispatcher).
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= 0xFFFF:
        raise PacketError(f"id must be an int in -1..0xFFFF, got {value!r}")
    return value


def _fields(value: Any, n: int, what: str) -> list[Any]:
    if not isinstance(value, list) or len(value) != n:
        raise PacketError(f"{what} data field must be a {n}-element list")
    return value


def packet_to_message(packet: bytes | SpacePacket) -> Message:
    """The message a TM packet carries (ground side); playback yields the archived message.

    Raises:
        PacketError: not a TM packet on a message APID, or a data field of the wrong shape.
    """
    pkt = packet if isinstance(packet, SpacePacket) else SpacePacket.decode(packet)
    if pkt.packet_type is not PacketType.TM:
        raise PacketError(f"APID {pkt.apid:#x}: a TC packet on the downlink")
    apid = pkt.apid
    if apid == IDLE_APID:
        raise PacketError("idle packet carries no message")
    if Apid.TELEMETRY_BASE <= apid < IDLE_APID:
        time, body = _fields(_decode_data(pkt.data), 2, "telemetry")
        return Message(MessageKind.TELEMETRY, apid - Apid.TELEMETRY_BASE, _time(time), body)
    if apid == Apid.TELEMETRY_EXTENDED:
        time, ident, body = _fields(_decode_data(pkt.data), 3, "telemetry")
        return Message(MessageKind.TELEMETRY, _telemetry_id(ident), _time(time), body)
    if apid in _KIND_OF_APID:
        time, ident, body = _fields(_decode_data(pkt.data), 3, Apid(apid).name.lower())
        return Message(_KIND_OF_APID[apid], _ident(ident), _time(time), body)
    if apid == Apid.PLAYBACK:
        kind, ident, time, body = _fields(_decode_data(pkt.data), 4, "playback")
        if isinstance(kind, bool) or kind not in {k.value for k in MessageKind}:
            raise PacketError(f"playback kind {kind!r} is not a message kind")
        mkind = MessageKind(kind)
        check = _telemetry_id if mkind is MessageKind.TELEMETRY else _ident
        return Message(mkind, check(ident), _time(time), body)
    raise PacketError(f"APID {apid:#x} carries no downlink message")
