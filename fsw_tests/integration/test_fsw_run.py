"""``fsw run`` as the service runs it: a process on the simulated bench, supervised the systemd way.

The test binds the notify socket systemd would give the service and checks the whole life cycle:
READY=1 after start-up, STATUS= and WATCHDOG=1 while running, STOPPING=1 and exit 0 on SIGTERM
with the state committed, and MET resumed at the next boot. Broken configurations must exit 2
naming what is wrong, before anything is started.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from flight.cli import main
from flight.persistence.state import StateStore
from fsw_tests.run_support import SIM_BENCH, FswProcess, NotifySocket, bench_config, keygen


@pytest.fixture
def notify() -> NotifySocket:
    sock = NotifySocket()
    yield sock  # type: ignore[misc]
    sock.close()


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return keygen(tmp_path / "uplink.key")


def test_sigterm_after_ready_saves_state_and_next_boot_resumes_met(
    tmp_path: Path, key: Path, notify: NotifySocket
) -> None:
    config = bench_config(tmp_path, key_file=key)
    with FswProcess(config, notify, WATCHDOG_USEC="400000") as fsw:
        fsw.wait_ready()
        assert notify.wait_for(lambda m: m.startswith("STATUS=mode CRUISE"), 5.0)
        assert notify.wait_for(lambda m: m == "WATCHDOG=1", 5.0), notify.messages
        host, port = fsw.link_address()
        assert port != 0
        with socket.create_connection((host, port), timeout=2.0):
            pass  # the link really listens where it says
        assert fsw.proc.poll() is None
        status = fsw.terminate()
        notify.collect()
    assert status == 0, fsw.stderr
    assert "STOPPING=1" in notify.messages
    assert "Traceback" not in fsw.stderr
    store = StateStore(tmp_path / "state" / "state.cbor")
    assert store.recovered_from == "primary"
    assert store.get("mode.state") == "CRUISE"
    assert store.get("app.boots") == 1
    first_met = store.get("time.met")
    assert isinstance(first_met, float) and first_met > 0.0
    assert (tmp_path / "state" / "params.cbor").exists()

    # The board's monotonic clock restarts at boot: MET must resume from the store.
    again = NotifySocket()
    try:
        with FswProcess(config, again, "--max-seconds", "0.3") as second:
            assert second.stop() == 0, second.stderr
    finally:
        again.close()
    store = StateStore(tmp_path / "state" / "state.cbor")
    assert store.get("app.boots") == 2
    assert store.get("time.met") >= first_met + 0.3


def test_sigint_stops_cleanly_too(tmp_path: Path, key: Path, notify: NotifySocket) -> None:
    config = bench_config(tmp_path, key_file=key)
    with FswProcess(config, notify) as fsw:
        fsw.wait_ready()
        fsw.proc.send_signal(signal.SIGINT)
        assert fsw.stop() == 0, fsw.stderr
    assert StateStore(tmp_path / "state" / "state.cbor").get("mode.state") == "CRUISE"


# ------------------------------------------------------------------------------ bad configurations


def _run(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    status = main(["run", "--config", str(config), "--max-seconds", "5", *extra])
    return status, capsys.readouterr().err


def _edited(tmp_path: Path, key: Path, old: str, new: str) -> Path:
    config = bench_config(tmp_path, key_file=key)
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new, 1))
    return config


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('driver = "bme280"', 'driver = "bme281"', "bme281"),
        ("address = 0x1C", "address = 0x76", "0x76"),
        ("[bench]", "[bench\n", "line"),
        ('transport = "tcp"', 'transport = "pigeon"', "[link].transport"),
        ('host = "127.0.0.1"\nport = 0', 'host = "127.0.0.1"\nport = 70000', "[link].port"),
        ('[mission]\nname = "mars"', '[mission]\nname = "venus"', "[mission].name"),
        ('transport = "tcp"', 'transport = "tcp"\nfixed_layouts = 1', "[link].fixed_layouts"),
    ],
    ids=[
        "unknown-driver",
        "duplicate-address",
        "malformed-toml",
        "transport",
        "port",
        "mission",
        "fixed-layouts",
    ],
)
def test_broken_config_exits_2_naming_the_problem_and_starts_nothing(
    tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, named: str
) -> None:
    config = _edited(tmp_path, key, old, new)
    status, err = _run(config, capsys)
    assert status == 2
    assert named in err
    assert err.startswith("fsw run:")
    assert not (tmp_path / "state").exists()


def test_missing_key_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = bench_config(tmp_path, key_file=tmp_path / "nope.key")
    status, err = _run(config, capsys)
    assert status == 2
    assert "[link].key_file" in err and "nope.key" in err
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_readable_by_others_exits_2(
    tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str], mode: int
) -> None:
    os.chmod(key, mode)
    config = bench_config(tmp_path, key_file=key)
    status, err = _run(config, capsys)
    assert status == 2
    assert "chmod 600" in err
    assert not (tmp_path / "state").exists()


def test_no_key_file_setting_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "fsw.toml"
    text = SIM_BENCH.read_text().replace('key_file = "bench.key"\n', "")
    config.write_text(text.replace("/tmp/fsw-sim-bench-state", str(tmp_path / "state")))
    status, err = _run(config, capsys)
    assert status == 2
    assert "[link].key_file: missing" in err


def test_no_state_directory_anywhere_exits_2(
    tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    config = bench_config(tmp_path, key_file=key)
    text = config.read_text()
    config.write_text(text[: text.index("\n[state]\n")])
    status, err = _run(config, capsys)
    assert status == 2
    assert "[state].dir" in err


def test_state_directory_from_systemd_environment(
    tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "from-systemd"))
    config = bench_config(tmp_path, key_file=key)
    text = config.read_text()
    config.write_text(text[: text.index("\n[state]\n")])
    status = main(["run", "--config", str(config), "--max-seconds", "0.2"])
    assert status == 0, capsys.readouterr().err
    assert (tmp_path / "from-systemd" / "state.cbor").exists()


def test_shipped_sim_bench_config_loads(tmp_path: Path) -> None:
    """deploy/sim-bench.toml is valid as shipped: every device simulated, a TCP link."""
    from flight.cli.run import parse_run_config
    from hal.devmap import Backend, load_device_map

    devmap = load_device_map(SIM_BENCH)
    assert {d.name for d in devmap.devices} == {"baro", "mag", "imu", "power", "pwm", "lidar"}
    assert all(d.backend is Backend.SIM for d in devmap.devices)
    config = parse_run_config(devmap.extra, base=SIM_BENCH.parent, environ={})
    assert config.link is not None and config.link.transport == "tcp"
    assert config.link.key_file == SIM_BENCH.parent / "bench.key"


def test_udp_link_and_link_tcp_override(
    tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    udp = 'transport = "udp"\nhost = "127.0.0.1"\nport = 0\n'
    config = bench_config(tmp_path, key_file=key, link=udp)
    assert main(["run", "--config", str(config), "--max-seconds", "0.2"]) == 0
    assert "link on udp 127.0.0.1:" in capsys.readouterr().err
    # --link-tcp replaces whatever [link] says (a radio bench tried without its radio).
    serial = 'transport = "serial"\nport = "/dev/fsw-no-such-radio"\n'
    config = bench_config(tmp_path, key_file=key, link=serial)
    argv = ["run", "--config", str(config), "--max-seconds", "0.2", "--link-tcp", "127.0.0.1:0"]
    assert main(argv) == 0
    assert "link on tcp 127.0.0.1:" in capsys.readouterr().err


def test_unreachable_hardware_exits_1_unless_the_device_is_optional(
    tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An optional device (the lidar) on a port that does not exist: fly without it.
    lidar = 'port = "sim://lidar"\nbaud = 115200\nbackend = "sim"'
    config = _edited(
        tmp_path, key, lidar, 'port = "/dev/fsw-no-such-lidar"\nbaud = 115200\nbackend = "hardware"'
    )
    assert main(["run", "--config", str(config), "--max-seconds", "0.2"]) == 0
    capsys.readouterr()
    # A required one (the IMU) on an I2C bus that will not open here: refuse, naming it.
    imu = 'name = "imu"\ndriver = "mpu6050"\nbus = 1\naddress = 0x68\nbackend = "sim"'
    config = _edited(tmp_path, key, imu, imu.replace('"sim"', '"hardware"'))
    status, err = _run(config, capsys, "--state-dir", str(tmp_path / "second"))
    if status == 0:
        pytest.skip("this machine has an I2C bus 1 answering at 0x68")
    assert status == 1
    assert "imu" in err and "hardware not reachable" in err
    assert not (tmp_path / "second").exists()


def test_further_key_slots_for_rotation_come_from_a_keys_table(tmp_path: Path) -> None:
    from flight.cli.run import ConfigError, _open_link, parse_run_config

    first, second = keygen(tmp_path / "uplink.key"), keygen(tmp_path / "uplink-2.key")
    link = {"transport": "tcp", "port": 0, "key_file": str(first), "keys": {"2": "uplink-2.key"}}
    config = parse_run_config({"link": link, "state": {"dir": "s"}}, base=tmp_path, environ={})
    assert config.link is not None and config.link.extra_keys == {2: second}
    transport, keyring = _open_link(config.link)
    try:
        assert keyring.key(1) != keyring.key(2)
    finally:
        transport.close()
    bad = dict(link, keys={"two": "uplink-2.key"})
    with pytest.raises(ConfigError, match=r"\[link.keys\]: slot 'two'"):
        parse_run_config({"link": bad, "state": {"dir": "s"}}, base=tmp_path, environ={})
