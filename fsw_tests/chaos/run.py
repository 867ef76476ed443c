"""The chaos campaign: ``python fsw_tests/chaos/run.py [--quick] [--json PATH] [--only NAMES]``.

Runs the categories (uplink fuzzing, replay/forgery, power loss, device faults, link noise and
outages, soak, the flight executive's own heap through a shorter soak, bad configuration), prints
their figures and writes them as JSON. Every figure whose name contains ``crash``,
``unauthenticated_executed``, ``lost`` or ``repeated`` is a failure count and must be 0; the exit
status is 1 if any is not.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fsw_tests.chaos import bad_config, mission_chaos, power_loss, uplink_fuzz
from fsw_tests.chaos.common import failures, quiet


def categories(quick: bool) -> dict[str, Callable[[], dict[str, Any]]]:
    """Category name -> a call running it at the quick or full size."""
    return {
        "uplink_fuzz": lambda: uplink_fuzz.fuzz_uplink(4000 if quick else 120_000),
        "replay_forgery": lambda: uplink_fuzz.replay_and_forgery(30 if quick else 500),
        "power_loss": lambda: power_loss.power_loss(
            20 if quick else 200, kills_per_life=10, first_kill_max_s=22.0
        ),
        "device_faults": lambda: mission_chaos.device_faults(
            (0.05,) if quick else (0.01, 0.05, 0.20)
        ),
        "link_noise": lambda: mission_chaos.link_noise(ber=2e-4),
        "link_outages": lambda: mission_chaos.link_outages(conjunction_days=3.0 if quick else 50.0),
        "soak": lambda: mission_chaos.soak(3.0 if quick else 30.0),
        "flight_heap": lambda: mission_chaos.soak(3.0 if quick else 6.0, trace_heap=True),
        "bad_config": lambda: bad_config.bad_config(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small campaign (a few minutes)")
    parser.add_argument("--json", type=Path, help="write all figures here")
    parser.add_argument("--only", help="comma-separated category names")
    args = parser.parse_args(argv)
    quiet()
    todo = categories(args.quick)
    if args.only:
        names = args.only.split(",")
        unknown = set(names) - set(todo)
        if unknown:
            parser.error(f"unknown categories {sorted(unknown)}; known: {', '.join(todo)}")
        todo = {name: todo[name] for name in names}
    results: dict[str, Any] = {"quick": args.quick, "categories": {}}
    failed: dict[str, Any] = {}
    for name, run in todo.items():
        t0 = time.perf_counter()
        try:
            figures = run()
        except Exception as exc:
            figures = {"campaign_crash": 1, "error": repr(exc)}
        figures["category_wall_s"] = round(time.perf_counter() - t0, 1)
        results["categories"][name] = figures
        bad = failures(figures)
        if bad:
            failed[name] = bad
        print(f"== {name} ({figures['category_wall_s']} s){'  FAILED ' + str(bad) if bad else ''}")
        print(json.dumps(figures, indent=2, default=str), flush=True)
    results["failures"] = failed
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    print("chaos campaign:", "FAILED " + json.dumps(failed) if failed else "all failure counts 0")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
