"""The data pool: samples with validity, and the reader telemetry samples through, with each
declared name converted when it is written."""

from __future__ import annotations

import pytest

from flight.datapool import DataPool


def test_values_carry_time_and_validity() -> None:
    pool = DataPool()
    pool.update("imu", {"ax": 1.5, "ay": -0.5}, 10.0)
    assert pool.value("imu.ax") == 1.5
    assert pool.fresh("imu.ax", 10.4, 0.5) and not pool.fresh("imu.ax", 10.6, 0.5)
    pool.invalidate("imu", 11.0)
    assert pool.value("imu.ax") is None
    assert pool.value("imu.ax", valid_only=False) == 1.5  # the last value stays visible
    assert sorted(pool) == ["imu.ax", "imu.ay"]


def test_reader_gives_valid_values_in_order_and_none_otherwise() -> None:
    pool = DataPool()
    read = pool.reader(["b.x", "a.y", "never.written", "b.x"])
    assert read() == (None, None, None, None)
    pool.set("b.x", 3, 1.0)
    pool.update("a", {"y": "ok"}, 1.0)
    assert read() == (3, "ok", None, 3)
    pool.set("b.x", 4, 2.0, valid=False)
    assert read() == (None, "ok", None, None)
    pool.invalidate("a", 3.0)
    assert read() == (None, None, None, None)
    assert "never.written" not in pool  # a read adds no name to the pool


def test_reader_of_one_name_is_still_a_tuple() -> None:
    pool = DataPool()
    read = pool.reader(["x"])
    pool.set("x", 1.0, 0.0)
    assert read() == (1.0,)


def test_reader_agrees_with_value_for_every_write() -> None:
    pool = DataPool()
    names = ["p.a", "p.b", "q"]
    read = pool.reader(names)
    writes = [("p.a", 1, True), ("q", None, True), ("p.b", 2.5, False), ("p.a", "s", True)]
    for name, value, valid in writes:
        pool.set(name, value, 0.0, valid=valid)
        assert read() == tuple(pool.value(n) for n in names)
    pool.invalidate("p", 1.0)
    assert read() == tuple(pool.value(n) for n in names)


def test_reader_needs_a_name() -> None:
    with pytest.raises(ValueError, match="at least one"):
        DataPool().reader([])


def _half(value: object) -> object:
    return value / 2 if isinstance(value, int | float) else None


def test_declared_names_are_converted_once_when_written() -> None:
    pool = DataPool()
    pool.set("a.x", 8, 0.0)  # written before the declaration
    pool.declare("a.x", _half)
    read = pool.reader(["a.x", "a.y"])
    assert read() == (4.0, None)
    pool.update("a", {"x": 2, "y": 6}, 1.0)  # a.y is not declared: as written
    assert read() == (1.0, 6)
    pool.set("a.x", "junk", 2.0)
    assert read() == (None, 6)  # not of the declared type
    pool.set("a.x", 10, 3.0, valid=False)
    assert read() == (None, 6)
    pool.set("a.x", 10, 4.0)
    pool.invalidate("a", 5.0)
    assert read() == (None, None)
    assert pool.value("a.x", valid_only=False) == 10  # the sample keeps the value as written


def test_a_declared_name_never_written_reads_none_and_is_not_in_the_pool() -> None:
    pool = DataPool()
    pool.declare("a.x", _half)
    assert pool.reader(["a.x", "a.x"])() == (None, None)
    assert pool.value("a.x") is None and pool.get("a.x") is None
    assert "a.x" not in pool and list(pool) == [] and len(pool) == 0
    pool.set("a.x", 4, 0.0)
    assert pool.reader(["a.x"])() == (2.0,) and "a.x" in pool


def test_a_name_declared_two_ways_is_refused() -> None:
    pool = DataPool()
    pool.declare("a.x", _half)
    pool.declare("a.x", _half)  # the same conversion again: two channels showing one reading
    with pytest.raises(ValueError, match="another conversion"):
        pool.declare("a.x", str)
    pool.set("a.x", 4, 0.0)
    assert pool.reader(["a.x"])() == (2.0,)
