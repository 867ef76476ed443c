"""What the ground missed is played back: after a pass that ended unnoticed (from where the ground
was last heard), a switch-off by command, a range asked for, or a reset in the middle of it all.

The link service runs over an in-memory pipe, mostly with a carrier timeout as a deep-space radio
has: the ground's own commands are the only sign it is listening. Each record is archived and
offered to the link, as the executive does with every outgoing message.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flight.clock import SimClock
from flight.commands import CommandError
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

    def __init__(
        self, tmp: Path, carrier_timeout_s: float | None = TIMEOUT_S, *, fixed_layouts: bool = True
    ) -> None:
        self.tmp = tmp
        self.clock = SimClock()
        self.config = LinkConfig(
            byte_rate=4000, carrier_timeout_s=carrier_timeout_s, fixed_layouts=fixed_layouts
        )
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
        self.store.commit()  # as the executive's start does

    def command(self, name: str) -> Callable[..., object]:
        """The handler of one of the link's commands, called as the dispatcher would."""
        return {spec.name: spec.handler for spec in self.service.commands()}[name]

    def reset(self, *, committed: bool = True) -> None:
        """A reset after the executive's periodic commit (or before it), then a boot from disk."""
        if committed:
            self.store.commit()
        self.archive.close()
        self.boot()

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
    enable = link.command("link.DOWNLINK_ENABLE")
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


def test_a_pass_that_ended_just_before_a_switch_off_is_played_back_after_it(
    tmp_path: Path,
) -> None:
    """The carrier runs out while the downlink is off by command: what was sent between the
    ground's last frame and the switch-off may have gone nowhere, and is played again."""
    link = Pass(tmp_path)
    link.hail()
    link.run(1.0)
    link.listening = False  # the pass ends; the spacecraft cannot know yet
    link.run(1.0)
    link.command("link.DOWNLINK_ENABLE")(enabled=False)
    link.run(TIMEOUT_S + 2.0)  # the carrier times out while the link is already down
    link.command("link.DOWNLINK_ENABLE")(enabled=True)
    link.listening = True
    link.hail()
    link.run_until_played_back()
    assert set(range(link.sent)) <= set(link.got)


def test_a_reboot_before_the_lost_carrier_is_noticed_still_plays_back_the_gap(
    tmp_path: Path,
) -> None:
    link = Pass(tmp_path)
    link.hail()
    link.run(3.0)
    link.listening = False
    link.run(TIMEOUT_S / 2)  # into the void, and the spacecraft does not know yet
    link.reset()
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
    playback = link.command("link.PLAYBACK")
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
    playback = link.command("link.PLAYBACK")
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


def test_a_reboot_during_playback_replays_what_was_queued_but_not_yet_sent(
    tmp_path: Path,
) -> None:
    """The saved cursor marks what has left in a frame, not what was handed to the downlink.

    No carrier timeout here (a wired bench link), so nothing else covers the records that were
    queued for playback when the reset came.
    """
    link = Pass(tmp_path, carrier_timeout_s=None)
    enable = link.command("link.DOWNLINK_ENABLE")
    link.run(1.0)
    enable(enabled=False)
    link.run(300.0)
    enable(enabled=True)
    link.run(2.0)
    assert link.service.playing_back
    assert link.service.downlink.playback_room() < 16  # records queued, not all in frames yet
    link.reset()
    link.run_until_played_back()
    assert set(range(link.sent)) <= set(link.got)


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("run"), st.floats(0.2, 40.0)),
        st.tuples(st.sampled_from(["quiet", "listen", "hail", "disable", "enable"])),
        st.tuples(st.just("reboot"), st.booleans()),
        st.tuples(st.just("range"), st.floats(0.0, 60.0), st.floats(0.0, 60.0)),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(steps=_STEPS)
def test_whatever_the_link_goes_through_every_record_reaches_the_ground(
    steps: list[tuple[object, ...]],
) -> None:
    """Passes ending unnoticed, the downlink switched off and on, ranges asked for, resets with
    or without the last state saved: one long pass at the end still delivers every record.

    The ground transmits only while it listens, and a pass, once ended, stays over for at least
    the carrier timeout: a drop-out shorter than that, in the middle of a pass, looks the same
    to the spacecraft as no drop-out at all, and what it loses only the ground can ask for again.
    """
    with tempfile.TemporaryDirectory() as tmp:
        link = Pass(Path(tmp))
        quiet_since = 0.0

        def listen() -> None:
            if not link.listening:
                link.run(max(0.0, quiet_since + TIMEOUT_S + 2 * DT - link.clock.monotonic()))
            link.listening = True
            link.hail()

        for step in steps:
            match step:
                case ("run", float(seconds)):
                    for _ in range(max(1, round(seconds / (TIMEOUT_S / 2)))):
                        link.run(min(seconds, TIMEOUT_S / 2))
                        if link.listening:
                            link.hail()
                case ("quiet",):
                    if link.listening:
                        quiet_since = link.clock.monotonic()
                    link.listening = False
                case ("listen",):
                    listen()
                case ("hail",):
                    if link.listening:
                        link.hail()
                case ("disable",) | ("enable",):
                    link.command("link.DOWNLINK_ENABLE")(enabled=step[0] == "enable")
                case ("reboot", bool(committed)):
                    link.reset(committed=committed)
                case ("range", float(t0), float(t1)):
                    ask = link.command("link.PLAYBACK")
                    if link.service.up:
                        ask(t_start=min(t0, t1), t_end=max(t0, t1))
                    else:  # refused: it starts by itself when the link returns
                        with pytest.raises(CommandError):
                            ask(t_start=min(t0, t1), t_end=max(t0, t1))
        link.command("link.DOWNLINK_ENABLE")(enabled=True)
        listen()
        link.run_until_played_back()
        link.run_hailing(TIMEOUT_S)  # the last live records out
        assert set(range(link.sent)) <= set(link.got)


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed-layouts", "canonical-only"])
def test_numeric_packets_go_in_fixed_layouts_unless_the_link_is_set_otherwise(
    tmp_path: Path, fixed: bool
) -> None:
    link = Pass(tmp_path, carrier_timeout_s=None, fixed_layouts=fixed)
    assert link.service.fix_layouts({7: ("int",), 8: ("str", "float")}) == ([7] if fixed else [])
    packetizer = link.service.downlink.packetizer
    assert (packetizer.fixed_length(7) is not None) == fixed
    assert packetizer.fixed_length(8) is None
    link.run(3.0)  # packet 7 every tick, [n] with n counting up: the ground reads each
    assert link.sent == 30 and link.got == Counter(range(30))
