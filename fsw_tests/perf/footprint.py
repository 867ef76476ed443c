"""Figure 7: resident memory of ``fsw run`` on the simulated bench and its time to READY.

The process is started with ``NOTIFY_SOCKET`` pointing at a datagram socket bound here, exactly
as systemd would; start-up time runs from just before the process is spawned to the ``READY=1``
datagram, so it includes the interpreter's own start and every import.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flight.link.sdls import write_key

from .common import Figure

__all__ = ["footprint_figures"]

ROOT = Path(__file__).resolve().parents[2]
RSS_TARGET_MB = 60.0
READY_TARGET_S = 1.0

_FALLBACK = """
import sys
from pathlib import Path
from flight.app import FlightSoftware
from flight.clock import WallClock
from flight.health import SystemdNotifier
from flight.missions.mars.definition import MARS
from hal.assembly import build, sim_bench_map
clock = WallClock()
bench = build(sim_bench_map(), clock=clock)
fsw = FlightSoftware(clock=clock, devices=bench.devices, mission=MARS,
                     state_dir=Path(sys.argv[1]), notifier=SystemdNotifier())
fsw.start()
fsw.scheduler.run()
"""


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB", status, re.MULTILINE)
    if match is None:
        raise RuntimeError("no VmRSS")
    return int(match.group(1)) / 1024.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(tmp: Path, fallback: bool) -> list[str]:
    if fallback:
        return [sys.executable, "-c", _FALLBACK, str(tmp / "state")]
    text = (ROOT / "deploy" / "sim-bench.toml").read_text()
    text = re.sub(r"(?m)^port = 50500$", f"port = {_free_port()}", text)
    (tmp / "sim-bench.toml").write_text(text)
    write_key(tmp / "bench.key", os.urandom(32))
    return [
        sys.executable,
        "-m",
        "flight",
        "run",
        "--config",
        str(tmp / "sim-bench.toml"),
        "--state-dir",
        str(tmp / "state"),
    ]


def _measure(seconds: float, fallback: bool) -> tuple[float, float, str]:
    with tempfile.TemporaryDirectory(prefix="fsw-perf-") as tmp_name:
        tmp = Path(tmp_name)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(tmp / "notify"))
        notify.settimeout(0.05)
        env = dict(os.environ, NOTIFY_SOCKET=str(tmp / "notify"), PYTHONPATH=str(ROOT))
        cmd = _command(tmp, fallback)
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        ready_s = float("nan")
        try:
            while time.perf_counter() - start < 10.0 and proc.poll() is None:
                try:
                    datagram = notify.recv(4096)
                except TimeoutError:
                    continue
                if b"READY=1" in datagram.split(b"\n"):
                    ready_s = time.perf_counter() - start
                    break
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"{' '.join(cmd[:4])} exited {proc.returncode}: {err[-500:]}")
            while time.perf_counter() - start < seconds:
                time.sleep(0.1)
            rss = _rss_mb(proc.pid)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            notify.close()
        return rss, ready_s, " ".join(cmd[2:4]) if not fallback else "python -c"


def footprint_figures(seconds: float) -> list[Figure]:
    note = ""
    try:
        rss, ready, what = _measure(seconds, fallback=False)
        what = "fsw run --config deploy/sim-bench.toml (link on TCP)"
    except (RuntimeError, OSError) as exc:
        note = f"`fsw run` unavailable ({exc}); measured a python -c building FlightSoftware. "
        rss, ready, what = _measure(seconds, fallback=True)
    note += f"{what}, simulated bench, VmRSS after {seconds:.0f} s"
    return [
        Figure(
            "footprint.rss",
            rss,
            "MB",
            None,
            f"<= {RSS_TARGET_MB:.0f} MB",
            RSS_TARGET_MB,
            rss <= RSS_TARGET_MB,
            note,
        ),
        Figure(
            "footprint.start_to_ready",
            ready,
            "s",
            None,
            f"<= {READY_TARGET_S:.1f} s",
            READY_TARGET_S,
            ready <= READY_TARGET_S,
            note + "; process spawn to READY=1 on NOTIFY_SOCKET",
        ),
    ]
