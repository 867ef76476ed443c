"""systemd notify over a real AF_UNIX datagram socket, and the watchdog gated on the scheduler."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path

import pytest

from flight.clock import SimClock
from flight.events import EventLog
from flight.health import EV_RESUMED, EV_WITHHELD, HealthMonitor, SystemdNotifier
from flight.scheduler import Scheduler


@pytest.fixture
def notify_socket():
    # AF_UNIX paths are limited to ~108 bytes: use a short directory, not pytest's tmp_path.
    directory = Path(tempfile.mkdtemp(prefix="fsw-", dir="/tmp"))
    path = directory / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(1.0)
    yield sock, str(path)
    sock.close()
    shutil.rmtree(directory)


def received(sock: socket.socket) -> list[str]:
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(1.0)
    return out


def test_messages_arrive_on_a_path_socket(notify_socket):
    sock, path = notify_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready()
    assert notifier.status("cruise\nnominal  ok")
    assert notifier.watchdog()
    assert notifier.stopping()
    assert received(sock) == ["READY=1", "STATUS=cruise nominal ok", "WATCHDOG=1", "STOPPING=1"]
    notifier.close()


def test_abstract_socket_names_start_with_at():
    name = f"fsw-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(1.0)
    try:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()


def test_without_systemd_everything_is_a_quiet_no_op():
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert notifier.watchdog_interval_s is None
    assert notifier.errors == 0


def test_socket_errors_are_logged_not_raised(caplog):
    caplog.set_level(logging.WARNING, logger="flight.health")
    notifier = SystemdNotifier({"NOTIFY_SOCKET": "/tmp/fsw-no-such-dir/notify"})
    assert notifier.ready() is False
    assert notifier.errors == 1
    assert "sd_notify" in caplog.text
    assert notifier.watchdog() is False  # and again: each failure is handled on its own
    assert notifier.errors == 2
    assert SystemdNotifier({"NOTIFY_SOCKET": "relative/path"}).ready() is False


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "10000000"}, 5.0),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}, 1.5),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}, None),  # someone else's watchdog
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_the_timeout(env, interval):
    assert SystemdNotifier(env).watchdog_interval_s == interval


def make_loop(path: str, *, watchdog_usec: int = 2_000_000):
    clock = SimClock()
    sched = Scheduler(clock, base_hz=50.0, alive_slack_s=0.1)
    fast = sched.add_group("fast", 1)
    sched.add_group("slow", 10).add(lambda: None, "noop")
    events = EventLog(now=clock.monotonic)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": str(watchdog_usec)})
    health = HealthMonitor(notifier, sched, clock, events=events)
    fast.add(health.tick, "health")
    return clock, sched, health, events


def test_watchdog_is_sent_at_the_interval_while_alive(notify_socket):
    sock, path = notify_socket
    clock, sched, health, _ = make_loop(path)
    sched.run(until=lambda: clock.monotonic() >= 10.0)
    pings = received(sock)
    assert set(pings) == {"WATCHDOG=1"}
    assert len(pings) == 11  # every 1 s (half of 2 s), at t = 0, 1, ..., 10
    assert health.pets == 11


def test_watchdog_is_withheld_while_a_group_is_stalled(notify_socket):
    sock, path = notify_socket
    clock, sched, health, events = make_loop(path)
    stall = {"on": False}

    def sometimes_hangs() -> None:
        if stall["on"]:
            # Blocks 0.5 s at every run: the loop keeps skipping ahead, and the skips never land
            # on the slow group's ticks, so it starves while the fast group still runs.
            clock.advance(0.5)

    sched.group("fast").add(sometimes_hangs, "hang")
    sched.run(until=lambda: clock.monotonic() >= 3.0)
    before = len(received(sock))
    stall["on"] = True
    sched.run(until=lambda: clock.monotonic() >= 8.0)
    # Five seconds of stall: at most the ping of the first stalled tick (sent before its task
    # hung) instead of five.
    assert len(received(sock)) <= 1
    assert health.withheld > 0
    assert events.count(EV_WITHHELD.id) == 1  # once per episode, not per tick
    stall["on"] = False
    sched.run(until=lambda: clock.monotonic() >= 12.0)
    assert len(received(sock)) >= 2
    assert events.count(EV_RESUMED.id) == 1
    assert before >= 2


def test_no_watchdog_configured_means_no_pings(notify_socket):
    sock, path = notify_socket
    clock = SimClock()
    sched = Scheduler(clock)
    health = HealthMonitor(SystemdNotifier({"NOTIFY_SOCKET": path}), sched, clock)
    sched.add_group("g", 1).add(health.tick, "health")
    sched.run(max_ticks=200)
    assert received(sock) == []
