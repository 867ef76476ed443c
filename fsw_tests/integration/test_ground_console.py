"""``fsw ground`` end to end: command line, script and console modes, real frames, real sockets."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from flight.cli import ground as ground_cli
from flight.clock import SimClock, WallClock
from flight.link.transports import MemoryPipe, TcpServerTransport, Transport, UdpTransport
from fsw_tests.ground_support import SCID, FlightSide, SteppingClock, write_test_key


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fsw")
    ground_cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["ground", *argv])


class Bench:
    """Dictionary and key files, and a stepped flight side behind a memory pipe."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ground_end, flight_end = MemoryPipe.pair()
        self.sim = SimClock()
        self.flight = FlightSide(flight_end, self.sim, tmp)
        self.clock = SteppingClock(self.sim, self.flight)
        self.dict_path = tmp / "dict.json"
        self.dict_path.write_text(self.flight.dictionary().to_json())
        self.key = write_test_key(tmp / "uplink.key")

    def argv(self, *extra: str) -> list[str]:
        return ["--dict", str(self.dict_path), "--key", str(self.key), "--tcp", "127.0.0.1:9",
                "--scid", str(SCID), *extra]  # fmt: skip

    def run(self, *extra: str, stdin: str = "") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        status = ground_cli.run(
            parse(self.argv(*extra)),
            clock=self.clock,
            transport=self.ground_end,
            stdin=io.StringIO(stdin),
            stdout=out,
            stderr=err,
        )
        return status, out.getvalue(), err.getvalue()

    def script(self, text: str, *extra: str) -> tuple[int, str, str]:
        path = self.tmp / "test.fsw"
        path.write_text(text)
        return self.run("--script", str(path), *extra)


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    return Bench(tmp_path)


# ------------------------------------------------------------------------------ script mode


def test_script_met_exits_0_and_logs_everything(bench: Bench) -> None:
    log = bench.tmp / "session.jsonl"
    status, out, err = bench.script(
        "cmd.PING 42\nexpect response OK containing 'pong 42' within 5\n"
        "expect telemetry test.bus_voltage_v 20..35 within 5\n",
        "--log", str(log),
    )  # fmt: skip
    assert (status, err) == (0, "")
    assert "seq 0 cmd.PING: OK pong 42" in out  # printed as it arrived
    assert "all 3 step(s) passed" in out
    kinds = [json.loads(line)["kind"] for line in log.read_text().splitlines()]
    assert kinds[0] == "COMMAND" and "COMMAND_RESPONSE" in kinds and "TELEMETRY" in kinds
    assert json.loads((bench.tmp / "uplink.key.arsn").read_text()) == {"1": 0}


def test_unmet_expectation_exits_1_naming_the_line(bench: Bench) -> None:
    status, out, _ = bench.script("cmd.PING 1\nexpect response OK\ntest.BURN 1\n"
                                  "expect response OK within 5\n")  # fmt: skip
    assert status == 1
    assert (
        f"FAIL {bench.tmp / 'test.fsw'}:4: expect response OK within 5: got VALIDATION_ERROR "
        "(not armed (send cmd.ARM first))" in out
    )


def test_script_that_does_not_parse_sends_nothing(bench: Bench) -> None:
    status, _out, err = bench.script("cmd.PING 1\ncmd.PING 99999999999\n")
    assert status == 2
    assert "script does not parse, nothing sent" in err and "test.fsw:2: cmd.PING: token" in err
    bench.flight.step()
    assert bench.flight.uplink.counters["frames_ok"] == 0
    assert not (bench.tmp / "uplink.key.arsn").exists()


def test_link_that_never_comes_up_exits_1(bench: Bench) -> None:
    bench.ground_end.set_connected(False)
    status, _, err = bench.script("cmd.NOOP\n", "--connect-timeout", "1")
    assert status == 1
    assert "link not up after 1 s" in err


# ------------------------------------------------------------------------------ config errors


def test_missing_dictionary_is_a_config_error(bench: Bench) -> None:
    bench.dict_path.unlink()
    status, _, err = bench.run()
    assert status == 2
    assert f"fsw ground: dictionary {bench.dict_path}: No such file" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "Expecting property name"), ('{"commands": 3}', "'commands' must be a list")],
)
def test_invalid_dictionary_is_a_config_error(bench: Bench, content: str, message: str) -> None:
    bench.dict_path.write_text(content)
    status, _, err = bench.run()
    assert status == 2 and message in err


def test_world_readable_key_is_refused_with_the_loaders_message(bench: Bench) -> None:
    os.chmod(bench.key, 0o644)
    status, out, err = bench.run(stdin="cmd.NOOP\n")
    assert status == 2
    assert "lets group/others access it; run chmod 600" in err
    assert out == ""


def test_corrupt_counter_file_is_refused_not_reset(bench: Bench) -> None:
    counter = bench.tmp / "arsn.json"
    counter.write_text("garbage")
    status, _, err = bench.run("--counter-file", str(counter))
    assert status == 2 and "corrupt" in err


def test_missing_link_option_is_a_usage_error(bench: Bench) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(["--dict", "d.json", "--key", "k"])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9001:127.0.0.1:9000", (("0.0.0.0", 9001), ("127.0.0.1", 9000))),
        ("127.0.0.1:0:127.0.0.1:9000", (("127.0.0.1", 0), ("127.0.0.1", 9000))),
    ],
)
def test_udp_addresses(text: str, expected: object) -> None:
    assert ground_cli.parse_udp(text) == expected


@pytest.mark.parametrize("text", ["9000", "a:b:c:d", "1:2:3:4:5", "1:h:70000"])
def test_bad_udp_addresses(text: str) -> None:
    with pytest.raises(ground_cli.ConfigError):
        ground_cli.parse_udp(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/dev/ttyUSB0", ("/dev/ttyUSB0", 57600)),
        ("/dev/ttyUSB0:115200", ("/dev/ttyUSB0", 115200)),
        ("socket://localhost:7000", ("socket://localhost:7000", 57600)),
    ],
)
def test_serial_port_and_baud(text: str, expected: object) -> None:
    assert ground_cli.parse_serial(text) == expected


# ------------------------------------------------------------------------------ console mode


def test_console_sends_typed_commands_and_shows_what_came_back(bench: Bench) -> None:
    lines = (
        "cmd.PING 7\n"
        "wait 1\n"
        "cmd.PING seven\n"
        "test.SET_VOLTAGE 33\n"
        "wait 1\n"
        "show test.*\n"
        "events 2\n"
        "help cmd.PING\n"
        "commands test.B*\n"
        "link\n"
        "expect event seq.COMPLETED within 0.5\n"
        "quit\n"
        "cmd.NOOP\n"
    )
    status, out, err = bench.run("--no-color", stdin=lines)
    assert (status, err) == (0, "")
    assert "sent as seq 0" in out
    assert "seq 0 cmd.PING: OK pong 7" in out
    assert "error: cmd.PING: token: 'seven' is not an integer" in out
    assert re.search(r"^test\.bus_voltage_v +33\.0 V  YELLOW  MET +1\.520", out, re.M)
    assert "cmd.PING token:int[0..4294967295]" in out
    assert "test.BURN duration_s:float[0..60](s)  (hazardous: arm first)" in out
    assert "link up; frames_ok" in out
    assert "UNMET: no seq.COMPLETED event within 0.5 s" in out
    assert bench.flight.uplink.counters["frames_ok"] == 2  # nothing after quit
    assert "\033" not in out


def test_end_of_input_waits_for_outstanding_responses(bench: Bench) -> None:
    status, out, _ = bench.run(stdin="cmd.PING 5\n")
    assert status == 0
    assert out.splitlines() == [
        "sent as seq 0",
        "seq 0 cmd.PING: OK pong 5",
        "[MET 0.020] COMMAND cmd.ACCEPTED: cmd.PING seq 0 ok: pong 5",
    ]


# ------------------------------------------------------------------------------ real sockets


class ThreadedFlight:
    """The flight side on a real socket, stepped every few milliseconds on wall time."""

    def __init__(self, transport: Transport, tmp: Path) -> None:
        self.flight = FlightSide(transport, WallClock(), tmp)  # type: ignore[arg-type]
        self.transport = transport
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.005):
            self.flight.step()

    def __enter__(self) -> ThreadedFlight:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.transport.close()


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    flight = FlightSide(MemoryPipe.pair()[0], SimClock(), tmp_path / "x")  # for the dictionary
    (tmp_path / "x").mkdir()
    dict_path = tmp_path / "dict.json"
    dict_path.write_text(flight.dictionary().to_json())
    script = tmp_path / "bench.fsw"
    script.write_text(
        "cmd.PING 3\nexpect response OK containing 'pong 3' within 5\n"
        "expect telemetry test.mode NOMINAL within 5\n"
    )
    yield dict_path, write_test_key(tmp_path / "k.key"), script


@pytest.mark.parametrize("kind", ["tcp", "udp"])
def test_script_over_a_real_socket(files, tmp_path: Path, kind: str) -> None:
    dict_path, key, script = files
    state = tmp_path / kind
    state.mkdir()
    server: Transport
    if kind == "tcp":
        server = TcpServerTransport("127.0.0.1", 0)
        link = ["--tcp", "{}:{}".format(*server.address)]
    else:
        server = UdpTransport(("127.0.0.1", 0))
        link = ["--udp", "127.0.0.1:0:{}:{}".format(*server.address)]
    with ThreadedFlight(server, state):
        out, err = io.StringIO(), io.StringIO()
        args = parse(["--dict", str(dict_path), "--key", str(key), *link, "--scid", str(SCID),
                      "--script", str(script)])  # fmt: skip
        status = ground_cli.run(args, stdout=out, stderr=err)
    assert (status, err.getvalue()) == (0, ""), out.getvalue()
    assert "all 3 step(s) passed" in out.getvalue()


def test_console_defaults_match_the_flight_link_defaults() -> None:
    from flight.ground.script import DEFAULT_TIMEOUT_S
    from flight.link.service import LinkConfig

    config = LinkConfig()
    assert config.spacecraft_id == ground_cli.DEFAULT_SCID
    assert config.frame_length == ground_cli.DEFAULT_FRAME_LENGTH
    assert ground_cli.DEFAULT_TIMEOUT_S == DEFAULT_TIMEOUT_S


@pytest.mark.parametrize("value", ["-1", "soon", "inf"])
def test_bad_timeouts_are_usage_errors(value: str) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(["--dict", "d", "--key", "k", "--tcp", "h:1", "--timeout", value])
    assert exc.value.code == 2
