"""The spacecraft's persistent state: a small dictionary that survives reboots and power cuts.

What goes here is what the vehicle must remember across a reset: the mode and phase, counters,
one-shot flags ("parachute fired"), sequence progress, the uplink anti-replay counter. Values are
anything :mod:`flight.codec` can carry; keys are strings.

On disk (``state.cbor``) the content is the canonical CBOR of
``{"v": 1, "crc": crc32(cbor(data)), "data": {...}}``, written with
:func:`~flight.persistence.atomic.atomic_write`. The previous committed version is kept beside it
(``state.prev``), so even a primary file that an SD card corrupted after it was written leaves
the vehicle one commit behind rather than amnesiac. Loading tries the primary, then the backup,
then starts empty, and says which in :attr:`StateStore.recovered_from`; bad content never raises.
A corrupt primary is kept as ``state.corrupt`` for the ground to inspect.

Commit order: the old primary is renamed to the backup, then the new primary is written
atomically. A crash between the two leaves no primary and the last committed state in the backup;
a crash before or after leaves a complete primary. Either way :meth:`StateStore.load` finds the
last or the previous committed state, never a mixture.

Disk errors on commit (full, read-only, I/O error) are logged and counted, not raised: a flight
computer with a failing SD card must keep flying on its in-memory state. Callers that need to
know check :attr:`StateStore.last_commit_ok`.
"""

from __future__ import annotations

import copy
import logging
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from flight import codec
from flight.events import EventLog, EventSpec, Severity
from flight.persistence.atomic import atomic_write, remove_stale_temps

__all__ = ["FORMAT_VERSION", "StateStore"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: Largest state file accepted (stored sequences are the bulk of it).
MAX_STATE_BYTES = 2 * 1024 * 1024

Recovery = Literal["primary", "backup", "empty"]

EV_RECOVERED = EventSpec(
    0x0730,
    "state.RECOVERED",
    Severity.WARNING_HI,
    "state store loaded from {source}: {detail}",
    description="The primary state file was missing or corrupt; state came from the backup or "
    "started empty.",
)
EV_COMMIT_FAILED = EventSpec(
    0x0731,
    "state.COMMIT_FAILED",
    Severity.WARNING_HI,
    "state commit to {path} failed: {error}",
    throttle=10,
    description="The state could not be written; the vehicle runs on in-memory state.",
)


class StateCorruptError(ValueError):
    """A state file that exists but cannot be used (bad CBOR, CRC mismatch, wrong shape)."""


def _pack(data: dict[str, Any]) -> bytes:
    body = codec.encode(data)
    return codec.encode({"v": FORMAT_VERSION, "crc": zlib.crc32(body), "data": data})


def _unpack(raw: bytes) -> dict[str, Any]:
    """Raises: StateCorruptError: anything that is not a valid state file."""
    try:
        outer = codec.decode(raw, max_bytes=MAX_STATE_BYTES)
    except codec.CodecError as exc:
        raise StateCorruptError(f"undecodable: {exc}") from exc
    if not isinstance(outer, dict) or set(outer) != {"v", "crc", "data"}:
        raise StateCorruptError("not a state file (expected keys v, crc, data)")
    if outer["v"] != FORMAT_VERSION:
        raise StateCorruptError(f"format version {outer['v']!r}, expected {FORMAT_VERSION}")
    data = outer["data"]
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise StateCorruptError("data is not a map with string keys")
    crc = zlib.crc32(codec.encode(data))
    if outer["crc"] != crc:
        raise StateCorruptError(f"CRC mismatch (stored {outer['crc']!r}, computed {crc})")
    return data


class StateStore:
    """A crash-safe key/value store; loads itself on construction.

    Args:
        path: the primary file; the backup is ``path.with_suffix(".prev")``. Its directory must
            exist.
        events: if given, recovery and commit failures are also raised as events.
    """

    def __init__(self, path: Path, *, events: EventLog | None = None) -> None:
        self.path = Path(path)
        self.backup_path = self.path.with_suffix(".prev")
        self.corrupt_path = self.path.with_suffix(".corrupt")
        self._events = events
        self._data: dict[str, Any] = {}
        self._dirty = False
        self._last_good: bytes | None = None
        self._primary_is_last_good = False
        self._backup_is_last_good = False
        self.recovered_from: Recovery = "empty"
        self.load_detail = ""
        self.commits = 0
        self.commit_failures = 0
        self.last_commit_ok = True
        self.last_error = ""
        self.load()

    # -- loading ----------------------------------------------------------------------------

    def load(self) -> Recovery:
        """(Re)read the files, dropping uncommitted changes; returns :attr:`recovered_from`.

        Never raises on bad or unreadable content: the primary, then the backup, then an empty
        store is used, and :attr:`load_detail` says what was wrong.
        """
        for stale_of in (self.path, self.backup_path):
            remove_stale_temps(stale_of)
        problems: list[str] = []
        self._data, self._last_good, self._dirty = {}, None, False
        self._primary_is_last_good = self._backup_is_last_good = False
        self.recovered_from = "empty"
        for source, file in (("primary", self.path), ("backup", self.backup_path)):
            raw = self._read(file, problems)
            if raw is None:
                continue
            try:
                data = _unpack(raw)
            except StateCorruptError as exc:
                problems.append(f"{file.name}: {exc}")
                if source == "primary":
                    self._quarantine()
                continue
            self._data, self._last_good = data, raw
            self.recovered_from = "primary" if source == "primary" else "backup"
            self._primary_is_last_good = source == "primary"
            self._backup_is_last_good = source == "backup"
            break
        self.load_detail = "; ".join(problems)
        # A first boot (no files at all) is normal; anything else that bypassed the primary is not.
        first_boot = (
            all(p.endswith(": missing") for p in problems) and self.recovered_from == "empty"
        )
        if self.recovered_from != "primary" and not first_boot:
            log.warning(
                "state store %s: %s, using %s", self.path, self.load_detail, self.recovered_from
            )
            if self._events is not None:
                self._events.emit(EV_RECOVERED, source=self.recovered_from, detail=self.load_detail)
        return self.recovered_from

    @staticmethod
    def _read(file: Path, problems: list[str]) -> bytes | None:
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            problems.append(f"{file.name}: missing")
            return None
        except OSError as exc:
            problems.append(f"{file.name}: unreadable ({exc})")
            return None
        if len(raw) > MAX_STATE_BYTES:
            problems.append(f"{file.name}: {len(raw)} bytes, larger than {MAX_STATE_BYTES}")
            return None
        return raw

    def _quarantine(self) -> None:
        try:
            os.replace(self.path, self.corrupt_path)
        except OSError as exc:
            log.warning("cannot move corrupt %s aside: %s", self.path, exc)

    # -- values -----------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The value (a private copy: changing it does not change the store), or ``default``."""
        if key not in self._data:
            return default
        return copy.deepcopy(self._data[key])

    def set(self, key: str, value: Any) -> None:
        """Change a value in memory; :meth:`commit` makes it durable.

        Raises:
            TypeError: the key is not a string.
            flight.codec.CodecError: the value is not CBOR-encodable (a ValueError).
        """
        if not isinstance(key, str):
            raise TypeError(f"state keys are strings, got {type(key).__name__}")
        encoded = codec.encode(value)  # refuse now, where the bug is, not at the next commit
        if key in self._data and codec.encode(self._data[key]) == encoded:
            return  # unchanged: no commit needed (1 and 1.0 encode differently, so compare bytes)
        # Store the decoded form: a tuple comes back as a list now, as it will after a reboot.
        self._data[key] = codec.decode(encoded, max_bytes=MAX_STATE_BYTES)
        self._dirty = True

    def delete(self, key: str) -> None:
        """Remove a key (no error if absent); :meth:`commit` makes it durable."""
        if key in self._data:
            del self._data[key]
            self._dirty = True

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    @property
    def dirty(self) -> bool:
        """True if there are changes not yet committed."""
        return self._dirty

    # -- durability -------------------------------------------------------------------------

    def commit(self) -> None:
        """Write the current values to disk if anything changed since the last commit.

        Never raises on disk errors: they are logged, counted in :attr:`commit_failures`, raised
        as an event if the store has an event log, and :attr:`last_commit_ok` turns False. The
        changes stay pending and the next commit tries again.
        """
        if not self._dirty:
            return
        new = _pack(self._data)
        try:
            if self._primary_is_last_good:
                self._primary_is_last_good = False
                os.replace(self.path, self.backup_path)
                self._backup_is_last_good = True
            elif self._last_good is not None and not self._backup_is_last_good:
                atomic_write(self.backup_path, self._last_good)
                self._backup_is_last_good = True
            atomic_write(self.path, new)
        except OSError as exc:
            self.commit_failures += 1
            self.last_commit_ok = False
            self.last_error = str(exc)
            log.error("state commit to %s failed: %s", self.path, exc)
            if self._events is not None:
                self._events.emit(EV_COMMIT_FAILED, path=str(self.path), error=str(exc))
            return
        self._last_good = new
        self._primary_is_last_good = True
        self._backup_is_last_good = False
        self._dirty = False
        self.commits += 1
        self.last_commit_ok = True

    def set_durably(self, key: str, value: Any) -> None:
        """Set ``key`` and commit at once: for a command whose effect must not start unless it
        will survive a reboot (a retired key slot, a monitor switched off by the ground).

        Raises:
            OSError: the commit failed. ``key`` then keeps its old value in memory too, so no
                later commit makes durable a change its caller was told had failed; other
                changes waiting to be committed stay waiting, as after any failed commit.
            TypeError, flight.codec.CodecError: as :meth:`set`.
        """
        missing = key not in self._data
        old = self._data.get(key)
        self.set(key, value)
        self.commit()
        if not self.last_commit_ok:
            if missing:
                self._data.pop(key, None)
            else:
                self._data[key] = old
            raise OSError(f"state store commit failed: {self.last_error}")

    def set_flag_once(self, key: str) -> bool:
        """Claim a one-shot action: True the first time (the flag is committed first), else False.

        The flag is on disk before this returns True, so a crash right after the action fires
        cannot make it fire again after the reboot. If the commit fails (disk error) this still
        returns True and the flag holds in memory: refusing to deploy a parachute because an SD
        card failed would be the worse outcome. That case is logged and counted.
        """
        if self._data.get(key):
            return False
        self.set(key, True)
        self.commit()
        if not self.last_commit_ok:
            log.error("one-shot %s claimed without a durable record: %s", key, self.last_error)
        return True

    def events(self) -> list[EventSpec]:
        return [EV_RECOVERED, EV_COMMIT_FAILED]
