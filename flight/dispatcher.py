"""The command dispatcher: every command in, exactly one response out.

Commands arrive as CBOR ``[seq, opcode, [arg, ...]]`` (:meth:`Dispatcher.dispatch_bytes`) or already
decoded (:meth:`Dispatcher.dispatch`, used by stored sequences). The dispatcher checks the frame's
shape, looks the opcode up among the registered :class:`~flight.commands.CommandSpec`, validates the
arguments against the spec, enforces arming of hazardous commands, runs the handler and answers with
a :class:`~flight.commands.CommandResponse`. Nothing that arrives from outside and nothing a handler
does can make :meth:`Dispatcher.dispatch` raise: a crash here would take the whole executive down
with it, so every failure becomes a status and an event.

Status mapping:

- FORMAT_ERROR: not CBOR, not a 3-element list, seq not an int in 0..2**32-1, opcode not an int,
  arguments not a list.
- INVALID_OPCODE: no command has that opcode.
- VALIDATION_ERROR: wrong argument count or value (also a handler raising ``ValidationError``), or a
  hazardous command that was not armed.
- BUSY: the handler raised ``BusyError``.
- EXECUTION_ERROR: the handler raised ``CommandError`` or any other exception (the latter is a
  software bug and is logged with its traceback).

Hazardous commands: ``cmd.ARM`` naming the command must have been accepted within ``arm_window_s``
seconds before it. The arm is consumed when the command reaches its handler, whatever the handler's
outcome; a command rejected earlier (bad arguments) leaves the arm in place so the operator can
correct it within the window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from flight import codec
from flight.commands import (
    Arg,
    ArgType,
    BusyError,
    CommandError,
    CommandResponse,
    CommandSpec,
    CommandStatus,
    ValidationError,
    validate_args,
)
from flight.datapool import DataPool
from flight.events import EventLog, EventSpec, Severity
from flight.messages import Message, MessageKind
from flight.telemetry import ChannelSpec, PacketSpec

__all__ = ["MAX_SEQ", "Dispatcher", "response_message"]

log = logging.getLogger(__name__)

#: Sequence numbers are unsigned 32-bit on the wire.
MAX_SEQ = 2**32 - 1
#: Opcodes are unsigned 16-bit.
MAX_OPCODE = 0xFFFF

OP_NOOP = 0x0001
OP_PING = 0x0002
OP_ARM = 0x0003

EV_ACCEPTED = EventSpec(
    0x0001,
    "cmd.ACCEPTED",
    Severity.COMMAND,
    "{name} seq {seq} ok: {reason}",
    description="A command ran and returned OK.",
)
EV_REJECTED = EventSpec(
    0x0002,
    "cmd.REJECTED",
    Severity.WARNING_LO,
    "{name} seq {seq} {status}: {reason}",
    description="A command was refused or failed; the status says at which stage.",
)
EV_ARMED = EventSpec(
    0x0003,
    "cmd.ARMED",
    Severity.ACTIVITY_HI,
    "{name} armed for {window_s} s",
    description="A hazardous command may now run once within the arm window.",
)
EV_HANDLER_FAULT = EventSpec(
    0x0004,
    "cmd.HANDLER_FAULT",
    Severity.WARNING_HI,
    "{name} handler raised {error}",
    throttle=20,
    description="A handler raised an unexpected exception: a software bug, see the log.",
)

#: Telemetry the dispatcher writes into the data pool when it is given one.
CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(0x0001, "cmd.accepted", "int", description="Commands that returned OK."),
    ChannelSpec(0x0002, "cmd.rejected", "int", description="Commands with any other status."),
    ChannelSpec(0x0003, "cmd.last_seq", "int", description="Sequence number of the last command."),
    ChannelSpec(0x0004, "cmd.last_opcode", "int", description="Opcode of the last command."),
    ChannelSpec(0x0005, "cmd.last_status", "int", description="CommandStatus of the last command."),
)
PACKET = PacketSpec(
    0x0001,
    "cmd.STATUS",
    tuple(c.name for c in CHANNELS),
    {"*": 0.1},
    on_change=True,
    min_interval_s=1.0,
    description="Command counters; sent when they change and every 10 s.",
)


def response_message(response: CommandResponse, now: float) -> Message:
    """The downlink form of a command response (its id is the opcode, -1 if there was none)."""
    return Message(MessageKind.COMMAND_RESPONSE, response.opcode, now, response.to_body())


def _echo_int(value: Any) -> int:
    """An int from the frame that can be echoed back in a response, else -1.

    Values outside CBOR's native integer range would need bignum tags, which the ground decoder
    (like ours) refuses.
    """
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**64:
        return value
    return -1


class Dispatcher:
    """Looks commands up by opcode, validates them, runs them and reports the outcome.

    Args:
        events: where accepted/rejected/armed events go.
        now: spacecraft time in seconds (used for the arm window and response times).
        arm_window_s: how long an accepted ``cmd.ARM`` stays valid.
        pool: if given, command counters are written to it as ``cmd.*`` (see :data:`CHANNELS`).
    """

    def __init__(
        self,
        *,
        events: EventLog,
        now: Callable[[], float],
        arm_window_s: float = 30.0,
        pool: DataPool | None = None,
    ) -> None:
        if not arm_window_s > 0:
            raise ValueError(f"arm_window_s must be positive, got {arm_window_s}")
        self._events = events
        self._now = now
        self._arm_window_s = float(arm_window_s)
        self._pool = pool
        self._by_opcode: dict[int, CommandSpec] = {}
        self._by_name: dict[str, CommandSpec] = {}
        self._listeners: list[Callable[[CommandResponse], None]] = []
        self._armed: dict[int, float] = {}
        self._counts: dict[str, int] = {"accepted": 0, "rejected": 0}
        self._counts.update({status.name: 0 for status in CommandStatus})
        self.register_all(self.commands())
        self._publish(-1, -1, None)

    # -- registry ---------------------------------------------------------------------------

    def register(self, spec: CommandSpec) -> None:
        """Add one command.

        Raises:
            ValueError: opcode outside 0..0xFFFF, empty name, or opcode or name already taken.
        """
        if isinstance(spec.opcode, bool) or not 0 <= spec.opcode <= MAX_OPCODE:
            raise ValueError(f"{spec.name}: opcode {spec.opcode!r} outside 0..0x{MAX_OPCODE:04X}")
        if not spec.name:
            raise ValueError(f"opcode 0x{spec.opcode:04X}: empty command name")
        if spec.opcode in self._by_opcode:
            other = self._by_opcode[spec.opcode].name
            raise ValueError(f"{spec.name}: opcode 0x{spec.opcode:04X} already used by {other}")
        if spec.name in self._by_name:
            raise ValueError(f"command name {spec.name} already registered")
        self._by_opcode[spec.opcode] = spec
        self._by_name[spec.name] = spec

    def register_all(self, specs: Iterable[CommandSpec]) -> None:
        """Register several commands (stops at the first that fails; see :meth:`register`)."""
        for spec in specs:
            self.register(spec)

    def lookup(self, key: int | str) -> CommandSpec | None:
        """The command with this opcode or fully qualified name, if any."""
        if isinstance(key, str):
            return self._by_name.get(key)
        if isinstance(key, int) and not isinstance(key, bool):
            return self._by_opcode.get(key)
        return None

    @property
    def specs(self) -> list[CommandSpec]:
        """Every registered command, by opcode."""
        return [self._by_opcode[op] for op in sorted(self._by_opcode)]

    @property
    def counters(self) -> dict[str, int]:
        """``accepted``, ``rejected`` and one count per :class:`CommandStatus` name."""
        return dict(self._counts)

    def subscribe(self, listener: Callable[[CommandResponse], None]) -> None:
        """Call ``listener`` with every response (a listener that raises is logged and skipped)."""
        self._listeners.append(listener)

    def is_armed(self, opcode: int) -> bool:
        """True if ``opcode`` has an unexpired, unconsumed arm."""
        armed_at = self._armed.get(opcode)
        return armed_at is not None and self._now() - armed_at <= self._arm_window_s

    # -- dispatch ---------------------------------------------------------------------------

    def dispatch_bytes(self, data: bytes, *, source: str = "ground") -> CommandResponse:
        """Decode one CBOR ``[seq, opcode, [args]]`` command and dispatch it. Never raises."""
        received: object = data  # typed bytes, but callers outside the type checker exist
        if not isinstance(received, bytes | bytearray | memoryview):
            return self._finish(-1, -1, None, CommandStatus.FORMAT_ERROR, "not bytes", source)
        try:
            frame = codec.decode(bytes(received))
        except Exception as exc:  # codec.decode raises CodecError; be safe against anything else
            return self._finish(-1, -1, None, CommandStatus.FORMAT_ERROR, str(exc), source)
        if not isinstance(frame, list):
            reason = f"command must be a list, got {type(frame).__name__}"
            return self._finish(-1, -1, None, CommandStatus.FORMAT_ERROR, reason, source)
        if len(frame) != 3:
            seq = _echo_int(frame[0]) if frame else -1
            reason = f"command must be [seq, opcode, args], got {len(frame)} element(s)"
            return self._finish(seq, -1, None, CommandStatus.FORMAT_ERROR, reason, source)
        return self.dispatch(frame[0], frame[1], frame[2], source=source)

    def dispatch(
        self, seq: int, opcode: int, raw_args: Any, *, source: str = "ground"
    ) -> CommandResponse:
        """Validate and run one command; return its response. Never raises (except BaseException
        such as KeyboardInterrupt, which must stop the program)."""
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
            reason = f"seq must be an int in 0..{MAX_SEQ}, got {_describe(seq)}"
            op = _echo_int(opcode)
            return self._finish(
                _echo_int(seq), op, None, CommandStatus.FORMAT_ERROR, reason, source
            )
        if isinstance(opcode, bool) or not isinstance(opcode, int):
            reason = f"opcode must be an int, got {_describe(opcode)}"
            return self._finish(seq, -1, None, CommandStatus.FORMAT_ERROR, reason, source)
        if not isinstance(raw_args, list):
            reason = f"arguments must be a list, got {type(raw_args).__name__}"
            return self._finish(
                seq, _echo_int(opcode), None, CommandStatus.FORMAT_ERROR, reason, source
            )
        spec = self._by_opcode.get(opcode)
        if spec is None:
            reason = f"no command with opcode {opcode}"
            return self._finish(
                seq, _echo_int(opcode), None, CommandStatus.INVALID_OPCODE, reason, source
            )
        try:
            kwargs = validate_args(spec, raw_args)
        except ValidationError as exc:
            return self._finish(seq, opcode, spec, CommandStatus.VALIDATION_ERROR, str(exc), source)
        if spec.hazardous:
            if not self.is_armed(opcode):
                self._armed.pop(opcode, None)
                reason = "not armed (send cmd.ARM first)"
                return self._finish(
                    seq, opcode, spec, CommandStatus.VALIDATION_ERROR, reason, source
                )
            del self._armed[opcode]  # consumed by this execution, whatever its outcome
        status, reason = self._run(spec, kwargs)
        return self._finish(seq, opcode, spec, status, reason, source)

    def _run(self, spec: CommandSpec, kwargs: dict[str, Any]) -> tuple[CommandStatus, str]:
        try:
            result = spec.handler(**kwargs)
        except ValidationError as exc:
            return CommandStatus.VALIDATION_ERROR, str(exc)
        except BusyError as exc:
            return CommandStatus.BUSY, str(exc) or "busy"
        except CommandError as exc:
            return CommandStatus.EXECUTION_ERROR, str(exc) or type(exc).__name__
        except Exception as exc:
            log.exception("handler of %s raised", spec.name)
            error = f"{type(exc).__name__}: {exc}"
            self._emit(EV_HANDLER_FAULT, name=spec.name, error=error)
            return CommandStatus.EXECUTION_ERROR, f"internal error ({error})"
        return CommandStatus.OK, "" if result is None else str(result)

    def _finish(
        self,
        seq: int,
        opcode: int,
        spec: CommandSpec | None,
        status: CommandStatus,
        reason: str,
        source: str,
    ) -> CommandResponse:
        response = CommandResponse(seq, opcode, status, reason)
        name = spec.name if spec else (f"0x{opcode:04X}" if opcode >= 0 else "?")
        self._counts[status.name] += 1
        if status is CommandStatus.OK:
            self._counts["accepted"] += 1
            self._emit(EV_ACCEPTED, name=name, seq=seq, reason=reason, source=source)
        else:
            self._counts["rejected"] += 1
            self._emit(
                EV_REJECTED, name=name, seq=seq, status=status.name, reason=reason, source=source
            )
        self._publish(seq, opcode, status)
        for listener in list(self._listeners):
            try:
                listener(response)
            except Exception:
                log.exception("command response listener %r raised", listener)
        return response

    def _emit(self, spec: EventSpec, **args: Any) -> None:
        # An event listener (downlink, archive) failing must not turn into a dispatch failure.
        try:
            self._events.emit(spec, **args)
        except Exception:
            log.exception("event listener raised while emitting %s", spec.name)

    def _publish(self, seq: int, opcode: int, status: CommandStatus | None) -> None:
        if self._pool is None:
            return
        now = self._now()
        self._pool.set("cmd.accepted", self._counts["accepted"], now)
        self._pool.set("cmd.rejected", self._counts["rejected"], now)
        if status is not None:
            self._pool.set("cmd.last_seq", seq, now)
            self._pool.set("cmd.last_opcode", opcode, now)
            self._pool.set("cmd.last_status", int(status), now)

    # -- own commands -----------------------------------------------------------------------

    def _noop(self) -> str:
        return "noop"

    def _ping(self, token: int) -> str:
        return f"pong {token}"

    def _arm(self, command: str) -> str:
        spec = self._by_name.get(command)
        if spec is None:
            try:
                spec = self._by_opcode.get(int(command, 0))
            except ValueError:
                spec = None
        if spec is None:
            raise ValidationError(f"command: no command named {command!r}")
        if not spec.hazardous:
            raise ValidationError(f"command: {spec.name} is not hazardous and needs no arm")
        self._armed[spec.opcode] = self._now()
        self._emit(EV_ARMED, name=spec.name, window_s=self._arm_window_s)
        return f"{spec.name} armed for {self._arm_window_s:g} s"

    def commands(self) -> list[CommandSpec]:
        """The dispatcher's own commands (cmd.NOOP, cmd.PING, cmd.ARM)."""
        return [
            CommandSpec(OP_NOOP, "cmd.NOOP", self._noop, description="Do nothing; answer OK."),
            CommandSpec(
                OP_PING,
                "cmd.PING",
                self._ping,
                (Arg("token", ArgType.INT, minimum=0, maximum=MAX_SEQ),),
                description="Answer OK with the token echoed in the reason ('pong <token>').",
            ),
            CommandSpec(
                OP_ARM,
                "cmd.ARM",
                self._arm,
                (
                    Arg(
                        "command",
                        ArgType.STR,
                        max_length=64,
                        description="Name or opcode (decimal or 0x hex) of a hazardous command.",
                    ),
                ),
                description="Allow one execution of a hazardous command within the arm window.",
            ),
        ]

    def events(self) -> list[EventSpec]:
        return [EV_ACCEPTED, EV_REJECTED, EV_ARMED, EV_HANDLER_FAULT]

    def channels(self) -> list[ChannelSpec]:
        """Command counters, declared only when the dispatcher writes them (``pool`` given)."""
        return list(CHANNELS) if self._pool is not None else []

    def packets(self) -> list[PacketSpec]:
        return [PACKET] if self._pool is not None else []


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
