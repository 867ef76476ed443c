"""Benchmarks of the flight software: ``python fsw_tests/perf/run.py [--quick] [--json PATH]``.

Not a test module (pytest does not collect it): it measures, prints a table and writes JSON with
one object per figure (name, value, unit, baseline measured in the same run, target as text and
number, meets_target). The exit status is 0 when every figure meets its target, 1 otherwise.
``--quick`` shortens every measurement so the whole run stays within two minutes.

Run one heavy benchmark at a time on a shared machine: the timing figures are sensitive to load.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fsw_tests.perf.archiveperf import archive_figures  # noqa: E402
from fsw_tests.perf.common import Figure, table  # noqa: E402
from fsw_tests.perf.flightloop import flight_figures  # noqa: E402
from fsw_tests.perf.footprint import footprint_figures  # noqa: E402
from fsw_tests.perf.linkperf import (  # noqa: E402
    command_latency_figures,
    link_efficiency_figure,
    telemetry_path_figure,
)
from fsw_tests.perf.timing import scheduler_figures  # noqa: E402


def _plan(quick: bool) -> list[tuple[str, Callable[[], list[Figure]]]]:
    sched_s = 5.0 if quick else 30.0
    tlm_s = 2.0 if quick else 5.0
    link_s = 5.0 if quick else 20.0
    commands = 40 if quick else 200
    rss_s = 10.0 if quick else 60.0
    archive_s = 2.0 if quick else 5.0
    return [
        ("scheduler timing", lambda: scheduler_figures(sched_s)),
        ("flight loop and simulator speed", flight_figures),
        ("telemetry path", lambda: [telemetry_path_figure(tlm_s)]),
        ("link efficiency 57600", lambda: [link_efficiency_figure(57600, link_s)]),
        ("link efficiency 115200", lambda: [link_efficiency_figure(115200, link_s)]),
        ("command latency", lambda: command_latency_figures(commands)),
        ("footprint", lambda: footprint_figures(rss_s)),
        ("archive", lambda: archive_figures(archive_s)),
    ]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (under two minutes)")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the simulated mission's warnings are not the point here
    figures: list[Figure] = []
    started = time.perf_counter()
    for title, measure in _plan(args.quick):
        t0 = time.perf_counter()
        print(f"... {title}", file=sys.stderr, flush=True)
        try:
            figures.extend(measure())
        except Exception as exc:  # one broken benchmark must not hide the others
            figures.append(
                Figure(title, math.nan, "", None, "ran", math.nan, False, f"failed: {exc!r}")
            )
        print(f"    {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    print(table(figures))
    print(
        f"\n{'quick' if args.quick else 'full'} run, {time.perf_counter() - started:.0f} s wall",
    )
    if args.json is not None:
        doc = {
            "quick": args.quick,
            "python": sys.version.split()[0],
            "figures": [_clean(f.to_json()) for f in figures],
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0 if all(f.meets_target for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
