"""Command authentication in the style of CCSDS SDLS (355.0-B), authentication-only mode.

The data field of every TC frame is::

    security header   SPI (2 bytes, the key slot) + anti-replay sequence number (4 bytes)
    data              one command space packet
    security trailer  MAC: HMAC-SHA-256, truncated to 16 bytes, over
                      TC primary header (5 bytes) + security header + data

The receiver (:class:`~flight.link.uplink.UplinkProcessor`) checks, in this order: frame length and
CRC, then the SPI names an enabled key, then the MAC (constant-time comparison) *before* anything in
the data is decoded, then the anti-replay sequence number (ARSN) is strictly greater than the last
one accepted under that SPI. The new ARSN is committed to durable storage before the command is
handed on, so a crash between the two can lose a command but never allow a replay. When an SPI's
ARSN reaches 2**32 - 1 no further frame can be accepted under it: switch to a new key slot.

Key files hold 64 hexadecimal characters (32 bytes) and an optional trailing newline, nothing else.
Text was chosen over raw bytes so a key can be checked for truncation by eye and copied through
provisioning tools that mangle binary; ``fsw keygen`` writes exactly this format. A key file whose
mode grants any group or other permission is refused: a key readable by other users is already
compromised. Keys never appear in a ``repr``, a log line, an event or telemetry.

Exceptions::

    SecurityError(ValueError)           a frame failed a security check
    ├── UnknownSpiError                 SPI not loaded, or loaded but disabled
    └── AuthenticationError             MAC mismatch, or too short to carry one
    KeyFileError(ValueError)            a key file of the wrong format
    └── KeyPermissionError(KeyFileError, PermissionError)
                                        group/other bits set, or not a regular file
    CounterStoreError(ValueError)       a persisted counter file is unreadable or corrupt
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from flight.persistence.atomic import atomic_write, read_bytes_or_none

__all__ = [
    "ARSN_LEN",
    "KEY_LEN",
    "MAC_LEN",
    "MAX_ARSN",
    "SECURITY_HEADER_LEN",
    "AuthenticationError",
    "CounterStore",
    "CounterStoreError",
    "FileCounterStore",
    "KeyFileError",
    "KeyPermissionError",
    "KeyRing",
    "MemoryCounterStore",
    "SecuredData",
    "SecurityError",
    "StateStoreCounters",
    "UnknownSpiError",
    "compute_mac",
    "generate_key",
    "load_key",
    "protect",
    "write_key",
]

log = logging.getLogger(__name__)

SPI_LEN = 2
ARSN_LEN = 4
SECURITY_HEADER_LEN = SPI_LEN + ARSN_LEN
MAC_LEN = 16
KEY_LEN = 32
MAX_SPI = 0xFFFF
MAX_ARSN = 2**32 - 1
_KEY_FILE_MAX = 2 * KEY_LEN + 2


class SecurityError(ValueError):
    """A frame failed an authentication or anti-replay check."""


class UnknownSpiError(SecurityError):
    """The SPI names no key, or a key slot that is disabled."""


class AuthenticationError(SecurityError):
    """The MAC does not match (or the data field is too short to hold one)."""


class KeyFileError(ValueError):
    """A key file that is missing, unreadable or not 64 hex characters."""


class KeyPermissionError(KeyFileError, PermissionError):
    """A key file readable or writable by group or others, or not a regular file."""


class CounterStoreError(ValueError):
    """A persisted anti-replay counter file is unreadable or corrupt."""


# ----------------------------------------------------------------------------------------------
# Keys


def generate_key() -> bytes:
    """A fresh random key from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_LEN)


def _parse_key(text: bytes, where: str) -> bytes:
    body = text[:-1] if text.endswith(b"\n") else text
    if len(body) != 2 * KEY_LEN:
        raise KeyFileError(f"{where}: expected {2 * KEY_LEN} hex characters and a newline")
    try:
        return bytes.fromhex(body.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise KeyFileError(f"{where}: not hexadecimal") from exc


def load_key(path: str | os.PathLike[str]) -> bytes:
    """Read a 32-byte key from a key file (format in the module docstring).

    The mode is checked on the opened file itself, so the file cannot be swapped between the check
    and the read.

    Raises:
        KeyPermissionError: the file grants group/other permissions or is not a regular file.
        KeyFileError: missing, unreadable, or not 64 hex characters plus an optional newline.
    """
    where = f"key file {os.fspath(path)}"
    try:
        # Non-blocking so a FIFO planted at the path cannot hang start-up.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise KeyFileError(f"{where}: cannot open ({exc.strerror or exc})") from exc
    try:
        st = os.fstat(fd)
        text = os.read(fd, _KEY_FILE_MAX + 1) if stat.S_ISREG(st.st_mode) else b""
    except OSError as exc:
        raise KeyFileError(f"{where}: cannot read ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        raise KeyPermissionError(f"{where}: not a regular file")
    if st.st_mode & 0o077:
        raise KeyPermissionError(
            f"{where}: mode {stat.S_IMODE(st.st_mode):04o} lets group/others access it; "
            "run chmod 600 on it (and consider the key compromised)"
        )
    return _parse_key(text, where)


def write_key(path: str | os.PathLike[str], key: bytes, *, overwrite: bool = False) -> None:
    """Write ``key`` in the key file format with mode 0600.

    Without ``overwrite`` the file is created exclusively, so an existing key (perhaps the only
    copy of a key already on board) is never destroyed by accident; with it the old file is
    replaced atomically.

    Raises:
        ValueError: ``key`` is not 32 bytes.
        FileExistsError: the file exists and ``overwrite`` is false.
        OSError: the directory is missing or not writable.
    """
    if len(key) != KEY_LEN:
        raise ValueError(f"a key is {KEY_LEN} bytes, not {len(key)}")
    content = key.hex().encode("ascii") + b"\n"
    if overwrite:
        atomic_write(Path(path), content, mode=0o600)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask may only remove bits; make the mode exact regardless
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)


class KeyRing:
    """Key slots (SPIs) and which of them the uplink currently accepts.

    The ground chooses the SPI of each frame; the key ring only says whether that SPI is loaded and
    enabled. Switching keys is therefore: load the new key into a free slot, enable it, send with
    it, then disable the old slot (``link.KEY_SLOT_SET`` does the last two in one step).

    Raises (on construction):
        ValueError: a key of the wrong length, an SPI out of range, or an enabled slot with no key.
    """

    def __init__(
        self, keys: Mapping[int, bytes] | None = None, *, enabled: Iterable[int] | None = None
    ) -> None:
        self._keys: dict[int, bytes] = {}
        self._enabled: set[int] = set()
        for spi, key in (keys or {}).items():
            self.add(spi, key, enabled=enabled is None)
        for spi in enabled or ():
            self.enable(spi)

    @staticmethod
    def _check_spi(spi: int) -> None:
        if isinstance(spi, bool) or not isinstance(spi, int) or not 0 <= spi <= MAX_SPI:
            raise ValueError(f"SPI {spi!r} outside 0..{MAX_SPI}")

    def add(self, spi: int, key: bytes, *, enabled: bool = True) -> None:
        """Load ``key`` into slot ``spi`` (replacing what was there).

        Raises:
            ValueError: SPI out of range or a key that is not 32 bytes.
        """
        self._check_spi(spi)
        if not isinstance(key, bytes) or len(key) != KEY_LEN:
            raise ValueError(f"slot {spi}: a key is {KEY_LEN} bytes")
        self._keys[spi] = key
        if enabled:
            self._enabled.add(spi)

    def load(self, spi: int, path: str | os.PathLike[str], *, enabled: bool = True) -> None:
        """Load slot ``spi`` from a key file.

        Raises:
            KeyFileError, KeyPermissionError: see :func:`load_key`.
        """
        self.add(spi, load_key(path), enabled=enabled)

    @property
    def slots(self) -> tuple[int, ...]:
        """The SPIs that hold a key, enabled or not."""
        return tuple(sorted(self._keys))

    @property
    def enabled(self) -> tuple[int, ...]:
        return tuple(sorted(self._enabled))

    def enable(self, spi: int) -> None:
        """Raises: UnknownSpiError: the slot holds no key."""
        if spi not in self._keys:
            raise UnknownSpiError(f"key slot {spi} holds no key")
        self._enabled.add(spi)

    def disable(self, spi: int) -> None:
        self._enabled.discard(spi)

    def set_active(self, spi: int) -> None:
        """Enable ``spi`` and disable every other slot.

        Raises:
            UnknownSpiError: the slot holds no key (nothing changes).
        """
        self.enable(spi)
        self._enabled = {spi}

    def key(self, spi: int) -> bytes:
        """The key of an enabled slot.

        Raises:
            UnknownSpiError: not loaded, or disabled.
        """
        if spi not in self._enabled:
            raise UnknownSpiError(f"SPI {spi} is not an enabled key slot")
        return self._keys[spi]

    def __repr__(self) -> str:
        return f"KeyRing(slots={list(self.slots)}, enabled={list(self.enabled)})"


# ----------------------------------------------------------------------------------------------
# Frames


def compute_mac(key: bytes, tc_header: bytes, security_header: bytes, data: bytes) -> bytes:
    """The truncated HMAC-SHA-256 over the header, security header and data."""
    return hmac.new(key, tc_header + security_header + data, hashlib.sha256).digest()[:MAC_LEN]


def protect(*, key: bytes, spi: int, arsn: int, tc_header: bytes, data: bytes) -> bytes:
    """The frame data field for ``data``: security header, data, MAC.

    ``tc_header`` must be the header of the frame this data field goes into (its length field
    already counting the security header and trailer).

    Raises:
        ValueError: SPI or ARSN out of range.
    """
    if not 0 <= spi <= MAX_SPI:
        raise ValueError(f"SPI {spi} outside 0..{MAX_SPI}")
    if not 0 <= arsn <= MAX_ARSN:
        raise ValueError(f"ARSN {arsn} outside 0..{MAX_ARSN}")
    sec = spi.to_bytes(SPI_LEN, "big") + arsn.to_bytes(ARSN_LEN, "big")
    return sec + data + compute_mac(key, tc_header, sec, data)


class SecuredData:
    """A frame data field split into its parts; nothing in ``data`` is trusted yet."""

    __slots__ = ("arsn", "data", "mac", "security_header", "spi")

    def __init__(self, field: bytes) -> None:
        """Raises: AuthenticationError: too short to hold a header, one data byte and a MAC."""
        if len(field) < SECURITY_HEADER_LEN + 1 + MAC_LEN:
            raise AuthenticationError(f"data field of {len(field)} bytes cannot hold a MAC")
        self.security_header = field[:SECURITY_HEADER_LEN]
        self.spi = int.from_bytes(field[:SPI_LEN], "big")
        self.arsn = int.from_bytes(field[SPI_LEN:SECURITY_HEADER_LEN], "big")
        self.data = field[SECURITY_HEADER_LEN:-MAC_LEN]
        self.mac = field[-MAC_LEN:]

    def verify(self, key: bytes, tc_header: bytes) -> None:
        """Raises: AuthenticationError: the MAC does not match (constant-time comparison)."""
        expected = compute_mac(key, tc_header, self.security_header, self.data)
        if not hmac.compare_digest(expected, self.mac):
            raise AuthenticationError(f"MAC mismatch under SPI {self.spi}")


# ----------------------------------------------------------------------------------------------
# Anti-replay counters


class CounterStore(Protocol):
    """Durable storage of the last accepted ARSN per SPI.

    ``set`` must not return before the value would survive a power cut; it may raise ``OSError``.
    """

    def get(self, spi: int) -> int | None: ...

    def set(self, spi: int, value: int) -> None: ...


class MemoryCounterStore:
    """Counters in memory, for tests and for simulations that need no persistence."""

    def __init__(self, initial: Mapping[int, int] | None = None) -> None:
        self.values: dict[int, int] = dict(initial or {})

    def get(self, spi: int) -> int | None:
        return self.values.get(spi)

    def set(self, spi: int, value: int) -> None:
        self.values[spi] = value


class FileCounterStore:
    """Counters in a small JSON file, rewritten atomically on every change (mode 0600).

    Used by the ground's command encoder and by boards without a state store.

    Raises (on construction):
        CounterStoreError: the file exists but is unreadable or not a map of SPI to counter. A
            corrupt counter file is never silently reset: that would re-open the replay window.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._values: dict[int, int] = {}
        try:
            raw = read_bytes_or_none(self._path)
        except OSError as exc:
            raise CounterStoreError(f"counter file {self._path}: {exc}") from exc
        if raw is not None:
            self._values = self._parse(raw)

    def _parse(self, raw: bytes) -> dict[int, int]:
        try:
            doc: Any = json.loads(raw)
            values = {int(k): v for k, v in doc.items()}
        except (ValueError, AttributeError, TypeError) as exc:
            raise CounterStoreError(f"counter file {self._path} is corrupt: {exc}") from exc
        for spi, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise CounterStoreError(f"counter file {self._path}: SPI {spi} value {value!r}")
            if not 0 <= spi <= MAX_SPI or not 0 <= value <= MAX_ARSN:
                raise CounterStoreError(f"counter file {self._path}: SPI {spi} out of range")
        return values

    def get(self, spi: int) -> int | None:
        return self._values.get(spi)

    def set(self, spi: int, value: int) -> None:
        new = dict(self._values)
        new[spi] = value
        text = json.dumps({str(k): v for k, v in sorted(new.items())}) + "\n"
        atomic_write(self._path, text.encode("ascii"), mode=0o600)
        self._values = new


class _KeyValueStore(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def commit(self) -> None: ...


class StateStoreCounters:
    """Adapts a key-value state store (``get(key, default)``, ``set(key, value)``, ``commit()``,
    such as the executive's state store) to :class:`CounterStore`: one key per SPI, committed on
    every set so the counter is durable before the command runs."""

    def __init__(self, store: _KeyValueStore, *, prefix: str = "link.arsn.") -> None:
        self._store = store
        self._prefix = prefix

    def get(self, spi: int) -> int | None:
        value = self._store.get(f"{self._prefix}{spi}", None)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            # Refusing every frame is safer than guessing a counter: the ground can rekey.
            raise CounterStoreError(f"stored ARSN for SPI {spi} is {value!r}, not an int")
        return value

    def set(self, spi: int, value: int) -> None:
        """Raises: OSError: the commit did not reach the disk (a store that reports failure
        through ``last_commit_ok`` instead of raising is checked too)."""
        self._store.set(f"{self._prefix}{spi}", value)
        self._store.commit()
        if getattr(self._store, "last_commit_ok", True) is False:
            raise OSError(f"anti-replay counter for SPI {spi} could not be made durable")
