"""End to end: the ground console flies the flight software running as ``fsw run``.

Two real processes on the simulated bench, exactly as an operator would use them: ``fsw run`` with
its link on TCP, the dictionary exported by ``fsw dict --json``, a key made by ``fsw keygen``, and
``fsw ground --script`` sending authenticated commands and checking responses, telemetry and
events. The same script runs once more over a pseudo-terminal, the way a radio modem's serial
port carries the link: ``fsw run`` opens the pty's slave as its ``[link]`` serial port, and the
console runs in this process on the master end (a pty is point to point, so the console cannot
open a second device path to it; it takes the master's file descriptor as its transport).
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import tty
from pathlib import Path

import pytest

from flight.cli import build_parser
from flight.cli import ground as ground_cli
from fsw_tests.run_support import FswProcess, NotifySocket, bench_config, fsw_cli, keygen

ASM = bytes.fromhex("1ACFFC1D")

# HK goes down at 0.2 Hz in CRUISE: ask for 5 Hz first, so the telemetry check is quick.
SCRIPT = """\
cmd.PING 7
expect response OK containing "pong 7" within 5
tlm.RATE_SET mars.HK 5.0 CRUISE
expect response OK within 5
expect event tlm.RATE_CHANGED containing mars.HK within 5
expect telemetry mars.bus_voltage_v 5..26 within 5
expect telemetry mars.state CRUISE within 5
"""


@pytest.fixture(scope="module")
def dictionary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dict") / "dict.json"
    result = fsw_cli("dict", "--json", "--out", str(path))
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def notify() -> NotifySocket:
    sock = NotifySocket()
    yield sock  # type: ignore[misc]
    sock.close()


def _script(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "check.fswg"
    path.write_text(text)
    return path


def test_ground_console_script_over_tcp(
    tmp_path: Path, dictionary: Path, notify: NotifySocket
) -> None:
    key = keygen(tmp_path / "uplink.key")
    config = bench_config(tmp_path, key_file=key)
    record = tmp_path / "downlink.bin"
    with FswProcess(config, notify, "--record-downlink", str(record)) as fsw:
        fsw.wait_ready()
        host, port = fsw.link_address()
        common = ["ground", "--dict", str(dictionary), "--key", str(key)]
        common += ["--tcp", f"{host}:{port}", "--no-color"]
        passed = fsw_cli(*common, "--script", str(_script(tmp_path, SCRIPT)))
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert "all 7 step(s) passed" in passed.stdout

        # An unmet expectation fails the script with 1, naming the line.
        failing = SCRIPT + "expect telemetry mars.bus_voltage_v 100..200 within 1\n"
        failed = fsw_cli(*common, "--script", str(_script(tmp_path, failing)))
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "check.fswg:8" in failed.stdout + failed.stderr
        assert fsw.terminate() == 0, fsw.stderr
    assert "Traceback" not in fsw.stderr
    # What the console received was also recorded: whole TM frames, each behind its sync marker.
    recorded = record.read_bytes()
    assert recorded.startswith(ASM)
    assert recorded.count(ASM) >= 10


class PtyMaster:
    """The ground's end of a pseudo-terminal as a link transport (non-blocking reads)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self.connected = True

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view) :]
            except BlockingIOError:
                return  # the flight side is not reading: lose the rest, as a radio would

    def read_available(self) -> bytes:
        chunks = []
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError as exc:  # EIO: nobody has the slave open (yet)
                if exc.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.connected = False


def test_ground_console_script_over_a_serial_pty(
    tmp_path: Path, dictionary: Path, notify: NotifySocket
) -> None:
    key = keygen(tmp_path / "uplink.key")
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no CR/LF translation: a byte pipe like a radio modem's UART
    slave_path = os.ttyname(slave)
    link = f'transport = "serial"\nport = "{slave_path}"\nbaud = 57600\n'
    config = bench_config(tmp_path, key_file=key, link=link)
    try:
        with FswProcess(config, notify) as fsw:
            fsw.wait_ready()
            assert f"serial {slave_path}" in fsw.stderr
            args: argparse.Namespace = build_parser().parse_args(
                [
                    "ground",
                    "--dict",
                    str(dictionary),
                    "--key",
                    str(key),
                    "--serial",
                    slave_path,  # required by the parser; the transport below is used instead
                    "--script",
                    str(_script(tmp_path, SCRIPT)),
                    "--no-color",
                ]
            )
            out, err = io.StringIO(), io.StringIO()
            status = ground_cli.run(args, transport=PtyMaster(master), stdout=out, stderr=err)
            assert status == 0, out.getvalue() + err.getvalue()
            assert "all 7 step(s) passed" in out.getvalue()
            assert fsw.terminate() == 0, fsw.stderr
    finally:
        os.close(master)
        os.close(slave)
