"""What the executive sends to the ground and to its archive.

Every outgoing item (a telemetry packet, an event, a command response, a file chunk) is a
:class:`Message`. The link layer maps ``kind`` and ``id`` to a CCSDS APID and a priority; the
archive stores the same messages, so playback re-sends exactly what realtime would have sent.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

__all__ = ["Message", "MessageKind"]


@enum.unique
class MessageKind(enum.IntEnum):
    TELEMETRY = 1
    EVENT = 2
    COMMAND_RESPONSE = 3
    FILE = 4


class Message(NamedTuple):
    """One downlink item.

    Immutable, and a named tuple rather than a frozen dataclass because telemetry makes one per
    packet per tick: a frozen dataclass's ``__init__`` costs twice as much.

    Attributes:
        kind: what it is; decides the APID range and priority.
        id: the packet id (telemetry), event id, or opcode (command response).
        time: spacecraft time (MET seconds) when it was produced.
        body: a CBOR-encodable value (see ``flight.codec``).
    """

    kind: MessageKind
    id: int
    time: float
    body: Any
