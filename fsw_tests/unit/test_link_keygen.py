"""``fsw keygen``: writes a loadable 0600 key file and never overwrites one by accident."""

from __future__ import annotations

import argparse
import os

import pytest

from flight.cli import keygen
from flight.link.sdls import load_key


def run(argv):
    parser = argparse.ArgumentParser(prog="fsw")
    keygen.register(parser.add_subparsers())
    args = parser.parse_args(["keygen", *argv])
    return args.func(args)


def test_writes_a_loadable_key_with_mode_0600(tmp_path, capsys):
    path = tmp_path / "slot1.key"
    assert run(["--out", str(path), "--slot", "1"]) == 0
    assert os.stat(path).st_mode & 0o777 == 0o600
    key = load_key(path)
    assert len(key) == 32
    out = capsys.readouterr().out
    assert "slot 1" in out and key.hex() not in out


def test_refuses_to_overwrite_without_force(tmp_path, capsys):
    path = tmp_path / "k"
    assert run(["--out", str(path)]) == 0
    first = load_key(path)
    assert run(["--out", str(path)]) == 1
    assert "--force" in capsys.readouterr().err
    assert load_key(path) == first
    assert run(["--out", str(path), "--force"]) == 0
    assert load_key(path) != first
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_missing_directory_is_an_error_not_a_traceback(tmp_path, capsys):
    assert run(["--out", str(tmp_path / "no" / "k")]) == 1
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize("slot", ["-1", "65536", "x"])
def test_bad_slot_is_refused(tmp_path, slot):
    with pytest.raises(SystemExit):
        run(["--out", str(tmp_path / "k"), "--slot", slot])
