"""Documentation generated from code stays in step with the code."""

from __future__ import annotations

from pathlib import Path

from flight.missions.mars.sim.harness import build_reference_software

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_mode_diagram_in_the_docs_is_the_machines_own(tmp_path: Path) -> None:
    fsw = build_reference_software(tmp_path)
    try:
        diagram = fsw.machine.mermaid()
    finally:
        fsw.close_devices()
    text = (DOCS / "modes.md").read_text()
    block = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert block == diagram, "docs/modes.md is stale: regenerate with `fsw dict --mermaid`"
