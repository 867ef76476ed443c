"""``fsw sim``: the whole Mars mission, closed loop, on simulated chips and simulated time.

What runs here is the real flight software (:class:`~flight.app.FlightSoftware` with the Mars
mission), on the real drivers, over register models of the chips, fed by the physical world of
:class:`~.environment.MarsEnvironment`. The loop each 20 ms tick:

1. the PWM board's simulated outputs (engine valves, pyros, throttle) go into the world;
2. the world integrates and writes what the sensors would see into the chips' environment;
3. the flight software runs one base tick: reads its sensors through the drivers, decides, and
   commands its actuators through the PCA9685 driver;
4. the ground station reads whatever the downlink delivered after the one-way light time.

The ground flies the mission the way a Mars team must: by uplinking time-tagged sequences through
the authenticated link, minutes ahead, and then watching. EDL runs on board alone.

Long quiet stretches (seven months of cruise, three of parking orbit) are compressed: the harness
skips time while nothing is due (no sequence entry, no delivery, no ground action, no burn) and
places the world where it would be; while the ground waits to hear of the landing it skips from
one downlink arrival to the next, so the ground acts when the news reaches it. Orbit insertion and
EDL run at full fidelity.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import logging
import math
import random
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from flight.app import FlightSoftware, LinkSetup
from flight.clock import SimClock, WallClock
from flight.dictionary import from_json_dict
from flight.events import Event, Severity
from flight.ground.station import GroundStation
from flight.link.ground import CommandEncoder, TelemetryDecoder
from flight.link.sdls import KeyRing, MemoryCounterStore, generate_key, write_key
from flight.link.service import LinkConfig
from flight.link.transports import TcpServerTransport, Transport
from flight.messages import Message, MessageKind
from flight.missions.mars.actuators import PULSE_CLOSED_US, PULSE_NEUTRAL_US, Channel
from flight.missions.mars.definition import MARS
from flight.missions.mars.modes import State
from flight.missions.mars.sim.environment import MarsEnvironment
from flight.missions.mars.sim.radio import LightTimeLink
from flight.missions.mars.sim.timeline import (
    DAY,
    ENTRY_COAST_S,
    MOI_MET,
    SEPARATION_MET,
    UTC_AT_LAUNCH,
    one_way_light_time,
)
from hal.assembly import Bench, build
from hal.devmap import DeviceMap, parse_device_map
from hal.sim import BusFault

__all__ = ["FAULTS", "MissionSim", "SimOptions", "build_reference_software", "mars_device_map"]

log = logging.getLogger(__name__)

BASE_HZ = 50.0
DT = 1.0 / BASE_HZ
G0 = 9.80665
KEY_SLOT = 1

FAULTS = (
    "lidar_dropout",
    "imu_bus_errors",
    "imu_stuck",
    "pyro_bus_errors",
    "reboot_edl",
    "link_loss",
)
#: How long the stuck IMU of the ``imu_stuck`` fault repeats its last sample.
_IMU_STUCK_S = 8.0
#: How long past the round trip the ground waits for a command's confirmation before sending it
#: again, and how many times it sends one before giving up (a noisy link eats frames both ways).
_CONFIRM_SLACK_S = 20.0
_ATTEMPTS = 8
#: The PCA9685's address on the reference bench (devices.toml).
_PWM_ADDRESS = 0x40
_QUIET = {
    State.CRUISE,
    State.MOI_PREP,
    State.MOI_ORBIT,
    State.SURFACE_EGRESS,
    State.SURFACE_OPS,
    State.SAFE,
}


def mars_device_map() -> DeviceMap:
    """The lander's simulated device map shipped with the mission."""
    text = (importlib.resources.files("flight.missions.mars") / "devices.toml").read_text()
    return parse_device_map(text, source="flight/missions/mars/devices.toml")


def _deadband(command: float) -> float:
    """A servo valve does not crack open for the PCA9685's 12-bit rounding (about 1 us of a
    1000 us stroke): commands under 1 % are closed."""
    return 0.0 if abs(command) < 0.01 else command


@dataclass
class SimOptions:
    seed: int = 0
    until: str | None = None
    speed: float = 0.0
    faults: tuple[str, ...] = ()
    record_downlink: Path | None = None
    #: Expose the spacecraft's end of the link on this local TCP port for ``fsw ground`` instead
    #: of flying the scripted ground (bench use, with ``speed`` 1). 0 picks a free port.
    link_tcp: int | None = None
    progress: bool = True
    out: TextIO = field(default_factory=lambda: sys.stdout)
    #: The ground sends a plan command or sequence again when no confirmation comes back.
    resend_unconfirmed: bool = True


@dataclass
class _GroundAction:
    time: float
    name: str
    run: Callable[[], object]


def build_reference_software(state_dir: Path) -> FlightSoftware:
    """The Mars flight software on simulated chips, not started (``fsw dict`` exports from it)."""
    clock = SimClock()
    world = MarsEnvironment(seed=0)
    bench = build(mars_device_map(), clock=clock, env=world.env, seed=0)
    # A throwaway key: nothing is ever sent on this link; it exists so the link's commands,
    # events and channels are part of the exported dictionary.
    link = LinkSetup(
        transport=LightTimeLink(clock).spacecraft, keyring=KeyRing({KEY_SLOT: generate_key()})
    )
    fsw = FlightSoftware(
        clock=clock,
        devices=bench.devices,
        mission=MARS,
        state_dir=state_dir,
        base_hz=BASE_HZ,
        met_at_start=0.0,
        link=link,
    )
    fsw.bench = bench  # type: ignore[attr-defined]
    return fsw


class MissionSim:
    """One run of the reference mission; :meth:`run` returns the report."""

    def __init__(self, options: SimOptions, state_dir: Path) -> None:
        unknown = set(options.faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {', '.join(FAULTS)}")
        self.opt = options
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.clock = SimClock()
        self.world = MarsEnvironment(seed=options.seed)
        self.bench: Bench = build(
            mars_device_map(), clock=self.clock, env=self.world.env, seed=options.seed
        )
        self.pwm_model = self.bench.models["pwm"]
        self.link = LightTimeLink(self.clock)
        # The simulated ground and spacecraft share a key derived from the seed: runs repeat.
        self.key = random.Random(options.seed).randbytes(32)
        self.config = LinkConfig(
            carrier_timeout_s=1800.0 if "link_loss" in options.faults else None
        )
        self._record: BinaryIO | None = (
            open(options.record_downlink, "wb") if options.record_downlink else None  # noqa: SIM115
        )
        self.timeline: list[dict[str, Any]] = []
        self.event_counts: Counter[str] = Counter()
        self.capture: Any = None
        self._moi_dv: float | None = None
        self.spacecraft_end: Transport = self.link.spacecraft
        if options.link_tcp is not None:
            server = TcpServerTransport("127.0.0.1", options.link_tcp)
            self.spacecraft_end = server
            write_key(state_dir / "uplink.key", self.key, overwrite=True)
            host, port = server.address
            print(
                f"link: TCP {host}:{port}, key {state_dir / 'uplink.key'} (slot {KEY_SLOT}); "
                f"try: fsw dict --json --out dict.json && fsw ground --dict dict.json "
                f"--key {state_dir / 'uplink.key'} --spi {KEY_SLOT} --tcp {host}:{port}",
                file=options.out,
                flush=True,
            )
        self.fsw = self._boot()
        self.ground = GroundStation(
            dictionary=from_json_dict(self.fsw.dictionary.to_json_dict()),
            encoder=CommandEncoder(
                key=self.key,
                spi=KEY_SLOT,
                scid=self.config.spacecraft_id,
                counters=MemoryCounterStore(),
            ),
            decoder=TelemetryDecoder(
                scid=self.config.spacecraft_id, frame_length=self.config.frame_length
            ),
            transport=self.link.ground,
            clock=self.clock,
            utc=lambda: UTC_AT_LAUNCH + self.clock.monotonic(),
        )
        self.actions: list[_GroundAction] = []
        self.checks: list[_GroundAction] = []  # the ground looking for confirmations
        self.sent = 0
        self.resent = 0  # commands sent again for want of a confirmation
        #: Every message the ground decoded, in order (whichever of its calls read it).
        self.received: list[Message] = []
        self.ground.subscribe_messages(self.received.append)
        self._fault_done: set[str] = set()
        self._imu_stuck_until = 0.0
        #: Onboard entry speed estimate minus the truth when the parachute fires.
        self._chute_error: float | None = None
        self._separated_at: float | None = None
        self._entry_placed = False
        self._landed_seen = False
        self._scanned = 0
        self._peak_sensed_g = 0.0
        self._stop = False
        if options.link_tcp is None:
            self._plan()

    # --- flight software life cycle --------------------------------------------------------------
    def _boot(self) -> FlightSoftware:
        fsw = FlightSoftware(
            clock=self.clock,
            devices=self.bench.devices,
            mission=MARS,
            state_dir=self.state_dir,
            base_hz=BASE_HZ,
            met_at_start=self.clock.monotonic(),
            link=LinkSetup(
                transport=self.spacecraft_end,
                keyring=KeyRing({KEY_SLOT: self.key}),
                config=self.config,
                record=self._record,
            ),
        )
        fsw.events.subscribe(self._on_event)
        fsw.start()
        return fsw

    def _reboot(self) -> None:
        """A processor reset in the middle of EDL: the software dies without saving anything
        (like SIGKILL); the chips keep their registers, so the engine valves and pyro relays stay
        as they were; the world keeps falling while the computer boots."""
        self._note("fault", "flight computer reset (no clean shutdown)")
        for _ in range(int(1.5 / DT)):
            self._world_step()
            self.clock.advance(DT)
        self.fsw = self._boot()

    # --- the ground's plan -----------------------------------------------------------------------
    def _at(self, t: float, name: str, run: Callable[[], object]) -> None:
        self.actions.append(_GroundAction(t, name, run))
        self.actions.sort(key=lambda a: a.time)

    def _send(self, name: str, *args: Any) -> int:
        seq = self.ground.send(name, *args)
        self.sent += 1
        return seq

    def _confirmed(self, seqs: list[int], mark: int = 0, event: str = "", name: str = "") -> bool:
        """Whether any of ``seqs`` came back OK or, since event ``mark``, ``event`` about
        sequence ``name`` arrived (its response may be the frame the noise ate)."""
        self.ground.poll()  # what has arrived by now, even straight after a warp
        if any((r := self.ground.responses.get(s)) is not None and r.ok for s in seqs):
            return True
        return bool(event) and any(
            e.name == event and e.args.get("name") == name for e in self.ground.events_since(mark)
        )

    def _after_round_trip(self, check: Callable[[], None]) -> None:
        """Run ``check`` once a confirmation could be back. Checks do not stop the simulator
        skipping quiet time (so a clean link flies exactly as if the ground never checked): one
        due in a skip runs just after it, before the next thing the spacecraft does."""
        if not self.opt.resend_unconfirmed:
            return
        now = self.clock.monotonic()
        self.checks.append(
            _GroundAction(now + 2 * one_way_light_time(now) + _CONFIRM_SLACK_S, "", check)
        )
        self.checks.sort(key=lambda a: a.time)

    def _gave_up(self, what: str, attempts: int) -> bool:
        if attempts < _ATTEMPTS:
            self.resent += 1
            return False
        self._note("ground", f"{what}: not confirmed after {attempts} attempts; giving up")
        return True

    def _command(self, name: str, *args: Any) -> None:
        """A command the plan depends on, sent again until it is confirmed. Only commands that
        leave the spacecraft the same however often they run are sent this way."""
        seqs = [self._send(name, *args)]

        def check() -> None:
            if not self._confirmed(seqs) and not self._gave_up(name, len(seqs)):
                seqs.append(self._send(name, *args))
                self._after_round_trip(check)

        self._after_round_trip(check)

    def _sequence(
        self, name: str, entries: list[tuple[str, float, str, list[Any]]], on_reboot: str = "abort"
    ) -> None:
        """Upload and start a stored sequence, and do again whichever half is not confirmed.

        A start is confirmed by its response or by ``seq.STARTED``, so a start is only repeated
        when neither came back; the sequence is then still loaded, or still running, and a
        running one refuses both a new load and a new start. (Each of the plan's sequences runs
        for longer than a round trip and the slack.)
        """
        mark = self.ground.event_count
        loads: list[int] = []
        starts: list[int] = []

        def upload(load: bool) -> None:
            if load:
                loads.append(
                    self.ground.send_sequence(
                        name, entries, abort_on_error=True, on_reboot=on_reboot
                    )
                )
                self.sent += 1
            starts.append(self._send("seq.START", name))
            self._after_round_trip(check)

        def check() -> None:
            if self._confirmed(starts, mark, "seq.STARTED", name):
                return
            if not self._gave_up(f"sequence {name}", len(starts)):
                upload(not self._confirmed(loads, mark, "seq.LOADED", name))

        upload(True)

    def _plan(self) -> None:
        self._at(
            2.0,
            "time correlation",
            lambda: self._command("cmd.TIME_SET", UTC_AT_LAUNCH + 2.0, 2.0),
        )
        self._at(
            5.0,
            "TCM-1 sequence",
            lambda: self._sequence(
                "tcm1",
                [
                    ("rel", 30.0, "cmd.ARM", ["mars.ENGINE_BURN"]),
                    ("rel", 1.0, "mars.ENGINE_BURN", [20.0]),
                ],
            ),
        )
        self._at(
            10.0,
            "orbit insertion sequence",
            lambda: self._sequence(
                "moi",
                [
                    ("abs", MOI_MET - 300.0, "mars.MOI_PREPARE", []),
                    ("abs", MOI_MET - 10.0, "cmd.ARM", ["mars.MOI_IGNITE"]),
                    ("abs", MOI_MET, "mars.MOI_IGNITE", []),
                ],
                on_reboot="resume",
            ),
        )
        self._at(
            150.0,
            "cruise: seven months compressed",
            lambda: self._warp_to(MOI_MET - 600.0, self.world.place_on_approach),
        )
        self._at(MOI_MET + 1500.0, "deorbit and EDL sequence", self._plan_edl)
        self._at(
            MOI_MET + 2400.0,
            "parking orbit: three months compressed",
            lambda: self._warp_to(SEPARATION_MET - 4 * 3600.0, self.world.place_in_parking_orbit),
        )
        if "link_loss" in self.opt.faults:
            start, end = SEPARATION_MET - 1800.0, SEPARATION_MET + ENTRY_COAST_S + 3600.0
            self.link.outages.append((start, end))
            t = SEPARATION_MET - 4 * 3600.0
            while t < SEPARATION_MET + 9 * DAY:  # the ground's carrier: a NOOP every 10 minutes
                if not start <= t < end:
                    self._at(t, "", lambda: self._send("cmd.NOOP"))
                t += 600.0

    def _plan_edl(self) -> None:
        self._command("prm.SET", "mars.entry_fpa_deg", "-14.5")
        self._command("prm.SET", "mars.entry_speed_mps", "4800")
        self._sequence(
            "edl",
            [
                ("abs", SEPARATION_MET - 3 * 3600.0, "cmd.ARM", ["mars.ENGINE_BURN"]),
                ("rel", 1.0, "mars.ENGINE_BURN", [10.0]),
                ("abs", SEPARATION_MET - 10.0, "cmd.ARM", ["mars.SEPARATE"]),
                ("abs", SEPARATION_MET, "mars.SEPARATE", []),
            ],
            on_reboot="resume",
        )

    def _plan_surface(self) -> None:
        release = self.clock.monotonic() + 7 * DAY
        self._sequence(
            "egress",
            [
                ("abs", release - 10.0, "cmd.ARM", ["mars.ROVER_RELEASE"]),
                ("abs", release, "mars.ROVER_RELEASE", []),
            ],
        )
        self._at(release + 1200.0, "end of the reference run", self._finish)

    def _finish(self) -> None:
        self._stop = True

    # --- time ------------------------------------------------------------------------------------
    def _warp_to(self, t: float, place: Callable[[], None] | None = None) -> None:
        now = self.clock.monotonic()
        if t <= now:
            return
        self.clock.advance(t - now)
        if place is not None:
            self.world.time = t
            place()
            return
        while now < t:  # in chunks: the power model integrates the sun's arc, not one instant
            step = min(600.0, t - now)
            self.world.step(step)
            now += step

    def _next_due(self) -> float:
        now = self.clock.monotonic()
        candidates = [a.time for a in self.actions]
        for due in (
            self.fsw.sequences.next_due(),
            self.link.next_uplink_delivery(),
            self.fsw.mission._burn_until,
        ):
            if due is not None:
                candidates.append(due)
        return min(candidates, default=now + DAY)

    def _skip_quiet(self) -> None:
        """Jump to shortly before the next thing that is due, if the spacecraft is idle."""
        fsw = self.fsw
        if (
            fsw.machine.state not in _QUIET
            or fsw.mission.act.main_engine_on
            or fsw.link is None
            or not fsw.link.downlink.idle()
            or fsw.link.playing_back
            or self.opt.speed > 0
        ):
            return
        target = self._next_due() - 2.0
        if target - self.clock.monotonic() <= 10.0:
            return
        if self._awaiting_landing():
            # The ground acts on the landing when its telemetry arrives, not when a skip ends
            # (a skip over the light time once put the rover's egress two days late): skip from
            # arrival to arrival, the ground reading each, until it knows.
            while (arrival := self.link.next_downlink_delivery()) is not None and arrival < target:
                self._warp_to(arrival)
                self.ground.poll()
                if self._look_for_landing() or self.link.next_downlink_delivery() == arrival:
                    return  # what the ground now plans is due soon: recompute on the next tick
        self._warp_to(target)

    # --- the loop --------------------------------------------------------------------------------
    def _world_step(self) -> None:
        pwm = self.pwm_model
        throttle_us = pwm.pulse_us(Channel.DESCENT_THROTTLE)
        lateral_us = pwm.pulse_us(Channel.LATERAL_THRUST)
        self.world.set_actuators(
            main_engine=pwm.duty(Channel.MAIN_ENGINE) > 0.5,
            parachute=pwm.duty(Channel.PARACHUTE_MORTAR) > 0.5,
            heatshield_release=pwm.duty(Channel.HEATSHIELD_RELEASE) > 0.5,
            backshell_sep=pwm.duty(Channel.BACKSHELL_SEPARATION) > 0.5,
            descent_throttle=_deadband((throttle_us - PULSE_CLOSED_US) / 1000.0),
            lateral_cmd=_deadband((lateral_us - PULSE_NEUTRAL_US) / 500.0) if lateral_us else 0.0,
            rover_release=pwm.duty(Channel.ROVER_RELEASE) > 0.5,
        )
        self.world.step(DT)

    def _tick(self) -> None:
        self._world_step()
        self.fsw.step()
        self.clock.advance(DT)
        now = self.clock.monotonic()
        while self.actions and self.actions[0].time <= now:
            action = self.actions.pop(0)
            if action.name:
                self._note("ground", action.name)
            action.run()
        while self.checks and self.checks[0].time <= now:
            self.checks.pop(0).run()
        if self.fsw.scheduler.tick % 5 == 0:
            self.ground.poll()
        self._watch()

    def _watch(self) -> None:
        """Harness-side reactions: separation coast, landing, faults on cue."""
        fsw, state = self.fsw, self.fsw.machine.state
        if (
            state == State.EDL_ENTRY
            and not self._entry_placed
            and (
                self.pwm_model.duty(Channel.LANDER_SEPARATION) > 0.5
                or fsw.machine.fired("lander_separation")
            )
        ):
            self._entry_placed = True
            self._note("world", "lander coasts three hours to the entry interface")
            self._warp_to(
                self.clock.monotonic() + ENTRY_COAST_S, self.world.place_at_entry_interface
            )
        nav = fsw.mission.entry_nav
        if state == State.EDL_PARACHUTE and self._chute_error is None and nav is not None:
            self._chute_error = nav.state.speed_mps - self.world.truth.speed_mps
        if state.startswith("EDL"):  # the flight software's own IMU readings, from its data pool
            sf = [fsw.pool.value(f"imu.accel_{axis}_mps2", 0.0) for axis in "xyz"]
            self._peak_sensed_g = max(self._peak_sensed_g, math.sqrt(sum(a * a for a in sf)) / G0)
            self._inject_edl_faults(state)
        self._look_for_landing()

    def _awaiting_landing(self) -> bool:
        """Landed, and the ground has not heard yet."""
        return not self._landed_seen and self.fsw.machine.state.startswith("SURFACE")

    def _look_for_landing(self) -> bool:
        """Whether the ground has just learnt of the landing from its telemetry (and planned
        the rover's egress)."""
        if self._landed_seen:
            return False
        for message in self.received[self._scanned :]:
            if (
                message.kind is MessageKind.EVENT
                and isinstance(message.body, dict)
                and message.body.get("args", {}).get("dest") == State.SURFACE_EGRESS.value
            ):
                self._landed_seen = True
                self._note("ground", "landing confirmed on Earth: rover egress sequence")
                self._plan_surface()
                break
        self._scanned = len(self.received)
        return self._landed_seen

    def _inject_edl_faults(self, state: str) -> None:
        faults = set(self.opt.faults) - self._fault_done
        if "imu_bus_errors" in faults and state == State.EDL_ENTRY and self._entry_placed:
            self._fault_done.add("imu_bus_errors")
            self.bench.sim_buses[1].inject(0x68, BusFault("no_ack", rate=0.35))
            self._note("fault", "IMU bus errors from now on (35% of transfers fail)")
        if "imu_stuck" in faults:
            self._imu_stuck()
        if "pyro_bus_errors" in faults:
            self._pyro_bus_errors(state)
        if "lidar_dropout" in faults and state == State.EDL_POWERED:
            self._fault_done.add("lidar_dropout")
            self.bench.models["lidar"].dropout(3600.0)
            self._note("fault", "LiDAR silent for the rest of the descent")
        if (
            "reboot_edl" in faults
            and state == State.EDL_PARACHUTE
            and self.fsw.machine.time_in_state() > 10.0
        ):
            self._fault_done.add("reboot_edl")
            self._reboot()

    def _imu_stuck(self) -> None:
        """The IMU's output registers stop updating for 8 s from 3 g of deceleration, while the
        drag is still climbing towards its peak: the chip answers, with the same sample."""
        imu = self.bench.models["imu"]
        now = self.clock.monotonic()
        if not imu.stuck and self.world.truth.deceleration_g >= 3.0:
            imu.stuck = True
            self._imu_stuck_until = now + _IMU_STUCK_S
            self._note("fault", f"IMU output frozen for {_IMU_STUCK_S:g} s")
        elif imu.stuck and now >= self._imu_stuck_until:
            imu.stuck = False
            self._fault_done.add("imu_stuck")
            self._note("fault", "IMU output live again")

    def _pyro_bus_errors(self, state: str) -> None:
        """The PWM board refuses every transfer from 150 m above the powered-descent altitude
        until a second into powered flight, so the backshell separation pyro's first attempts
        fail and only the mode machine's retry can fire it."""
        bus = self.bench.sim_buses[1]
        if _PWM_ADDRESS not in bus.faults:
            due = self.fsw.mission.p("powered_altitude_m") + 150.0
            if state == State.EDL_PARACHUTE and self.world.truth.altitude_m < due:
                bus.inject(_PWM_ADDRESS, BusFault("no_ack"))
                self._note("fault", "PWM board not answering (pyro and throttle writes fail)")
        elif state == State.EDL_POWERED and self.fsw.machine.time_in_state() >= 1.0:
            bus.clear_fault(_PWM_ADDRESS)
            self._fault_done.add("pyro_bus_errors")
            self._note("fault", "PWM board answering again")

    def run(self) -> dict[str, Any]:
        wall = WallClock()  # the simulator's own pacing and timing; the flight side never sees it
        wall0 = wall.monotonic()
        pace0 = (wall0, self.clock.monotonic())
        last_progress = 0.0
        try:
            while not self._stop:
                self._skip_quiet()
                self._tick()
                if self.opt.until and self.fsw.machine.mode == self.opt.until:
                    self._note("sim", f"reached {self.opt.until}: stopping (--until)")
                    break
                if self.opt.speed > 0:
                    self._pace(wall, pace0)
                if self.opt.progress and wall.monotonic() - last_progress > 0.2:
                    last_progress = wall.monotonic()
                    self._progress()
        finally:
            self.fsw.stop()
            for _ in range(25):  # let the last frames cross and be read
                self.clock.advance(one_way_light_time(self.clock.monotonic()) / 20)
                self.ground.poll()
            if self._record is not None:
                self._record.close()
            if self.opt.progress:
                sys.stderr.write("\r" + " " * 78 + "\r")
            self.bench.close()
        return self.report(wall.monotonic() - wall0)

    def _pace(self, wall: WallClock, origin: tuple[float, float]) -> None:
        wall0, sim0 = origin
        wall.sleep_until(wall0 + (self.clock.monotonic() - sim0) / self.opt.speed)

    # --- output ----------------------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        self.event_counts[event.name] += 1
        if event.name == "mode.TRANSITION":
            self.timeline.append({"met_s": event.time, **event.args})
            if event.args.get("dest") == State.MOI_ORBIT.value:
                self.capture = self.world.orbit()
                self._moi_dv = self.fsw.mission.dv.delta_v
            self._note("mode", event.text, met=event.time)
        elif (
            event.severity >= Severity.ACTIVITY_HI
            and event.name.split(".")[0] in ("mars", "app", "link", "seq")
        ) or event.severity >= Severity.WARNING_HI:
            self._note(event.name, event.text, met=event.time)

    def _note(self, tag: str, text: str, met: float | None = None) -> None:
        met = self.clock.monotonic() if met is None else met
        days, rem = divmod(met, DAY)
        hours, rem = divmod(int(rem), 3600)
        hms = f"{hours:02d}:{rem // 60:02d}:{rem % 60:02d}"
        if self.opt.progress:
            sys.stderr.write("\r" + " " * 78 + "\r")
        print(f"MET {int(days):3d}d {hms}  {tag:<22} {text}", file=self.opt.out)

    def _progress(self) -> None:
        marks = [
            State.CRUISE,
            State.MOI_PREP,
            State.MOI_BURN,
            State.MOI_ORBIT,
            State.EDL_ENTRY,
            State.EDL_PARACHUTE,
            State.EDL_POWERED,
            State.EDL_HOVER,
            State.EDL_TOUCHDOWN,
            State.SURFACE_EGRESS,
            State.SURFACE_OPS,
        ]
        state = self.fsw.machine.state
        done = marks.index(State(state)) + 1 if state in marks else 0
        bar = "#" * (2 * done) + "." * (2 * (len(marks) - done))
        sys.stderr.write(f"\r[{bar}] {state:<15} MET {self.clock.monotonic() / DAY:6.2f} d ")
        sys.stderr.flush()

    def report(self, wall_s: float) -> dict[str, Any]:
        truth = self.world.truth
        td = truth.touchdown
        responses = [m for m in self.received if m.kind is MessageKind.COMMAND_RESPONSE]
        accepted = sum(1 for m in responses if m.body.get("status") == 0)
        flight_entry = self.fsw.store.get("mars.entry_detected_met", None)
        flight_td = next(
            (t["met_s"] for t in self.timeline if t.get("dest") == "EDL.TOUCHDOWN"), None
        )
        return {
            "seed": self.opt.seed,
            "faults": list(self.opt.faults),
            "final_state": self.fsw.machine.state,
            "transitions": self.timeline,
            "touchdown": {
                "truth_vertical_mps": td.vertical_mps if td else None,
                "truth_horizontal_mps": td.horizontal_mps if td else None,
                "survived": td.survived if td else None,
                "flight_vertical_estimate_mps": self.fsw.pool.value(
                    "gnc.vertical_speed_mps", None, valid_only=False
                ),
                "site_offset_m": truth.site_offset_m if td else None,
            },
            "edl": {
                "truth_duration_s": (td.time_s - truth.entry_time_s)
                if td and truth.entry_time_s is not None
                else None,
                "flight_duration_s": (flight_td - flight_entry)
                if flight_td is not None and isinstance(flight_entry, int | float)
                else None,
                "truth_peak_deceleration_g": truth.peak_deceleration_g,
                "flight_peak_sensed_g": self._peak_sensed_g,
                "chute_speed_error_mps": self._chute_error,
            },
            "orbit_insertion": {
                "flight_delta_v_mps": self._moi_dv,
                "truth_periapsis_km": self.capture.periapsis_alt_m / 1000 if self.capture else None,
                "truth_period_days": self.capture.period_s / DAY if self.capture else None,
                "captured": bool(self.capture.bound) if self.capture else None,
            },
            "commands": {
                "sent": self.sent,
                "resent": self.resent,
                "responses": len(responses),
                "accepted": accepted,
                "rejected": len(responses) - accepted,
            },
            "link": {
                "frames_received": self.ground.link_stats(),
                "played_back": self.fsw.link.played_back if self.fsw.link else 0,
            },
            "world_events": [{"met_s": t, "text": text} for t, text in self.world.events],
            "flight_events": dict(sorted(self.event_counts.items())),
            "boots": self.fsw.boot_count,
            "wall_clock_s": wall_s,
        }


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
