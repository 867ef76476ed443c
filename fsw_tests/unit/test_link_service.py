"""When the ground goes quiet, playback starts where it was last heard, not where that was noticed.

The link service runs over an in-memory pipe with a carrier timeout, as a deep-space radio does:
the ground's own commands are the only sign it is listening. Each record is archived and offered
to the link, as the executive does with every outgoing message.
"""

from __future__ import annotations

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
        self.clock = SimClock()
        self.events = EventLog(now=self.clock.monotonic)
        self.archive = Archive(tmp / "archive", clock=self.clock)
        spacecraft, self.ground = MemoryPipe.pair()
        config = LinkConfig(byte_rate=4000, carrier_timeout_s=TIMEOUT_S)
        self.service = LinkService(
            transport=spacecraft,
            keyring=KeyRing({1: KEY}),
            config=config,
            dispatcher=Dispatcher(events=self.events, now=self.clock.monotonic),
            events=self.events,
            store=StateStore(tmp / "state.cbor"),
            archive=self.archive,
            now=self.clock.monotonic,
        )
        self.encoder = CommandEncoder(
            key=KEY, spi=1, scid=config.spacecraft_id, counters=MemoryCounterStore()
        )
        self.decoder = TelemetryDecoder(scid=config.spacecraft_id, frame_length=config.frame_length)
        self.listening = True
        self.got: set[int] = set()
        self.sent = 0

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
    quiet = set(range(link.sent)) - link.got
    assert len(quiet) > TIMEOUT_S / DT  # the records sent into the void before it noticed

    link.listening = True
    link.hail()
    link.run(TIMEOUT_S - 2.0)  # within the new carrier's timeout: everything is sent live
    assert not link.service.playing_back
    assert set(range(link.sent)) <= link.got  # nothing lost, including the unnoticed gap


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
    assert set(range(link.sent)) <= link.got
