"""The one place that turns values into CBOR and back.

Deterministic encoding means the same telemetry always produces the same bytes, which the
archive's CRCs, golden tests and replay comparisons rely on. Two forms are written, both valid
CBOR that any decoder reads back to the same values:

- canonical (:func:`encode`): shortest integers and floats, sorted map keys; everything but
  fixed-layout telemetry;
- fixed-width arrays (:class:`FixedArray`): a list of numbers in which every item takes the
  same bytes whatever its value, as the telemetry of F Prime or cFS does. Packets of numeric
  channels are the bulk of the downlink and are built every tick, and one precompiled
  :mod:`struct` packs such a list in a quarter to a third of the time cbor2 takes (whose
  bookkeeping per container is most of a short list's cost); a packet's size then follows from
  its channels' types in the dictionary, whatever the values. The price is bytes: an int takes 5
  rather than 1 to 3, and a float that would fit a half or a single still takes 9.

Decoding is bounded: uplinked bytes come from outside and may be hostile, so nesting depth,
total size and the types that may appear are all limited before anything reaches the dispatcher.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import cbor2

__all__ = [
    "ENCODE_ERRORS",
    "FIXED_WIDTH",
    "MAX_DEPTH",
    "CodecError",
    "FixedArray",
    "decode",
    "encode",
    "reusable_encoder",
]

#: Deeper structures are refused: no command, sequence or parameter needs more than a few levels.
MAX_DEPTH = 16
#: Largest CBOR item the flight software will decode (a stored sequence is the biggest).
MAX_DECODE_BYTES = 64 * 1024

_ALLOWED = (int, float, str, bytes, bool, list, dict, type(None))


class CodecError(ValueError):
    """Bytes that are not acceptable CBOR, or a value CBOR cannot carry."""


#: What cbor2 raises for a value it cannot encode.
ENCODE_ERRORS = (cbor2.CBOREncodeError, TypeError, ValueError, OverflowError)


def encode(value: Any) -> bytes:
    """Canonical CBOR of ``value`` (ints, floats, str, bytes, bool, None, lists, dicts).

    Raises:
        CodecError: the value holds a type the wire format does not carry.
    """
    try:
        return bytes(cbor2.dumps(value, canonical=True))
    except ENCODE_ERRORS as exc:
        raise CodecError(f"cannot encode {type(value).__name__}: {exc}") from exc


def reusable_encoder() -> Callable[[Any], bytes]:
    """A function giving the same bytes as :func:`encode`, for a hot path in one thread.

    ``cbor2.dumps`` builds an encoder and a buffer on every call, about a quarter of its cost for
    the short value lists telemetry sends several times a tick; this keeps one encoder. It raises
    :data:`ENCODE_ERRORS` rather than :class:`CodecError` so that a caller encoding several items
    puts one ``try`` around them all. Not safe to share between threads.
    """
    return cbor2.CBOREncoder(BytesIO(), canonical=True).encode_to_bytes


#: How a number of each channel type goes in a :class:`FixedArray`: the CBOR initial byte and the
#: :mod:`struct` code of the value after it. A float is always a float64 (major type 7,
#: additional information 27), an int always a uint32 (major type 0, additional information 26).
FIXED_WIDTH: dict[str, tuple[int, str]] = {"float": (0xFB, "d"), "int": (0x1A, "I")}
_ARRAY = 0x80  # major type 4


def _array_head(length: int) -> bytes:
    """The initial bytes of a CBOR array of ``length`` items (the shortest form)."""
    if length < 24:
        return bytes([_ARRAY | length])
    if length < 0x100:
        return bytes([_ARRAY | 24, length])
    return bytes([_ARRAY | 25]) + length.to_bytes(2, "big")


@dataclass(frozen=True)
class FixedArray:
    """The fixed-width CBOR form of a list of numbers of known types (module docstring).

    Built for a caller that packs it into a larger :mod:`struct` (the packetizer puts a whole
    space packet in one): :attr:`head` is the array's initial bytes, :attr:`codes` the struct
    codes of the items, each a marker byte then the value (``"BdBI"``), and :attr:`markers` the
    marker bytes, which go in the argument list before each value. A value the layout cannot
    hold (``None``, a negative int or one of 2**32 or more, a float in an int slot) makes struct
    raise :class:`struct.error`; such a list is for :func:`encode`. An int in a float slot is
    sent as a float, the type its channel declares, and a bool as 0 or 1 (telemetry's own
    values are converted to the channel's type before they get here).
    """

    head: bytes
    codes: str
    markers: tuple[int, ...]

    @classmethod
    def of(cls, types: Sequence[str]) -> FixedArray | None:
        """The layout of a list whose items have these channel types; ``None`` unless every one
        is numeric (``"float"`` or ``"int"``) and there is at least one."""
        if not types or any(t not in FIXED_WIDTH for t in types):
            return None
        widths = [FIXED_WIDTH[t] for t in types]
        return cls(
            _array_head(len(types)),
            "".join("B" + code for _, code in widths),
            tuple(marker for marker, _ in widths),
        )

    @property
    def size(self) -> int:
        """Bytes of the encoded array, whatever the values."""
        return len(self.head) + struct.calcsize(">" + self.codes)

    def encode(self, values: Any) -> bytes:
        """The array's bytes, for one list (the reference form a packer's output must equal).

        Raises:
            CodecError: not a list (or tuple) of as many values as the layout has, or a value
                it cannot hold.
        """
        if not isinstance(values, list | tuple):
            raise CodecError(f"a fixed layout takes a list of values, not {type(values).__name__}")
        if len(values) != len(self.markers):
            raise CodecError(f"{len(values)} values for a layout of {len(self.markers)}")
        args = [x for pair in zip(self.markers, values, strict=True) for x in pair]
        try:
            return self.head + struct.pack(">" + self.codes, *args)
        except struct.error as exc:
            raise CodecError(f"a value does not fit the fixed layout: {exc}") from exc


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CodecError(f"nesting deeper than {MAX_DEPTH}")
    if not isinstance(value, _ALLOWED):
        raise CodecError(f"type {type(value).__name__} not allowed")
    if isinstance(value, list):
        for item in value:
            _check(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, int | str):
                raise CodecError(f"map key of type {type(key).__name__} not allowed")
            _check(item, depth + 1)


def decode(data: bytes, *, max_bytes: int = MAX_DECODE_BYTES) -> Any:
    """Decode one complete CBOR item from untrusted bytes.

    Tags, indefinite-length items, duplicate keys, trailing bytes and oversized input are refused,
    so a forged or corrupted payload can neither exhaust memory nor smuggle in an unexpected type.

    Raises:
        CodecError: anything that is not one acceptable, complete CBOR item.
    """
    if len(data) > max_bytes:
        raise CodecError(f"{len(data)} bytes exceeds the {max_bytes}-byte limit")
    if not data:
        raise CodecError("empty input")

    def no_tags(decoder: Any, tag: Any) -> Any:
        raise CodecError(f"CBOR tag {getattr(tag, 'tag', '?')} not allowed")

    stream = BytesIO(bytes(data))
    try:
        value = cbor2.load(
            stream,
            tag_hook=no_tags,
            max_depth=MAX_DEPTH + 1,
            allow_indefinite=False,
            allow_duplicate_keys=False,
        )
    except CodecError:
        raise
    except Exception as exc:  # cbor2 raises several types (CBORDecodeError, ValueError, ...)
        raise CodecError(f"malformed CBOR: {exc}") from exc
    if stream.tell() != len(data):
        raise CodecError(f"{len(data) - stream.tell()} trailing bytes after the CBOR item")
    _check(value, 0)
    return value
