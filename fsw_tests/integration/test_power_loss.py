"""Kill the writer at random moments: the archive and the state store must come back intact.

A child process appends numbered records to an :class:`Archive` and commits the number of the
last one to a :class:`StateStore`, as fast as it can, resuming after the last record it finds. The
test SIGKILLs it at many seeded-random moments (during start-up and recovery, mid-append,
mid-commit, mid-rotation) and after each kill reopens both: every record 0..N-1 must be there
exactly once and in order, and the stored counter must be the last record or the one before it
(the kill can land between the append and the commit). SIGKILL loses nothing the OS was given,
so no record that was appended may be missing.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from flight.clock import SimClock
from flight.persistence.archive import Archive
from flight.persistence.state import StateStore

ROOT = Path(__file__).resolve().parents[2]
SEGMENT_BYTES = 2048  # small, so kills also land around rotations

CHILD = f"""
import sys
from pathlib import Path
from flight.clock import WallClock
from flight.messages import Message, MessageKind
from flight.persistence.archive import Archive
from flight.persistence.state import StateStore

directory = Path(sys.argv[1])
clock = WallClock()
archive = Archive(directory / "arch", now=clock.monotonic, segment_bytes={SEGMENT_BYTES},
                  max_segments=100000, sync_every=None, sync_interval_s=None)
store = StateStore(directory / "state.cbor")
last = -1
for _, msg in archive.read_since(None):
    last = msg.body["n"]
if last >= 0:
    # Make the stored counter match the archive again (a kill may have cut the last commit),
    # so the parent knows exactly which commits may be in flight.
    store.set("counter", last)
    store.commit()
sys.stdout.write("ready\\n")
sys.stdout.flush()
n = last + 1
while True:
    archive.append(Message(MessageKind.TELEMETRY, 1, float(n), {{"n": n, "pad": "x" * (n % 37)}}))
    store.set("counter", n)
    store.commit()
    n += 1
"""


def check(directory: Path) -> int:
    """Reopen everything and check the invariants; returns the number of records."""
    archive = Archive(
        directory / "arch",
        now=SimClock().monotonic,
        segment_bytes=SEGMENT_BYTES,
        max_segments=100000,
    )
    found = [msg.body["n"] for msg in archive.read()]
    archive.close()
    assert found == list(range(len(found))), "records missing, repeated or out of order"
    assert archive.corrupt_spans == 0
    store = StateStore(directory / "state.cbor")
    counter = store.get("counter")
    if counter is None:
        assert len(found) <= 1  # killed before the first commit
    else:
        assert store.recovered_from in ("primary", "backup")
        assert counter in (len(found) - 1, len(found) - 2)
    return len(found)


def test_sigkill_at_random_moments_loses_nothing(tmp_path):
    rng = random.Random(20240917)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    kills = 0
    total = 0
    deadline = time.monotonic() + 25.0
    while kills < 60 and time.monotonic() < deadline:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path)],
            stdout=subprocess.PIPE,
            env=env,
        )
        try:
            if rng.random() < 0.15:
                # Some kills land during start-up and recovery, before the loop runs.
                time.sleep(rng.uniform(0.0, 0.15))
            else:
                assert child.stdout is not None
                assert child.stdout.readline() == b"ready\n"
                time.sleep(rng.uniform(0.0, 0.05))
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
        kills += 1
        previous = total
        total = check(tmp_path)
        assert total >= previous
    assert kills >= 50
    assert total > 200  # the child really ran between kills
    assert len(list((tmp_path / "arch").iterdir())) > 3  # and rotated segments
