"""State store: atomic commits, backup of the previous commit, recovery from corrupt files."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flight import codec
from flight.events import EventLog
from flight.persistence.state import EV_COMMIT_FAILED, EV_RECOVERED, StateStore


def committed(path: Path, **values) -> StateStore:
    store = StateStore(path)
    for key, value in values.items():
        store.set(key, value)
    store.commit()
    return store


def test_values_survive_a_reopen(tmp_path):
    path = tmp_path / "state.cbor"
    committed(path, mode="CRUISE", counter=7, nav=[1.5, -2.0], flags={"a": True}, blob=b"\x00\x01")
    store = StateStore(path)
    assert store.recovered_from == "primary"
    assert store.get("mode") == "CRUISE"
    assert store.get("counter") == 7
    assert store.get("nav") == [1.5, -2.0]
    assert store.get("flags") == {"a": True}
    assert store.get("blob") == b"\x00\x01"
    assert store.get("missing", "dflt") == "dflt"


def test_file_format_is_versioned_with_a_crc(tmp_path):
    path = tmp_path / "state.cbor"
    committed(path, mode="SAFE")
    outer = codec.decode(path.read_bytes())
    assert outer == {
        "v": 1,
        "crc": zlib.crc32(codec.encode({"mode": "SAFE"})),
        "data": {"mode": "SAFE"},
    }


def test_first_boot_is_empty_and_quiet(tmp_path):
    events = EventLog(now=lambda: 0.0)
    store = StateStore(tmp_path / "state.cbor", events=events)
    assert store.recovered_from == "empty"
    assert len(store) == 0
    assert events.count(EV_RECOVERED.id) == 0


def test_backup_holds_the_previous_commit(tmp_path):
    path = tmp_path / "state.cbor"
    store = committed(path, counter=1)
    store.set("counter", 2)
    store.commit()
    store.set("counter", 3)
    store.commit()
    assert StateStore(path).get("counter") == 3
    path.unlink()
    assert StateStore(path).get("counter") == 2
    assert StateStore(path).recovered_from == "backup"


def corruptions(raw: bytes) -> dict[str, bytes]:
    outer = codec.decode(raw)
    forged = dict(outer, data={**outer["data"], "counter": 999})  # data changed, CRC not
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0x40
    return {
        "truncated": raw[: len(raw) // 2],
        "empty": b"",
        "garbage": b"\xff\xfe not cbor at all",
        "bitflip": bytes(flipped),
        "wrong_crc": codec.encode(forged),
        "wrong_shape": codec.encode([1, 2, 3]),
        "wrong_version": codec.encode(dict(outer, v=2)),
        "trailing": raw + b"\x00",
    }


@pytest.mark.parametrize("kind", sorted(corruptions(codec.encode({"v": 1, "crc": 0, "data": {}}))))
def test_a_corrupt_primary_falls_back_to_the_backup(tmp_path, kind):
    path = tmp_path / "state.cbor"
    store = committed(path, counter=1)
    store.set("counter", 2)
    store.commit()
    bad = corruptions(path.read_bytes())[kind]
    path.write_bytes(bad)
    events = EventLog(now=lambda: 0.0)
    reopened = StateStore(path, events=events)
    assert reopened.recovered_from == "backup"
    assert reopened.get("counter") == 1
    assert events.count(EV_RECOVERED.id) == 1
    assert reopened.corrupt_path.read_bytes() == bad  # kept for the ground
    # The next commit writes a good primary again.
    reopened.set("counter", 5)
    reopened.commit()
    again = StateStore(path)
    assert again.recovered_from == "primary" and again.get("counter") == 5
    path.unlink()
    assert StateStore(path).get("counter") == 1


def test_both_files_corrupt_starts_empty_without_raising(tmp_path):
    path = tmp_path / "state.cbor"
    store = committed(path, counter=1)
    store.set("counter", 2)
    store.commit()
    path.write_bytes(b"\x00" * 40)
    store.backup_path.write_bytes(b"\xa1")
    events = EventLog(now=lambda: 0.0)
    reopened = StateStore(path, events=events)
    assert reopened.recovered_from == "empty"
    assert len(reopened) == 0
    assert "CRC" in reopened.load_detail or "undecodable" in reopened.load_detail
    assert events.count(EV_RECOVERED.id) == 1


def test_an_unreadable_primary_is_treated_as_missing(tmp_path):
    path = tmp_path / "state.cbor"
    store = committed(path, counter=1)
    store.set("counter", 2)
    store.commit()
    path.unlink()
    path.mkdir()  # reading a directory raises IsADirectoryError
    store = StateStore(path)
    assert store.recovered_from == "backup"
    assert store.get("counter") == 1
    assert "unreadable" in store.load_detail


def test_set_flag_once_commits_before_returning_true(tmp_path):
    path = tmp_path / "state.cbor"
    store = StateStore(path)
    assert store.set_flag_once("oneshot.chute") is True
    assert StateStore(path).get("oneshot.chute") is True  # on disk already
    assert store.set_flag_once("oneshot.chute") is False
    assert StateStore(path).set_flag_once("oneshot.chute") is False  # after a "reboot" too


def test_commit_failure_is_reported_not_raised_and_retried(tmp_path):
    path = tmp_path / "not-yet" / "state.cbor"
    events = EventLog(now=lambda: 0.0)
    store = StateStore(path, events=events)
    store.set("counter", 1)
    store.commit()
    assert not store.last_commit_ok
    assert store.commit_failures == 1
    assert store.dirty
    assert events.count(EV_COMMIT_FAILED.id) == 1
    # A one-shot still fires: refusing it because the disk failed would be worse.
    assert store.set_flag_once("oneshot.x") is True
    assert store.set_flag_once("oneshot.x") is False
    path.parent.mkdir()
    store.commit()
    assert store.last_commit_ok
    reopened = StateStore(path)
    assert reopened.get("counter") == 1 and reopened.get("oneshot.x") is True


def test_set_durably_takes_back_a_change_that_could_not_be_committed(tmp_path):
    path = tmp_path / "not-yet" / "state.cbor"
    store = StateStore(path)
    store.set("counter", 1)  # an ordinary change, waiting for the next commit
    with pytest.raises(OSError, match="commit failed"):
        store.set_durably("new", "x")
    with pytest.raises(OSError):
        store.set_durably("counter", 2)
    assert "new" not in store and store.get("counter") == 1
    path.parent.mkdir()
    store.set_durably("other", True)
    reopened = StateStore(path)
    assert dict((k, reopened.get(k)) for k in reopened) == {"counter": 1, "other": True}


def test_only_changes_are_written(tmp_path):
    path = tmp_path / "state.cbor"
    store = committed(path, counter=1, x=1.0)
    store.set("counter", 1)
    assert not store.dirty
    store.set("x", 1)  # an int is not the same value as a float on the wire
    assert store.dirty
    store.commit()
    commits = store.commits
    store.commit()
    assert store.commits == commits


def test_bad_values_and_keys_are_refused_at_set(tmp_path):
    store = StateStore(tmp_path / "state.cbor")
    with pytest.raises(ValueError):
        store.set("obj", object())
    with pytest.raises(TypeError):
        store.set(3, "x")  # type: ignore[arg-type]
    assert not store.dirty


def test_values_are_copies_and_normalised(tmp_path):
    store = StateStore(tmp_path / "state.cbor")
    value = {"list": [1, 2]}
    store.set("v", value)
    value["list"].append(3)
    got = store.get("v")
    got["list"].append(4)
    assert store.get("v") == {"list": [1, 2]}
    store.set("t", (1, 2))
    assert store.get("t") == [1, 2]  # as it will read after a reboot


def test_delete_and_uncommitted_changes_are_dropped_by_load(tmp_path):
    path = tmp_path / "state.cbor"
    store = committed(path, a=1, b=None)
    store.delete("b")
    assert store.dirty and "b" not in store
    store.set("a", 2)
    store.load()
    assert store.get("a") == 1 and "b" in store


def test_stale_temp_files_are_removed_at_load(tmp_path):
    path = tmp_path / "state.cbor"
    committed(path, a=1)
    stale = tmp_path / ".state.cbor.abc123.tmp"
    stale.write_bytes(b"half")
    StateStore(path)
    assert not stale.exists()


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.dictionaries(st.text(max_size=12), values, max_size=6))
def test_any_codec_value_round_trips(tmp_path, data):
    path = tmp_path / "prop.cbor"
    for f in (path, path.with_suffix(".prev")):
        f.unlink(missing_ok=True)
    store = StateStore(path)
    for key, value in data.items():
        store.set(key, value)
    store.commit()
    reopened = StateStore(path)
    assert reopened.recovered_from == ("primary" if data else "empty")
    assert {k: reopened.get(k) for k in reopened} == data
