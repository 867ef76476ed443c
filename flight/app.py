"""The topology: the one place that builds every component and wires them together.

Like F Prime's topology, this module owns no behaviour of its own: it creates the data pool,
event log, dispatcher, telemetry, parameters, state store, archive, sequences, fault protection,
device pollers, the mission's mode machine and (optionally) the space link, then connects their
inputs and outputs. ``fsw sim`` and ``fsw run`` both build a :class:`FlightSoftware`; they differ
only in the clock, the device backend and the link transport they pass in.

Data flow each base tick (rate group ``fast``): uplink in, devices polled, mission GNC, mode
machine, sequences, fault protection; then (``tlm`` group) telemetry sampled; every message (events,
command responses, telemetry) goes to the archive and the downlink. Health and the state commit
run in the 1 Hz ``slow`` group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from flight.builtins import EventControl, TimeService
from flight.clock import Clock, SpacecraftTime
from flight.datapool import DataPool
from flight.dictionary import Dictionary
from flight.dispatcher import Dispatcher, response_message
from flight.events import Event, EventLog, EventSpec, Severity
from flight.faults import FaultProtection, Monitor
from flight.health import HealthMonitor, SystemdNotifier
from flight.link.sdls import KeyRing
from flight.link.service import LinkConfig, LinkService
from flight.link.transports import Transport
from flight.messages import Message
from flight.modes import ModeConfig, ModeMachine, TransitionSpec
from flight.parameters import ParameterStore
from flight.persistence.archive import Archive
from flight.persistence.state import StateStore
from flight.polling import DevicePoller, PollManager
from flight.scheduler import Scheduler
from flight.sequences import SequenceEngine
from flight.telemetry import TelemetryManager
from hal.device import Device

__all__ = [
    "FlightSoftware",
    "LinkSetup",
    "MissionComponent",
    "MissionContext",
    "MissionDefinition",
]

log = logging.getLogger(__name__)

EV_BOOT = EventSpec(
    0x0700,
    "app.BOOT",
    Severity.ACTIVITY_HI,
    "flight software started in {state} (boot {boot}, state from {recovered})",
)
EV_SHUTDOWN = EventSpec(0x0701, "app.SHUTDOWN", Severity.ACTIVITY_HI, "flight software stopping")

#: How often the state store is committed with the MET even when nothing else changed.
MET_COMMIT_S = 10.0
#: How long a stop waits for what the downlink holds to go (well inside systemd's stop timeout).
STOP_FLUSH_S = 2.0


@dataclass
class LinkSetup:
    """What the space link needs from whoever assembles the flight software."""

    transport: Transport
    keyring: KeyRing
    config: LinkConfig = field(default_factory=LinkConfig)
    record: BinaryIO | None = None


@dataclass
class MissionContext:
    """What a mission gets to build its component from."""

    pool: DataPool
    events: EventLog
    params: ParameterStore
    store: StateStore
    devices: Mapping[str, Device]
    now: Callable[[], float]


class MissionComponent(Protocol):
    """What a mission's component provides to the executive."""

    def attach(self, machine: ModeMachine) -> None: ...

    def transitions(self) -> list[TransitionSpec]: ...

    def tick(self) -> None: ...


@dataclass(frozen=True)
class MissionDefinition:
    """A mission: its states, mode table and how to build its component."""

    name: str
    states: Sequence[str]
    initial: str
    fallback: str
    mode_table: Mapping[str, ModeConfig]
    build: Callable[[MissionContext], Any]
    monitors: Sequence[Monitor] = ()
    #: Devices the mode table polls that a board may lack (a bench without the landing
    #: altimeter): when absent from the device map they are skipped with one warning instead of
    #: failing start-up. Any other device the table names must exist.
    optional_devices: frozenset[str] = frozenset()


class _AppDeclarations:
    """The topology's own events, declared like any component's."""

    def events(self) -> list[EventSpec]:
        return [EV_BOOT, EV_SHUTDOWN]


class FlightSoftware:
    """Every component of the flight software, built and wired.

    Args:
        clock: wall clock on the board, simulated clock in ``fsw sim`` and tests.
        devices: the HAL devices by name (from ``hal.assembly``).
        mission: the mission definition.
        state_dir: where the state store, parameters and archive live.
        base_hz: the base tick.
        met_at_start: MET at this boot. ``None`` resumes from the last stored MET (the board's
            monotonic clock restarts at every boot); the simulator passes its clock's time.
        notifier: systemd notification (``fsw run``), or None.
        link: the space link's transport, keys and settings, or None for no link.

    Raises:
        ValueError: the mission's tables or the dictionary are inconsistent (duplicate ids, a mode
            table naming unknown devices): the software refuses to start half-configured.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        devices: Mapping[str, Device],
        mission: MissionDefinition,
        state_dir: Path,
        base_hz: float = 50.0,
        met_at_start: float | None = None,
        notifier: SystemdNotifier | None = None,
        link: LinkSetup | None = None,
    ) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.devices = dict(devices)
        self.mission_definition = mission
        self.pool = DataPool()
        self._outputs: list[Callable[[Message], None]] = []
        # Events can be raised while loading the state, before MET is known: stamp them 0.
        self._time: SpacecraftTime | None = None
        self.events = EventLog(now=self.met)
        self.store = StateStore(state_dir / "state.cbor", events=self.events)
        if met_at_start is None:
            stored = self.store.get("time.met", 0.0)
            met_at_start = float(stored) if isinstance(stored, int | float) else 0.0
        self.time = SpacecraftTime(clock, met_at_start=met_at_start)
        self._time = self.time
        offset = self.store.get("time.utc_offset", None)
        if isinstance(offset, int | float):
            self.time.set_utc_correlation(float(offset), 0.0)
        self.boot_count = int(self.store.get("app.boots", 0) or 0) + 1
        self.store.set("app.boots", self.boot_count)

        self.dispatcher = Dispatcher(events=self.events, now=self.met, pool=self.pool)
        self.params = ParameterStore(
            path=state_dir / "params.cbor", events=self.events, pool=self.pool, now=self.met
        )
        self.telemetry = TelemetryManager(pool=self.pool, events=self.events, now=self.met)
        self.archive = Archive(state_dir / "archive", clock=clock)
        self.scheduler = Scheduler(clock, base_hz=base_hz, events=self.events)
        self.time_service = TimeService(self.time, self.events)
        self.event_control = EventControl(self.events)
        pollers = [
            DevicePoller(dev, pool=self.pool, events=self.events, now=self.met)
            for dev in self.devices.values()
        ]
        absent = self._absent_optional_devices(mission)
        rates = {
            mode: {d: r for d, r in cfg.poll_hz.items() if d not in absent}
            for mode, cfg in mission.mode_table.items()
        }
        self.polling = PollManager(pollers, now=self.met, rates_hz=rates)
        self.sequences = SequenceEngine(
            dispatcher=self.dispatcher, events=self.events, now=self.met, state=self.store
        )
        self.faults = FaultProtection(
            pool=self.pool,
            events=self.events,
            now=self.met,
            request_mode=self._fault_mode_request,
            start_sequence=self._fault_sequence_request,
            store=self.store,
        )
        ctx = MissionContext(
            self.pool, self.events, self.params, self.store, self.devices, self.met
        )
        self.mission = mission.build(ctx)
        self.machine = ModeMachine(
            states=mission.states,
            transitions=self.mission.transitions(),
            initial=mission.initial,
            fallback=mission.fallback,
            modes=mission.mode_table,
            events=self.events,
            store=self.store,
            now=self.met,
            on_change=self._mode_changed,
        )
        self.mission.attach(self.machine)
        for monitor in mission.monitors:
            self.faults.add(monitor)
        self.health = HealthMonitor(notifier, self.scheduler, clock) if notifier else None
        self.notifier = notifier
        self.link: LinkService | None = None
        if link is not None:
            self.link = LinkService(
                transport=link.transport,
                keyring=link.keyring,
                config=link.config,
                dispatcher=self.dispatcher,
                events=self.events,
                store=self.store,
                archive=self.archive,
                now=self.met,
                record=link.record,
            )
            self.add_output(self.link.send)

        self._build_schedule()  # first: the scheduler declares a channel per rate group
        self.dictionary = Dictionary()
        for component in self._components():
            self.dictionary.add_component(component)
        self.dictionary.check()
        self._register()
        if self.link is not None:
            self.link.fix_layouts(self.telemetry.layouts())
        self.machine.validate_against(
            devices=[*self.devices, *absent],
            packets=[p.name for p in self.telemetry.packets],
            monitors=[m.name for m in self.faults.monitors],
        )
        self.events.subscribe(self._on_event)
        for early in list(self.events.recent):  # raised while building (a recovered state file)
            self._on_event(early)
        self.dispatcher.subscribe(lambda r: self.emit(response_message(r, self.met())))
        self._last_met_commit = -MET_COMMIT_S
        self.started = False

    # --- wiring ----------------------------------------------------------------------------------
    def _absent_optional_devices(self, mission: MissionDefinition) -> frozenset[str]:
        """The optional devices the mode table polls but the device map lacks (logged once)."""
        named = {d for cfg in mission.mode_table.values() for d in cfg.poll_hz}
        absent = frozenset((named - set(self.devices)) & mission.optional_devices)
        if absent:
            log.warning(
                "optional device(s) %s not in the device map: not polled", ", ".join(sorted(absent))
            )
        return absent

    def met(self) -> float:
        return self._time.met() if self._time is not None else 0.0

    def _components(self) -> list[object]:
        return [
            self.dispatcher,
            self.time_service,
            self.event_control,
            self.telemetry,
            self.params,
            self.store,
            self.archive,
            self.scheduler,
            self.polling,
            self.sequences,
            self.faults,
            self.machine,
            self.mission,
            *([self.link] if self.link is not None else []),
            _AppDeclarations(),
        ]

    def _register(self) -> None:
        d = self.dictionary
        self.dispatcher.register_all(
            c for c in d.commands if self.dispatcher.lookup(c.opcode) is None
        )
        self.params.register_all(d.parameters)
        self.params.load()
        for channel in d.channels:
            self.telemetry.register_channel(channel)
        for packet in d.packets:
            self.telemetry.register_packet(packet)
        for mode, cfg in self.mission_definition.mode_table.items():
            for packet_name, rate in cfg.telemetry_hz.items():
                self.telemetry.set_rate(packet_name, rate, mode)

    def _build_schedule(self) -> None:
        fast = self.scheduler.add_group("fast", 1)
        for name, task in self.fast_tasks:
            fast.add(task, name)
        tlm = self.scheduler.add_group("tlm", max(1, round(self.scheduler.base_hz / 10)))
        tlm.add(self._sample_telemetry, "telemetry")
        slow = self.scheduler.add_group("slow", max(1, round(self.scheduler.base_hz)))
        slow.add(self._housekeeping, "housekeeping")

    @property
    def fast_tasks(self) -> list[tuple[str, Callable[[], None]]]:
        """The base-rate pipeline, in order: commands in, sensors, decisions, frames out."""
        tasks: list[tuple[str, Callable[[], None]]] = []
        if self.link is not None:
            tasks.append(("uplink", self.link.receive))
        tasks += [
            ("polling", lambda: self.polling.tick(self.machine.mode)),
            ("mission", self.mission.tick),
            ("modes", self.machine.tick),
            ("sequences", self.sequences.tick),
            ("faults", self.faults.tick),
        ]
        if self.link is not None:
            tasks.append(("downlink", self.link.transmit))
        return tasks

    def add_output(self, output: Callable[[Message], None]) -> None:
        """Send every outgoing message to ``output`` too (the link's downlink, a recorder)."""
        self._outputs.append(output)

    def emit(self, message: Message) -> None:
        self.archive.append(message)
        for output in self._outputs:
            output(message)

    def _on_event(self, event: Event) -> None:
        self.emit(event.to_message())

    def _sample_telemetry(self) -> None:
        for message in self.telemetry.sample(self.machine.mode):
            self.emit(message)

    def _housekeeping(self) -> None:
        now = self.met()
        self.scheduler.publish(self.pool, now)
        self.sequences.publish(self.pool, now)
        self.archive.publish(self.pool, now)
        self.archive.tick()
        if self.link is not None:
            self.link.publish(self.pool, now)
        self.pool.set("time.met", now, now)
        if now - self._last_met_commit >= MET_COMMIT_S:
            self._last_met_commit = now
            self.store.set("time.met", now)
            if self.time.utc_offset is not None:
                self.store.set("time.utc_offset", self.time.utc_offset)
            self.store.commit()
        if self.health is not None:
            self.health.tick()

    def _mode_changed(self, old: str, new: str, cause: str) -> None:
        self.pool.set("mode.state", new, self.met())
        self.faults.set_enabled(self.mission_definition.mode_table[self.machine.mode].monitors)
        if self.notifier is not None:
            self.notifier.status(f"mode {new}")

    def _fault_mode_request(self, target: str, cause: str) -> None:
        self.machine.trigger(target, cause=f"fault protection: {cause}")

    def _fault_sequence_request(self, name: str) -> None:
        try:
            self.sequences.start(name)
        except Exception as exc:  # a missing response sequence is an event, not a crash
            log.warning("fault response sequence %s could not start: %s", name, exc)

    # --- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Restore the mode and sequences, announce the boot, tell systemd we are ready."""
        for device in self.devices.values():
            try:
                device.configure()
            except Exception as exc:  # the poller reports it and retries: keep booting
                log.warning("%s: configure failed at boot: %s", device.name, exc)
        state = self.machine.restore()
        self.sequences.restore()
        self.store.commit()
        self.events.emit(
            EV_BOOT, state=state, boot=self.boot_count, recovered=self.store.recovered_from
        )
        self.started = True
        if self.notifier is not None:
            self.notifier.ready()
            self.notifier.status(f"mode {state}")

    def step(self) -> None:
        """One base tick, now."""
        self.scheduler.step()

    def stop(self) -> None:
        """Save everything and close; safe to call twice."""
        if not self.started:
            return
        self.started = False
        self.events.emit(EV_SHUTDOWN)
        if self.notifier is not None:
            self.notifier.stopping()
        self.params.save()  # first: it reports with an event, which the flush then sends
        if self.link is not None and not self.link.flush(self.clock.sleep, STOP_FLUSH_S):
            log.warning("stopping with downlink data still queued after %.0f s", STOP_FLUSH_S)
        self.store.set("time.met", self.met())
        self.store.commit()
        self.archive.close()
        if self.link is not None:
            self.link.close()

    def close_devices(self) -> None:
        """Release every device (the assembly owns the buses and closes them)."""
        for device in self.devices.values():
            try:
                device.close()
            except Exception as exc:  # closing must go on for the others
                log.warning("%s: close failed: %s", device.name, exc)
