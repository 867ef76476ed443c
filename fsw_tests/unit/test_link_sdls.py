"""SDLS-style authentication: key files and permissions, key slots, the MAC, counter stores."""

from __future__ import annotations

import hashlib
import hmac
import json
import os

import pytest

from flight.link.sdls import (
    KEY_LEN,
    MAC_LEN,
    AuthenticationError,
    CounterStoreError,
    FileCounterStore,
    KeyFileError,
    KeyPermissionError,
    KeyRing,
    MemoryCounterStore,
    SecuredData,
    StateStoreCounters,
    UnknownSpiError,
    compute_mac,
    generate_key,
    load_key,
    protect,
    write_key,
)

KEY = bytes(range(32))


def key_file(tmp_path, text: bytes, mode: int = 0o600):
    path = tmp_path / "k.hex"
    path.write_bytes(text)
    os.chmod(path, mode)
    return path


# -- key files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [b"", b"\n"])
def test_load_key_accepts_64_hex_chars_and_optional_newline(tmp_path, suffix):
    path = key_file(tmp_path, KEY.hex().encode() + suffix)
    assert load_key(path) == KEY


def test_load_key_accepts_upper_case_hex(tmp_path):
    assert load_key(key_file(tmp_path, KEY.hex().upper().encode())) == KEY


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o601, 0o610])
def test_load_key_refuses_group_or_other_permissions(tmp_path, mode):
    path = key_file(tmp_path, KEY.hex().encode(), mode)
    with pytest.raises(KeyPermissionError, match="chmod 600") as info:
        load_key(path)
    assert isinstance(info.value, PermissionError)
    assert KEY.hex() not in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        KEY.hex()[:-2].encode(),
        KEY.hex().encode() + b"00",
        KEY.hex().encode() + b"\n\n",
        b"zz" + KEY.hex()[2:].encode(),
        KEY,  # 32 raw bytes are not the accepted format
        b"",
    ],
)
def test_load_key_refuses_wrong_format(tmp_path, text):
    with pytest.raises(KeyFileError) as info:
        load_key(key_file(tmp_path, text))
    assert not isinstance(info.value, KeyPermissionError)


def test_load_key_refuses_missing_file_and_directories(tmp_path):
    with pytest.raises(KeyFileError, match="cannot open"):
        load_key(tmp_path / "nope")
    d = tmp_path / "dir"
    d.mkdir(mode=0o700)
    with pytest.raises(KeyPermissionError, match="regular file"):
        load_key(d)


def test_write_key_is_mode_0600_and_never_overwrites_without_asking(tmp_path):
    path = tmp_path / "k.hex"
    old_umask = os.umask(0)
    try:
        write_key(path, KEY)
    finally:
        os.umask(old_umask)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_key(path) == KEY
    with pytest.raises(FileExistsError):
        write_key(path, bytes(32))
    assert load_key(path) == KEY
    write_key(path, bytes(32), overwrite=True)
    assert load_key(path) == bytes(32)
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(ValueError):
        write_key(tmp_path / "short", b"abc")


def test_generated_keys_are_32_random_bytes():
    a, b = generate_key(), generate_key()
    assert len(a) == KEY_LEN and a != b


# -- key ring ----------------------------------------------------------------------------------


def test_key_ring_never_shows_keys():
    ring = KeyRing({1: KEY, 2: b"\xab" * 32})
    for text in (repr(ring), str(ring)):
        assert KEY.hex() not in text and "abab" not in text
        assert "1" in text and "2" in text


def test_key_ring_enable_disable_and_set_active():
    ring = KeyRing({1: KEY, 2: bytes(32)}, enabled=[1])
    assert ring.slots == (1, 2)
    assert ring.enabled == (1,)
    assert ring.key(1) == KEY
    with pytest.raises(UnknownSpiError):
        ring.key(2)
    ring.enable(2)
    assert ring.key(2) == bytes(32)
    ring.set_active(2)
    assert ring.enabled == (2,)
    with pytest.raises(UnknownSpiError):
        ring.key(1)
    with pytest.raises(UnknownSpiError):
        ring.set_active(9)
    assert ring.enabled == (2,)
    ring.disable(2)
    assert ring.enabled == ()


def test_key_ring_refuses_bad_keys_and_spis():
    with pytest.raises(ValueError):
        KeyRing({1: b"short"})
    with pytest.raises(ValueError):
        KeyRing({0x10000: KEY})
    with pytest.raises(UnknownSpiError):
        KeyRing({1: KEY}, enabled=[3])


def test_key_ring_loads_from_a_file(tmp_path):
    ring = KeyRing()
    ring.load(7, key_file(tmp_path, KEY.hex().encode()))
    assert ring.key(7) == KEY


# -- MAC ---------------------------------------------------------------------------------------


def test_mac_is_truncated_hmac_sha256_over_header_security_header_and_data():
    header, data = b"\x20\x01\x00\x20\x00", b"packet"
    field = protect(key=KEY, spi=0x0102, arsn=0x0A0B0C0D, tc_header=header, data=data)
    assert field[:6] == bytes.fromhex("0102 0A0B0C0D")
    assert field[6:-MAC_LEN] == data
    expected = hmac.new(KEY, header + field[:6] + data, hashlib.sha256).digest()[:16]
    assert field[-MAC_LEN:] == expected == compute_mac(KEY, header, field[:6], data)


def test_secured_data_verifies_and_refuses_tampering():
    header = b"\x20\x01\x00\x20\x00"
    field = protect(key=KEY, spi=1, arsn=5, tc_header=header, data=b"abc")
    sec = SecuredData(field)
    assert (sec.spi, sec.arsn, sec.data) == (1, 5, b"abc")
    sec.verify(KEY, header)
    with pytest.raises(AuthenticationError):
        sec.verify(KEY, b"\x20\x02\x00\x20\x00")  # another spacecraft's header
    with pytest.raises(AuthenticationError):
        sec.verify(bytes(32), header)
    tampered = bytearray(field)
    tampered[3] ^= 1  # the ARSN is authenticated too
    with pytest.raises(AuthenticationError):
        SecuredData(bytes(tampered)).verify(KEY, header)
    with pytest.raises(AuthenticationError, match="cannot hold"):
        SecuredData(field[:22])


def test_protect_refuses_out_of_range_numbers():
    with pytest.raises(ValueError):
        protect(key=KEY, spi=0x10000, arsn=0, tc_header=b"12345", data=b"x")
    with pytest.raises(ValueError):
        protect(key=KEY, spi=1, arsn=2**32, tc_header=b"12345", data=b"x")


# -- counter stores ----------------------------------------------------------------------------


def test_file_counter_store_persists_atomically_with_mode_0600(tmp_path):
    path = tmp_path / "arsn.json"
    store = FileCounterStore(path)
    assert store.get(1) is None
    store.set(1, 41)
    store.set(1, 42)
    store.set(3, 7)
    assert os.stat(path).st_mode & 0o777 == 0o600
    again = FileCounterStore(path)
    assert (again.get(1), again.get(3), again.get(2)) == (42, 7, None)


@pytest.mark.parametrize(
    "text",
    [b"not json", b"[1, 2]", b'{"x": 1}', b'{"1": "5"}', b'{"1": -1}', b'{"1": true}'],
)
def test_file_counter_store_refuses_a_corrupt_file(tmp_path, text):
    path = tmp_path / "arsn.json"
    path.write_bytes(text)
    with pytest.raises(CounterStoreError):
        FileCounterStore(path)


class DictStateStore:
    """The shape of the executive's state store: get/set plus an explicit commit."""

    def __init__(self):
        self.data: dict = {}
        self.committed: dict = {}

    def get(self, key, default=None):
        return self.data.get(key, default)

    def set(self, key, value):
        self.data[key] = value

    def commit(self):
        self.committed = json.loads(json.dumps(self.data))


def test_state_store_adapter_commits_on_every_set():
    state = DictStateStore()
    counters = StateStoreCounters(state)
    assert counters.get(1) is None
    counters.set(1, 9)
    assert state.committed == {"link.arsn.1": 9}
    assert counters.get(1) == 9
    state.data["link.arsn.2"] = "nine"
    with pytest.raises(CounterStoreError):
        counters.get(2)


def test_state_store_adapter_raises_when_the_commit_failed_quietly():
    state = DictStateStore()
    state.last_commit_ok = False  # the executive's store logs disk errors instead of raising
    with pytest.raises(OSError, match="durable"):
        StateStoreCounters(state).set(1, 5)


def test_memory_counter_store():
    store = MemoryCounterStore({1: 3})
    assert store.get(1) == 3
    store.set(1, 4)
    assert store.values == {1: 4}
