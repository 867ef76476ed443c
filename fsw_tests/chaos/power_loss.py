"""Category 3: SIGKILL the flight process at random moments and check what it comes back to.

Lives: each life is a fresh state directory. Its first run is killed at a random wall time over
the whole mission (so kills land in cruise, orbit insertion, EDL and on the surface, and in the
middle of archive appends and state commits, which happen every tick); then the child is
restarted over the same directory and killed again after a short random time, several times.
After every kill the parent checks, from the files alone:

- the state store loads (primary or backup; empty only before the first commit);
- the archive opens and reads; every record read after an earlier kill is still there,
  byte-identical, at the same place (``archive_records_lost``), unless its segment was rotated
  out by the size bound;
- the stored mode is the last transition the child logged (or one further: the kill may land
  between the commit and the log line);
and on the next boot (the child's ``B`` line) that the mode restored is the stored one
(``mode_resume_lost``). Over the whole life the side log must show no one-shot fired twice
(``oneshot_repeated``), no sequence entry dispatched twice (``sequence_entry_repeated``) and no
authenticated ground command dispatched twice (``command_repeated``).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from flight.clock import SimClock
from flight.persistence.archive import Archive, encode_record
from flight.persistence.state import StateStore

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("flight_child.py")


def _spawn(state: Path, log: Path, seed: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        ["nice", "-n", "5", sys.executable, str(CHILD), str(state), str(log), str(seed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _read_log(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    lines = log.read_text(errors="replace").splitlines()
    return [line.split() for line in lines if line.strip()]


class Life:
    """One state directory killed again and again."""

    def __init__(self, root: Path, seed: int, figures: Counter[str], problems: list[str]) -> None:
        self.state = root / f"life-{seed}"
        self.log = root / f"life-{seed}.log"
        self.seed = seed
        self.figures = figures
        self.problems = problems
        self.snapshot: dict[Any, bytes] = {}
        self.stored_mode: str | None = None

    def _fail(self, name: str, text: str) -> None:
        self.figures[name] += 1
        if len(self.problems) < 30:
            self.problems.append(f"life {self.seed}: {name}: {text}")

    def run_and_kill(self, after_s: float) -> bool:
        """Start the child, SIGKILL it after ``after_s`` wall seconds; False if it ended first."""
        lines_before = len(_read_log(self.log))
        proc = _spawn(self.state, self.log, self.seed)
        try:
            proc.wait(timeout=after_s)
            ended = True
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            ended = False
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        if ended and proc.returncode != 0:
            self._fail("child_crash", f"exit {proc.returncode}: {stderr.strip()[-300:]}")
        lines = _read_log(self.log)[lines_before:]
        boots = [line for line in lines if line[0] == "B"]
        if self.stored_mode is not None and boots and boots[0][1] != self.stored_mode:
            self._fail("mode_resume_lost", f"stored {self.stored_mode}, restored {boots[0][1]}")
        if not ended:
            self.figures["kills"] += 1
            modes = [line[1] for line in _read_log(self.log) if line[0] in ("T", "B")]
            if modes and modes[-1].startswith("EDL"):
                self.figures["kills_during_edl"] += 1
            if not boots:
                self.figures["kills_during_boot"] += 1
        else:
            self.figures["runs_completed"] += 1
        self.check_files()
        return not ended

    def check_files(self) -> None:
        state_file = self.state / "state.cbor"
        try:
            store = StateStore(state_file)
        except Exception as exc:
            self._fail("state_unreadable_lost", repr(exc))
            return
        self.figures[f"state_recovered_{store.recovered_from}"] += 1
        if store.recovered_from not in ("primary", "backup") and state_file.exists():
            self._fail("state_lost", f"recovered from {store.recovered_from}")
        mode = store.get("mode.state")
        history = [line[1] for line in _read_log(self.log) if line[0] in ("T", "B")]
        if (
            mode is not None
            and history
            and mode != history[-1]
            and store.get("mode.previous") != history[-1]
        ):
            self._fail("mode_lost", f"stored {mode}, last logged {history[-1]}")
        self.stored_mode = mode if isinstance(mode, str) else None
        try:
            archive = Archive(self.state / "archive", now=SimClock().monotonic)
            current = {cursor: encode_record(msg) for cursor, msg in archive.read_since(None)}
            segments = set(archive.segments)
            self.figures["archive_corrupt_spans"] += archive.corrupt_spans
            archive.close()
        except Exception as exc:
            self._fail("archive_unreadable_lost", repr(exc))
            return
        for cursor, record in self.snapshot.items():
            if cursor[0] in segments and current.get(cursor) != record:
                self._fail("archive_records_lost", f"record at {cursor} changed or missing")
                break
        self.figures["archive_records_checked"] += len(current)
        self.snapshot = current

    def check_log(self) -> None:
        lines = _read_log(self.log)
        for tag, name in (
            ("O", "oneshot_repeated"),
            ("S", "sequence_entry_repeated"),
            ("U", "command_repeated"),
        ):
            seen = Counter(" ".join(line[1:]) for line in lines if line[0] == tag)
            self.figures[f"{name.split('_')[0]}s_logged"] += len(seen)
            for key, count in seen.items():
                if count > 1:
                    self._fail(name, f"{key} x{count}")


def power_loss(
    kills: int, seed: int = 3, kills_per_life: int = 5, first_kill_max_s: float = 11.0
) -> dict[str, Any]:
    """Category 3: about ``kills`` SIGKILLs over lives of ``kills_per_life``."""
    rng = random.Random(seed)
    figures: Counter[str] = Counter()
    problems: list[str] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        life_no = 0
        while figures["kills"] < kills:
            life = Life(Path(tmp), seed * 1000 + life_no, figures, problems)
            life_no += 1
            life.run_and_kill(rng.uniform(0.4, first_kill_max_s))
            for _ in range(kills_per_life - 1):
                if figures["kills"] >= kills:
                    break
                life.run_and_kill(rng.uniform(0.2, 2.5))
            life.check_log()
    out: dict[str, Any] = dict(figures)
    for name in (
        "child_crash",
        "mode_resume_lost",
        "mode_lost",
        "state_lost",
        "state_unreadable_lost",
        "archive_unreadable_lost",
        "archive_records_lost",
        "oneshot_repeated",
        "sequence_entry_repeated",
        "command_repeated",
    ):
        out.setdefault(name, 0)
    out["lives"] = life_no
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    out["problems"] = problems
    return out
