"""deploy/install.sh: its dry run, its idempotency decisions and its boot-file edits.

The dry run must print every step and change nothing, without root, on any Linux machine. With
``--root DIR`` it inspects a fake file system (a Pi 4 or Pi 5 boot partition, an existing install)
instead of this machine's, which is how the Pi-specific and "already done" paths are tested here.
The boot-file editors are pure shell functions: the tests source the script and run them on
sample files, including a real (non-dry) write into a temporary directory.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "install.sh"
BASH = shutil.which("bash") or "/bin/bash"

#: Paths a real install creates on this machine; a dry run must leave each as it found it.
HOST_PATHS = [
    "/opt/fsw",
    "/etc/fsw",
    "/etc/systemd/system/fsw.service",
    "/etc/systemd/system/fsw.service.d",
    "/etc/udev/rules.d/99-fsw.rules",
    "/etc/systemd/system.conf.d/fsw-watchdog.conf",
    "/etc/modules-load.d/fsw.conf",
]


def run_install(
    *args: str, user: str | None = None, script: Path = INSTALL
) -> subprocess.CompletedProcess[str]:
    command = [BASH, str(script), *args]
    if user is not None:
        setpriv = shutil.which("setpriv")
        assert setpriv is not None
        entry = pwd.getpwnam(user)
        command = [setpriv, f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups",
                   *command]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd="/")


def source_and_run(snippet: str) -> subprocess.CompletedProcess[str]:
    """Run shell code with install.sh's functions loaded (sourcing does not run main)."""
    return subprocess.run(
        [BASH, "-c", f'source "$1"\n{snippet}', "bash", str(INSTALL)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def tree_digest(root: Path) -> dict[str, str]:
    """Every path under root with its type, mode and content hash (or link target)."""
    digest = {}
    for path in sorted(root.rglob("*")):
        st_ = path.lstat()
        if path.is_symlink():
            value = "link:" + os.readlink(path)
        elif path.is_file():
            value = "file:" + hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            value = "dir"
        digest[str(path.relative_to(root))] = f"{value}:{st_.st_mode:o}:{st_.st_mtime_ns}"
    return digest


def host_state() -> dict[str, str]:
    state = {}
    for name in HOST_PATHS:
        path = Path(name)
        state[name] = f"{path.lstat().st_mtime_ns}" if os.path.lexists(path) else "absent"
    return state


def build_leftovers() -> set[str]:
    """What a pip build in the checkout would leave behind (a dry run must not)."""
    return {p.name for p in REPO.iterdir() if p.name in ("build", "dist") or ".egg-info" in p.name}


def executed_commands(output: str) -> list[str]:
    """Lines a real run prints for commands it executed ("    $ cmd")."""
    return [line for line in output.splitlines() if line.startswith("    $ ")]


def make_pi_root(root: Path, model: str, config: str, cmdline: str) -> Path:
    (root / "proc" / "device-tree").mkdir(parents=True)
    (root / "proc" / "device-tree" / "model").write_bytes(model.encode() + b"\0")
    (root / "etc").mkdir()
    (root / "etc" / "os-release").write_text("ID=debian\nVERSION_CODENAME=bookworm\n")
    (root / "boot" / "firmware").mkdir(parents=True)
    (root / "boot" / "firmware" / "config.txt").write_text(config)
    (root / "boot" / "firmware" / "cmdline.txt").write_text(cmdline)
    return root


#: Shaped like Raspberry Pi OS bookworm's stock files.
STOCK_CONFIG = """\
# For more options and information see
# http://rptl.io/configtxt
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on
dtparam=audio=on
camera_auto_detect=1
dtoverlay=vc4-kms-v3d
max_framebuffers=2
arm_64bit=1

[cm4]
otg_mode=1

[cm5]
dtoverlay=dwc2,dr_mode=host
"""
STOCK_CMDLINE = (
    "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 "
    "fsck.repair=yes rootwait quiet splash plymouth.ignore-serial-consoles\n"
)


@pytest.fixture
def fake_root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fsw-root-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


# --- the script as a whole -------------------------------------------------------------------


def test_script_is_valid_bash():
    result = subprocess.run([BASH, "-n", str(INSTALL)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_script_passes_shellcheck():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt install shellcheck)")
    result = subprocess.run([shellcheck, str(INSTALL)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_help_lists_the_options():
    result = run_install("--help")
    assert result.returncode == 0
    for option in ("--dry-run", "--wheel", "--prefix", "--config-dir", "--no-enable", "--rollback"):
        assert option in result.stdout


def test_unknown_option_is_refused():
    result = run_install("--dry-run", "--frobnicate")
    assert result.returncode != 0
    assert "unknown option: --frobnicate" in result.stderr


def test_relative_prefix_is_refused():
    result = run_install("--dry-run", "--prefix", "opt/fsw")
    assert result.returncode != 0
    assert "must be an absolute path" in result.stderr


def test_dry_run_prints_every_step_and_changes_nothing():
    before_host, before_repo = host_state(), build_leftovers()
    result = run_install("--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert executed_commands(out) == []
    dry = [line for line in out.splitlines() if line.startswith("[dry-run] ")]
    assert dry, out

    # Each step either is already done ([ok]) or shows the command it would run.
    def shown(pattern: str) -> bool:
        return re.search(rf"^\[dry-run\] {pattern}$", out, re.MULTILINE) is not None

    useradd = r"useradd --system .*--shell /usr/sbin/nologin .* fsw"
    assert shown(useradd) or "[ok] user fsw exists" in out
    current = "is installed and current" in out
    assert shown(r"\S*python3 -m venv /opt/fsw/releases/\S+") or current
    assert shown(r"\S+/bin/python -m pip install .*") or current
    unit = r"install .* \S+/deploy/systemd/fsw.service /etc/systemd/system/fsw.service"
    assert shown(unit) or "[ok] /etc/systemd/system/fsw.service is up to date" in out
    assert shown("systemctl enable --now fsw.service") or "enabled and running" in out
    assert "fsw bench probe --config /etc/fsw/fsw.toml" in out
    assert "journalctl -u fsw -f" in out
    assert host_state() == before_host
    assert build_leftovers() == before_repo


def test_dry_run_needs_no_root():
    if os.geteuid() != 0:
        result = run_install("--dry-run")
        assert result.returncode == 0, result.stderr
        return
    if shutil.which("setpriv") is None:
        pytest.skip("running as root and setpriv (util-linux) is missing to drop privileges")
    # A world-readable copy of what the script reads, run as nobody.
    copy = Path(tempfile.mkdtemp(prefix="fsw-norroot-"))
    try:
        for item in ("deploy", "hal", "flight", "pyproject.toml"):
            src = REPO / item
            if src.is_dir():
                shutil.copytree(src, copy / item, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(src, copy / item)
        for path in [copy, *copy.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        nobody = run_install("--dry-run", user="nobody", script=copy / "deploy" / "install.sh")
        assert nobody.returncode == 0, nobody.stderr
        assert "[dry-run] " in nobody.stdout
        real = run_install(user="nobody", script=copy / "deploy" / "install.sh")
        assert real.returncode != 0
        assert "run as root" in real.stderr
    finally:
        shutil.rmtree(copy)


# --- Pi boot configuration, through --root -----------------------------------------------------


def test_dry_run_on_a_stock_pi4_enables_i2c_and_the_full_uart(fake_root):
    root = make_pi_root(fake_root, "Raspberry Pi 4 Model B Rev 1.5", STOCK_CONFIG, STOCK_CMDLINE)
    before = tree_digest(root)
    result = run_install("--dry-run", "--root", str(root), "--no-enable")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    config = f"{root}/boot/firmware/config.txt"
    assert "[ok] board: Raspberry Pi 4 Model B Rev 1.5" in out
    assert f"[dry-run] edit {config}: set 'dtparam=i2c_arm=on'" in out
    assert f"[dry-run] edit {config}: set 'enable_uart=1'" in out
    assert f"[dry-run] edit {config}: set 'dtoverlay=disable-bt'" in out
    assert f"[dry-run] edit {root}/boot/firmware/cmdline.txt: remove the serial console" in out
    assert "REBOOT NEEDED" in out
    assert "not enabling fsw.service (--no-enable)" in out
    assert "[dry-run] systemctl enable" not in out
    assert tree_digest(root) == before


def test_dry_run_on_a_pi5_uses_uart0_and_keeps_bluetooth(fake_root):
    root = make_pi_root(fake_root, "Raspberry Pi 5 Model B Rev 1.0", STOCK_CONFIG, STOCK_CMDLINE)
    result = run_install("--dry-run", "--root", str(root))
    assert result.returncode == 0, result.stderr
    assert "set 'dtparam=uart0=on'" in result.stdout
    assert "enable_uart" not in result.stdout
    assert "disable-bt" not in result.stdout


def test_dry_run_on_a_configured_pi_leaves_boot_files_alone(fake_root):
    config = STOCK_CONFIG.replace("#dtparam=i2c_arm=on", "dtparam=i2c_arm=on") + (
        "\n[all]\nenable_uart=1\ndtoverlay=disable-bt\n"
    )
    cmdline = STOCK_CMDLINE.replace("console=serial0,115200 ", "")
    root = make_pi_root(fake_root, "Raspberry Pi 4 Model B Rev 1.5", config, cmdline)
    result = run_install("--dry-run", "--root", str(root))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for line in ("dtparam=i2c_arm=on", "enable_uart=1", "dtoverlay=disable-bt"):
        assert f"[ok] config.txt has '{line}'" in out
    assert "[ok] no login console on the UART" in out
    assert "boot/firmware" not in "\n".join(
        x for x in out.splitlines() if x.startswith("[dry-run]")
    )
    assert "REBOOT NEEDED" not in out


# --- what an earlier install left is respected -------------------------------------------------


def _release_id(output: str) -> str:
    match = re.search(r"release (\S+) from ", output)
    assert match, output
    return match.group(1)


def test_installed_release_is_not_rebuilt(fake_root, tmp_path):
    # A wheel, not the live source tree, so the release id cannot change between the two runs.
    wheel = tmp_path / "fsw-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"not really a zip")
    release = "0.1.0-" + hashlib.sha256(wheel.read_bytes()).hexdigest()[:12]
    first = run_install("--dry-run", "--root", str(fake_root), "--wheel", str(wheel))
    assert _release_id(first.stdout) == release
    assert re.search(rf"^\[dry-run\] \S+/bin/python -m pip install .* {wheel}$", first.stdout, re.M)
    prefix = fake_root / "opt" / "fsw"
    (prefix / "releases" / release).mkdir(parents=True)
    (prefix / "releases" / release / ".fsw-release").write_text(f"id={release}\n")
    (prefix / "venv").symlink_to(f"releases/{release}")
    second = run_install("--dry-run", "--root", str(fake_root), "--wheel", str(wheel))
    assert second.returncode == 0, second.stderr
    assert f"[ok] release {release} is installed and current" in second.stdout
    assert "-m venv" not in second.stdout
    assert "pip install" not in second.stdout
    assert "venv.new" not in second.stdout


def test_a_new_release_keeps_the_current_one_for_rollback(fake_root):
    prefix = fake_root / "opt" / "fsw"
    for name in ("0.0.9-aaaaaaaaaaaa", "0.0.8-bbbbbbbbbbbb"):
        (prefix / "releases" / name).mkdir(parents=True)
        (prefix / "releases" / name / ".fsw-release").write_text(f"id={name}\n")
    (prefix / "venv").symlink_to("releases/0.0.9-aaaaaaaaaaaa")
    (prefix / "venv.prev").symlink_to("releases/0.0.8-bbbbbbbbbbbb")
    before = tree_digest(fake_root)
    result = run_install("--dry-run", "--root", str(fake_root))
    assert result.returncode == 0, result.stderr
    out, release = result.stdout, _release_id(result.stdout)
    assert f"[dry-run] ln -sfn releases/0.0.9-aaaaaaaaaaaa {prefix}/venv.prev.new" in out
    assert f"[dry-run] ln -sfn releases/{release} {prefix}/venv.new" in out
    assert f"[dry-run] mv -T {prefix}/venv.new {prefix}/venv" in out
    assert f"[dry-run] rm -rf -- {prefix}/releases/0.0.8-bbbbbbbbbbbb" in out  # older than prev
    assert "rm -rf -- " + str(prefix / "releases" / "0.0.9-aaaaaaaaaaaa") not in out
    assert tree_digest(fake_root) == before


def test_existing_config_and_key_are_kept(fake_root):
    etc = fake_root / "etc" / "fsw"
    etc.mkdir(parents=True)
    (etc / "fsw.toml").write_text("# the operator's own\n")
    (etc / "uplink.key").write_text("00" * 32 + "\n")
    (etc / "uplink.key").chmod(0o600)
    result = run_install("--dry-run", "--root", str(fake_root))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[ok] /etc/fsw/fsw.toml exists: keeping the operator's configuration" in out
    assert "[ok] /etc/fsw/uplink.key exists: keeping it" in out
    assert "keygen" not in out
    assert f"{etc}/fsw.toml\n" not in out  # never a command targeting the operator's file
    assert (etc / "fsw.toml").read_text() == "# the operator's own\n"


def test_other_paths_go_into_a_drop_in(fake_root):
    result = run_install(
        "--dry-run", "--root", str(fake_root), "--prefix", "/srv/fsw", "--config-dir", "/srv/etc"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"write {fake_root}/etc/systemd/system/fsw.service.d/10-paths.conf" in out
    assert "[dry-run]     | ExecStart=/srv/fsw/venv/bin/fsw run --config /srv/etc/fsw.toml" in out


# --- rollback --------------------------------------------------------------------------------


def test_rollback_swaps_the_release_links(fake_root):
    prefix = fake_root / "opt" / "fsw"
    for name in ("new", "old"):
        (prefix / "releases" / name).mkdir(parents=True)
        (prefix / "releases" / name / ".fsw-release").write_text(f"id={name}\n")
    (prefix / "venv").symlink_to("releases/new")
    (prefix / "venv.prev").symlink_to("releases/old")
    before = tree_digest(fake_root)
    result = run_install("--dry-run", "--root", str(fake_root), "--rollback")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"[dry-run] ln -sfn releases/old {prefix}/venv.new" in out
    assert f"[dry-run] ln -sfn releases/new {prefix}/venv.prev.new" in out
    assert out.index("venv.new") < out.index("venv.prev.new")  # the running link first
    assert tree_digest(fake_root) == before


def test_rollback_without_a_previous_release_fails(fake_root):
    prefix = fake_root / "opt" / "fsw"
    (prefix / "releases" / "only").mkdir(parents=True)
    (prefix / "venv").symlink_to("releases/only")
    result = run_install("--dry-run", "--root", str(fake_root), "--rollback")
    assert result.returncode != 0
    assert "no previous release" in result.stderr


# --- boot-file editors (pure functions) --------------------------------------------------------

I2C_REGEX = "^[[:space:]]*#?[[:space:]]*dtparam=i2c_arm="


def config_with_line(tmp: Path, content: str, line: str, regex: str = I2C_REGEX) -> str:
    path = tmp / "config.txt"
    path.write_text(content)
    result = source_and_run(f'config_txt_with_line "{path}" "{line}" "{regex}"')
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_commented_default_is_switched_on_in_place(tmp_path):
    out = config_with_line(tmp_path, STOCK_CONFIG, "dtparam=i2c_arm=on")
    assert out.splitlines()[2] == "dtparam=i2c_arm=on"
    assert out.count("i2c_arm") == 1
    assert len(out.splitlines()) == len(STOCK_CONFIG.splitlines())


def test_setting_that_is_off_is_turned_on(tmp_path):
    out = config_with_line(tmp_path, "dtparam=i2c_arm=off\n", "dtparam=i2c_arm=on")
    assert out == "dtparam=i2c_arm=on\n"


def test_new_line_goes_under_all_when_the_file_ends_in_a_conditional_section(tmp_path):
    out = config_with_line(tmp_path, STOCK_CONFIG, "enable_uart=1", "^#?enable_uart=")
    assert out.endswith("[cm5]\ndtoverlay=dwc2,dr_mode=host\n[all]\nenable_uart=1\n")


def test_new_line_is_appended_directly_inside_all(tmp_path):
    out = config_with_line(tmp_path, "[all]\nfoo=1\n", "enable_uart=1", "^#?enable_uart=")
    assert out == "[all]\nfoo=1\nenable_uart=1\n"


_CONFIG_LINES = st.sampled_from(
    [
        "# comment",
        "",
        "#dtparam=i2c_arm=on",
        "dtparam=i2c_arm=off",
        "dtparam=i2c_arm=on",
        "dtparam=audio=on",
        "[pi4]",
        "[cm5]",
        "[all]",
        "arm_64bit=1",
        "dtoverlay=vc4-kms-v3d",
    ]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(_CONFIG_LINES, max_size=12))
def test_config_edit_is_idempotent_and_keeps_other_lines(tmp_path, lines):
    content = "".join(f"{line}\n" for line in lines)
    once = config_with_line(tmp_path, content, "dtparam=i2c_arm=on")
    twice = config_with_line(tmp_path, once, "dtparam=i2c_arm=on")
    assert twice == once
    assert "dtparam=i2c_arm=on" in once.splitlines()
    # Nothing else changes: the output is the input with at most one line replaced, or with
    # the new line (and perhaps an [all] header) appended.
    old, new = content.splitlines(), once.splitlines()
    if len(new) == len(old):
        assert sum(a != b for a, b in zip(old, new, strict=True)) <= 1
    else:
        assert new[: len(old)] == old
        assert new[len(old) :] in (["dtparam=i2c_arm=on"], ["[all]", "dtparam=i2c_arm=on"])


def cmdline_without_console(tmp: Path, content: str) -> str:
    path = tmp / "cmdline.txt"
    path.write_text(content)
    result = source_and_run(f'cmdline_without_serial_console "{path}"')
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("console", ["console=serial0,115200", "console=ttyAMA0,115200",
                                     "console=ttyS0,115200", "console=serial0"])  # fmt: skip
def test_serial_console_is_removed_and_the_rest_kept(tmp_path, console):
    out = cmdline_without_console(
        tmp_path, f"{console} console=tty1 root=/dev/mmcblk0p2 rootwait\n"
    )
    assert out == "console=tty1 root=/dev/mmcblk0p2 rootwait\n"
    assert cmdline_without_console(tmp_path, out) == out


def test_cmdline_check_tells_serial_from_other_consoles(tmp_path):
    path = tmp_path / "cmdline.txt"
    checks = {"console=serial0,115200 console=tty1 rootwait": 0, "console=tty1 rootwait": 1,
              "console=serial00 rootwait": 1, "rootwait console=ttyAMA0": 0}  # fmt: skip
    for line, expected in checks.items():
        path.write_text(line + "\n")
        assert source_and_run(f'cmdline_has_serial_console "{path}"').returncode == expected, line


def test_boot_file_write_keeps_a_backup_and_is_idempotent(tmp_path):
    path = tmp_path / "cmdline.txt"
    path.write_text(STOCK_CMDLINE)
    snippet = f"""
        DRY_RUN=0
        new="$(cmdline_without_serial_console "{path}")"
        write_boot_file "{path}" "$new" "remove the serial console"
        echo "changed=$CHANGED reboot=$REBOOT_NEEDED"
        REBOOT_NEEDED=0
        write_boot_file "{path}" "$(cmdline_without_serial_console "{path}")" "again"
        echo "changed=$CHANGED reboot=$REBOOT_NEEDED"
    """
    result = source_and_run(snippet)
    assert result.returncode == 0, result.stderr
    assert "changed=1 reboot=1\n" in result.stdout
    assert result.stdout.endswith("changed=0 reboot=0\n")
    assert path.read_text() == STOCK_CMDLINE.replace("console=serial0,115200 ", "")
    assert (tmp_path / "cmdline.txt.fsw-orig").read_text() == STOCK_CMDLINE
    assert not (tmp_path / "cmdline.txt.fsw-new").exists()
