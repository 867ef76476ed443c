"""Stored, time-tagged command sequences: how a spacecraft minutes or hours from Earth is run.

The ground uplinks a sequence (``seq.LOAD``), starts it (``seq.START``, or a fault response, or
another sequence), and the engine dispatches each command when its time comes, through the same
dispatcher as ground commands (source ``sequence:<name>``).

Wire form (CBOR map, see :func:`encode_sequence`)::

    {"name": "moi_prep",                 # letters, digits, "_", "-", "." (at most 32)
     "abort_on_error": true,             # stop at the first command that is not OK (default)
     "on_reboot": "abort",               # or "resume": what a reboot does to a running sequence
     "commands": [["abs", 1200.0, 0x0002, [7]],     # at MET 1200 s
                  ["rel", 5.0, 0x0001, []]]}        # 5 s after the previous entry

Timing: an ``abs`` entry is due at that MET; a ``rel`` entry is due its offset after the previous
entry's due time (after the start time for the first entry). Due times are computed from the
schedule, not from when the previous command actually ran, so tick jitter never accumulates.
Entries run strictly in order: an entry whose time has passed runs at once (an event reports it
if it is more than :data:`LATE_S` late, as after a reboot).

Every entry is checked against the dispatcher's dictionary (opcode and arguments) when the
sequence is loaded, and again when it is started (the flight software may have been updated), so
a typo is refused on the ground's watch, not discovered at orbit insertion.

At most once: the engine records in the state store that an entry has been executed *before* it
dispatches it. A reboot in the middle of a command therefore never repeats it; with ``"resume"``
the sequence continues at the next entry not yet executed, with ``"abort"`` it stops and says so.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flight import codec
from flight.commands import (
    Arg,
    ArgType,
    BusyError,
    CommandSpec,
    CommandStatus,
    ValidationError,
    validate_args,
)
from flight.datapool import DataPool
from flight.dispatcher import MAX_SEQ, Dispatcher
from flight.events import EventLog, EventSpec, Severity
from flight.persistence.state import StateStore
from flight.telemetry import ChannelSpec

__all__ = ["SequenceEngine", "encode_sequence", "parse_sequence"]

log = logging.getLogger(__name__)

MAX_SEQUENCE_BYTES = 16384
MAX_NAME = 32
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
_KEYS = {"name", "abort_on_error", "on_reboot", "commands"}
#: Largest time tag accepted (about 300 years of MET; bounds float arithmetic, catches typos).
MAX_TIME_S = 1e10
#: An entry that runs this much later than its due time raises an event.
LATE_S = 1.0
#: At most this many entries of one sequence per tick, so a burst cannot stall the loop.
MAX_PER_TICK = 16

_DEF_KEY = "seq.def."
_STATUS_KEY = "seq.status."

OP_LOAD, OP_START, OP_ABORT, OP_REMOVE, OP_ABORT_ALL = 0x0300, 0x0301, 0x0302, 0x0303, 0x0304


def _ev(offset: int, name: str, severity: Severity, text: str, doc: str) -> EventSpec:
    return EventSpec(0x0300 + offset, f"seq.{name}", severity, text, description=doc)


EV_LOADED = _ev(
    0,
    "LOADED",
    Severity.ACTIVITY_HI,
    "{name} loaded: {count} command(s)",
    "A sequence was validated and stored.",
)
EV_STARTED = _ev(
    1,
    "STARTED",
    Severity.ACTIVITY_HI,
    "{name} started at MET {met:.3f}",
    "A sequence started running.",
)
EV_COMPLETED = _ev(
    2,
    "COMPLETED",
    Severity.ACTIVITY_HI,
    "{name} completed ({count} command(s))",
    "A sequence ran its last entry.",
)
EV_ABORTED = _ev(
    3,
    "ABORTED",
    Severity.WARNING_LO,
    "{name} aborted at entry {index}: {reason}",
    "A sequence stopped before its end.",
)
EV_CMD_FAILED = _ev(
    4,
    "CMD_FAILED",
    Severity.WARNING_LO,
    "{name} entry {index} {command}: {status} {reason}",
    "A sequence command was not OK (the sequence continues or aborts).",
)
EV_RESUMED = _ev(
    5,
    "RESUMED",
    Severity.ACTIVITY_HI,
    "{name} resumed after reboot at entry {index}",
    "A running sequence continues after a reboot (on_reboot=resume).",
)
EV_REMOVED = _ev(6, "REMOVED", Severity.ACTIVITY_LO, "{name} removed", "A sequence was deleted.")
EV_LATE = _ev(
    7,
    "LATE",
    Severity.WARNING_LO,
    "{name} entry {index} ran {late_s:.1f} s late",
    "An entry's time had passed when it ran (start after its time, or reboot).",
)


@dataclass(frozen=True)
class Entry:
    kind: str  # "abs" or "rel"
    time: float
    opcode: int
    args: tuple[Any, ...]


@dataclass(frozen=True)
class StoredSequence:
    name: str
    abort_on_error: bool
    on_reboot: str
    entries: tuple[Entry, ...]

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "abort_on_error": self.abort_on_error,
            "on_reboot": self.on_reboot,
            "commands": [[e.kind, e.time, e.opcode, list(e.args)] for e in self.entries],
        }


def encode_sequence(
    name: str,
    entries: Iterable[tuple[str, float, int, Sequence[Any]]],
    *,
    abort_on_error: bool = True,
    on_reboot: str = "abort",
) -> bytes:
    """The CBOR form of a sequence, for ``seq.LOAD`` (entries: ``(kind, time_s, opcode, args)``).

    This only builds the bytes; the flight software validates them when they are loaded.

    Raises:
        flight.codec.CodecError: an argument value CBOR cannot carry.
    """
    return codec.encode(
        {
            "name": name,
            "abort_on_error": abort_on_error,
            "on_reboot": on_reboot,
            "commands": [[kind, float(t), opcode, list(args)] for kind, t, opcode, args in entries],
        }
    )


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def parse_sequence(
    item: Any, *, lookup: Callable[[int], CommandSpec | None] | None, max_commands: int = 256
) -> StoredSequence:
    """Check a decoded sequence map, and its commands against the dictionary ``lookup`` gives.

    With ``lookup=None`` only the shape is checked (stored definitions read back at boot: their
    commands are checked against the live dictionary when they start).

    Raises:
        ValidationError: with a message naming the field or entry that is wrong.
    """
    if not isinstance(item, dict):
        raise ValidationError(f"sequence must be a map, got {type(item).__name__}")
    unknown = set(item) - _KEYS
    if unknown:
        raise ValidationError(f"unknown sequence field(s): {', '.join(sorted(map(str, unknown)))}")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValidationError(
            f"name must be 1-{MAX_NAME} letters, digits, '_', '-' or '.', got {name!r}"
        )
    abort_on_error = item.get("abort_on_error", True)
    if not isinstance(abort_on_error, bool):
        raise ValidationError("abort_on_error must be a bool")
    on_reboot = item.get("on_reboot", "abort")
    if on_reboot not in ("resume", "abort"):
        raise ValidationError(f"on_reboot must be 'resume' or 'abort', got {on_reboot!r}")
    commands = item.get("commands")
    if not isinstance(commands, list) or not commands:
        raise ValidationError("commands must be a non-empty list")
    if len(commands) > max_commands:
        raise ValidationError(f"{len(commands)} commands exceed the limit of {max_commands}")
    entries = tuple(_parse_entry(i, raw, lookup) for i, raw in enumerate(commands))
    return StoredSequence(name, abort_on_error, on_reboot, entries)


def _parse_entry(index: int, raw: Any, lookup: Callable[[int], CommandSpec | None] | None) -> Entry:
    where = f"entry {index}"
    if not isinstance(raw, list) or len(raw) != 4:
        raise ValidationError(f'{where}: must be ["abs"|"rel", time_s, opcode, [args]]')
    kind, time, opcode, args = raw
    if kind not in ("abs", "rel"):
        raise ValidationError(f"{where}: time kind must be 'abs' or 'rel', got {kind!r}")
    if not _number(time) or not 0 <= time <= MAX_TIME_S:
        raise ValidationError(f"{where}: time {time!r} must be a number in 0..{MAX_TIME_S:g} s")
    if isinstance(opcode, bool) or not isinstance(opcode, int) or not 0 <= opcode <= 0xFFFF:
        raise ValidationError(f"{where}: opcode must be an int in 0..0xFFFF, got {opcode!r}")
    if not isinstance(args, list):
        raise ValidationError(f"{where}: arguments must be a list, got {type(args).__name__}")
    if lookup is None:
        return Entry(kind, float(time), opcode, tuple(args))
    spec = lookup(opcode)
    if spec is None:
        raise ValidationError(f"{where}: unknown opcode 0x{opcode:04X}")
    try:
        validate_args(spec, args)
    except ValidationError as exc:
        raise ValidationError(f"{where}: {spec.name}: {exc}") from exc
    return Entry(kind, float(time), opcode, tuple(args))


@dataclass
class _Status:
    state: str = "loaded"  # loaded | running | done | aborted
    next: int = 0
    anchor: float = 0.0  # due time of the previous entry (start time before the first)
    run: int = 0

    def to_store(self) -> dict[str, Any]:
        return {"state": self.state, "next": self.next, "anchor": self.anchor, "run": self.run}

    @classmethod
    def from_store(cls, raw: Any) -> _Status:
        if not isinstance(raw, dict):
            return cls()
        state = raw.get("state", "loaded")
        status = cls(
            state if state in ("loaded", "running", "done", "aborted") else "aborted",
            raw.get("next", 0),
            raw.get("anchor", 0.0),
            raw.get("run", 0),
        )
        if not (isinstance(status.next, int) and status.next >= 0 and _number(status.anchor)):
            return cls(state="aborted")
        return status


class SequenceEngine:
    """Loads, stores and runs time-tagged sequences.

    Args:
        dispatcher: validates entries at load and runs them.
        events: where the engine's events go.
        now: spacecraft time (MET seconds): what ``abs`` times refer to.
        state: where definitions and progress persist.
        max_sequences: how many sequences may be stored.
        max_commands: most entries in one sequence.
    """

    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        events: EventLog,
        now: Callable[[], float],
        state: StateStore,
        max_sequences: int = 8,
        max_commands: int = 256,
    ) -> None:
        self._dispatcher = dispatcher
        self._events = events
        self._now = now
        self._store = state
        self.max_sequences = max_sequences
        self.max_commands = max_commands
        self._defs: dict[str, StoredSequence] = {}
        self._status: dict[str, _Status] = {}
        self._active: set[str] = set()  # running and ticked (restore() decides after a reboot)
        self._seq = 0
        self.dispatched = 0
        self.failed = 0
        self._load_stored()

    # -- persistence ------------------------------------------------------------------------

    def _load_stored(self) -> None:
        for key in self._store:
            if not key.startswith(_DEF_KEY):
                continue
            name = key[len(_DEF_KEY) :]
            try:
                seq = parse_sequence(self._store.get(key), lookup=None, max_commands=10**6)
            except ValidationError as exc:
                log.error("stored sequence %s is unusable (%s); ignored", name, exc)
                continue
            if seq.name != name:
                log.error("stored sequence %s holds %s; ignored", name, seq.name)
                continue
            self._defs[name] = seq
            self._status[name] = _Status.from_store(self._store.get(_STATUS_KEY + name))

    def _save(self, name: str) -> None:
        self._store.set(_STATUS_KEY + name, self._status[name].to_store())
        self._store.commit()

    # -- operations -------------------------------------------------------------------------

    def load(self, data: bytes) -> str:
        """Validate and store a sequence (replacing a stopped one of the same name).

        Raises:
            ValidationError: bad CBOR, bad shape, unknown opcode, bad arguments, too many
                commands, or the sequence table is full.
            BusyError: a sequence of that name is running.
        """
        try:
            item = codec.decode(bytes(data), max_bytes=MAX_SEQUENCE_BYTES)
        except codec.CodecError as exc:
            raise ValidationError(f"sequence is not valid CBOR: {exc}") from exc
        seq = parse_sequence(item, lookup=self._lookup, max_commands=self.max_commands)
        name = seq.name
        if name in self._active:
            raise BusyError(f"sequence {name} is running; abort it before replacing it")
        if name not in self._defs and len(self._defs) >= self.max_sequences:
            raise ValidationError(f"sequence table full ({self.max_sequences}); remove one first")
        self._defs[name] = seq
        self._status[name] = _Status()
        self._store.set(_DEF_KEY + name, seq.to_wire())
        self._save(name)
        self._events.emit(EV_LOADED, name=name, count=len(seq.entries))
        return name

    def _lookup(self, opcode: int) -> CommandSpec | None:
        return self._dispatcher.lookup(opcode)

    def start(self, name: str) -> None:
        """Run a stored sequence from its first entry, timed from now.

        Raises:
            ValidationError: no such sequence, or it no longer matches the command dictionary.
            BusyError: it is already running.
        """
        seq = self._defs.get(name)
        if seq is None:
            raise ValidationError(f"no sequence named {name!r}")
        if name in self._active:
            raise BusyError(f"sequence {name} is already running")
        parse_sequence(seq.to_wire(), lookup=self._lookup, max_commands=self.max_commands)
        now = self._now()
        status = self._status[name]
        self._status[name] = _Status("running", 0, now, status.run + 1)
        self._active.add(name)
        self._save(name)
        self._events.emit(EV_STARTED, name=name, met=now)

    def abort(self, name: str, reason: str = "by command") -> bool:
        """Stop a running sequence; False if it was not running.

        Raises:
            ValidationError: no such sequence.
        """
        if name not in self._defs:
            raise ValidationError(f"no sequence named {name!r}")
        status = self._status[name]
        if name not in self._active and status.state != "running":
            return False
        self._active.discard(name)
        status.state = "aborted"
        self._save(name)
        self._events.emit(EV_ABORTED, name=name, index=status.next, reason=reason)
        return True

    def abort_all(self, reason: str = "by command") -> int:
        """Stop every running sequence (a safing response); returns how many were running."""
        return sum(self.abort(name, reason) for name in sorted(self._active))

    def remove(self, name: str) -> None:
        """Delete a stored sequence.

        Raises:
            ValidationError: no such sequence.
            BusyError: it is running.
        """
        if name not in self._defs:
            raise ValidationError(f"no sequence named {name!r}")
        if name in self._active:
            raise BusyError(f"sequence {name} is running; abort it first")
        del self._defs[name]
        del self._status[name]
        self._store.delete(_DEF_KEY + name)
        self._store.delete(_STATUS_KEY + name)
        self._store.commit()
        self._events.emit(EV_REMOVED, name=name)

    def restore(self) -> None:
        """After boot: resume or abort the sequences that were running when the software stopped."""
        for name in sorted(self._defs):
            status = self._status[name]
            if status.state != "running" or name in self._active:
                continue
            seq = self._defs[name]
            if seq.on_reboot == "resume" and status.next < len(seq.entries):
                self._active.add(name)
                self._events.emit(EV_RESUMED, name=name, index=status.next)
            elif status.next >= len(seq.entries):
                status.state = "done"
                self._save(name)
            else:
                self.abort(name, "reboot (on_reboot=abort)")

    def tick(self) -> None:
        """Dispatch every entry that is due (call once per base tick). Never raises."""
        for name in sorted(self._active):
            try:
                self._run_due(name)
            except Exception:  # a bug here must not stop the other sequences or the loop
                log.exception("sequence %s: engine error", name)
                self._active.discard(name)
                self._status[name].state = "aborted"
                self._save(name)

    def _run_due(self, name: str) -> None:
        seq = self._defs[name]
        status = self._status[name]
        run = status.run
        for _ in range(MAX_PER_TICK):
            if name not in self._active or status.run != run or status.state != "running":
                return  # aborted, removed or restarted by the command just dispatched
            if status.next >= len(seq.entries):
                self._active.discard(name)
                status.state = "done"
                self._save(name)
                self._events.emit(EV_COMPLETED, name=name, count=len(seq.entries))
                return
            index = status.next
            entry = seq.entries[index]
            due = entry.time if entry.kind == "abs" else status.anchor + entry.time
            now = self._now()
            if now < due:
                return
            # Record the entry as executed BEFORE running it: after a crash it never runs twice.
            status.next = index + 1
            status.anchor = due
            self._save(name)
            if now - due > LATE_S:
                self._events.emit(EV_LATE, name=name, index=index, late_s=now - due)
            self._dispatch(name, seq, index, entry)
            status = self._status.get(name, status)

    def _dispatch(self, name: str, seq: StoredSequence, index: int, entry: Entry) -> None:
        seq_no = self._seq
        self._seq = (self._seq + 1) % (MAX_SEQ + 1)
        response = self._dispatcher.dispatch(
            seq_no, entry.opcode, list(entry.args), source=f"sequence:{name}"
        )
        self.dispatched += 1
        if response.status is CommandStatus.OK:
            return
        self.failed += 1
        spec = self._dispatcher.lookup(entry.opcode)
        self._events.emit(
            EV_CMD_FAILED,
            name=name,
            index=index,
            command=spec.name if spec else f"0x{entry.opcode:04X}",
            status=response.status.name,
            reason=response.reason,
        )
        if seq.abort_on_error and name in self._active:
            self.abort(name, f"entry {index} {response.status.name}")

    # -- status -----------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return sorted(self._defs)

    @property
    def running(self) -> list[str]:
        return sorted(self._active)

    def next_due(self) -> float | None:
        """Spacecraft time of the earliest entry still to run, or None when nothing runs.

        A simulator fast-forwarding through a quiet cruise stops here, so stored commands run
        on time however much time is skipped.
        """
        due: list[float] = []
        for name in self._active:
            status, seq = self._status[name], self._defs[name]
            if status.state == "running" and status.next < len(seq.entries):
                entry = seq.entries[status.next]
                due.append(entry.time if entry.kind == "abs" else status.anchor + entry.time)
        return min(due, default=None)

    def status(self) -> dict[str, dict[str, Any]]:
        """name -> state, next entry index and entry count (for telemetry and the console)."""
        return {
            name: {
                "state": self._status[name].state,
                "next": self._status[name].next,
                "count": len(self._defs[name].entries),
            }
            for name in sorted(self._defs)
        }

    def publish(self, pool: DataPool, now: float) -> None:
        pool.set("seq.loaded", len(self._defs), now)
        pool.set("seq.running", len(self._active), now)
        pool.set("seq.running_names", ",".join(sorted(self._active)), now)
        pool.set("seq.dispatched", self.dispatched, now)
        pool.set("seq.failed", self.failed, now)

    def channels(self) -> list[ChannelSpec]:
        return [
            ChannelSpec(0x0300, "seq.loaded", "int", description="Stored sequences."),
            ChannelSpec(0x0301, "seq.running", "int", description="Running sequences."),
            ChannelSpec(0x0302, "seq.running_names", "str", description="Their names."),
            ChannelSpec(0x0303, "seq.dispatched", "int", description="Commands dispatched."),
            ChannelSpec(0x0304, "seq.failed", "int", description="Commands that were not OK."),
        ]

    # -- dictionary -------------------------------------------------------------------------

    def _cmd_load(self, data: bytes) -> str:
        return f"loaded {self.load(data)}"

    def _cmd_start(self, name: str) -> str:
        self.start(name)
        return f"started {name}"

    def _cmd_abort(self, name: str) -> str:
        return f"aborted {name}" if self.abort(name) else f"{name} was not running"

    def _cmd_remove(self, name: str) -> str:
        self.remove(name)
        return f"removed {name}"

    def _cmd_abort_all(self) -> str:
        return f"aborted {self.abort_all()} sequence(s)"

    def commands(self) -> list[CommandSpec]:
        name = Arg("name", ArgType.STR, max_length=MAX_NAME, description="Sequence name.")
        return [
            CommandSpec(
                OP_LOAD,
                "seq.LOAD",
                self._cmd_load,
                (
                    Arg(
                        "data",
                        ArgType.BYTES,
                        max_length=MAX_SEQUENCE_BYTES,
                        description="CBOR sequence (see flight.sequences).",
                    ),
                ),
                description="Validate and store a sequence (replaces a stopped one).",
            ),
            CommandSpec(
                OP_START,
                "seq.START",
                self._cmd_start,
                (name,),
                description="Start a stored sequence from its first entry.",
            ),
            CommandSpec(
                OP_ABORT,
                "seq.ABORT",
                self._cmd_abort,
                (name,),
                description="Stop a running sequence.",
            ),
            CommandSpec(
                OP_REMOVE,
                "seq.REMOVE",
                self._cmd_remove,
                (name,),
                description="Delete a stored sequence that is not running.",
            ),
            CommandSpec(
                OP_ABORT_ALL,
                "seq.ABORT_ALL",
                self._cmd_abort_all,
                description="Stop every running sequence.",
            ),
        ]

    def events(self) -> list[EventSpec]:
        return [
            EV_LOADED,
            EV_STARTED,
            EV_COMPLETED,
            EV_ABORTED,
            EV_CMD_FAILED,
            EV_RESUMED,
            EV_REMOVED,
            EV_LATE,
        ]
