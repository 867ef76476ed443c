"""Only flight/clock.py may sleep or read wall time: everything else asks an injected clock, which
is what makes simulated time (fast, deterministic runs) possible."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {"sleep", "time", "monotonic", "perf_counter", "monotonic_ns", "time_ns"}


def _wall_time_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "time":
            found += [f"from time import {a.name}" for a in node.names if a.name in FORBIDDEN]
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "time"
            and node.attr in FORBIDDEN
        ):
            found.append(f"time.{node.attr} (line {node.lineno})")
    return found


def test_nothing_but_the_clock_module_reads_wall_time() -> None:
    offenders = {}
    for package in ("hal", "flight"):
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel == "flight/clock.py":
                continue
            calls = _wall_time_calls(path)
            if calls:
                offenders[rel] = calls
    assert offenders == {}
    assert _wall_time_calls(REPO / "flight" / "clock.py")  # the scan does see such calls
