"""Category 7: broken configuration files must stop ``fsw bench probe`` and ``fsw run`` before
anything starts, with a message naming the problem.

Each case is the shipped simulated bench configuration (deploy/sim-bench.toml) with one thing
broken. For every case and command: the exit status must be non-zero, stderr must name the
problem (a word the case gives) and hold no Python traceback, and the state directory must hold
no state store afterwards (nothing started). A control case (the file unbroken, its key 0600)
must run, so the checks can tell the difference.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BASE = (ROOT / "deploy" / "sim-bench.toml").read_text()
KEY = "ab" * 32 + "\n"


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    #: a word stderr must contain (case-insensitive)
    names: str
    #: which commands must refuse it ("probe" only reads the device map)
    commands: tuple[str, ...] = ("probe", "run")
    key_mode: int | None = 0o600


def _cases() -> list[Case]:
    return [
        Case(
            "malformed_toml",
            BASE.replace('[[device]]\nname = "mag"', '[[device]\nname = "mag'),
            "toml",
        ),
        Case("unknown_driver", BASE.replace('driver = "bme280"', 'driver = "bme999"'), "bme999"),
        Case(
            "duplicate_address",
            BASE.replace("address = 0x1C", "address = 0x76"),
            "0x76",
        ),
        Case("bad_type", BASE.replace("poll_hz = 10\n", 'poll_hz = "fast"\n', 1), "poll_hz"),
        Case("no_devices_table_typo", BASE.replace("[[device]]", "[[devices]]"), "devices"),
        Case("missing_key_file", BASE, "key", commands=("run",), key_mode=None),
        Case("world_readable_key", BASE, "key", commands=("run",), key_mode=0o644),
        Case("group_readable_key", BASE, "key", commands=("run",), key_mode=0o640),
        Case(
            "unknown_transport",
            BASE.replace('transport = "tcp"', 'transport = "carrier-pigeon"'),
            "transport",
            commands=("run",),
        ),
        Case(
            "unknown_mission",
            BASE.replace('name = "mars"', 'name = "venus"'),
            "venus",
            commands=("run",),
        ),
    ]


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "flight", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _prepare(tmp: Path, case: Case) -> tuple[Path, Path]:
    work = tmp / case.name
    work.mkdir()
    key = work / "bench.key"
    if case.key_mode is not None:
        key.write_text(KEY)
        key.chmod(case.key_mode)
    config = work / "fsw.toml"
    config.write_text(case.text.replace("port = 50500", "port = 0"))
    return config, work / "state"


def bad_config(include_run: bool = True) -> dict[str, Any]:
    """Try every case; returns figures (failure counts are ``*_crash``) and per-case detail."""
    figures: Counter[str] = Counter()
    detail: dict[str, str] = {}
    commands = ("probe", "run") if include_run else ("probe",)
    with tempfile.TemporaryDirectory() as tmp:
        for case in _cases():
            config, state = _prepare(Path(tmp), case)
            for command in commands:
                if command not in case.commands:
                    continue
                if command == "probe":
                    args = ["bench", "probe", "--config", str(config)]
                else:
                    args = ["run", "--config", str(config), "--state-dir", str(state)]
                    args += ["--max-seconds", "2"]
                proc = _run(args, config.parent, timeout=60)
                figures[f"{command}_cases"] += 1
                started = (state / "state.cbor").exists()
                problems = []
                if proc.returncode == 0:
                    problems.append("exit status 0")
                if "Traceback" in proc.stderr:
                    problems.append("traceback")
                if case.names.lower() not in proc.stderr.lower():
                    problems.append(f"stderr does not name {case.names!r}")
                if started:
                    problems.append("state store created")
                line = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
                detail[f"{case.name}/{command}"] = f"exit {proc.returncode}: {line[:160]}" + (
                    f"  PROBLEMS: {', '.join(problems)}" if problems else ""
                )
                if problems:
                    figures["refused_badly_crash"] += 1
        if include_run:  # control: the same file, unbroken, must start
            good = Case("control", BASE, "")
            config, state = _prepare(Path(tmp), good)
            proc = _run(
                ["run", "--config", str(config), "--state-dir", str(state), "--max-seconds", "1"],
                config.parent,
                timeout=60,
            )
            figures["control_ok"] = int(proc.returncode == 0 and (state / "state.cbor").exists())
            if not figures["control_ok"]:
                detail["control"] = f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
    out: dict[str, Any] = dict(figures)
    out.setdefault("refused_badly_crash", 0)
    out["detail"] = detail
    return out
