"""The quick chaos campaign's categories as tests (run.py --quick is the bigger version).

Each test runs one category at a size that keeps this file near a minute on two cores and
asserts that every failure count (names with ``crash``, ``unauthenticated_executed``, ``lost``
or ``repeated``) is 0, and that the category really exercised something.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flight.clock import SimClock
from flight.dispatcher import Dispatcher
from flight.events import EventLog
from flight.link.ground import TelemetryDecoder
from flight.link.sdls import KeyRing
from flight.link.service import LinkConfig, LinkService
from flight.link.transports import MemoryPipe
from flight.messages import Message, MessageKind
from flight.persistence.archive import Archive
from flight.persistence.state import StateStore
from fsw_tests.chaos import bad_config, mission_chaos, power_loss, uplink_fuzz
from fsw_tests.chaos.common import failures, quiet


@pytest.fixture(autouse=True)
def _quiet() -> None:
    quiet()


def _clean(figures: dict[str, Any]) -> None:
    assert failures(figures) == {}, figures


def test_uplink_fuzz_forged_and_authenticated_frames() -> None:
    figures = uplink_fuzz.fuzz_uplink(3000, seed=11)
    _clean(figures)
    assert figures["forged_frames"] == 1500
    assert figures["handlers_executed"] > 0  # authenticated bodies reached real handlers
    assert figures["uplink_counters"]["auth_failures"] > 0


def test_replay_and_forgery_rejected_with_events_across_restart() -> None:
    figures = uplink_fuzz.replay_and_forgery(12, seed=12)
    _clean(figures)
    assert figures["authentic_accepted"] == 12
    assert figures["replay_after_restart_tried"] > 0


def test_power_loss_sigkill_and_restart() -> None:
    figures = power_loss.power_loss(6, seed=13, kills_per_life=6, first_kill_max_s=14.0)
    _clean(figures)
    assert figures["kills"] == 6
    assert figures["archive_records_checked"] > 0


def test_device_faults_mission_lands() -> None:
    figures = mission_chaos.device_faults((0.05,), seed=14)
    _clean(figures)
    result = figures["rate_0.05"]
    assert result["landed_ok"]
    assert result["dev_read_failed_events"] > 0


def test_link_noise_executes_only_authentic_commands_once_and_the_mission_lands() -> None:
    figures = mission_chaos.link_noise(seed=5, ber=2e-4)
    _clean(figures)
    assert figures["uplink_counters"]["crc_errors"] + figures["uplink_noise"]["dropped"] > 0
    assert figures["commands_resent_unconfirmed"] > 0  # the ground had to send again
    assert figures["landed_ok"]


def test_link_outages_recorded_data_played_back() -> None:
    figures = mission_chaos.link_outages(seed=15, conjunction_days=1.0)
    _clean(figures)
    assert figures["outage_2"]["archived"] > 0
    assert figures["link_down_events"] > 0


def test_bad_configuration_refused_before_start() -> None:
    figures = bad_config.bad_config(include_run=False)
    _clean(figures)
    assert figures["probe_cases"] >= 5


def test_link_drop_during_playback_resumes_where_it_stopped(tmp_path: Path) -> None:
    """Found by the outage campaign: a link lost in the middle of a playback used to move the
    playback cursor to the archive's end, so the rest of the backlog was never sent."""
    clock = SimClock()
    events = EventLog(now=clock.monotonic)
    archive = Archive(tmp_path / "archive", clock=clock)
    spacecraft, ground = MemoryPipe.pair()
    config = LinkConfig(byte_rate=2000)
    service = LinkService(
        transport=spacecraft,
        keyring=KeyRing({1: bytes(32)}),
        config=config,
        dispatcher=Dispatcher(events=events, now=clock.monotonic),
        events=events,
        store=StateStore(tmp_path / "state.cbor"),
        archive=archive,
        now=clock.monotonic,
    )
    decoder = TelemetryDecoder(scid=config.spacecraft_id, frame_length=config.frame_length)
    got: list[Message] = []

    def ticks(n: int) -> None:
        for _ in range(n):
            service.receive()
            service.transmit()
            clock.advance(0.02)
            got.extend(decoder.feed(ground.read_available()))

    ticks(1)
    spacecraft.set_connected(False)
    ticks(1)
    count = 300
    for i in range(count):
        archive.append(Message(MessageKind.TELEMETRY, 7, clock.monotonic() + i * 1e-4, {"n": i}))
    spacecraft.set_connected(True)
    ticks(5)
    assert service.playing_back  # cut short next
    spacecraft.set_connected(False)
    ticks(2)
    spacecraft.set_connected(True)
    ticks(1500)
    assert not service.playing_back
    assert {m.body["n"] for m in got if m.id == 7} == set(range(count))
