"""Key slots switched off by command stay off across restarts, and the uplink is never locked.

Each "boot" builds the link afresh over the same state file, with a key ring loaded from the
configuration (every configured slot enabled), as ``fsw run`` does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flight.clock import SimClock
from flight.commands import CommandError
from flight.dispatcher import Dispatcher
from flight.events import EventLog, Severity
from flight.link.ground import CommandEncoder
from flight.link.sdls import KeyRing, MemoryCounterStore
from flight.link.service import LinkConfig, LinkService
from flight.link.transports import MemoryPipe
from flight.persistence.archive import Archive
from flight.persistence.state import StateStore

KEYS = {1: bytes(range(32)), 2: bytes(range(1, 33)), 3: bytes(range(2, 34))}
SCID = LinkConfig().spacecraft_id


class Boot:
    """One start of the flight software's link, with the keys the configuration loads."""

    def __init__(self, state_dir: Path, slots: tuple[int, ...] = (1, 2)) -> None:
        self.clock = SimClock()
        self.events = EventLog(now=self.clock.monotonic)
        self.store = StateStore(state_dir / "state.cbor")
        self.keyring = KeyRing({spi: KEYS[spi] for spi in slots})
        spacecraft, _ground = MemoryPipe.pair()
        self.service = LinkService(
            transport=spacecraft,
            keyring=self.keyring,
            config=LinkConfig(),
            dispatcher=Dispatcher(events=self.events, now=self.clock.monotonic),
            events=self.events,
            store=self.store,
            archive=Archive(state_dir / "archive", clock=self.clock),
            now=self.clock.monotonic,
        )
        self.handlers = {spec.name: spec.handler for spec in self.service.uplink.commands()}

    def accepts(self, spi: int) -> bool:
        """Whether a fresh, correctly authenticated frame under ``spi`` gets through."""
        encoder = CommandEncoder(key=KEYS[spi], spi=spi, scid=SCID, counters=MemoryCounterStore())
        self.clock.advance(1.0)
        return self.service.uplink.feed(encoder.encode_command(1, 0x0001, [])) == 1

    def names(self) -> list[str]:
        return [e.name for e in self.events.recent]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


def test_a_slot_disabled_by_command_stays_disabled_after_a_restart(state_dir: Path) -> None:
    first = Boot(state_dir)
    first.handlers["link.KEY_SLOT_SET"](slot=2)
    assert first.keyring.enabled == (2,)

    second = Boot(state_dir)
    assert second.keyring.enabled == (2,)
    assert not second.accepts(1)
    assert second.accepts(2)
    assert second.service.uplink.counters["unknown_spi"] == 1


def test_re_enabling_a_slot_is_kept_too(state_dir: Path) -> None:
    first = Boot(state_dir)
    first.handlers["link.KEY_SLOT_ENABLE"](slot=1, enabled=False)
    assert Boot(state_dir).keyring.enabled == (2,)
    Boot(state_dir).handlers["link.KEY_SLOT_ENABLE"](slot=1, enabled=True)
    assert Boot(state_dir).keyring.enabled == (1, 2)


def test_a_slot_the_configuration_adds_later_starts_enabled(state_dir: Path) -> None:
    Boot(state_dir).handlers["link.KEY_SLOT_SET"](slot=2)
    later = Boot(state_dir, slots=(1, 2, 3))
    assert later.keyring.enabled == (2, 3)
    assert later.accepts(3)


def test_a_saved_state_that_would_lock_the_uplink_is_overruled(state_dir: Path) -> None:
    Boot(state_dir).handlers["link.KEY_SLOT_SET"](slot=2)  # slot 1 off
    # The configuration then loses key 2: honouring the saved state would enable nothing.
    only_one = Boot(state_dir, slots=(1,))
    assert only_one.keyring.enabled == (1,)
    assert only_one.accepts(1)
    refused = [e for e in only_one.events.recent if e.name == "link.KEY_SLOTS_RESTORE_REFUSED"]
    assert len(refused) == 1 and refused[0].severity is Severity.WARNING_HI
    # Once key 2 is back, the saved choice (slot 1 off) applies again.
    assert Boot(state_dir).keyring.enabled == (2,)


def test_a_change_that_cannot_be_committed_changes_nothing(state_dir: Path) -> None:
    boot = Boot(state_dir)
    shutil.rmtree(state_dir)  # the storage is gone: every commit fails
    with pytest.raises(CommandError, match="durable"):
        boot.handlers["link.KEY_SLOT_SET"](slot=2)
    assert boot.keyring.enabled == (1, 2)
    # Storage back: the next commit (here the anti-replay counter's) does not carry the refused
    # change with it.
    state_dir.mkdir()
    assert boot.accepts(1)
    assert boot.store.last_commit_ok
    assert Boot(state_dir).keyring.enabled == (1, 2)


def test_the_last_enabled_slot_still_cannot_be_disabled(state_dir: Path) -> None:
    boot = Boot(state_dir)
    boot.handlers["link.KEY_SLOT_SET"](slot=1)
    with pytest.raises(CommandError, match="last enabled"):
        boot.handlers["link.KEY_SLOT_ENABLE"](slot=1, enabled=False)
    assert Boot(state_dir).keyring.enabled == (1,)


@pytest.mark.parametrize(
    ("saved", "enabled"),
    [("1", (1, 2)), ([1, "2"], (2,)), ([True], (1, 2)), ([-1, 70000], (1, 2)), ({"1": 1}, (1, 2))],
)
def test_a_malformed_saved_state_disables_nothing_it_cannot_name(
    state_dir: Path, saved: object, enabled: tuple[int, ...]
) -> None:
    store = StateStore(state_dir / "state.cbor")
    store.set("link.key_slots_disabled", saved)
    store.commit()
    assert Boot(state_dir).keyring.enabled == enabled


def test_a_malformed_anti_replay_counter_refuses_rather_than_resets(state_dir: Path) -> None:
    """A counter that is not a number must not reopen the replay window by reading as "none"."""
    store = StateStore(state_dir / "state.cbor")
    store.set("link.arsn.1", "nine")
    store.commit()
    boot = Boot(state_dir)
    assert not boot.accepts(1)
    assert "link.UPLINK_COUNTER_STORE_FAILED" in boot.names()
    assert boot.accepts(2)
