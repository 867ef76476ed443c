"""Command-line options of the test suite. pytest reads options only from the rootdir's conftest
(and the initial ones), so they live here, beside pyproject.toml; fsw_tests/bench uses them."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fsw bench", "tests on real hardware (fsw_tests/bench)")
    group.addoption(
        "--bench-config",
        metavar="FILE",
        default=None,
        help="device map of a wired bench (e.g. /etc/fsw/fsw.toml); run with -m bench",
    )
    group.addoption(
        "--bench-sim",
        action="store_true",
        default=False,
        help="also run bench tests on backend='sim' devices (checks the bench suite itself)",
    )
