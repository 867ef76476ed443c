"""The one place that turns values into CBOR and back.

Deterministic encoding (canonical: shortest integers, sorted map keys) means the same telemetry
always produces the same bytes, which the archive's CRCs, golden tests and replay comparisons rely
on. Decoding is bounded: uplinked bytes come from outside and may be hostile, so nesting depth,
total size and the types that may appear are all limited before anything reaches the dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import Any

import cbor2

__all__ = ["ENCODE_ERRORS", "MAX_DEPTH", "CodecError", "decode", "encode", "reusable_encoder"]

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
