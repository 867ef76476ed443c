"""The ``fsw`` command: one entry point, one module per subcommand.

Each module in :data:`SUBCOMMANDS` exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a function taking the parsed arguments and returning the exit status. Modules are
imported only when listed here, so ``fsw --help`` stays fast and a missing optional extra
(matplotlib for ``--plot``) only matters to the subcommand that needs it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]

#: Subcommand modules, in the order ``fsw --help`` lists them.
SUBCOMMANDS: tuple[str, ...] = (
    "flight.cli.run",
    "flight.cli.sim",
    "flight.cli.bench",
    "flight.cli.dict",
    "flight.cli.keygen",
    "flight.cli.ground",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fsw", description="Flight software framework and Mars reference mission."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        status: int = func(args)
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
