"""The codec: canonical encoding, the reusable encoder of the hot paths, bounded decoding."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flight import codec

wire_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**64) + 1, 2**64 - 1),
        st.floats(),
        st.text(max_size=8),
        st.binary(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(wire_values)
def test_reusable_encoder_gives_the_bytes_of_encode(value: Any) -> None:
    assert codec.reusable_encoder()(value) == codec.encode(value)
    assert _same(codec.decode(codec.encode(value)), value)


@given(st.lists(wire_values, min_size=2, max_size=6))
def test_one_reusable_encoder_carries_nothing_between_calls(values: list[Any]) -> None:
    encode = codec.reusable_encoder()
    assert [encode(v) for v in values] == [codec.encode(v) for v in values]


def test_a_refused_value_leaves_the_reusable_encoder_usable() -> None:
    encode = codec.reusable_encoder()
    with pytest.raises(codec.ENCODE_ERRORS):
        encode([1, object()])
    with pytest.raises(codec.CodecError, match="cannot encode"):
        codec.encode({"x": object()})
    assert encode([1.5, "ok"]) == codec.encode([1.5, "ok"])


def test_encoding_is_canonical() -> None:
    assert codec.encode({"b": 1, "a": 2}) == codec.encode({"a": 2, "b": 1})
    assert codec.encode(1.5) == bytes.fromhex("f93e00")  # shortest exact float
    assert codec.encode(0.1) == bytes.fromhex("fb3fb999999999999a")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (bytes.fromhex("d90fa001"), "tag"),  # an unregistered tag reaches the hook
        (bytes.fromhex("c11a00000000"), "datetime not allowed"),  # one cbor2 decodes itself
        (bytes.fromhex("9fff"), "indefinite|malformed"),
        (bytes.fromhex("a2616101616102"), "duplicate|malformed"),
        (bytes.fromhex("0101"), "trailing"),
        (b"\x81" * (codec.MAX_DEPTH + 2) + b"\x01", "depth|nesting|malformed"),
    ],
)
def test_decode_refuses_what_the_uplink_must_not_carry(data: bytes, reason: str) -> None:
    with pytest.raises(codec.CodecError, match=reason):
        codec.decode(data)


@given(st.binary(max_size=64))
def test_decode_of_garbage_raises_only_codec_error(data: bytes) -> None:
    with contextlib.suppress(codec.CodecError):
        codec.decode(data)


# --- fixed-width arrays (fixed-layout telemetry) -------------------------------------------------

numeric_types = st.lists(st.sampled_from(["float", "int"]), min_size=1, max_size=30)


def _fitting_value(kind: str) -> st.SearchStrategy[Any]:
    if kind == "float":
        return st.floats()  # NaN and the infinities too: a float64 carries every float
    return st.integers(0, 2**32 - 1)


@given(
    numeric_types.flatmap(lambda ts: st.tuples(st.just(ts), st.tuples(*map(_fitting_value, ts))))
)
def test_a_fixed_array_decodes_to_its_values_and_has_the_size_of_its_layout(
    case: tuple[list[str], tuple[Any, ...]],
) -> None:
    types, values = case
    array = codec.FixedArray.of(types)
    assert array is not None
    raw = array.encode(list(values))
    assert len(raw) == array.size
    assert _same(codec.decode(raw), list(values))


def test_fixed_array_golden_bytes() -> None:
    # The item forms are RFC 8949 Appendix A's: 1000000 as 0x1a000f4240, 1.1 as 0xfb3ff1...9a;
    # here also 1 and 0.0 in those widths, where the canonical form would be shorter.
    array = codec.FixedArray.of(["int", "float", "int", "float"])
    assert array is not None
    assert array.encode([1000000, 1.1, 1, 0.0]) == bytes.fromhex(
        "841a000f4240fb3ff199999999999a1a00000001fb0000000000000000"
    )
    long = codec.FixedArray.of(["int"] * 24)
    assert long is not None and long.head == bytes.fromhex("9818")  # a one-byte length after


@pytest.mark.parametrize("types", [[], ["str"], ["float", "bool"], ["int", "bytes"]])
def test_only_numbers_have_a_fixed_layout(types: list[str]) -> None:
    assert codec.FixedArray.of(types) is None


@pytest.mark.parametrize(
    ("types", "values"),
    [
        (["int"], [None]),
        (["float"], [None]),
        (["int"], [-1]),
        (["int"], [2**32]),
        (["int"], [1.5]),
        (["float"], ["1.5"]),
        (["float", "float"], [1.5]),
        (["float"], 1.5),
    ],
    ids=[
        "missing-int",
        "missing-float",
        "negative",
        "too-large",
        "float-as-int",
        "str",
        "count",
        "not-a-list",
    ],
)
def test_a_value_the_fixed_layout_cannot_hold_is_refused(
    types: list[str], values: list[Any]
) -> None:
    array = codec.FixedArray.of(types)
    assert array is not None
    with pytest.raises(codec.CodecError):
        array.encode(values)
