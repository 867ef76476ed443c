"""Starting ``fsw run`` as a real process on the simulated bench, for the integration tests.

The flight software runs as the service would run it: its own process, the wall clock, a
configuration file, a key file made by ``fsw keygen``, and systemd's notify protocol on an
AF_UNIX datagram socket the test binds (the test plays systemd). Nothing here is a mock: the
child is ``python -m flight run``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SIM_BENCH = REPO / "deploy" / "sim-bench.toml"
_LINK_LINE = re.compile(r"link on (tcp|udp) ([0-9.]+):(\d+)")


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child ``python -m flight``: this checkout importable, no systemd."""
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def fsw_cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m flight ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "flight", *args],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def keygen(path: Path) -> Path:
    """A key file made by ``fsw keygen`` (in this process: it is only a file)."""
    from flight.cli import main

    assert main(["keygen", "--out", str(path)]) == 0
    return path


def bench_config(tmp: Path, *, key_file: Path, link: str | None = None) -> Path:
    """deploy/sim-bench.toml with this test's key, state directory and link table.

    ``link`` replaces the ``[link]`` table body; the default is TCP on a free loopback port.
    """
    text = SIM_BENCH.read_text()
    head, sep, _rest = text.partition("[link]")
    assert sep, "deploy/sim-bench.toml lost its [link] table"
    body = link if link is not None else 'transport = "tcp"\nhost = "127.0.0.1"\nport = 0\n'
    config = tmp / "fsw.toml"
    config.write_text(
        f'{head}[link]\n{body}key_file = "{key_file}"\n\n[state]\ndir = "{tmp / "state"}"\n'
    )
    return config


class NotifySocket:
    """The systemd side of sd_notify: collects every datagram the child sends."""

    def __init__(self) -> None:
        # AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be longer.
        self._dir = tempfile.mkdtemp(prefix="fsw-notify-")
        self.path = os.path.join(self._dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages: list[str] = []

    def collect(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                return
            self.messages.extend(data.decode().splitlines())

    def wait_for(
        self,
        predicate: Callable[[str], bool],
        timeout: float,
        alive: Callable[[], bool] = lambda: True,
    ) -> str | None:
        """The first message passing ``predicate``; None after ``timeout`` or once the sender
        is no longer ``alive`` (and has nothing more in the socket)."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages:
                if predicate(message):
                    return message
            if time.monotonic() >= deadline:
                return None
            running = alive()
            self.collect()
            if not running and not any(predicate(m) for m in self.messages):
                return None

    def close(self) -> None:
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self._dir)


class FswProcess:
    """``python -m flight run --config CONFIG`` with stderr kept in a file for assertions."""

    def __init__(
        self,
        config: Path,
        notify: NotifySocket,
        *args: str,
        stderr_dir: Path | None = None,
        **env: str,
    ) -> None:
        self.stderr_path = (stderr_dir or config.parent) / "fsw-run.stderr"
        self._stderr = open(self.stderr_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flight", "run", "--config", str(config), *args],
            env=child_env(NOTIFY_SOCKET=notify.path, **env),
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        self.notify = notify

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_ready(self, timeout: float = 10.0) -> None:
        ready = self.notify.wait_for(
            lambda m: m == "READY=1", timeout, alive=lambda: self.proc.poll() is None
        )
        assert ready, f"no READY=1 within {timeout} s; stderr:\n{self.stderr}"

    def link_address(self) -> tuple[str, int]:
        match = _LINK_LINE.search(self.stderr)
        assert match, f"fsw run did not say where its link listens; stderr:\n{self.stderr}"
        return match.group(2), int(match.group(3))

    def terminate(self, timeout: float = 10.0) -> int:
        self.proc.terminate()
        return self.stop(timeout)

    def stop(self, timeout: float = 10.0) -> int:
        try:
            status = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._stderr.close()
        return status

    def __enter__(self) -> FswProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()
