"""A stop sends what the downlink still holds before the link closes.

Without it the ground never saw the last responses and events of a run, the stop's own
``app.SHUTDOWN`` among them, and no playback would send them later: a restart archives on from
the end. The flight software runs on the simulated bench with its link on an in-memory pipe; the
ground decodes the frames that came out.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from flight.app import STOP_FLUSH_S, FlightSoftware, LinkSetup
from flight.clock import SimClock
from flight.link.ground import CommandEncoder, TelemetryDecoder
from flight.link.sdls import KeyRing, MemoryCounterStore
from flight.link.service import LinkConfig
from flight.link.transports import MemoryPipe
from flight.messages import Message, MessageKind
from flight.missions.mars.definition import MARS
from hal.assembly import build, sim_bench_map

KEY = bytes(range(32))
SHUTDOWN_ID = 0x0701


class Run:
    """The flight software with a link, and the ground at the other end of it."""

    def __init__(self, tmp: Path, config: LinkConfig) -> None:
        self.clock = SimClock()
        bench = build(sim_bench_map(), clock=self.clock)
        self.spacecraft, self.ground = MemoryPipe.pair()
        self.fsw = FlightSoftware(
            clock=self.clock,
            devices=bench.devices,
            mission=MARS,
            state_dir=tmp,
            met_at_start=0.0,
            link=LinkSetup(transport=self.spacecraft, keyring=KeyRing({1: KEY}), config=config),
        )
        self.encoder = CommandEncoder(
            key=KEY, spi=1, scid=config.spacecraft_id, counters=MemoryCounterStore()
        )
        self.decoder = TelemetryDecoder(scid=config.spacecraft_id, frame_length=config.frame_length)
        self.got: list[Message] = []

    def fly(self, seconds: float) -> None:
        for _ in range(round(seconds / 0.02)):
            self.fsw.step()
            self.clock.advance(0.02)
            self.receive()

    def receive(self) -> None:
        self.got += self.decoder.feed(self.ground.read_available())

    def events(self) -> list[int]:
        return [m.id for m in self.got if m.kind is MessageKind.EVENT]


def test_the_ground_hears_the_stop_and_the_last_response(tmp_path: Path) -> None:
    run = Run(tmp_path, LinkConfig(byte_rate=2500.0))
    run.fsw.start()
    run.fly(2.0)
    run.ground.write(run.encoder.encode_command(0, 0x0001, []))  # a NOOP, answered at once
    run.fsw.step()  # taken in and answered; the response is queued, not yet sent
    stopped_at = run.clock.monotonic()
    run.fsw.stop()
    run.receive()
    assert SHUTDOWN_ID in run.events()
    assert [m for m in run.got if m.kind is MessageKind.COMMAND_RESPONSE]
    assert run.fsw.link is not None and run.fsw.link.downlink.idle()
    assert run.clock.monotonic() - stopped_at < STOP_FLUSH_S  # done, not timed out


def test_a_link_down_at_stop_does_not_hold_it_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nobody listening (no carrier heard): nothing to flush, the archive keeps it all."""
    run = Run(tmp_path, LinkConfig(carrier_timeout_s=10.0))
    run.fsw.start()
    run.fly(1.0)
    stopped_at = run.clock.monotonic()
    with caplog.at_level(logging.WARNING, logger="flight.app"):
        run.fsw.stop()
    assert run.clock.monotonic() == stopped_at
    assert not run.got
    assert "still queued" not in caplog.text


def test_a_downlink_too_slow_to_empty_gives_up_after_the_flush_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run(tmp_path, LinkConfig(byte_rate=100.0))  # a frame every 2.6 s: always behind
    run.fsw.start()
    run.fly(5.0)
    stopped_at = run.clock.monotonic()
    with caplog.at_level(logging.WARNING, logger="flight.app"):
        run.fsw.stop()
    assert run.clock.monotonic() - stopped_at == pytest.approx(STOP_FLUSH_S, abs=0.05)
    assert "still queued" in caplog.text
