"""When the ground goes quiet, playback starts where it was last heard, not where that was noticed.

The link service runs over an in-memory pipe with a carrier timeout, as a deep-space radio does:
the ground's own commands are the only sign it is listening. Each record is archived and offered
to the link, as the executive does with every outgoing message.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from flight.clock import SimClock
from flight.dispatcher import Dispatcher
from flight.events import EventLog
from flight.link.ground import CommandEncoder, TelemetryDecoder
from flight.link.sdls import KeyRing, MemoryCounterStore
from flight.link.service import LinkConfig, LinkService
from flight.link.transports import MemoryPipe
from flight.messages import Message, MessageKind
from flight.persistence.archive import Archive
from flight.persistence.state import StateStore

KEY = bytes(range(32))
TIMEOUT_S = 10.0
DT = 0.1


class Pass:
    """One spacecraft link and the ground at the far end of it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.clock = SimClock()
        self.config = LinkConfig(byte_rate=4000, carrier_timeout_s=TIMEOUT_S)
        self.spacecraft, self.ground = MemoryPipe.pair()
        self.boot()
        self.encoder = CommandEncoder(
            key=KEY, spi=1, scid=self.config.spacecraft_id, counters=MemoryCounterStore()
        )
        self.decoder = TelemetryDecoder(
            scid=self.config.spacecraft_id, frame_length=self.config.frame_length
        )
        self.listening = True
        self.got: Counter[int] = Counter()  # each record's number, and how often it arrived
        self.sent = 0

    def boot(self) -> None:
        """Start the flight side from what is on disk, as after a reset."""
        self.events = EventLog(now=self.clock.monotonic)
        self.archive = Archive(self.tmp / "archive", clock=self.clock)
        self.store = StateStore(self.tmp / "state.cbor")
        self.service = LinkService(
            transport=self.spacecraft,
            keyring=KeyRing({1: KEY}),
            config=self.config,
            dispatcher=Dispatcher(events=self.events, now=self.clock.monotonic),
            events=self.events,
            store=self.store,
            archive=self.archive,
            now=self.clock.monotonic,
        )

    def hail(self) -> None:
        """The ground transmits (a NOOP): the spacecraft hears a carrier."""
        self.ground.write(self.encoder.encode_command(0, 0x0001, []))

    def run(self, seconds: float) -> None:
        """Ticks of the executive: one housekeeping record each, then the link's own work."""
        for _ in range(round(seconds / DT)):
            self.service.receive()
            msg = Message(MessageKind.TELEMETRY, 7, self.clock.monotonic(), [self.sent])
            self.sent += 1
            self.archive.append(msg)
            self.service.send(msg)
            self.service.transmit()
            self.clock.advance(DT)
            data = self.ground.read_available()
            if self.listening:  # otherwise the bytes fall into the void
                self.got.update(m.body[0] for m in self.decoder.feed(data) if m.id == 7)

    def run_hailing(self, seconds: float) -> None:
        """A pass: the ground transmits well within every carrier timeout."""
        for _ in range(round(seconds / (TIMEOUT_S / 2))):
            self.hail()
            self.run(TIMEOUT_S / 2)

    def run_until_played_back(self) -> None:
        """A pass, five minutes at most, that lasts until the playback is over."""
        for _ in range(60):
            self.run(5.0)
            self.hail()
            if not self.service.playing_back:
                return

    def names(self) -> list[str]:
        return [e.name for e in self.events.recent]


def test_records_sent_after_the_ground_went_quiet_are_played_back(tmp_path: Path) -> None:
    link = Pass(tmp_path)
    link.hail()
    link.run(3.0)
    assert link.service.up
    link.listening = False  # the pass ends; the spacecraft cannot know until the timeout
    link.run(TIMEOUT_S + 2.0)
    assert not link.service.up
    assert "link.DOWN" in link.names()
    quiet = set(range(link.sent)) - set(link.got)
    assert len(quiet) > TIMEOUT_S / DT  # the records sent into the void before it noticed

    link.listening = True
    link.hail()
    link.run(TIMEOUT_S - 2.0)  # within the new carrier's timeout: everything is sent live
    assert not link.service.playing_back
    assert set(range(link.sent)) <= set(link.got)  # nothing lost, including the unnoticed gap


def test_a_downlink_switched_off_by_command_plays_back_only_what_it_held_back(
    tmp_path: Path,
) -> None:
    """Switched off by command, the link knows at once: nothing sent before is sent again."""
    link = Pass(tmp_path)
    enable = {spec.name: spec.handler for spec in link.service.commands()}["link.DOWNLINK_ENABLE"]
    link.hail()
    link.run(3.0)
    enable(enabled=False)
    before = link.sent
    link.run(5.0)
    held = link.sent - before
    link.hail()
    enable(enabled=True)
    link.run(5.0)
    assert not link.service.playing_back
    assert link.service.played_back == held
    assert set(range(link.sent)) <= set(link.got)


def test_a_playback_the_ground_stopped_hearing_resumes_where_it_was_last_heard(
    tmp_path: Path,
) -> None:
    """The pass ends in the middle of a playback: what was played into the void is played again."""
    link = Pass(tmp_path)
    link.hail()
    link.run(1.0)
    link.listening = False
    link.run(300.0)  # a long outage: minutes of records to play back
    assert not link.service.up
    link.listening = True
    link.hail()
    link.run(2.0)
    assert link.service.playing_back
    link.listening = False  # the next pass ends before the playback does
    link.run(TIMEOUT_S + 2.0)
    assert not link.service.up
    assert link.service.playing_back is False

    link.listening = True
    link.hail()
    link.run_until_played_back()
    assert not link.service.playing_back
    assert set(range(link.sent)) <= set(link.got)


def test_a_reboot_before_the_lost_carrier_is_noticed_still_plays_back_the_gap(
    tmp_path: Path,
) -> None:
    link = Pass(tmp_path)
    link.hail()
    link.run(3.0)
    link.listening = False
    link.run(TIMEOUT_S / 2)  # into the void, and the spacecraft does not know yet
    link.store.commit()  # the executive's periodic commit, before the reset
    link.archive.close()
    link.boot()
    link.listening = True
    link.hail()
    link.run(TIMEOUT_S - 2.0)
    assert not link.service.playing_back
    assert set(range(link.sent)) <= set(link.got)


def test_a_playback_asked_for_by_command_leaves_the_automatic_one_to_go_on(
    tmp_path: Path,
) -> None:
    """A range replayed by command neither moves nor ends the playback of the outage."""
    link = Pass(tmp_path)
    link.run_hailing(20.0)
    link.listening = False
    link.run(TIMEOUT_S + 200.0)
    link.listening = True
    link.hail()
    link.run(1.0)
    assert link.service.playing_back
    playback = {spec.name: spec.handler for spec in link.service.commands()}["link.PLAYBACK"]
    done = link.names().count("link.PLAYBACK_DONE")
    playback(t_start=0.0, t_end=5.0 - DT / 2)  # the first five seconds again
    link.run_until_played_back()
    link.run(1.0)  # the last live records out
    assert [link.got[n] for n in range(50)] == [2] * 50  # the range was sent
    assert set(range(link.sent)) <= set(link.got)  # and then the rest of the outage
    assert link.names().count("link.PLAYBACK_DONE") == done + 2  # the range, then the outage


def test_a_range_being_played_when_the_pass_ends_is_not_played_again(tmp_path: Path) -> None:
    """Only the outage is played back on the next pass, not the range plus everything since."""
    link = Pass(tmp_path)
    link.run_hailing(300.0)
    assert link.service.up
    assert not link.service.playing_back
    playback = {spec.name: spec.handler for spec in link.service.commands()}["link.PLAYBACK"]
    playback(t_start=0.0, t_end=300.0)
    link.run(1.0)
    assert link.service.playing_back
    link.listening = False
    link.run(TIMEOUT_S + 30.0)
    link.listening = True
    link.hail()
    link.run(TIMEOUT_S - 2.0)
    assert not link.service.playing_back
    assert link.service.played_back < (TIMEOUT_S + 40.0) / DT  # the outage and its run-up
    assert set(range(link.sent)) <= set(link.got)
