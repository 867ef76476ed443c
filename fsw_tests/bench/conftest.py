"""Bench tests: the drivers against the real parts of a wired bench.

Run on the board, with the service stopped (deploy/README.md, "Bench tests")::

    pytest -m bench --bench-config /etc/fsw/fsw.toml

Tests marked ``bench`` skip unless ``--bench-config`` names a device map with at least one
``backend = "hardware"`` device, and each test skips when the bench lacks the part it needs, so a
half-built bench runs what it can. ``--bench-sim`` also counts simulated devices, which runs the
suite against the register models: a check of the suite itself, not of any hardware.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flight.clock import WallClock
from hal.assembly import Bench, build
from hal.devmap import Backend, DeviceMap, DeviceMapError, DeviceSpec, load_device_map

NO_CONFIG = "no --bench-config given: bench tests need real hardware (see deploy/README.md)"


def _no_hardware(path: str) -> str:
    return (
        f"no hardware devices in {path} (every device has backend = 'sim'): bench tests need "
        "real hardware (see deploy/README.md)"
    )


def _load(config: pytest.Config) -> tuple[DeviceMap | None, str | None]:
    """The bench map, or why bench tests cannot run. A broken map is an error, not a skip."""
    path = config.getoption("--bench-config")
    if not path:
        return None, NO_CONFIG
    try:
        devmap = load_device_map(Path(path))
    except DeviceMapError as exc:
        raise pytest.UsageError(f"--bench-config: {exc}") from exc
    usable = [d for d in devmap.devices if _counts(config, d)]
    if not usable:
        return devmap, _no_hardware(path)
    return devmap, None


def _counts(config: pytest.Config, spec: DeviceSpec) -> bool:
    return spec.backend is Backend.HARDWARE or bool(config.getoption("--bench-sim"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Only this directory's tests: other bench-marked tests (a wired UART loopback) have their own
    # conditions.
    here = Path(__file__).parent
    bench_items = [
        item
        for item in items
        if item.get_closest_marker("bench") is not None and item.path.is_relative_to(here)
    ]
    if not bench_items:
        return
    _devmap, reason = _load(config)
    if reason is not None:
        for item in bench_items:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def bench_map(pytestconfig: pytest.Config) -> DeviceMap:
    devmap, reason = _load(pytestconfig)
    if devmap is None or reason is not None:
        pytest.skip(reason or NO_CONFIG)
    return devmap


@pytest.fixture(scope="session")
def bench_config_path(pytestconfig: pytest.Config) -> Path:
    return Path(pytestconfig.getoption("--bench-config"))


@pytest.fixture
def bench(bench_map: DeviceMap) -> Iterator[Bench]:
    """The bench's devices, opened for one test and closed after it (a later test may start
    ``fsw run``, which must have the ports to itself)."""
    built = build(bench_map, clock=WallClock())
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def hardware(pytestconfig: pytest.Config, bench_map: DeviceMap) -> list[DeviceSpec]:
    """The devices under test: the hardware ones (and the simulated ones with --bench-sim)."""
    return [d for d in bench_map.devices if _counts(pytestconfig, d)]
