"""Events raised while the flight software is still being built reach the archive too."""

from __future__ import annotations

from pathlib import Path

from flight.messages import MessageKind
from flight.missions.mars.sim.harness import build_reference_software


def test_a_recovered_state_file_is_reported_in_the_archive(tmp_path: Path) -> None:
    (tmp_path / "state.cbor").write_bytes(b"\xff not a state file")
    fsw = build_reference_software(tmp_path)
    try:
        ids = {spec.id for spec in fsw.dictionary.events if spec.name == "state.RECOVERED"}
        archived = [m for m in fsw.archive.read() if m.kind is MessageKind.EVENT]
        assert ids and any(m.id in ids for m in archived)
    finally:
        fsw.close_devices()
