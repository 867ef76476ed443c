#!/usr/bin/env bash
# install.sh - put the flight software on a Raspberry Pi (Raspberry Pi OS bookworm, arm64/armhf).
#
# Idempotent: every step first looks at what is there and acts only on a difference, so a second
# run changes nothing and succeeds. --dry-run prints each command it would run, prefixed
# "[dry-run]", and changes nothing; it needs no root and runs on any Linux machine.
#
# Software goes into versioned releases, each its own virtualenv:
#   <prefix>/releases/<version>-<hash>/   one release (hash of the wheel or of the source tree)
#   <prefix>/venv      -> releases/...    the release fsw.service runs (switched atomically)
#   <prefix>/venv.prev -> releases/...    the one before, kept for --rollback
# A virtualenv cannot be moved (its scripts name their interpreter by absolute path), which is
# why releases stay where they were built and only the symlinks change.
#
# Everything else: /etc/fsw/fsw.toml (written once, never overwritten), /etc/fsw/uplink.key
# (generated once), the systemd unit, the udev rules, the hardware watchdog, I2C and UART.
# See deploy/README.md.

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: sudo deploy/install.sh [OPTIONS]

Install the flight software as the systemd service fsw.service.

Options:
  --wheel PATH        install this wheel (default: build from the source tree containing
                      this script)
  --wheelhouse DIR    install offline: take every package from DIR (pip --no-index)
  --prefix DIR        where releases and the venv go (default /opt/fsw)
  --config-dir DIR    configuration directory (default /etc/fsw)
  --no-enable         install everything but do not enable or start fsw.service
  --rollback          switch back to the previous release (<prefix>/venv.prev) and restart
  --force             install even when this is not a Raspberry Pi
  --dry-run           print every step and command, change nothing (no root needed)
  --root DIR          with --dry-run: look for existing files under DIR instead of /
  -h, --help          this help
EOF
}

# ----------------------------------------------------------------------------------------------
# Settings (set by parse_args)
DRY_RUN=0
NO_ENABLE=0
ROLLBACK=0
FORCE=0
WHEEL=""
WHEELHOUSE=""
PREFIX=/opt/fsw
CONFIG_DIR=/etc/fsw
ROOT=""
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"

readonly SERVICE=fsw.service
readonly FSW_USER=fsw
readonly APT_PACKAGES=(python3-venv i2c-tools)
readonly UNIT_DIR=/etc/systemd/system
readonly UDEV_RULES=/etc/udev/rules.d/99-fsw.rules
readonly WATCHDOG_DROPIN=/etc/systemd/system.conf.d/fsw-watchdog.conf
readonly MODULES_CONF=/etc/modules-load.d/fsw.conf
# What pip needs from the source tree to build the package.
readonly PACKAGED_ITEMS=(pyproject.toml README.md hal flight)

# State gathered while running
IS_PI=0
IS_PI5=0
BOOT_DIR=""
REBOOT_NEEDED=0
SYSTEMD_CHANGED=0
UDEV_CHANGED=0
RESTART_NEEDED=0
CHANGED=0           # set by the install_* helpers: 1 if they changed (or would change) something
RELEASE_ID=""
TMP_DIR=""

# ----------------------------------------------------------------------------------------------
# Output and command helpers

step() { printf '\n==> %s\n' "$*"; }
ok()   { printf '    [ok] %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf '    [warn] %s\n' "$*" >&2; }
die()  { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

# Print a command as a shell would read it back.
quote_cmd() {
    local out="" arg
    for arg in "$@"; do
        out+="$(printf '%q' "$arg") "
    done
    printf '%s' "${out% }"
}

# Run a command that changes the system, or only print it under --dry-run.
run() {
    if ((DRY_RUN)); then
        printf '[dry-run] %s\n' "$(quote_cmd "$@")"
    else
        printf '    $ %s\n' "$(quote_cmd "$@")"
        "$@"
    fi
}

# Describe a change made by this script's own code (no single command to show).
act() {
    if ((DRY_RUN)); then
        printf '[dry-run] %s\n' "$*"
    else
        printf '    %s\n' "$*"
    fi
}

# A path on the system being installed: under --root for dry-run checks, else itself.
r() { printf '%s%s' "$ROOT" "$1"; }

cleanup() {
    if [[ -n "$TMP_DIR" && -d "$TMP_DIR" ]]; then
        rm -rf -- "$TMP_DIR"
    fi
}

make_tmp_dir() {
    if [[ -z "$TMP_DIR" ]]; then
        TMP_DIR="$(mktemp -d)"
    fi
}

# ----------------------------------------------------------------------------------------------
# File helpers: each compares first and sets CHANGED=1 only when it acts.

# install_file SRC DEST MODE OWNER GROUP: copy SRC to DEST unless identical with these attributes.
install_file() {
    local src="$1" dest="$2" mode="$3" owner="$4" group="$5"
    CHANGED=0
    if [[ -f "$(r "$dest")" ]] && cmp -s "$src" "$(r "$dest")" &&
        [[ "$(stat -c '%a %U %G' "$(r "$dest")")" == "${mode#0} $owner $group" ]]; then
        ok "$dest is up to date"
        return 0
    fi
    run install -D -m "$mode" -o "$owner" -g "$group" "$src" "$(r "$dest")"
    CHANGED=1
}

# install_text DEST MODE TEXT: write TEXT (plus a final newline) to DEST unless already so.
install_text() {
    local dest="$1" mode="$2" text="$3"
    CHANGED=0
    if [[ -f "$(r "$dest")" ]] && cmp -s <(printf '%s\n' "$text") "$(r "$dest")" &&
        [[ "$(stat -c '%a' "$(r "$dest")")" == "${mode#0}" ]]; then
        ok "$dest is up to date"
        return 0
    fi
    if ((DRY_RUN)); then
        local lines
        lines="$(printf '%s\n' "$text" | wc -l)"
        if ((lines <= 6)); then
            act "write $(r "$dest") (mode $mode):"
            printf '%s\n' "$text" | sed 's/^/[dry-run]     | /'
        else
            act "write $(r "$dest") (mode $mode, $lines lines)"
        fi
    else
        [[ -d "$(dirname "$dest")" ]] || run install -d -m 0755 "$(dirname "$dest")"
        printf '%s\n' "$text" >"$(r "$dest").fsw-new"
        chmod "$mode" "$(r "$dest").fsw-new"
        mv -f "$(r "$dest").fsw-new" "$(r "$dest")"
        note "wrote $dest"
    fi
    CHANGED=1
}

# ----------------------------------------------------------------------------------------------
# Boot configuration (config.txt, cmdline.txt). Pure functions print the new content, so the
# tests can run them on sample files; write_boot_file applies a result.

# config_txt_with_line FILE LINE [REGEX]: FILE's content with LINE in force. Nothing changes if
# LINE is already there uncommented. Else the first line matching REGEX (e.g. a commented-out or
# "off" form of the same setting) is replaced by LINE; else LINE is appended, after an [all]
# section header when the file ends inside a conditional section such as [pi4] or [cm5].
config_txt_with_line() {
    local file="$1" line="$2" regex="${3:-}"
    awk -v line="$line" -v regex="$regex" '
        { lines[NR] = $0 }
        $0 == line { present = 1 }
        regex != "" && !replaced_at && $0 ~ regex { replaced_at = NR }
        /^[[:space:]]*\[[^]]*\][[:space:]]*$/ { section = $0; gsub(/[[:space:]]/, "", section) }
        END {
            if (present || !replaced_at) {
                for (i = 1; i <= NR; i++) print lines[i]
            } else {
                for (i = 1; i <= NR; i++) print (i == replaced_at ? line : lines[i])
            }
            if (!present && !replaced_at) {
                if (section != "" && section != "[all]") print "[all]"
                print line
            }
        }' "$file"
}

# cmdline_without_serial_console FILE: the kernel command line without console= entries on the
# UART (serial0/serial1/ttyAMA0/ttyS0), which must carry the LiDAR, not a login console.
cmdline_without_serial_console() {
    awk '{
        out = ""
        for (i = 1; i <= NF; i++) {
            if ($i ~ /^console=(serial[01]|ttyAMA0|ttyS0)(,.*)?$/) continue
            out = (out == "" ? $i : out " " $i)
        }
        print out
    }' "$1"
}

cmdline_has_serial_console() {
    grep -Eq '(^|[[:space:]])console=(serial[01]|ttyAMA0|ttyS0)(,|[[:space:]]|$)' "$1"
}

# write_boot_file FILE NEW_CONTENT WHAT: replace FILE (on the FAT boot partition) by
# NEW_CONTENT if different. Keeps a one-time backup FILE.fsw-orig; writes a sibling file and
# renames it over the original so a power cut leaves one whole version or the other.
write_boot_file() {
    local file="$1" new="$2" what="$3"
    CHANGED=0
    if cmp -s <(printf '%s\n' "$new") "$file"; then
        return 0
    fi
    CHANGED=1
    REBOOT_NEEDED=1
    if ((DRY_RUN)); then
        act "edit $file: $what"
        return 0
    fi
    [[ -e "$file.fsw-orig" ]] || cp -p -- "$file" "$file.fsw-orig"
    printf '%s\n' "$new" >"$file.fsw-new"
    sync
    mv -f -- "$file.fsw-new" "$file"
    sync
    note "edited $file: $what (original kept as $file.fsw-orig)"
}

# ensure_config_line LINE REGEX: put LINE into config.txt (see config_txt_with_line).
ensure_config_line() {
    local line="$1" regex="$2" file
    file="$(r "$BOOT_DIR")/config.txt"
    if [[ ! -f "$file" ]]; then
        if ((DRY_RUN)); then
            warn "$file not found (not a Pi?)"
            act "edit $file: set '$line'"
            REBOOT_NEEDED=1
            return 0
        fi
        die "$file not found: is this Raspberry Pi OS?"
    fi
    write_boot_file "$file" "$(config_txt_with_line "$file" "$line" "$regex")" "set '$line'"
    ((CHANGED)) || ok "config.txt has '$line'"
}

ensure_no_serial_console() {
    local file
    file="$(r "$BOOT_DIR")/cmdline.txt"
    if [[ ! -f "$file" ]]; then
        if ((DRY_RUN)); then
            warn "$file not found (not a Pi?)"
            act "edit $file: remove console=serial0,..."
            REBOOT_NEEDED=1
            return 0
        fi
        die "$file not found: is this Raspberry Pi OS?"
    fi
    if ! cmdline_has_serial_console "$file"; then
        ok "no login console on the UART"
        return 0
    fi
    write_boot_file "$file" "$(cmdline_without_serial_console "$file")" \
        "remove the serial console"
}

# ----------------------------------------------------------------------------------------------
# Steps

parse_args() {
    while (($#)); do
        case "$1" in
            --wheel) WHEEL="${2:?--wheel needs a path}"; shift 2 ;;
            --wheelhouse) WHEELHOUSE="${2:?--wheelhouse needs a directory}"; shift 2 ;;
            --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
            --config-dir) CONFIG_DIR="${2:?--config-dir needs a directory}"; shift 2 ;;
            --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
            --no-enable) NO_ENABLE=1; shift ;;
            --rollback) ROLLBACK=1; shift ;;
            --force) FORCE=1; shift ;;
            --dry-run) DRY_RUN=1; shift ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; die "unknown option: $1" ;;
        esac
    done

    local dir
    for dir in "$PREFIX" "$CONFIG_DIR"; do
        [[ "$dir" == /* ]] || die "$dir: must be an absolute path"
        [[ "$dir" != *[[:space:]]* ]] || die "$dir: must not contain white space"
        case "$dir" in
            /home/* | /root/* | /run/user/*)
                die "$dir: fsw.service cannot see it (ProtectHome=yes)" ;;
        esac
    done
    PREFIX="${PREFIX%/}"
    CONFIG_DIR="${CONFIG_DIR%/}"
    if [[ -n "$ROOT" ]]; then
        ((DRY_RUN)) || die "--root is only for --dry-run"
        [[ -d "$ROOT" ]] || die "--root $ROOT: no such directory"
        ROOT="$(cd "$ROOT" && pwd)"
    fi
    if [[ -n "$WHEEL" ]]; then
        [[ -f "$WHEEL" && "$WHEEL" == *.whl ]] || die "--wheel $WHEEL: not a wheel file"
        WHEEL="$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")"
    elif ((!ROLLBACK)); then
        [[ -f "$SOURCE_DIR/pyproject.toml" ]] ||
            die "no pyproject.toml in $SOURCE_DIR: give --wheel PATH"
    fi
    if [[ -n "$WHEELHOUSE" ]]; then
        [[ -d "$WHEELHOUSE" ]] || die "--wheelhouse $WHEELHOUSE: no such directory"
        WHEELHOUSE="$(cd "$WHEELHOUSE" && pwd)"
    fi
    if ((!DRY_RUN)) && ((EUID != 0)); then
        die "run as root (sudo), or try --dry-run"
    fi
}

check_platform() {
    step "Checking the platform"
    local model="" arch codename=""
    if [[ -r "$(r /proc/device-tree/model)" ]]; then
        model="$(tr -d '\0' <"$(r /proc/device-tree/model)")"
    fi
    if [[ "$model" == "Raspberry Pi"* ]]; then
        IS_PI=1
        ok "board: $model"
        case "$model" in
            "Raspberry Pi 5"* | "Raspberry Pi Compute Module 5"*) IS_PI5=1 ;;
        esac
    elif ((DRY_RUN || FORCE)); then
        warn "not a Raspberry Pi (${model:-no device-tree model}); continuing"
    else
        die "not a Raspberry Pi (${model:-no device-tree model}); use --force to install anyway"
    fi

    if [[ -r "$(r /etc/os-release)" ]]; then
        codename="$(sed -n 's/^VERSION_CODENAME=//p' "$(r /etc/os-release)" | tr -d '"')"
    fi
    if [[ "$codename" == bookworm ]]; then
        ok "OS: bookworm"
    else
        warn "OS is '${codename:-unknown}', not bookworm: untested"
    fi

    if command -v dpkg >/dev/null; then
        arch="$(dpkg --print-architecture)"
    else
        arch="$(uname -m)"
    fi
    case "$arch" in
        arm64 | armhf) ok "architecture: $arch" ;;
        *) warn "architecture $arch: the flight software targets arm64/armhf" ;;
    esac

    if [[ -d "$(r /boot/firmware)" ]]; then
        BOOT_DIR=/boot/firmware
    elif [[ -f "$(r /boot/config.txt)" ]]; then
        BOOT_DIR=/boot
    else
        BOOT_DIR=/boot/firmware
    fi

    if ! command -v python3 >/dev/null; then
        if ((DRY_RUN)); then warn "python3 not found"; else die "python3 not found"; fi
    elif ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        warn "python3 is older than 3.11, which the flight software requires"
        ((DRY_RUN)) || die "python3 >= 3.11 required"
    fi
}

enable_interfaces() {
    step "Enabling I2C and the full UART"
    local rc="" has_split_serial=0
    if ((!IS_PI && !DRY_RUN)); then
        warn "not a Raspberry Pi: leaving the boot configuration alone (--force)"
        return 0
    fi
    if [[ -z "$ROOT" ]] && command -v raspi-config >/dev/null; then
        rc="$(command -v raspi-config)"
        if grep -q 'do_serial_hw' "$rc"; then
            has_split_serial=1
        fi
    fi

    if [[ -n "$rc" ]]; then
        if [[ "$(raspi-config nonint get_i2c 2>/dev/null || true)" == 0 ]]; then
            ok "I2C enabled"
        else
            run raspi-config nonint do_i2c 0
        fi
    else
        ensure_config_line "dtparam=i2c_arm=on" '^[[:space:]]*#?[[:space:]]*dtparam=i2c_arm='
    fi
    # raspi-config loads i2c-dev through /etc/modules; this makes it explicit on any image.
    install_text "$MODULES_CONF" 0644 "# Installed by fsw deploy/install.sh: /dev/i2c-N for the flight software
i2c-dev"

    if ((has_split_serial)); then
        if [[ "$(raspi-config nonint get_serial_hw 2>/dev/null || true)" == 0 ]]; then
            ok "UART enabled"
        else
            run raspi-config nonint do_serial_hw 0
            REBOOT_NEEDED=1
        fi
        if cmdline_has_serial_console "$BOOT_DIR/cmdline.txt"; then
            run raspi-config nonint do_serial_cons 1
            REBOOT_NEEDED=1
        else
            ok "no login console on the UART"
        fi
    else
        if ((IS_PI5)); then
            ensure_config_line "dtparam=uart0=on" '^[[:space:]]*#?[[:space:]]*dtparam=uart0='
        else
            ensure_config_line "enable_uart=1" '^[[:space:]]*#?[[:space:]]*enable_uart='
        fi
        ensure_no_serial_console
    fi

    # The full UART: on a Pi 3/4/Zero 2 W the PL011 drives Bluetooth unless this overlay moves
    # it to the header (GPIO14/15 become ttyAMA0). A Pi 5 has its own UART for Bluetooth.
    if ((!IS_PI5)); then
        ensure_config_line "dtoverlay=disable-bt" '^[[:space:]]*#[[:space:]]*dtoverlay=disable-bt[[:space:]]*$'
        if systemctl is-enabled --quiet hciuart.service 2>/dev/null; then
            run systemctl disable hciuart.service
        fi
    fi
}

install_packages() {
    step "Installing apt packages: ${APT_PACKAGES[*]}"
    local pkg missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            ok "$pkg installed"
        else
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]})); then
        run env DEBIAN_FRONTEND=noninteractive apt-get update
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            "${missing[@]}"
    fi
}

create_user() {
    step "Creating the system user $FSW_USER"
    local group groups=(i2c dialout) current=""
    for group in "${groups[@]}"; do
        if getent group "$group" >/dev/null; then
            ok "group $group exists"
        else
            run groupadd --system "$group"
        fi
    done
    if getent group gpio >/dev/null; then
        groups+=(gpio)
    fi

    if getent passwd "$FSW_USER" >/dev/null; then
        ok "user $FSW_USER exists"
        current=" $(id -nG "$FSW_USER") "
    elif getent group "$FSW_USER" >/dev/null; then
        run useradd --system --gid "$FSW_USER" --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "flight software" "$FSW_USER"
    else
        run useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "flight software" "$FSW_USER"
    fi
    for group in "${groups[@]}"; do
        if [[ "$current" == *" $group "* ]]; then
            ok "$FSW_USER is in $group"
        else
            run usermod --append --groups "$group" "$FSW_USER"
        fi
    done
}

# Version and content hash of what is being installed: "<version>-<12 hex digits>".
compute_release_id() {
    local version hash
    if [[ -n "$WHEEL" ]]; then
        # Wheel names are name-version-tags.whl (PEP 427).
        version="$(basename "$WHEEL" | cut -d- -f2)"
        hash="$(sha256sum "$WHEEL" | cut -c1-12)"
    else
        version="$(sed -n 's/^version[[:space:]]*=[[:space:]]*"\(.*\)"/\1/p' \
            "$SOURCE_DIR/pyproject.toml" | head -n1)"
        # What pip packages from the tree (PACKAGED_ITEMS), file names and contents.
        local item items=()
        for item in "${PACKAGED_ITEMS[@]}"; do
            if [[ -e "$SOURCE_DIR/$item" ]]; then
                items+=("$item")
            fi
        done
        hash="$(cd "$SOURCE_DIR" &&
            find "${items[@]}" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 |
            LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)"
    fi
    RELEASE_ID="${version:-0}-$hash"
}

# stage_source: copy the packaged part of the source tree to $TMP_DIR/src, so pip's build leaves
# nothing (build/, *.egg-info) in the operator's checkout.
stage_source() {
    make_tmp_dir
    local item
    mkdir -p "$TMP_DIR/src"
    for item in "${PACKAGED_ITEMS[@]}"; do
        if [[ -e "$SOURCE_DIR/$item" ]]; then
            cp -R -- "$SOURCE_DIR/$item" "$TMP_DIR/src/"
        fi
    done
    find "$TMP_DIR/src" -name __pycache__ -type d -prune -exec rm -rf {} +
}

# switch_link NAME TARGET: point PREFIX/NAME at TARGET with one rename (atomic on one file system).
switch_link() {
    local name="$1" target="$2"
    run ln -sfn "$target" "$(r "$PREFIX")/$name.new"
    run mv -T "$(r "$PREFIX")/$name.new" "$(r "$PREFIX")/$name"
}

install_release() {
    step "Installing the flight software into $PREFIX"
    compute_release_id
    local rel="releases/$RELEASE_ID" current="" prev="" target pip_args=() python dir
    local relpath
    relpath="$(r "$PREFIX")/$rel"
    note "release $RELEASE_ID from ${WHEEL:-source tree $SOURCE_DIR}"

    if [[ -e "$(r "$PREFIX")/venv" && ! -L "$(r "$PREFIX")/venv" ]]; then
        die "$PREFIX/venv is a directory, not a release link: move it away and run again"
    fi
    current="$(readlink "$(r "$PREFIX")/venv" 2>/dev/null || true)"
    prev="$(readlink "$(r "$PREFIX")/venv.prev" 2>/dev/null || true)"

    if [[ "$current" == "$rel" && -f "$relpath/.fsw-release" ]]; then
        ok "release $RELEASE_ID is installed and current"
        return 0
    fi

    if [[ -f "$relpath/.fsw-release" ]]; then
        ok "release $RELEASE_ID was built before; reusing it"
    else
        if [[ -e "$relpath" ]]; then
            run rm -rf -- "$relpath"    # left over from an interrupted install
        fi
        run install -d -m 0755 "$(r "$PREFIX")" "$(r "$PREFIX")/releases"
        # The distribution's interpreter, not whatever python3 comes first in root's PATH.
        python=/usr/bin/python3
        [[ -x "$python" ]] || python="$(command -v python3 || echo python3)"
        run "$python" -m venv "$relpath"
        pip_args=(--disable-pip-version-check --no-input --no-cache-dir)
        if [[ -n "$WHEELHOUSE" ]]; then
            pip_args+=(--no-index --find-links "$WHEELHOUSE")
        fi
        if [[ -n "$WHEEL" ]]; then
            target="$WHEEL"
        else
            note "building from a temporary copy of $SOURCE_DIR (keeps the checkout clean)"
            if ((DRY_RUN)); then
                target="$SOURCE_DIR"
            else
                stage_source
                target="$TMP_DIR/src"
            fi
        fi
        run "$relpath/bin/python" -m pip install "${pip_args[@]}" "$target"
        # Smoke test before the release can become current: the entry point must start.
        if ((DRY_RUN)); then
            run "$relpath/bin/fsw" --help
        else
            "$relpath/bin/fsw" --help >/dev/null || die "the new release's fsw does not start"
        fi
        if ((DRY_RUN)); then
            act "write $relpath/.fsw-release"
        else
            printf 'id=%s\nsource=%s\ninstalled=%s\n' "$RELEASE_ID" \
                "${WHEEL:-$SOURCE_DIR}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$relpath/.fsw-release"
        fi
    fi

    if [[ -n "$current" && "$current" != "$rel" ]]; then
        switch_link venv.prev "$current"
        prev="$current"
    fi
    switch_link venv "$rel"
    RESTART_NEEDED=1

    # Keep the current and the previous release; older ones go.
    for dir in "$(r "$PREFIX")"/releases/*; do
        [[ -d "$dir" ]] || continue
        case "releases/$(basename "$dir")" in
            "$rel" | "$prev") ;;
            *) run rm -rf -- "$dir" ;;
        esac
    done
}

install_config() {
    step "Configuration in $CONFIG_DIR"
    local conf="$CONFIG_DIR/fsw.toml" reference
    if [[ -d "$(r "$CONFIG_DIR")" ]]; then
        ok "$CONFIG_DIR exists"
    else
        run install -d -m 0755 -o root -g root "$(r "$CONFIG_DIR")"
    fi
    reference="$(sed "s#/etc/fsw/#$CONFIG_DIR/#g" "$SCRIPT_DIR/fsw.toml")"

    if [[ -e "$(r "$conf")" ]]; then
        ok "$conf exists: keeping the operator's configuration"
    else
        make_tmp_dir_if_real
        if ((DRY_RUN)); then
            run install -m 0640 -o root -g "$FSW_USER" "$SCRIPT_DIR/fsw.toml" "$(r "$conf")"
        else
            printf '%s\n' "$reference" >"$TMP_DIR/fsw.toml"
            run install -m 0640 -o root -g "$FSW_USER" "$TMP_DIR/fsw.toml" "$(r "$conf")"
        fi
    fi
    # The current reference, always, so `diff fsw.toml fsw.toml.example` shows upstream changes.
    install_text "$CONFIG_DIR/fsw.toml.example" 0644 "$reference"
}

make_tmp_dir_if_real() {
    ((DRY_RUN)) || make_tmp_dir
}

install_key() {
    step "Uplink key"
    local key="$CONFIG_DIR/uplink.key" fsw_bin="$PREFIX/venv/bin/fsw"
    if [[ -e "$(r "$key")" ]]; then
        ok "$key exists: keeping it"
    elif ((DRY_RUN)); then
        # Generated in a private directory, then moved into place with its final owner and mode,
        # so the key is never readable by anyone else, not even for a moment.
        run "$fsw_bin" keygen --out /tmp/fsw-install.XXXXXX/uplink.key
        run install -m 0600 -o "$FSW_USER" -g "$FSW_USER" /tmp/fsw-install.XXXXXX/uplink.key \
            "$(r "$key")"
    else
        make_tmp_dir
        run "$fsw_bin" keygen --out "$TMP_DIR/uplink.key" ||
            die "fsw keygen failed: no uplink key was installed"
        run install -m 0600 -o "$FSW_USER" -g "$FSW_USER" "$TMP_DIR/uplink.key" "$key"
        rm -f -- "$TMP_DIR/uplink.key"
    fi
    if [[ -e "$(r "$key")" ]]; then
        if [[ "$(stat -c '%a %U %G' "$(r "$key")")" == "600 $FSW_USER $FSW_USER" ]]; then
            ok "$key is mode 0600, owner $FSW_USER"
        else
            run chown "$FSW_USER:$FSW_USER" "$(r "$key")"
            run chmod 0600 "$(r "$key")"
        fi
    fi
}

install_system_files() {
    step "systemd unit, udev rules, hardware watchdog"
    install_file "$SCRIPT_DIR/systemd/fsw.service" "$UNIT_DIR/$SERVICE" 0644 root root
    if ((CHANGED)); then
        SYSTEMD_CHANGED=1
        RESTART_NEEDED=1
    fi

    # Non-default paths go into a drop-in, so the unit file itself stays as shipped.
    local dropin="$UNIT_DIR/$SERVICE.d/10-paths.conf"
    if [[ "$PREFIX" != /opt/fsw || "$CONFIG_DIR" != /etc/fsw ]]; then
        install_text "$dropin" 0644 "# Written by fsw deploy/install.sh for --prefix/--config-dir
[Service]
ExecStart=
ExecStart=$PREFIX/venv/bin/fsw run --config $CONFIG_DIR/fsw.toml"
        if ((CHANGED)); then
            SYSTEMD_CHANGED=1
            RESTART_NEEDED=1
        fi
    elif [[ -e "$(r "$dropin")" ]]; then
        run rm -f -- "$(r "$dropin")"
        SYSTEMD_CHANGED=1
        RESTART_NEEDED=1
    fi

    install_file "$SCRIPT_DIR/udev/99-fsw.rules" "$UDEV_RULES" 0644 root root
    if ((CHANGED)); then
        UDEV_CHANGED=1
    fi

    install_file "$SCRIPT_DIR/watchdog.conf" "$WATCHDOG_DROPIN" 0644 root root
    if ((CHANGED)); then
        SYSTEMD_CHANGED=1
    fi
    if [[ ! -e "$(r /dev/watchdog0)" ]]; then
        warn "no /dev/watchdog0: the hardware watchdog will not be armed on this machine"
    fi
    return 0
}

activate() {
    step "Activating"
    if ((SYSTEMD_CHANGED)); then
        # Also re-reads system.conf.d, which arms RuntimeWatchdogSec.
        run systemctl daemon-reload
    else
        ok "systemd configuration unchanged"
    fi
    if ((UDEV_CHANGED)); then
        # Not fatal: without a running udevd the rules still apply from the next boot.
        run udevadm control --reload-rules || warn "udevadm failed: the rules apply after a reboot"
        run udevadm trigger --action=change --subsystem-match=tty --subsystem-match=i2c-dev ||
            warn "udevadm trigger failed: the device names appear after a reboot"
    else
        ok "udev rules unchanged"
    fi
    if [[ ! -d "$(r /sys/module/i2c_dev)" ]]; then
        run modprobe i2c-dev || warn "modprobe i2c-dev failed: no /dev/i2c-* until it loads"
    fi

    if ((NO_ENABLE)); then
        ok "not enabling $SERVICE (--no-enable); later: systemctl enable --now $SERVICE"
        return 0
    fi
    local enabled=0 active=0
    if systemctl is-enabled --quiet "$SERVICE" 2>/dev/null; then
        enabled=1
    fi
    if systemctl is-active --quiet "$SERVICE" 2>/dev/null; then
        active=1
    fi
    if ((!enabled || !active)); then
        run systemctl enable --now "$SERVICE"
    elif ((RESTART_NEEDED)); then
        run systemctl restart "$SERVICE"
    else
        ok "$SERVICE is enabled and running"
    fi
}

summary() {
    local fsw_bin="$PREFIX/venv/bin/fsw"
    step "Done"
    if ((DRY_RUN)); then
        note "dry run: nothing was changed"
    fi
    note "release:  ${RELEASE_ID:-unchanged} ($PREFIX/venv)"
    note "config:   $CONFIG_DIR/fsw.toml    key: $CONFIG_DIR/uplink.key"
    note "state:    /var/lib/fsw"
    if ((REBOOT_NEEDED)); then
        note ""
        note "REBOOT NEEDED: the boot configuration changed (I2C/UART). Run: sudo reboot"
    fi
    cat <<EOF

Next:
  sudo systemctl stop $SERVICE      # the probe needs the devices to itself
  sudo -u $FSW_USER $fsw_bin bench probe --config $CONFIG_DIR/fsw.toml
  sudo systemctl start $SERVICE
  journalctl -u fsw -f               # follow the flight software's log
  systemctl status $SERVICE
Bench tests:  pytest -m bench --bench-config $CONFIG_DIR/fsw.toml   (from a checkout)
Roll back:    sudo $SCRIPT_DIR/install.sh --rollback
EOF
}

rollback() {
    step "Rolling back to the previous release"
    local current prev
    current="$(readlink "$(r "$PREFIX")/venv" 2>/dev/null || true)"
    prev="$(readlink "$(r "$PREFIX")/venv.prev" 2>/dev/null || true)"
    [[ -n "$prev" ]] || die "no previous release ($PREFIX/venv.prev) to roll back to"
    [[ -f "$(r "$PREFIX")/$prev/.fsw-release" ]] || die "$PREFIX/$prev is not a complete release"
    note "$current -> $prev (a second --rollback returns to $current)"
    switch_link venv "$prev"
    if [[ -n "$current" ]]; then
        switch_link venv.prev "$current"
    fi
    RELEASE_ID="${prev#releases/}"
    if systemctl is-active --quiet "$SERVICE" 2>/dev/null; then
        run systemctl restart "$SERVICE"
    else
        ok "$SERVICE is not running: not restarting it"
    fi
    step "Done"
    if ((DRY_RUN)); then
        note "dry run: nothing was changed"
    fi
    note "running release: $RELEASE_ID. Check with: journalctl -u fsw -f"
}

main() {
    parse_args "$@"
    umask 022    # the releases must be readable by the fsw user whatever the caller's umask
    trap cleanup EXIT
    if ((DRY_RUN)); then
        printf 'install.sh: dry run: printing every step, changing nothing\n'
    fi
    if ((ROLLBACK)); then
        rollback
        return 0
    fi
    check_platform
    enable_interfaces
    install_packages
    create_user
    install_release
    install_config
    install_key
    install_system_files
    activate
    summary
}

# Run unless sourced: the tests source this file to call its functions one by one.
if ! (return 0 2>/dev/null); then
    main "$@"
fi
