"""``fsw sim``: fly the reference Mars mission end to end on simulated hardware.

The main job of the project: cruise, orbit insertion, entry/descent/landing and surface
operations, closed loop, faster than real time. See :mod:`flight.missions.mars.sim.harness`.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["register"]

_MODES = ("CRUISE", "MOI", "EDL", "SURFACE")


def register(sub: Any) -> None:
    from flight.missions.mars.sim.harness import FAULTS

    p = sub.add_parser("sim", help="fly the Mars reference mission in a closed-loop simulation")
    p.add_argument("--seed", type=int, default=0, help="noise seed (same seed, same flight)")
    p.add_argument("--until", choices=_MODES, help="stop once this mode is reached")
    p.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="spacecraft seconds per wall second (0: as fast as possible)",
    )
    p.add_argument(
        "--fault", action="append", default=[], choices=FAULTS, help="inject a fault (repeatable)"
    )
    p.add_argument("--report", type=Path, help="write a JSON report here")
    p.add_argument("--plot", type=Path, help="write a PNG of the EDL profile (needs matplotlib)")
    p.add_argument("--record-downlink", type=Path, help="write the raw downlink byte stream here")
    p.add_argument("--state-dir", type=Path, help="keep the flight software's state here")
    p.add_argument(
        "--link-tcp",
        type=int,
        metavar="PORT",
        help="serve the link on 127.0.0.1:PORT for fsw ground (no scripted ground; "
        "use with --speed 1)",
    )
    p.add_argument("--quiet", action="store_true", help="no timeline, no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flight.missions.mars.sim.harness import to_jsonable

    if args.speed < 0:
        print("fsw sim: --speed must be >= 0", file=sys.stderr)
        return 2
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("fsw sim: --plot needs matplotlib (pip install 'fsw[plot]')", file=sys.stderr)
            return 2
    flight_log = logging.getLogger("flight")
    saved_level = flight_log.level
    if not args.verbose:
        # The timeline shows every event worth reading; the same events as log lines would
        # interleave with it.
        flight_log.setLevel(logging.ERROR)
    try:
        report = _fly(args)
    finally:
        flight_log.setLevel(saved_level)  # in-process callers (tests) keep their logging
    if args.report is not None:
        args.report.write_text(json.dumps(to_jsonable(report), indent=2) + "\n")
    _summary(report)
    landed = report["final_state"].startswith("SURFACE")
    wanted = args.until is None or report["final_state"].startswith(args.until)
    return 0 if (landed or args.until) and wanted else 1


def _fly(args: argparse.Namespace) -> dict[str, Any]:
    from flight.missions.mars.sim.harness import MissionSim, SimOptions

    with tempfile.TemporaryDirectory(prefix="fsw-sim-") as tmp:
        state_dir = args.state_dir or Path(tmp)
        options = SimOptions(
            seed=args.seed,
            until=args.until,
            speed=args.speed,
            faults=tuple(args.fault),
            record_downlink=args.record_downlink,
            link_tcp=args.link_tcp,
            progress=not args.quiet and sys.stderr.isatty(),
            out=io.StringIO() if args.quiet else sys.stdout,
        )
        sim = MissionSim(options, state_dir)
        report = sim.run()
        if args.plot is not None:
            from flight.missions.mars.sim.plot import plot_edl

            plot_edl(sim.world.history, sim.timeline, args.plot)
    return report


def _summary(report: dict[str, Any]) -> None:
    td, edl, cmd = report["touchdown"], report["edl"], report["commands"]
    print()
    print(f"final state      {report['final_state']}")
    if td["truth_vertical_mps"] is not None:
        print(
            f"touchdown        {td['truth_vertical_mps']:.2f} m/s vertical, "
            f"{td['truth_horizontal_mps']:.2f} m/s horizontal (truth); onboard estimate "
            f"{td['flight_vertical_estimate_mps']:.2f} m/s"
        )
    if edl["truth_duration_s"] is not None:
        flight = edl["flight_duration_s"]
        print(
            f"EDL              {edl['truth_duration_s'] / 60:.1f} min entry to touchdown "
            f"(truth); {flight / 60 if flight else float('nan'):.1f} min onboard"
        )
        print(
            f"peak decel       {edl['truth_peak_deceleration_g']:.1f} g (truth), "
            f"{edl['flight_peak_sensed_g']:.1f} g sensed"
        )
    print(
        f"commands         {cmd['sent']} uplinked; {cmd['responses']} responses received "
        f"(stored-sequence commands included): {cmd['accepted']} OK, {cmd['rejected']} rejected"
    )
    print(f"wall clock       {report['wall_clock_s']:.1f} s")
