"""The interactive console: type commands, see responses and events as they arrive.

Lines are read from stdin on a helper thread (so a slow typist never stalls reception) and handled
on the main thread, which also polls the link; command responses and events are printed as they
are decoded. Besides every script statement (see :mod:`flight.ground.script`: ``cmd.PING 7``,
``arm ...``, ``expect ...``, ``wait ...``), the console knows::

    show [PATTERN]       latest value of every channel (PATTERN: mars.* or a substring),
                         yellow/red limit states coloured and named
    events [N]           the last N events (default 20)
    commands [PATTERN]   every command with its arguments; help NAME for one
    link                 downlink quality: frames, CRC failures, gaps, skipped bytes
    quit | exit          leave (so does end of input, after waiting briefly for the responses
                         to commands already sent)

A bad line prints an error and the console goes on; nothing typed can stop it except ``quit``.
"""

from __future__ import annotations

import queue
import shlex
import threading
from collections.abc import Callable
from typing import TextIO

from flight.ground.arguments import usage
from flight.ground.display import (
    format_channels,
    format_command_list,
    format_event,
    format_response,
)
from flight.ground.records import EventRecord, Record, ResponseRecord
from flight.ground.runner import ScriptRunner
from flight.ground.script import (
    GRAMMAR,
    ArmStep,
    ScriptError,
    ScriptParser,
    SendStep,
    SequenceStep,
    WaitStep,
)
from flight.ground.station import CommandRefusedError, GroundStation

__all__ = ["Console", "arrival_text", "print_arrivals"]

#: Seconds to wait at end of input for responses to commands already sent.
LINGER_S = 3.0
PROMPT = "fsw> "


def arrival_text(record: Record, *, color: bool) -> str | None:
    """What the console prints when ``record`` arrives (channel updates print nothing)."""
    if isinstance(record, EventRecord):
        return format_event(record, color=color)
    if isinstance(record, ResponseRecord):
        return format_response(record, color=color)
    return None


def print_arrivals(station: GroundStation, out: TextIO, *, color: bool) -> None:
    """Print every command response and event ``station`` decodes, as it arrives."""

    def arrived(record: Record) -> None:
        text = arrival_text(record, color=color)
        if text is not None:
            out.write(text + "\n")
            out.flush()

    station.subscribe(arrived)


class Console:
    """A line-based operator console over one :class:`GroundStation`.

    Args:
        station: the link to the spacecraft.
        parser: checks statements against the dictionary.
        out: where everything is printed.
        color: ANSI colours for limit states, severities and failures.
        prompt: print a prompt (only sensible on a terminal).
        linger_s: how long end of input waits for outstanding responses.
    """

    def __init__(
        self,
        station: GroundStation,
        *,
        parser: ScriptParser,
        out: TextIO,
        color: bool = False,
        prompt: bool = False,
        linger_s: float = LINGER_S,
    ) -> None:
        self.station = station
        self.parser = parser
        self.out = out
        self.color = color
        self.prompt = prompt
        self.linger_s = linger_s
        self.runner = ScriptRunner(station, out=out, source="console")
        self._builtins: dict[str, Callable[[list[str]], None]] = {
            "show": self._show,
            "events": self._events,
            "commands": self._commands,
            "help": self._help,
            "link": self._link,
        }
        self._at_prompt = False
        station.subscribe(self._arrived)

    def _arrived(self, record: Record) -> None:
        text = arrival_text(record, color=self.color)
        if text is None:
            return
        if self._at_prompt:
            # Clear the prompt line, print, and offer the prompt again below.
            self.out.write(f"\r\033[K{text}\n{PROMPT}")
            self.out.flush()
        else:
            self._print(text)

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    # ------------------------------------------------------------------ lines

    def handle(self, line: str) -> bool:
        """Act on one line; False when it asks to quit. Never raises for bad input."""
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            self._print(f"error: {exc}")
            return True
        if not words:
            return True
        if words[0] in ("quit", "exit"):
            return False
        builtin = self._builtins.get(words[0])
        if builtin is not None:
            builtin(words[1:])
            return True
        try:
            step = self.parser.parse_line(line)
        except ScriptError as exc:
            self._print(f"error: {exc}")
            return True
        if step is None:
            return True
        outcome = self.runner.execute(step)
        if isinstance(step, SendStep | ArmStep | SequenceStep):
            self._print(outcome.detail if outcome.ok else f"not sent: {outcome.detail}")
        elif isinstance(step, WaitStep):
            self._print(outcome.detail)
        else:
            self._print(f"{'met' if outcome.ok else 'UNMET'}: {outcome.detail}")
        return True

    def run(self, stream: TextIO) -> int:
        """Read lines from ``stream`` until ``quit`` or end of input; returns 0."""
        lines: queue.Queue[str | None] = queue.Queue()

        def reader() -> None:
            try:
                for line in stream:
                    lines.put(line)
            finally:
                lines.put(None)

        threading.Thread(target=reader, name="console-stdin", daemon=True).start()
        self._write_prompt()
        while True:
            self.station.poll()
            try:
                line = lines.get_nowait()
            except queue.Empty:
                self.station.clock.sleep(self.station.poll_interval_s)
                continue
            if line is None:
                self._linger()
                return 0
            self._at_prompt = False
            if not self.handle(line):
                return 0
            self._write_prompt()

    def _write_prompt(self) -> None:
        if self.prompt:
            self.out.write(PROMPT)
            self.out.flush()
            self._at_prompt = True

    def _linger(self) -> None:
        def answered() -> bool | None:
            return all(seq in self.station.responses for seq in self.station.sent) or None

        self.station.wait_until(answered, self.linger_s)

    # ------------------------------------------------------------------ built-ins

    def _show(self, words: list[str]) -> None:
        pattern = words[0] if words else None
        self._print(
            format_channels(
                self.station.channels.values(),
                color=self.color,
                pattern=pattern,
                now=self.station.clock.monotonic(),
            )
        )

    def _events(self, words: list[str]) -> None:
        try:
            n = int(words[0]) if words else 20
        except ValueError:
            self._print("usage: events [N]")
            return
        recent = self.station.events[-n:] if n > 0 else []
        if not recent:
            self._print("(no events received yet)")
        for event in recent:
            self._print(format_event(event, color=self.color))

    def _commands(self, words: list[str]) -> None:
        self._print(
            format_command_list(self.station.dictionary.commands, words[0] if words else None)
        )

    def _help(self, words: list[str]) -> None:
        if not words:
            self._print((__doc__ or "") + "\n" + GRAMMAR)
            return
        try:
            spec = self.station.command_spec(words[0])
        except CommandRefusedError as exc:
            self._print(f"error: {exc}")
            return
        self._print(usage(spec) + ("  (hazardous: arm first)" if spec.hazardous else ""))
        if spec.description:
            self._print(f"  {spec.description}")
        for arg in spec.args:
            if arg.description:
                self._print(f"  {arg.name}: {arg.description}")

    def _link(self, _words: list[str]) -> None:
        stats = self.station.link_stats()
        connected = "up" if self.station.transport.connected else "DOWN"
        self._print(f"link {connected}; " + ", ".join(f"{k} {v}" for k, v in stats.items()))
