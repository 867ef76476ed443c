"""The ground station: commands out by name, telemetry, events and responses in, all over frames.

A :class:`GroundStation` joins the exported dictionary
(:class:`~flight.dictionary.GroundDictionary`), the link's
:class:`~flight.link.ground.CommandEncoder` and :class:`~flight.link.ground.TelemetryDecoder`, and
a byte :class:`~flight.link.transports.Transport`. It never talks to the flight software any other
way than the radio would.

Sending: every command is checked against the dictionary with the very validation the spacecraft
applies, so a typo costs no uplink (:class:`CommandRefusedError`, nothing sent). Each command's
sequence number is the anti-replay number of the frame that carries it: both are persisted by the
encoder and strictly increase, so a restarted console never reuses a sequence number and a response
can always be matched to the command that caused it.

Receiving: :meth:`GroundStation.poll` reads what the transport has, decodes it, keeps the latest
value of every channel (with units and yellow/red limit state), the events, and the responses by
sequence number, tells subscribers, and appends every item to an optional JSON-lines log. Bad
frames and undecodable packets are counted by the decoder; packets or events the dictionary does
not know are logged and kept raw, never raised.

Waiting: ``wait_*`` poll the transport until a condition holds or the timeout passes, sleeping on
the clock they were given between polls (a test passes a clock whose sleep runs the flight side).

Exceptions::

    CommandRefusedError(ValueError)   unknown command, bad argument, malformed sequence
    LinkDownError(ConnectionError)    the transport has no peer: nothing was sent
    TimeoutError                      a wait ran out
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from flight.clock import utc_now
from flight.commands import CommandSpec, CommandStatus, ValidationError
from flight.dictionary import GroundDictionary
from flight.events import Severity
from flight.ground.records import (
    ChannelValue,
    EventRecord,
    Record,
    ResponseRecord,
    SentCommand,
    limit_state,
)
from flight.link.ground import CommandEncoder, Received, TelemetryDecoder
from flight.link.transports import Transport
from flight.messages import Message, MessageKind
from flight.sequences import encode_sequence, parse_sequence
from hal.clock import Clock

__all__ = ["CommandRefusedError", "GroundStation", "LinkDownError", "StationStats"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds between transport polls while waiting.
POLL_INTERVAL_S = 0.02
#: Events kept in memory (the log file keeps them all).
MAX_EVENTS = 10_000


class CommandRefusedError(ValueError):
    """The ground refused a command before sending it (unknown name, bad argument)."""


class LinkDownError(ConnectionError):
    """The transport has no peer; the command was not sent and used no sequence number."""


@dataclass
class StationStats:
    sent: int = 0
    messages: int = 0
    unknown_packets: int = 0
    unknown_events: int = 0
    malformed: int = 0
    unmatched_responses: int = 0
    log_errors: int = 0
    #: Events played back that had already arrived live (kept once).
    repeated_events: int = 0


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return value.hex()
    return repr(value)


class GroundStation:
    """Sends commands by name and keeps what the spacecraft sends back.

    Args:
        dictionary: the flight software's exported dictionary.
        encoder: builds authenticated frames (owns the anti-replay counter file).
        decoder: finds and decodes downlink frames.
        transport: the byte stream to the spacecraft.
        clock: what waits sleep on and what ``received`` times come from.
        log_path: append every sent and received item here as JSON lines.
        utc: wall time for log stamps (default the host's calendar clock).

    Raises (on construction):
        OSError: the log file cannot be opened.
    """

    def __init__(
        self,
        *,
        dictionary: GroundDictionary,
        encoder: CommandEncoder,
        decoder: TelemetryDecoder,
        transport: Transport,
        clock: Clock,
        log_path: str | Path | None = None,
        utc: Callable[[], float] | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self.dictionary = dictionary
        self.encoder = encoder
        self.decoder = decoder
        self.transport = transport
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self._utc = utc or utc_now
        self._log: IO[str] | None = (
            open(log_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed by close()
            if log_path is not None
            else None
        )
        self.channels: dict[str, ChannelValue] = {}
        self.events: list[EventRecord] = []
        self._events_dropped = 0
        # Identity of the newest events (insertion-ordered, at most MAX_EVENTS): a playback
        # after a lost carrier re-sends what may have arrived live already.
        self._event_keys: dict[tuple[int, float, str], None] = {}
        self.responses: dict[int, ResponseRecord] = {}
        #: Responses to commands this station did not send (stored sequences, other consoles).
        self.other_responses: list[ResponseRecord] = []
        self.sent: dict[int, SentCommand] = {}
        self.last_sent: SentCommand | None = None
        self.stats = StationStats()
        self._listeners: list[Callable[[Record], None]] = []
        self._message_listeners: list[Callable[[Message], None]] = []

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the transport and the log (idempotent)."""
        self.transport.close()
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def __enter__(self) -> GroundStation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(self, listener: Callable[[Record], None]) -> None:
        """Call ``listener`` with every channel update, event and response as it is decoded."""
        self._listeners.append(listener)

    def subscribe_messages(self, listener: Callable[[Message], None]) -> None:
        """Call ``listener`` with every message decoded, live or played back, repeats included.

        For recorders and simulators that must account for everything: :meth:`poll` returns
        only what that call read, and :meth:`send` and the waits poll too.
        """
        self._message_listeners.append(listener)

    # ------------------------------------------------------------------ sending

    def command_spec(self, name: str) -> CommandSpec:
        """Raises: CommandRefusedError: no such command (with the closest names)."""
        try:
            return self.dictionary.command(name)
        except KeyError:
            names = [c.name for c in self.dictionary.commands]
            close = difflib.get_close_matches(name, names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise CommandRefusedError(f"unknown command {name!r}{hint}") from None

    def prepare(self, name: str, args: Sequence[Any]) -> tuple[int, list[Any]]:
        """Opcode and wire arguments, checked as the spacecraft will check them.

        Raises:
            CommandRefusedError: unknown command or an argument the spacecraft would refuse.
        """
        self.command_spec(name)
        try:
            return self.dictionary.prepare(name, args)
        except ValidationError as exc:
            raise CommandRefusedError(f"{name}: {exc}") from exc

    @property
    def next_seq(self) -> int:
        """The sequence number (and anti-replay number) the next command will carry."""
        last = self.encoder.last_arsn
        return 0 if last is None else last + 1

    def send(self, name: str, *args: Any) -> int:
        """Validate and send one command; returns its sequence number.

        Raises:
            CommandRefusedError: unknown command or bad argument (nothing sent).
            LinkDownError: the transport has no peer (nothing sent).
            ValueError: the command does not fit one frame, or the key slot's anti-replay numbers
                are exhausted (from the encoder; nothing sent).
            OSError: the anti-replay counter could not be persisted (nothing sent).
        """
        opcode, wire_args = self.prepare(name, args)
        self.poll()  # refreshes the transport's view of its peer, and keeps what it had
        if not self.transport.connected:
            raise LinkDownError(f"link is down: {name} not sent")
        seq = self.next_seq
        frame = self.encoder.encode_command(seq, opcode, wire_args)
        self.transport.write(frame)
        record = SentCommand(seq, name, opcode, tuple(wire_args), self.clock.monotonic())
        self.sent[seq] = record
        self.last_sent = record
        self.stats.sent += 1
        self._write_log(
            {"kind": "COMMAND", "seq": seq, "command": name, "opcode": opcode, "args": wire_args}
        )
        log.info("sent %s seq %d", name, seq)
        return seq

    def send_sequence(
        self,
        name: str,
        entries: Iterable[tuple[str, float, str, Sequence[Any]]],
        *,
        abort_on_error: bool = True,
        on_reboot: str = "abort",
    ) -> int:
        """Build a stored sequence from ``(kind, time_s, command name, args)`` entries and send
        it with ``seq.LOAD``; returns the sequence number of the load command.

        Every entry is checked against the dictionary, and the whole sequence against the same
        rules the spacecraft applies on load, before anything is sent.

        Raises:
            CommandRefusedError: a bad entry (named by index and command), name or option.
            LinkDownError, ValueError, OSError: as :meth:`send`.
        """
        wire: list[tuple[str, float, int, list[Any]]] = []
        for i, (kind, time_s, command, args) in enumerate(entries):
            try:
                opcode, wire_args = self.prepare(command, args)
            except CommandRefusedError as exc:
                raise CommandRefusedError(f"sequence {name} entry {i}: {exc}") from exc
            wire.append((kind, time_s, opcode, wire_args))
        item = {
            "name": name,
            "abort_on_error": abort_on_error,
            "on_reboot": on_reboot,
            "commands": [[k, t, op, a] for k, t, op, a in wire],
        }
        try:
            parse_sequence(item, lookup=self._lookup_opcode)
        except ValidationError as exc:
            raise CommandRefusedError(f"sequence {name}: {exc}") from exc
        data = encode_sequence(name, wire, abort_on_error=abort_on_error, on_reboot=on_reboot)
        return self.send("seq.LOAD", data)

    def _lookup_opcode(self, opcode: int) -> CommandSpec | None:
        try:
            return self.dictionary.command(opcode)
        except KeyError:
            return None

    # ------------------------------------------------------------------ receiving

    def poll(self) -> list[Message]:
        """Read what the transport has, decode it, update the state; returns the messages."""
        data = self.transport.read_available()
        if not data:
            return []
        received = self.decoder.feed_packets(data)
        for item in received:
            self.stats.messages += 1
            for listener in list(self._message_listeners):
                listener(item.message)
            try:
                self._handle(item)
            except Exception:  # a listener or a malformed body must not stop the console
                self.stats.malformed += 1
                log.exception("could not handle %s %s", item.message.kind.name, item.message.id)
        return [item.message for item in received]

    def _handle(self, item: Received) -> None:
        msg = item.message
        if msg.kind is MessageKind.TELEMETRY:
            self._telemetry(msg, item.playback)
        elif msg.kind is MessageKind.EVENT:
            self._event(msg, item.playback)
        elif msg.kind is MessageKind.COMMAND_RESPONSE:
            self._response(msg)
        else:
            self._write_log({"kind": msg.kind.name, "id": msg.id, "time": msg.time})

    def _telemetry(self, msg: Message, playback: bool) -> None:
        try:
            values = self.dictionary.unpack(msg.id, msg.body)
        except (KeyError, ValueError) as exc:
            self.stats.unknown_packets += 1
            log.warning("telemetry packet 0x%04X: %s", msg.id, exc)
            self._write_log(
                {"kind": "TELEMETRY", "id": msg.id, "time": msg.time, "playback": playback,
                 "body": msg.body, "error": str(exc)}
            )  # fmt: skip
            return
        self._write_log(
            {"kind": "TELEMETRY", "id": msg.id, "packet": self.dictionary.packet(msg.id).name,
             "time": msg.time, "playback": playback, "values": values}
        )  # fmt: skip
        now = self.clock.monotonic()
        for name, value in values.items():
            old = self.channels.get(name)
            if value is None or (old is not None and old.time > msg.time):
                continue  # missing on board, or older than what we have (playback)
            spec = self.dictionary.channel(name)
            limit = limit_state(spec.limit_level, value) if (spec.yellow or spec.red) else None
            update = ChannelValue(name, value, spec.units, limit, msg.time, now)
            self.channels[name] = update
            self._notify(update)

    def _event(self, msg: Message, playback: bool) -> None:
        body = msg.body if isinstance(msg.body, dict) else {}
        sev = body.get("sev")
        severity = (
            Severity(sev).name
            if isinstance(sev, int) and sev in Severity._value2member_map_
            else str(sev)
        )
        args = body.get("args") if isinstance(body.get("args"), dict) else {}
        try:
            name = self.dictionary.event(msg.id).name
        except KeyError:
            self.stats.unknown_events += 1
            name = f"event 0x{msg.id:04X}"
        text = str(body.get("text", ""))
        key = (msg.id, msg.time, text)
        if key in self._event_keys:
            self.stats.repeated_events += 1
            return
        self._event_keys[key] = None
        if len(self._event_keys) > MAX_EVENTS:
            del self._event_keys[next(iter(self._event_keys))]
        record = EventRecord(
            msg.id, name, severity, text, dict(args or {}), msg.time, self.clock.monotonic(),
            playback,
        )  # fmt: skip
        self.events.append(record)
        if len(self.events) > MAX_EVENTS:
            drop = len(self.events) - MAX_EVENTS
            del self.events[:drop]
            self._events_dropped += drop
        self._write_log(
            {"kind": "EVENT", "id": msg.id, "name": name, "severity": severity, "time": msg.time,
             "playback": playback, "text": record.text, "args": record.args}
        )  # fmt: skip
        self._notify(record)

    def _response(self, msg: Message) -> None:
        body = msg.body if isinstance(msg.body, dict) else {}
        seq, status = body.get("seq"), body.get("status")
        if isinstance(seq, bool) or not isinstance(seq, int):
            seq = -1
        if isinstance(status, int) and status in CommandStatus._value2member_map_:
            status_name = CommandStatus(status).name
        else:
            status_name = f"UNKNOWN({status!r})"
        try:
            command = self.dictionary.command(msg.id).name
        except KeyError:
            command = f"0x{msg.id:04X}" if msg.id >= 0 else "?"
        record = ResponseRecord(
            seq, msg.id, command, status_name, str(body.get("reason", "")), msg.time,
            self.clock.monotonic(),
        )  # fmt: skip
        sent = self.sent.get(seq)
        if sent is not None and msg.id in (sent.opcode, -1):
            self.responses.setdefault(seq, record)  # a repeat (playback) keeps the first
        else:
            self.stats.unmatched_responses += 1
            self.other_responses.append(record)
            del self.other_responses[:-MAX_EVENTS]
        self._write_log(
            {"kind": "COMMAND_RESPONSE", "seq": seq, "opcode": msg.id, "command": command,
             "status": status_name, "reason": record.reason, "time": msg.time}
        )  # fmt: skip
        self._notify(record)

    def _notify(self, record: Record) -> None:
        for listener in list(self._listeners):
            listener(record)

    def _write_log(self, entry: dict[str, Any]) -> None:
        if self._log is None:
            return
        line = json.dumps({"rx" if entry["kind"] != "COMMAND" else "tx": self._utc(), **entry},
                          default=_json_default)  # fmt: skip
        try:
            self._log.write(line + "\n")
        except OSError as exc:  # a full disk must not stop commanding
            self.stats.log_errors += 1
            log.error("ground log write failed: %s", exc)

    # ------------------------------------------------------------------ queries and waits

    @property
    def event_count(self) -> int:
        """Events received so far (a mark for :meth:`events_since`)."""
        return self._events_dropped + len(self.events)

    def events_since(self, mark: int) -> list[EventRecord]:
        return self.events[max(0, mark - self._events_dropped) :]

    def wait_until(
        self, condition: Callable[[], T | None], timeout_s: float, clock: Clock | None = None
    ) -> T | None:
        """Poll until ``condition()`` returns something other than ``None`` (returned) or
        ``timeout_s`` passes (``None``). The condition is checked at least once."""
        clock = clock or self.clock
        deadline = clock.monotonic() + timeout_s
        while True:
            self.poll()
            result = condition()
            if result is not None:
                return result
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                return None
            clock.sleep(min(self.poll_interval_s, remaining))

    def wait_response(
        self, seq: int, timeout_s: float, clock: Clock | None = None
    ) -> ResponseRecord:
        """The response to command ``seq``.

        Raises:
            TimeoutError: none arrived in time (the message names the command).
        """
        found = self.wait_until(lambda: self.responses.get(seq), timeout_s, clock)
        if found is None:
            sent = self.sent.get(seq)
            what = f"{sent.command} seq {seq}" if sent else f"seq {seq}"
            raise TimeoutError(f"no response to {what} within {timeout_s:g} s")
        return found

    def wait_event(
        self,
        name: str,
        timeout_s: float,
        *,
        since: int = 0,
        containing: str | None = None,
        clock: Clock | None = None,
    ) -> EventRecord:
        """The first realtime event ``name`` received after mark ``since`` (see
        :attr:`event_count`) whose text contains ``containing``.

        Raises:
            TimeoutError: none arrived in time.
        """

        def match() -> EventRecord | None:
            for event in self.events_since(since):
                if (
                    event.name == name
                    and not event.playback
                    and (containing is None or containing in event.text)
                ):
                    return event
            return None

        found = self.wait_until(match, timeout_s, clock)
        if found is None:
            raise TimeoutError(f"no {name} event within {timeout_s:g} s")
        return found

    def wait_telemetry(
        self,
        channel: str,
        check: Callable[[Any], bool],
        timeout_s: float,
        clock: Clock | None = None,
    ) -> ChannelValue:
        """The latest value of ``channel`` once ``check`` accepts it.

        Raises:
            KeyError: no such channel.
            TimeoutError: no acceptable value in time.
        """
        self.dictionary.channel(channel)

        def ok() -> ChannelValue | None:
            current = self.channels.get(channel)
            return current if current is not None and check(current.value) else None

        found = self.wait_until(ok, timeout_s, clock)
        if found is None:
            raise TimeoutError(f"{channel} not as expected within {timeout_s:g} s")
        return found

    def link_stats(self) -> dict[str, int]:
        """Downlink quality as the decoder saw it: CRC failures, skipped bytes, frame gaps."""
        sync, deframer = self.decoder.sync.stats, self.decoder.deframer.stats
        return {
            "frames_ok": deframer.frames_ok,
            "crc_errors": sync.crc_errors,
            "bytes_skipped": sync.bytes_skipped,
            "frames_bad": deframer.frames_bad,
            "frame_gaps": deframer.vc_gaps,
            "packet_errors": self.decoder.stats.packet_errors,
        }
