"""``fsw dict``: the flight software's command and telemetry dictionary.

The dictionary is built from the same components ``fsw run`` and ``fsw sim`` assemble (on simulated
hardware, in a throwaway state directory), so it can never drift from what flies. The ground
console loads its JSON (``fsw dict --json > dict.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser("dict", help="print the command/telemetry/event/parameter dictionary")
    parser.add_argument("--json", action="store_true", help="one JSON object (for the ground)")
    parser.add_argument(
        "--mermaid",
        action="store_true",
        help="the mode machine as a Mermaid state diagram (docs/modes.md)",
    )
    parser.add_argument("--out", type=Path, help="write to this file instead of stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flight.missions.mars.sim.harness import build_reference_software

    with tempfile.TemporaryDirectory(prefix="fsw-dict-") as tmp:
        fsw = build_reference_software(Path(tmp))
        try:
            data = fsw.dictionary.to_json_dict()
            diagram = fsw.machine.mermaid()
        finally:
            fsw.close_devices()
    if args.mermaid:
        text = diagram
    else:
        text = json.dumps(data, indent=2) + "\n" if args.json else _table(data)
    if args.out is not None:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _table(data: dict[str, Any]) -> str:
    lines: list[str] = []
    lines.append(f"COMMANDS ({len(data['commands'])})")
    for c in data["commands"]:
        args = ", ".join(
            f"{a['name']}:{a['type']}" + (f"[{a['units']}]" if a.get("units") else "")
            for a in c["args"]
        )
        flag = " HAZARDOUS" if c["hazardous"] else ""
        lines.append(f"  0x{c['opcode']:04X} {c['name']}({args}){flag}")
    lines.append(f"TELEMETRY CHANNELS ({len(data['telemetry'])})")
    for ch in data["telemetry"]:
        units = f" [{ch['units']}]" if ch.get("units") else ""
        lines.append(f"  0x{ch['id']:04X} {ch['name']}: {ch['type']}{units}")
    lines.append(f"PACKETS ({len(data['packets'])})")
    for p in data["packets"]:
        lines.append(f"  0x{p['id']:04X} {p['name']}: {', '.join(p['channels'])}")
    lines.append(f"EVENTS ({len(data['events'])})")
    for e in data["events"]:
        lines.append(f"  0x{e['id']:04X} {e['name']} {e['severity']}")
    lines.append(f"PARAMETERS ({len(data['parameters'])})")
    for prm in data["parameters"]:
        lines.append(f"  0x{prm['id']:04X} {prm['name']} = {prm['default']!r}")
    return "\n".join(lines) + "\n"
