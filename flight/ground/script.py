"""Ground scripts: send commands and check what comes back, one line at a time.

The same statements work in a script file (``fsw ground ... --script FILE``) and typed at the
console. A whole script is parsed and checked against the dictionary before anything is sent,
so a typo in line 40 is reported (exit 2) before line 1 has touched the spacecraft. Running stops
at the first unmet expectation (exit 1), naming its file and line.

Grammar (one statement per line; ``#`` starts a comment outside quotes; words are split like a
shell's, so ``"two words"`` is one word)::

    send NAME [ARG ...]            send a command (arguments typed per the dictionary, see
                                   flight.ground.arguments); it becomes "the last command"
    NAME [ARG ...]                 the same, for any NAME that is not a keyword (cmd.PING 7)
    arm NAME                       send cmd.ARM NAME (a hazardous command must be armed first)
    sequence FILE                  load a stored sequence from a TOML/JSON file (seq.LOAD);
                                   FILE is relative to the script
    wait SECONDS                   keep receiving for SECONDS
    expect response STATUS [containing TEXT] [within SECONDS]
                                   the last command's response has STATUS (OK, BUSY,
                                   VALIDATION_ERROR, ...) and its reason contains TEXT
    expect telemetry CHANNEL CHECK [within SECONDS]
                                   CHANNEL's latest value passes CHECK: LOW..HIGH (either side
                                   may be left out: 20.., ..35) or a single value (equality,
                                   read per the channel's type: 3, 2.5, true, NOMINAL)
    expect event NAME [containing TEXT] [within SECONDS]
                                   a realtime event NAME arrives after the last command was
                                   sent (after the script started if none was)

``within`` defaults to the runner's timeout (``--timeout``, 10 s). Time is the ground's wall
clock: the flight software runs in real time on the bench or board. An ``expect response``
fails at once when a response with another status arrives, without waiting out the timeout.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flight.commands import CommandStatus
from flight.dictionary import GroundDictionary
from flight.ground.arguments import (
    ArgumentError,
    SequenceFile,
    load_sequence_file,
    parse_args,
    parse_bool,
)

__all__ = [
    "GRAMMAR",
    "KEYWORDS",
    "ArmStep",
    "ExpectEventStep",
    "ExpectResponseStep",
    "ExpectTelemetryStep",
    "ScriptError",
    "ScriptParser",
    "SendStep",
    "SequenceStep",
    "Step",
    "ValueCheck",
    "WaitStep",
]

#: The statements, for the console's ``help``.
GRAMMAR: str = __doc__ or ""
DEFAULT_TIMEOUT_S = 10.0
KEYWORDS = ("send", "arm", "sequence", "wait", "expect")


class ScriptError(ValueError):
    """A script line that cannot be parsed or names something the dictionary lacks."""


# ------------------------------------------------------------------------------------ steps


@dataclass(frozen=True)
class Step:
    line: int
    text: str


@dataclass(frozen=True)
class SendStep(Step):
    command: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class ArmStep(Step):
    command: str


@dataclass(frozen=True)
class SequenceStep(Step):
    sequence: SequenceFile


@dataclass(frozen=True)
class WaitStep(Step):
    seconds: float


@dataclass(frozen=True)
class ExpectResponseStep(Step):
    status: str
    containing: str | None
    timeout_s: float


@dataclass(frozen=True)
class ValueCheck:
    """``low..high`` (either side optional) or equality with ``value``."""

    low: float | None = None
    high: float | None = None
    value: Any = None
    is_range: bool = True

    def __call__(self, actual: Any) -> bool:
        if not self.is_range:
            if isinstance(self.value, bool) or isinstance(actual, bool):
                return actual is self.value  # True is not 1 here
            return bool(actual == self.value)
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        if isinstance(actual, float) and math.isnan(actual):
            return False
        return (self.low is None or actual >= self.low) and (
            self.high is None or actual <= self.high
        )

    def __str__(self) -> str:
        if not self.is_range:
            return f"== {self.value!r}"
        low = "" if self.low is None else f"{self.low:g}"
        high = "" if self.high is None else f"{self.high:g}"
        return f"in {low}..{high}"


@dataclass(frozen=True)
class ExpectTelemetryStep(Step):
    channel: str
    check: ValueCheck
    timeout_s: float


@dataclass(frozen=True)
class ExpectEventStep(Step):
    event: str
    containing: str | None
    timeout_s: float


# ------------------------------------------------------------------------------------ parsing


def _seconds(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ScriptError(f"{what} {text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise ScriptError(f"{what} {text!r} must be a finite, non-negative number of seconds")
    return value


class ScriptParser:
    """Turns lines into checked steps.

    Args:
        dictionary: commands, channels and events are checked against it.
        base_dir: where relative file names (``sequence FILE``, ``@FILE``) are found.
        default_timeout_s: ``within`` when a line gives none.
    """

    def __init__(
        self,
        dictionary: GroundDictionary,
        *,
        base_dir: Path | None = None,
        default_timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.dictionary = dictionary
        self.base_dir = base_dir
        self.default_timeout_s = default_timeout_s
        self._events = {e.name for e in dictionary.events}

    def parse(self, text: str, *, source: str = "script") -> list[Step]:
        """Every step of a script.

        Raises:
            ScriptError: listing every bad line as ``source:line: problem``.
        """
        steps: list[Step] = []
        problems: list[str] = []
        sent = False
        for number, line in enumerate(text.splitlines(), start=1):
            try:
                step = self.parse_line(line, number)
                if isinstance(step, ExpectResponseStep) and not sent:
                    raise ScriptError("expect response before any command was sent")
            except ScriptError as exc:
                problems.append(f"{source}:{number}: {exc}")
                continue
            if step is not None:
                sent = sent or isinstance(step, SendStep | ArmStep | SequenceStep)
                steps.append(step)
        if problems:
            raise ScriptError("\n".join(problems))
        return steps

    def parse_line(self, line: str, number: int = 0) -> Step | None:
        """One step, or ``None`` for a blank or comment line.

        Raises:
            ScriptError: what is wrong with the line (without its number).
        """
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise ScriptError(f"cannot split line: {exc}") from None
        if not words:
            return None
        text = line.strip()
        head, rest = words[0], words[1:]
        if head == "send":
            if not rest:
                raise ScriptError("send needs a command name")
            return self._send(number, text, rest[0], rest[1:])
        if head == "arm":
            return self._arm(number, text, rest)
        if head == "sequence":
            return self._sequence(number, text, rest)
        if head == "wait":
            if len(rest) != 1:
                raise ScriptError("usage: wait SECONDS")
            return WaitStep(number, text, _seconds(rest[0], "wait"))
        if head == "expect":
            return self._expect(number, text, rest)
        if "." in head:
            return self._send(number, text, head, rest)
        raise ScriptError(
            f"unknown statement {head!r} (expected {', '.join(KEYWORDS)} or a command name)"
        )

    def _command(self, name: str) -> Any:
        try:
            return self.dictionary.command(name)
        except KeyError:
            raise ScriptError(f"unknown command {name!r}") from None

    def _send(self, number: int, text: str, name: str, words: Sequence[str]) -> SendStep:
        spec = self._command(name)
        try:
            args = parse_args(spec, words, base_dir=self.base_dir)
            self.dictionary.prepare(name, args)
        except ValueError as exc:  # ArgumentError or ValidationError
            message = str(exc) if str(exc).startswith(name) else f"{name}: {exc}"
            raise ScriptError(message) from None
        return SendStep(number, text, name, tuple(args))

    def _arm(self, number: int, text: str, rest: Sequence[str]) -> ArmStep:
        if len(rest) != 1:
            raise ScriptError("usage: arm COMMAND")
        self._command("cmd.ARM")
        spec = self._command(rest[0])
        if not spec.hazardous:
            raise ScriptError(f"{spec.name} is not hazardous and needs no arm")
        return ArmStep(number, text, spec.name)

    def _sequence(self, number: int, text: str, rest: Sequence[str]) -> SequenceStep:
        if len(rest) != 1:
            raise ScriptError("usage: sequence FILE")
        self._command("seq.LOAD")
        path = Path(rest[0]).expanduser()
        if self.base_dir is not None and not path.is_absolute():
            path = self.base_dir / path

        def lookup(name: str) -> Any:
            try:
                return self.dictionary.command(name)
            except KeyError:
                return None

        try:
            sequence = load_sequence_file(path, lookup)
        except ArgumentError as exc:
            raise ScriptError(str(exc)) from None
        for i, (_kind, _t, command, args) in enumerate(sequence.entries):
            try:
                self.dictionary.prepare(command, args)
            except (KeyError, ValueError) as exc:
                raise ScriptError(f"{path}: commands[{i}] {command}: {exc}") from None
        return SequenceStep(number, text, sequence)

    def _options(self, words: Sequence[str]) -> tuple[float, str | None]:
        timeout, containing = self.default_timeout_s, None
        i = 0
        while i < len(words):
            word = words[i]
            if word not in ("within", "containing") or i + 1 >= len(words):
                raise ScriptError(f"unexpected {word!r} (expected 'within S' or 'containing T')")
            if word == "within":
                timeout = _seconds(words[i + 1], "within")
            else:
                containing = words[i + 1]
            i += 2
        return timeout, containing

    def _expect(self, number: int, text: str, rest: Sequence[str]) -> Step:
        what = rest[0] if rest else ""
        if what == "response" and len(rest) >= 2:
            status = rest[1].upper()
            if status not in CommandStatus.__members__:
                raise ScriptError(
                    f"unknown status {rest[1]!r} (one of {', '.join(CommandStatus.__members__)})"
                )
            timeout, containing = self._options(rest[2:])
            return ExpectResponseStep(number, text, status, containing, timeout)
        if what == "telemetry" and len(rest) >= 3:
            channel = rest[1]
            check = self._check(channel, rest[2])
            timeout, containing = self._options(rest[3:])
            if containing is not None:
                raise ScriptError("'containing' applies to responses and events")
            return ExpectTelemetryStep(number, text, channel, check, timeout)
        if what == "event" and len(rest) >= 2:
            if rest[1] not in self._events:
                raise ScriptError(f"unknown event {rest[1]!r}")
            timeout, containing = self._options(rest[2:])
            return ExpectEventStep(number, text, rest[1], containing, timeout)
        raise ScriptError(
            "usage: expect response STATUS | expect telemetry CHANNEL CHECK | expect event NAME"
        )

    def _check(self, channel: str, word: str) -> ValueCheck:
        try:
            spec = self.dictionary.channel(channel)
        except KeyError:
            raise ScriptError(f"unknown channel {channel!r}") from None
        if ".." in word:
            if spec.type not in ("int", "float"):
                raise ScriptError(f"{channel} is a {spec.type} channel: a range needs a number")
            low_text, _, high_text = word.partition("..")
            try:
                low = float(low_text) if low_text else None
                high = float(high_text) if high_text else None
            except ValueError:
                raise ScriptError(f"{word!r} is not a range LOW..HIGH") from None
            if low is not None and high is not None and low > high:
                raise ScriptError(f"range {word!r} is empty")
            return ValueCheck(low, high)
        try:
            value: Any
            if spec.type == "int":
                value = int(word, 0)
            elif spec.type == "float":
                value = float(word)
            elif spec.type == "bool":
                value = parse_bool(word)
            else:
                value = word
        except ValueError:
            raise ScriptError(f"{word!r} is not a {spec.type} value for {channel}") from None
        return ValueCheck(value=value, is_range=False)
