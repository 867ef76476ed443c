"""Command-line options and Hypothesis profiles of the test suite.

pytest reads options only from the rootdir's conftest (and the initial ones), so they live here,
beside pyproject.toml; fsw_tests/bench uses them. The Hypothesis profile is loaded here too,
before any test module builds its ``@settings``, so every property test inherits it.
"""

from __future__ import annotations

import os

import pytest

try:
    from hypothesis import settings
except ImportError:  # a bench-only install (pytest -m bench) need not carry the dev extra
    pass
else:
    # No per-example deadline: speed is measured by fsw_tests/perf, never asserted in the suite,
    # and a slow example on a busy machine is not a failure.
    settings.register_profile("fsw", deadline=None, print_blob=True)
    # CI (CI set, as .ci/run and hosted runners do) draws the same examples every run, so a red
    # run means a change broke something, not that the draw was unlucky. Developers' runs keep
    # exploring; what they find is replayed from .hypothesis/ and belongs in an @example.
    settings.register_profile("ci", parent=settings.get_profile("fsw"), derandomize=True)
    settings.load_profile("ci" if os.environ.get("CI") else "fsw")


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
