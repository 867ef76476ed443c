"""The flight process the power-loss campaign kills: ``python flight_child.py STATE_DIR LOG SEED``.

It flies the Mars reference mission (:class:`MissionSim`) with its flight software's state in
``STATE_DIR``, and appends to ``LOG`` (O_APPEND, fsync'd line by line) what must never happen
twice or be forgotten:

- ``B <state> <previous> <recovered_from> <boot>``: what this boot restored;
- ``T <dest>``: a mode transition (after the machine committed it);
- ``O <name>``: a one-shot action about to run (after its flag was claimed);
- ``S <sequence> <run> <index>``: a stored-sequence entry about to be dispatched;
- ``U <sha256>``: an authenticated ground command about to be dispatched.

What is meaningful about a restart here: the simulated world restarts from launch with the
process (it lives in the same process), while the flight software resumes from its state dir.
So a restarted child checks resumption (mode, one-shots, sequences, anti-replay, archive), not
flying qualities; landing under faults and in-process reboots are category 4's job. The ground
restarts too, re-sending the frames it sent in the previous life with the same anti-replay
numbers: they must all be refused as replays.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import sys
from pathlib import Path
from typing import Any


def main() -> None:
    state_dir, log_path, seed = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    logging.disable(logging.CRITICAL)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def note(line: str) -> None:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)

    from flight.missions.mars.sim.harness import MissionSim, SimOptions
    from flight.modes import ModeMachine
    from flight.sequences import SequenceEngine

    fire_once = ModeMachine.fire_once

    def logged_fire_once(self: ModeMachine, shot: Any) -> bool:
        attempts = [0]

        def action() -> None:
            # Logged on the first attempt only: the machine's retries after a failed attempt
            # are the same firing, so a repeat in the log means a second life fired it again.
            if not attempts[0]:
                note(f"O {shot.name}")
            attempts[0] += 1
            shot.action()

        return fire_once(self, dataclasses.replace(shot, action=action))

    dispatch = SequenceEngine._dispatch

    def logged_dispatch(self: SequenceEngine, name: str, seq: Any, index: int, entry: Any) -> None:
        note(f"S {name} {self._status[name].run} {index}")
        dispatch(self, name, seq, index, entry)

    ModeMachine.fire_once = logged_fire_once  # type: ignore[method-assign]
    SequenceEngine._dispatch = logged_dispatch  # type: ignore[method-assign]

    # Each life's ground re-sends the previous life's frames, which must be refused. Sending
    # them again under new anti-replay numbers would be a new decision of the ground (the
    # spacecraft must obey it), not a repeat it could refuse: so this ground does not.
    options = SimOptions(seed=seed, progress=False, out=io.StringIO(), resend_unconfirmed=False)
    sim = MissionSim(options, state_dir)
    fsw = sim.fsw
    m = fsw.machine
    note(f"B {m.state} {m.previous} {fsw.store.recovered_from} {fsw.boot_count}")
    fsw.events.subscribe(
        lambda e: note(f"T {e.args.get('dest')}") if e.name == "mode.TRANSITION" else None
    )
    assert fsw.link is not None
    uplink = fsw.link.uplink
    deliver = uplink._on_command

    def logged_command(data: bytes) -> Any:
        note(f"U {hashlib.sha256(data).hexdigest()[:16]}")
        return deliver(data)

    uplink._on_command = logged_command
    sim.run()
    note("E")


if __name__ == "__main__":
    main()
