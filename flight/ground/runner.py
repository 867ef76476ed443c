"""Running ground script steps against a station: one outcome per step, stop at the first miss.

The steps and their grammar are in :mod:`flight.ground.script`. A link or spacecraft problem
(link down, no response, wrong status, value out of range) is an unmet :class:`Outcome`, never an
exception, so a script always ends with a message naming its line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from flight.ground.records import ResponseRecord
from flight.ground.script import (
    ArmStep,
    ExpectEventStep,
    ExpectResponseStep,
    ExpectTelemetryStep,
    SendStep,
    SequenceStep,
    Step,
    WaitStep,
)
from flight.ground.station import CommandRefusedError, GroundStation, LinkDownError

__all__ = ["Outcome", "ScriptRunner"]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str


class ScriptRunner:
    """Executes steps against a station and reports each one.

    Args:
        station: the link to the spacecraft.
        out: where progress and the failure message go.
        source: the script's name in messages.
    """

    def __init__(self, station: GroundStation, *, out: TextIO, source: str = "script") -> None:
        self.station = station
        self.out = out
        self.source = source
        self._mark = station.event_count
        self._handlers: dict[type[Step], Callable[[Any], Outcome]] = {
            SendStep: self._send,
            ArmStep: self._arm,
            SequenceStep: self._sequence,
            WaitStep: self._wait,
            ExpectResponseStep: self._expect_response,
            ExpectTelemetryStep: self._expect_telemetry,
            ExpectEventStep: self._expect_event,
        }

    def run(self, steps: Sequence[Step]) -> int:
        """Run every step; 0 if all were met, 1 at the first that was not."""
        for step in steps:
            outcome = self.execute(step)
            if not outcome.ok:
                self.out.write(f"FAIL {self.source}:{step.line}: {step.text}: {outcome.detail}\n")
                return 1
            self.out.write(f"ok   {self.source}:{step.line}: {step.text}: {outcome.detail}\n")
        self.out.write(f"{self.source}: all {len(steps)} step(s) passed\n")
        return 0

    def execute(self, step: Step) -> Outcome:
        """Run one step; never raises for a link or spacecraft problem (it is the outcome)."""
        return self._handlers[type(step)](step)

    # -- steps ------------------------------------------------------------------------------

    def _sent(self, call: Callable[[], int]) -> Outcome:
        try:
            seq = call()
        except (CommandRefusedError, LinkDownError) as exc:
            return Outcome(False, str(exc))
        except (ValueError, OSError) as exc:  # frame too long, counter not persisted, ...
            return Outcome(False, f"not sent: {exc}")
        self._mark = self.station.event_count
        return Outcome(True, f"sent as seq {seq}")

    def _send(self, step: SendStep) -> Outcome:
        return self._sent(lambda: self.station.send(step.command, *step.args))

    def _arm(self, step: ArmStep) -> Outcome:
        return self._sent(lambda: self.station.send("cmd.ARM", step.command))

    def _sequence(self, step: SequenceStep) -> Outcome:
        s = step.sequence
        return self._sent(
            lambda: self.station.send_sequence(
                s.name, s.entries, abort_on_error=s.abort_on_error, on_reboot=s.on_reboot
            )
        )

    def _wait(self, step: WaitStep) -> Outcome:
        self.station.wait_until(lambda: None, step.seconds)
        return Outcome(True, f"waited {step.seconds:g} s")

    def _expect_response(self, step: ExpectResponseStep) -> Outcome:
        sent = self.station.last_sent
        if sent is None:
            return Outcome(False, "no command has been sent")
        response: ResponseRecord | None = self.station.wait_until(
            lambda: self.station.responses.get(sent.seq), step.timeout_s
        )
        if response is None:
            return Outcome(
                False,
                f"no response to {sent.command} seq {sent.seq} within {step.timeout_s:g} s"
                + self._link_hint(),
            )
        got = f"{response.status}" + (f" ({response.reason})" if response.reason else "")
        if response.status != step.status:
            return Outcome(False, f"got {got}")
        if step.containing is not None and step.containing not in response.reason:
            return Outcome(False, f"got {got}, which does not contain {step.containing!r}")
        return Outcome(True, got)

    def _link_hint(self) -> str:
        if not self.station.transport.connected:
            return "; the link is down"
        refusals = [
            e.text for e in self.station.events_since(self._mark) if e.name.startswith("link.")
        ]
        if refusals:
            return f"; the link reported: {refusals[-1]}"
        return ""

    def _expect_telemetry(self, step: ExpectTelemetryStep) -> Outcome:
        try:
            value = self.station.wait_telemetry(step.channel, step.check, step.timeout_s)
        except TimeoutError:
            last = self.station.channels.get(step.channel)
            seen = (
                f"last value {last.value!r} {last.units} at MET {last.time:.3f}".rstrip()
                if last
                else "no value received"
            )
            return Outcome(False, f"wanted {step.check} within {step.timeout_s:g} s; {seen}")
        return Outcome(True, f"{value.value!r} {value.units}".rstrip())

    def _expect_event(self, step: ExpectEventStep) -> Outcome:
        try:
            event = self.station.wait_event(
                step.event, step.timeout_s, since=self._mark, containing=step.containing
            )
        except TimeoutError:
            seen = [e.name for e in self.station.events_since(self._mark)][-5:]
            what = f"no {step.event} event" + (
                f" containing {step.containing!r}" if step.containing else ""
            )
            recent = f"; recent: {', '.join(seen)}" if seen else "; no events since"
            return Outcome(False, f"{what} within {step.timeout_s:g} s{recent}")
        return Outcome(True, event.text)
