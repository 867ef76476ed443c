"""The deployment files: systemd unit, hardware watchdog, udev rules, reference device map.

The unit is checked with systemd's own tools where they are installed (``systemd-analyze verify``
and ``security --offline``; systemd need not be PID 1), and CPython is run under an emulation of the
unit's seccomp policy (syscall filter, MemoryDenyWriteExecute, address families) where the
libseccomp Python binding is available. Each of those tests skips with the reason otherwise.

``systemd-analyze verify`` does not look users up, so ``User=fsw`` verifies cleanly on a machine
without that user; the unit is verified as shipped except for ``ExecStart``, which must name an
existing executable and so points at a stub script in a temporary directory. Only output lines
about the unit itself count, so a broken unrelated unit on the host cannot fail the test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flight.cli import main as fsw_main
from hal.devmap import load_device_map

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "systemd" / "fsw.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")

needs_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (package systemd)"
)

#: The exposure score the unit must not exceed ("OK" in systemd-analyze's words).
EXPOSURE_TARGET = 1.5


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> keys -> every value given (systemd's list settings repeat keys)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"line continuation not expected: {line!r}"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"setting outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text())


@pytest.fixture
def unit_copy(tmp_path: Path) -> Path:
    """The unit as shipped, but with ExecStart on a stub executable that exists here."""
    stub = tmp_path / "fsw"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    text = UNIT.read_text()
    assert "ExecStart=/opt/fsw/venv/bin/fsw " in text
    path = tmp_path / "fsw.service"
    path.write_text(text.replace("ExecStart=/opt/fsw/venv/bin/fsw ", f"ExecStart={stub} "))
    return path


def _single(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit[section].get(key, [])
    assert len(values) == 1, f"[{section}] {key}= given {len(values)} times: {values}"
    return values[0]


# --- what the unit promises ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("ExecStart", "/opt/fsw/venv/bin/fsw run --config /etc/fsw/fsw.toml"),
        ("WatchdogSec", "10s"),
        ("Restart", "always"),
        ("RestartSec", "2"),
        ("User", "fsw"),
        ("Group", "fsw"),
        ("SupplementaryGroups", "i2c dialout"),
        ("StateDirectory", "fsw"),
        ("StateDirectoryMode", "0700"),
        ("ConfigurationDirectory", "fsw"),
        ("StandardOutput", "journal"),
        ("UMask", "0077"),
        ("MemoryMax", "128M"),
    ],
)
def test_unit_runs_the_flight_program_as_a_supervised_notify_service(unit, key, value):
    assert _single(unit, "Service", key) == value


def test_unit_limits_restarts(unit):
    assert int(_single(unit, "Unit", "StartLimitBurst")) > 1
    assert _single(unit, "Unit", "StartLimitIntervalSec")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("DevicePolicy", "closed"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("ProtectProc", "invisible"),
        ("ProcSubset", "pid"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("KeyringMode", "private"),
        ("RemoveIPC", "yes"),
    ],
)
def test_unit_sandbox_setting(unit, key, value):
    assert _single(unit, "Service", key) == value


def test_unit_keeps_the_network_for_the_bench_link(unit):
    service = unit["Service"]
    assert service.get("PrivateNetwork", ["no"]) == ["no"]
    assert "localhost" in " ".join(service["IPAddressAllow"]).split()


def test_unit_allows_the_devices_the_udev_rules_name(unit):
    allowed = {entry.rsplit(maxsplit=1)[0] for entry in unit["Service"]["DeviceAllow"]}
    assert "/dev/i2c-1" in allowed
    assert {"char-ttyAMA", "char-ttyUSB"} <= allowed
    symlinks = set(
        re.findall(r'SYMLINK\+="([^"]+)"', (DEPLOY / "udev" / "99-fsw.rules").read_text())
    )
    assert symlinks == {"fsw-radio", "fsw-lidar"}
    assert {f"/dev/{name}" for name in symlinks} <= allowed


# --- systemd's own verdict -------------------------------------------------------------------


@needs_analyze
def test_systemd_analyze_verify_is_clean(unit_copy):
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(unit_copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    about_us = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "fsw.service" in line or str(unit_copy.parent) in line
    ]
    assert about_us == []
    assert result.returncode == 0, result.stdout + result.stderr


def _exposure(path: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    threshold = round(EXPOSURE_TARGET * 10)  # --threshold counts in tenths
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=yes", f"--threshold={threshold}", "--no-pager",
         str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd >= 250 needed)")
    match = re.search(r"Overall exposure level for fsw\.service: (\d+(?:\.\d+)?)", result.stdout)
    assert match, result.stdout + result.stderr
    return float(match.group(1)), result


@needs_analyze
def test_exposure_level_is_ok(unit_copy):
    level, result = _exposure(unit_copy)
    assert level <= EXPOSURE_TARGET, result.stdout
    assert result.returncode == 0, result.stdout  # the threshold check agrees


@needs_analyze
def test_exposure_check_notices_a_weakened_unit(unit_copy):
    weakened = "".join(
        line
        for line in unit_copy.read_text().splitlines(keepends=True)
        if not line.startswith(("Protect", "Private", "SystemCall", "Restrict", "IPAddress"))
    )
    unit_copy.write_text(weakened)
    level, result = _exposure(unit_copy)
    assert level > EXPOSURE_TARGET
    assert result.returncode != 0


# --- the syscall policy ----------------------------------------------------------------------


def _expand(group: str, seen: set[str] | None = None) -> set[str]:
    """The syscall names in a systemd syscall group, nested groups included."""
    assert SYSTEMD_ANALYZE is not None
    seen = set() if seen is None else seen
    seen.add(group)
    out = subprocess.run(
        [SYSTEMD_ANALYZE, "syscall-filter", "--no-pager", group],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    names: set[str] = set()
    for line in out.splitlines():
        item = line.strip()
        if not item or item.startswith("#") or item == group:
            continue
        if item.startswith("@"):
            if item not in seen:
                names |= _expand(item, seen)
        else:
            names.add(item)
    return names


def _allowed_syscalls(unit: dict[str, dict[str, list[str]]]) -> set[str]:
    """Apply the unit's SystemCallFilter= lines in order, as systemd does."""
    allowed: set[str] = set()
    for value in unit["Service"]["SystemCallFilter"]:
        deny = value.startswith("~")
        names: set[str] = set()
        for item in value.lstrip("~").split():
            names |= _expand(item) if item.startswith("@") else {item}
        allowed = allowed - names if deny else allowed | names
    # Implied by other settings: ProtectClock=, ProtectKernelModules=, ProtectKernelLogs=.
    return allowed - _expand("@clock") - _expand("@module") - {"syslog"}


#: What CPython and the flight program do: files and atomic renames, sockets for sd_notify and the
#: bench link, ioctl for I2C and termios, polling, threads, timers, randomness for keys.
NEEDED = {
    "read", "write", "openat", "close", "ioctl", "fcntl", "lseek", "newfstatat", "statx",
    "fsync", "fdatasync", "renameat2", "unlinkat", "mkdirat", "getdents64", "pipe2", "dup3",
    "socket", "connect", "bind", "listen", "accept4", "sendto", "sendmsg", "recvfrom", "recvmsg",
    "ppoll", "pselect6", "epoll_create1", "epoll_ctl", "epoll_pwait", "eventfd2",
    "clock_gettime", "clock_nanosleep", "futex", "clone", "clone3", "set_robust_list",
    "mmap", "mprotect", "munmap", "brk", "madvise", "getrandom", "prlimit64",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "getpid", "gettid", "exit_group",
}  # fmt: skip
#: What the sandbox must refuse: identity, privileges, clock, kernel, scheduling priority.
REFUSED = {
    "setuid", "setgid", "setgroups", "mount", "umount2", "reboot", "settimeofday",
    "clock_settime", "init_module", "sched_setscheduler", "setpriority", "setrlimit", "chroot",
    "ptrace", "bpf",
}  # fmt: skip


@needs_analyze
def test_syscall_filter_keeps_what_the_flight_program_needs(unit):
    allowed = _allowed_syscalls(unit)
    assert NEEDED - allowed == set()
    assert REFUSED & allowed == set()


_SANDBOX = textwrap.dedent(
    """
    # Emulates the unit's seccomp policy, then execs the workload. Refused calls get EPERM, as with
    # SystemCallErrorNumber=EPERM.
    import errno, json, os, socket, sys
    import seccomp
    policy = json.loads(sys.argv[1])
    PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
    special = {"mmap", "mprotect", "pkey_mprotect", "shmat", "socket"}
    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
    def allow(name, *args):
        try:
            f.add_rule(seccomp.ALLOW, name, *args)
        except (RuntimeError, ValueError, OSError):
            pass  # a name this architecture does not have
    for name in policy["allowed"]:
        if name not in special or (name != "socket" and not policy["mdwe"]):
            allow(name)
    if policy["mdwe"]:  # MemoryDenyWriteExecute=yes: no W+X mapping, no exec added later
        for prot in (0, PROT_WRITE, PROT_EXEC):
            allow("mmap", seccomp.Arg(2, seccomp.MASKED_EQ, PROT_WRITE | PROT_EXEC, prot))
        for name in ("mprotect", "pkey_mprotect"):
            if name in policy["allowed"]:
                allow(name, seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, 0))
        if "shmat" in policy["allowed"]:
            allow("shmat", seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, 0))
    for family in policy["families"]:  # RestrictAddressFamilies=
        allow("socket", seccomp.Arg(0, seccomp.EQ, getattr(socket, family)))
    f.load()
    os.execv(sys.argv[2], sys.argv[2:])
    """
)

_WORKLOAD = textwrap.dedent(
    """
    import ctypes, hashlib, hmac, json, os, pty, secrets, socket, tempfile, threading, time
    import cbor2, serial, smbus2
    results = {}
    def check(name, func):
        try:
            results[name] = ["ok", func()]
        except OSError as exc:
            results[name] = ["refused", exc.errno]
    def ctypes_callback():
        callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 1)
        return callback(41)
    def serial_on_pty():
        controller, device = pty.openpty()
        port = serial.Serial(os.ttyname(device), 115200, timeout=1)
        os.write(controller, b"YY")
        data = port.read(2)
        port.close()
        return data.decode()
    def notify():
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        a.send(b"WATCHDOG=1")
        return b.recv(64).decode()
    def tcp():
        server = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(server.getsockname())
        conn, _ = server.accept()
        client.sendall(b"tc")
        return conn.recv(2).decode()
    def atomic_write():
        d = tempfile.mkdtemp()
        fd, tmp = tempfile.mkstemp(dir=d)
        os.write(fd, cbor2.dumps({"mode": "cruise"}))
        os.fsync(fd)
        os.close(fd)
        os.replace(tmp, os.path.join(d, "state"))
        return cbor2.loads(open(os.path.join(d, "state"), "rb").read())["mode"]
    def thread_and_sleep():
        t = threading.Thread(target=time.sleep, args=(0.001,))
        t.start()
        t.join()
        return True
    check("ctypes_callback", ctypes_callback)
    check("i2c_msg", lambda: len(smbus2.i2c_msg.write(0x76, [0xD0])))
    check("serial_on_pty", serial_on_pty)
    check("notify", notify)
    check("tcp", tcp)
    check("atomic_write", atomic_write)
    check("hmac", lambda: len(hmac.new(secrets.token_bytes(32), b"m", hashlib.sha256).digest()))
    check("thread_and_sleep", thread_and_sleep)
    check("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close())
    check("nice", lambda: os.nice(-1))
    check("setuid", lambda: os.setuid(0))
    print(json.dumps(results))
    """
)


def _python_with_seccomp() -> str | None:
    for candidate in (sys.executable, "/usr/bin/python3"):
        if (
            shutil.which(candidate)
            and subprocess.run(
                [candidate, "-c", "import seccomp"], capture_output=True, timeout=30
            ).returncode
            == 0
        ):
            return candidate
    return None


@needs_analyze
def test_cpython_runs_under_the_units_seccomp_policy(unit, tmp_path):
    policy_python = _python_with_seccomp()
    if policy_python is None:
        pytest.skip("no Python with the libseccomp binding (apt install python3-seccomp)")
    service = unit["Service"]
    policy = {
        "allowed": sorted(_allowed_syscalls(unit)),
        "mdwe": service["MemoryDenyWriteExecute"] == ["yes"],
        "families": " ".join(service["RestrictAddressFamilies"]).split(),
    }
    sandbox, workload = tmp_path / "sandbox.py", tmp_path / "workload.py"
    sandbox.write_text(_SANDBOX)
    workload.write_text(_WORKLOAD)
    result = subprocess.run(
        [policy_python, str(sandbox), json.dumps(policy), sys.executable, str(workload)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    if result.returncode != 0 and "seccomp" in result.stderr.lower() and not result.stdout:
        pytest.skip(f"cannot load a seccomp filter here: {result.stderr.strip()[-200:]}")
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout.splitlines()[-1])
    assert results["ctypes_callback"] == ["ok", 42]
    assert results["i2c_msg"] == ["ok", 1]
    assert results["serial_on_pty"] == ["ok", "YY"]
    assert results["notify"] == ["ok", "WATCHDOG=1"]
    assert results["tcp"] == ["ok", "tc"]
    assert results["atomic_write"] == ["ok", "cruise"]
    assert results["hmac"] == ["ok", 32]
    assert results["thread_and_sleep"] == ["ok", True]
    # The sandbox really is there: these are refused, not allowed.
    assert results["netlink"][0] == "refused"
    assert results["nice"][0] == "refused"
    assert results["setuid"][0] == "refused"


# --- hardware watchdog -----------------------------------------------------------------------


def _seconds(span: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|min|h)?", span.strip())
    assert match, f"not a simple time span: {span!r}"
    return (
        float(match.group(1)) * {"ms": 0.001, "s": 1, None: 1, "min": 60, "h": 3600}[match.group(2)]
    )


def test_hardware_watchdog_fits_the_pi_watchdog():
    conf = parse_unit((DEPLOY / "watchdog.conf").read_text())
    runtime = _seconds(_single(conf, "Manager", "RuntimeWatchdogSec"))
    # bcm2835-wdt (Pi 1-5) counts at most 0xFFFFF ticks of 1/65536 s: 15 whole seconds.
    assert 0 < runtime <= 15
    assert _seconds(_single(conf, "Manager", "RebootWatchdogSec")) > 0


# --- udev rules ------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*([A-Z_]+(?:\{[^}]+\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')
_MATCH_KEYS = {"SUBSYSTEM", "KERNEL", "ACTION", "DRIVERS", "SUBSYSTEMS", "KERNELS", "ATTRS", "ENV"}


def _udev_rules() -> list[dict[str, tuple[str, str]]]:
    rules = []
    for raw in (DEPLOY / "udev" / "99-fsw.rules").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = _TOKEN.findall(line)
        assert "".join(f'{k}{op}"{v}"' for k, op, v in tokens) == re.sub(
            r"\s*,\s*|\s+(?=[A-Z])", "", line
        ), f"unparsed text in udev rule: {line!r}"
        rule = {}
        for key, op, value in tokens:
            base = key.split("{")[0]
            if base in _MATCH_KEYS:
                assert op in ("==", "!="), f"{key} must be matched, not assigned: {line!r}"
            else:
                assert op in ("=", "+=", ":="), f"{key} must be assigned: {line!r}"
            rule[key] = (op, value)
        rules.append(rule)
    return rules


def _rule_for(symlink: str) -> dict[str, tuple[str, str]]:
    found = [r for r in _udev_rules() if r.get("SYMLINK") == ("+=", symlink)]
    assert len(found) == 1, f"expected one rule making /dev/{symlink}"
    return found[0]


def test_udev_names_the_radio_by_its_usb_ids():
    rule = _rule_for("fsw-radio")
    assert rule["SUBSYSTEM"] == ("==", "tty")
    assert rule["ATTRS{idVendor}"] == ("==", "0403")
    assert rule["ATTRS{idProduct}"] == ("==", "6001")
    assert rule["GROUP"] == ("=", "dialout")
    assert rule["MODE"] == ("=", "0660")


def test_udev_names_the_lidar_uart():
    rule = _rule_for("fsw-lidar")
    assert rule["KERNEL"] == ("==", "ttyAMA0")
    assert rule["GROUP"] == ("=", "dialout")
    assert rule["MODE"] == ("=", "0660")


def test_udev_gives_i2c_to_its_group():
    (rule,) = [r for r in _udev_rules() if r.get("SUBSYSTEM") == ("==", "i2c-dev")]
    assert rule["GROUP"] == ("=", "i2c")
    assert rule["MODE"] == ("=", "0660")


def test_udev_rules_pass_udevadm_verify():
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        pytest.skip("udevadm is not installed")
    probe = subprocess.run([udevadm, "verify", "--help"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("this udevadm has no verify command (systemd >= 253 needed)")
    result = subprocess.run(
        [udevadm, "verify", str(DEPLOY / "udev" / "99-fsw.rules")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the reference bench's device map --------------------------------------------------------


def test_reference_config_is_the_reference_bench():
    devmap = load_device_map(DEPLOY / "fsw.toml")
    i2c = {d.name: (d.driver, d.bus, d.address) for d in devmap.devices if d.address is not None}
    assert i2c == {
        "baro": ("bme280", 1, 0x76),
        "mag": ("lis3mdl", 1, 0x1C),
        "imu": ("mpu6050", 1, 0x68),
        "power": ("ina219", 1, 0x41),
        "pwm": ("pca9685", 1, 0x40),
    }
    (lidar,) = [d for d in devmap.devices if d.name == "lidar"]
    assert (lidar.driver, lidar.port, lidar.baud) == ("tfmini", "/dev/fsw-lidar", 115200)
    options = {d.name: dict(d.options) for d in devmap.devices}
    assert options["power"] == {"shunt_ohms": 0.1, "max_current_a": 3.2}
    assert options["pwm"] == {"pwm_hz": 50}
    assert all(d.backend.value == "hardware" for d in devmap.devices)
    link = devmap.extra["link"]
    assert (link["transport"], link["port"], link["baud"]) == ("serial", "/dev/fsw-radio", 57600)
    assert link["key_file"] == "/etc/fsw/uplink.key"
    assert devmap.extra["state"]["dir"] == "/var/lib/fsw"


def test_every_section_of_the_reference_config_is_explained():
    lines = (DEPLOY / "fsw.toml").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("["):
            above = [x for x in lines[max(0, i - 3) : i] if x.strip()]
            assert above and above[-1].startswith("#"), f"no comment above {line!r}"


def test_reference_config_probes_on_the_simulated_bench(tmp_path, capsys):
    text = (DEPLOY / "fsw.toml").read_text()
    simulated = tmp_path / "fsw-sim.toml"
    simulated.write_text(text.replace('backend = "hardware"', 'backend = "sim"'))
    status = fsw_main(["bench", "probe", "--config", str(simulated)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "6 of 6 devices OK" in out
