"""``fsw keygen``: make an uplink authentication key file.

The key is 32 random bytes from the operating system, written as 64 hex characters and a newline
with mode 0600, the format :func:`flight.link.sdls.load_key` accepts. The same file is installed on
the board (as key slot ``--slot``) and kept by the ground console; an existing file is never
overwritten without ``--force``, because it may be the only copy of a key already on board.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]


def _slot(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"slot {text!r} is not an integer") from exc
    if not 0 <= value <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"slot {value} outside 0..65535")
    return value


def register(sub: Any) -> None:
    parser = sub.add_parser("keygen", help="make an uplink authentication key file (mode 0600)")
    parser.add_argument("--out", type=Path, required=True, help="key file to write")
    parser.add_argument(
        "--slot", type=_slot, default=1, help="key slot (SPI) the key is meant for (default 1)"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing key file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flight.link.sdls import generate_key, write_key

    try:
        write_key(args.out, generate_key(), overwrite=args.force)
    except FileExistsError:
        sys.stderr.write(f"fsw keygen: {args.out} exists; use --force to replace it\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"fsw keygen: cannot write {args.out}: {exc.strerror or exc}\n")
        return 1
    sys.stdout.write(
        f"wrote a new key for slot {args.slot} to {args.out} (mode 0600); install the same file "
        f"on the board as key slot {args.slot} and keep it secret\n"
    )
    return 0
