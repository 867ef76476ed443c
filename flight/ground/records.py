"""What the ground keeps from the downlink: channel values, events, responses, sent commands.

Plain frozen records, so the console, scripts and tests can hold and compare them freely; times
are spacecraft MET (``time``) and the ground's monotonic clock (``received``, ``sent``).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flight.commands import CommandStatus

__all__ = [
    "ChannelValue",
    "EventRecord",
    "Limit",
    "Record",
    "ResponseRecord",
    "SentCommand",
    "limit_state",
]


@enum.unique
class Limit(enum.Enum):
    OK = "ok"
    YELLOW = "yellow"
    RED = "red"


@dataclass(frozen=True)
class ChannelValue:
    """The latest value of one channel.

    Attributes:
        time: spacecraft time (MET) the packet was produced.
        received: ground clock (monotonic) when it arrived.
        limit: limit state for numeric channels with limits, else ``None``.
    """

    name: str
    value: Any
    units: str
    limit: Limit | None
    time: float
    received: float


@dataclass(frozen=True)
class EventRecord:
    id: int
    name: str
    severity: str
    text: str
    args: dict[str, Any]
    time: float
    received: float
    playback: bool = False


@dataclass(frozen=True)
class ResponseRecord:
    seq: int
    opcode: int
    command: str
    status: str
    reason: str
    time: float
    received: float

    @property
    def ok(self) -> bool:
        return self.status == CommandStatus.OK.name


@dataclass(frozen=True)
class SentCommand:
    seq: int
    command: str
    opcode: int
    args: tuple[Any, ...]
    sent: float


#: What subscribers are told about, one call per item.
Record = ChannelValue | EventRecord | ResponseRecord


def limit_state(spec_limit: Callable[[float], int], value: Any) -> Limit | None:
    """The limit state of a numeric value (``None`` for anything else)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return Limit.RED
    return (Limit.OK, Limit.YELLOW, Limit.RED)[spec_limit(value)]
