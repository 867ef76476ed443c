"""Crash-safe file replacement.

:func:`atomic_write` writes the new content to a temporary file in the same directory, flushes and
fsyncs it, renames it over the target with :func:`os.replace` (atomic on POSIX within one file
system), then fsyncs the directory so the rename itself is on disk. After a power cut at any point
the target holds either its old or its new content. A crash can leave a temporary file behind;
its name is unique (it never collides with a later write) and :func:`remove_stale_temps` clears
such leftovers when their owner starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "read_bytes_or_none", "remove_stale_temps"]

log = logging.getLogger(__name__)

_TEMP_SUFFIX = ".tmp"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _fsync_directory(directory: Path) -> None:
    # Some file systems (and non-POSIX platforms) refuse to open or fsync a directory; the data
    # itself is already durable then, only the rename's durability is best effort.
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        log.debug("cannot open %s to fsync it: %s", directory, exc)
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        log.debug("cannot fsync directory %s: %s", directory, exc)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that readers never see a partial file.

    Args:
        path: the target; its directory must exist.
        data: the complete new content.
        mode: permission bits of the new file (default owner read/write only: state files may hold
            counters an attacker would like to roll back).

    Raises:
        OSError: the directory is missing or not writable, or the disk is full. The target is
            then unchanged and the temporary file removed.
    """
    path = Path(path)
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=_TEMP_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(directory)


def read_bytes_or_none(path: Path) -> bytes | None:
    """The file's content, or ``None`` if it does not exist.

    Raises:
        OSError: the file exists but cannot be read (permissions, a directory, an I/O error).
    """
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None


def remove_stale_temps(path: Path) -> int:
    """Delete temporary files a crashed :func:`atomic_write` of ``path`` left behind.

    Call it only when no other writer of ``path`` is active (at its owner's start-up): a temporary
    file being written concurrently would be removed from under its writer.

    Returns:
        How many files were removed. Files that cannot be removed are logged and skipped.
    """
    path = Path(path)
    removed = 0
    prefix = _temp_prefix(path)
    try:
        candidates = list(path.parent.iterdir())
    except OSError as exc:
        log.warning("cannot list %s for stale temporary files: %s", path.parent, exc)
        return 0
    for candidate in candidates:
        name = candidate.name
        if name.startswith(prefix) and name.endswith(_TEMP_SUFFIX):
            try:
                candidate.unlink()
            except OSError as exc:
                log.warning("cannot remove stale temporary file %s: %s", candidate, exc)
                continue
            removed += 1
    return removed
