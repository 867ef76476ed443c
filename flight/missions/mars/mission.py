"""The Mars mission component: guards, actions, onboard GNC, and the mission's commands.

This is where the reference mission decides things. Every decision reads the data pool (device
readings written by the pollers) and the mission's parameters; the simulator's truth is never
visible here. The transition table in :meth:`MarsMission.transitions` is the whole of the mission's
autonomy: read it top to bottom to see when the vehicle does what, and which backup (a timer, the
barometer, the radar instead of the LiDAR) takes over when a sensor is lost.

The rest of the mission's dictionary is beside it: channels and packets in :mod:`.telemetry`,
events in :mod:`.events`, parameters in :mod:`.parameters`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

from flight.commands import Arg, ArgType, CommandError, CommandSpec
from flight.datapool import DataPool
from flight.events import EventLog, EventSpec
from flight.missions.mars.actuators import Actuators, Channel
from flight.missions.mars.events import (
    EV_BACKUP,
    EV_BURN,
    EV_ENTRY,
    EV_HAZARD,
    EV_IMU_FROZEN,
    EV_IMU_LIVE,
    EV_OUTPUT_FAILED,
    EV_TOUCHDOWN,
    EVENTS,
)
from flight.missions.mars.gnc import (
    MARS_SURFACE_GRAVITY,
    DeltaVMeter,
    DescentController,
    DescentNavigator,
    EntryNavigator,
    FreezeWatch,
    altitude_from_pressure,
)
from flight.missions.mars.modes import SAFE_RETURN, State
from flight.missions.mars.parameters import PARAMETERS
from flight.missions.mars.telemetry import CHANNELS, PACKETS
from flight.modes import ModeMachine, OneShot, StateStoreLike, TransitionSpec
from flight.parameters import ParameterStore, ParamSpec
from flight.telemetry import ChannelSpec, PacketSpec
from hal.errors import HALError

__all__ = ["MarsMission"]

log = logging.getLogger(__name__)

_Setting = TypeVar("_Setting", bool, float)

#: Sensed specific force that marks the atmosphere's first bite (about 0.03 Earth g).
ENTRY_DETECT_MPS2 = 0.3
ENTRY_DETECT_SAMPLES = 5
#: LiDAR readings are trusted for the last metres only (TFmini Plus: 0.1-12 m).
LIDAR_TRUST_M = 10.0
TOUCHDOWN_ALTITUDE_M = 0.12
HAZARD_MOVE_S = 6.0


class MarsMission:
    """The reference mission's onboard logic.

    Args:
        pool: the data pool the pollers fill.
        events: the event log.
        params: the parameter store (the mission registers its parameters there).
        actuators: the PWM outputs.
        store: the persistent state store (nav state across a reboot, burn progress).
        now: spacecraft time (MET seconds).
    """

    def __init__(
        self,
        *,
        pool: DataPool,
        events: EventLog,
        params: ParameterStore,
        actuators: Actuators,
        store: StateStoreLike,
        now: Callable[[], float],
    ) -> None:
        self.pool = pool
        self.events_log = events
        self.params = params
        self.act = actuators
        self.store = store
        self.now = now
        self.machine: ModeMachine | None = None
        self.dv = DeltaVMeter()
        self.entry_nav: EntryNavigator | None = None
        self.descent_nav = DescentNavigator()
        self.controller: DescentController | None = None
        self._imu_time = -math.inf
        self._alt_time = -math.inf
        self._entry_count = 0
        self._burn_until: float | None = None
        self._burn_started = 0.0
        self._imu_freeze = FreezeWatch()
        self._imu_frozen_since: float | None = None
        self._backups: set[str] = set()
        self._hazard_phase = ""

    def attach(self, machine: ModeMachine) -> None:
        self.machine = machine

    def p(self, name: str) -> float:
        return float(self.params.get(f"mars.{name}"))

    # --- sensors ---------------------------------------------------------------------------------
    def _imu(self, *, watch: bool = False) -> tuple[tuple[float, float, float], float] | None:
        """The newest IMU sample not yet consumed, as (specific force, time).

        With ``watch`` (in EDL, where the navigators integrate every sample) a frozen output is
        treated as no sample at all. Not elsewhere: on a quiet bench a live chip's readings can
        repeat exactly, and nothing outside EDL dead-reckons on them.
        """
        s = self.pool.get("imu.accel_z_mps2")
        if s is None or not s.valid or s.time <= self._imu_time:
            return None
        self._imu_time = s.time
        ax = self.pool.value("imu.accel_x_mps2", 0.0)
        ay = self.pool.value("imu.accel_y_mps2", 0.0)
        accel = (float(ax), float(ay), float(s.value))
        if watch and self._imu_freeze.update(accel):
            if self._imu_frozen_since is None:
                self._imu_frozen_since = s.time
                self.events_log.emit(EV_IMU_FROZEN, samples=self._imu_freeze.repeats)
            return None  # the navigators bridge the gap when live samples return
        if self._imu_frozen_since is not None:
            self.events_log.emit(EV_IMU_LIVE, seconds=round(s.time - self._imu_frozen_since, 2))
            self._imu_frozen_since = None
        return accel, s.time

    def imu_online(self) -> bool:
        return bool(self.pool.value("dev.imu.online", True, valid_only=False))

    def _recent(self, name: str, now: float, max_age_s: float) -> tuple[float, float] | None:
        """A valid, non-empty reading no older than ``max_age_s``, as (value, time)."""
        sample = self.pool.get(name)
        if sample is None or not sample.valid or sample.value is None:
            return None
        return (float(sample.value), sample.time) if now - sample.time < max_age_s else None

    def _altitude_measurement(self, now: float) -> tuple[float, str, float] | None:
        """Best altitude measurement available: LiDAR, then radar, then barometer, with the time
        it was taken."""
        lidar = self._recent("lidar.distance_m", now, 0.5)
        if lidar is not None and lidar[0] < LIDAR_TRUST_M:
            return lidar[0], "lidar", lidar[1]
        radar = self._recent("altimeter.distance_m", now, 1.0)
        if radar is not None:
            return radar[0], "radar", radar[1]
        pressure = self._recent("baro.pressure_pa", now, 1.0)
        alt = altitude_from_pressure(pressure[0]) if pressure is not None else None
        return (alt, "barometer", pressure[1]) if alt is not None and pressure else None

    def _note_backup(self, function: str, source: str) -> None:
        key = f"{function}:{source}"
        if key not in self._backups:
            self._backups.add(key)
            self.events_log.emit(EV_BACKUP, function=function, source=source)

    # --- guards ----------------------------------------------------------------------------------
    def _in_state_s(self) -> float:
        return self.machine.time_in_state() if self.machine is not None else 0.0

    def burn_complete(self) -> bool:
        if self.dv.delta_v >= self.p("moi_delta_v_mps"):
            return True
        if self._in_state_s() >= self.p("moi_max_burn_s"):
            self._note_backup("moi cut-off", "burn timer")
            return True
        return False

    def entry_detected_at(self) -> float | None:
        value = self.store.get("mars.entry_detected_met", None)
        return float(value) if isinstance(value, int | float) else None

    def parachute_due(self) -> bool:
        detected = self.entry_detected_at()
        if detected is None:
            return False
        if self.entry_nav is not None and self.imu_online():
            return self.entry_nav.state.speed_mps <= self.p("chute_speed_mps")
        self._note_backup("parachute", "entry timer")
        return self.now() - detected >= self.p("chute_backup_s")

    def powered_descent_due(self) -> bool:
        machine = self.machine
        if machine is None or not machine.fired("heatshield_jettison"):
            return False
        if machine.retrying("heatshield_jettison"):
            return False  # still on: the engine cannot fire through it
        alt = self.descent_nav.altitude_m
        if alt is not None and self.descent_nav.age(self.now()) < 2.0:
            return alt <= self.p("powered_altitude_m")
        self._note_backup("powered descent", "parachute timer")
        return self._in_state_s() >= self.p("powered_backup_s")

    def hover_reached(self) -> bool:
        alt = self.descent_nav.altitude_m
        return alt is not None and alt <= self.p("hover_altitude_m") + 10.0

    def touchdown(self) -> bool:
        lidar = self._recent("lidar.distance_m", self.now(), 0.5)
        if lidar is not None and lidar[0] <= TOUCHDOWN_ALTITUDE_M:
            return True
        alt = self.descent_nav.altitude_m
        return alt is not None and alt <= TOUCHDOWN_ALTITUDE_M and self._in_state_s() > 5.0

    def safe_return_is(self, state: State) -> Callable[[], bool]:
        def guard() -> bool:
            return self.machine is not None and self.machine.previous == state.value

        return guard

    # --- actions ---------------------------------------------------------------------------------
    def _moi_ignite(self) -> None:
        self.dv.reset()
        self.store.set("mars.moi_ignition_met", self.now())
        self.act.main_engine(True)

    def _moi_cutoff(self) -> None:
        self.act.main_engine(False)
        ignition = self.store.get("mars.moi_ignition_met", None)
        duration = self.now() - float(ignition) if isinstance(ignition, int | float) else 0.0
        self.events_log.emit(
            EV_BURN, burn="MOI", state="complete", delta_v_mps=self.dv.delta_v, duration_s=duration
        )

    def _start_powered(self) -> None:
        # The pyro first: if the PWM board refuses the write this raises before anything else
        # changes, and the mode machine's retry runs the whole action again.
        self.act.fire(Channel.BACKSHELL_SEPARATION)
        if self.entry_nav is not None:  # horizontal speed carried over from the entry solution
            st = self.entry_nav.state
            self.descent_nav.horizontal_speed_mps = st.speed_mps * math.cos(st.flight_path_rad)
        self.controller = DescentController(
            max_thrust_n=self.p("descent_thrust_n"), mass_kg=self.p("lander_mass_kg")
        )

    def _engine_cutoff(self) -> None:
        self.act.set_throttle(0.0)
        self.act.set_lateral(0.0)
        self.events_log.emit(EV_TOUCHDOWN, vz_mps=self.descent_nav.vertical_speed_mps)

    def transitions(self) -> list[TransitionSpec]:
        """The mission's whole autonomy and commandability, as one table."""
        safe_sources = tuple(s.value for s in SAFE_RETURN)
        rows = [
            TransitionSpec(
                "prepare_moi",
                (State.CRUISE,),
                State.MOI_PREP,
                description="Ground: configure for the orbit insertion burn.",
            ),
            TransitionSpec(
                "ignite",
                (State.MOI_PREP,),
                State.MOI_BURN,
                commandable=False,
                on_arrival=(OneShot("moi_ignition", self._moi_ignite),),
                description="Hazardous command: light the 3000 N engine.",
            ),
            TransitionSpec(
                "burn_complete",
                (State.MOI_BURN,),
                State.MOI_ORBIT,
                guard=self.burn_complete,
                autonomous=True,
                commandable=False,
                on_arrival=(OneShot("moi_cutoff", self._moi_cutoff),),
                description="Measured delta-v reached (backup: burn timer).",
            ),
            TransitionSpec(
                "separate",
                (State.MOI_ORBIT,),
                State.EDL_ENTRY,
                commandable=False,
                on_arrival=(
                    OneShot("lander_separation", lambda: self.act.fire(Channel.LANDER_SEPARATION)),
                ),
                description="Hazardous command: release the lander for entry.",
            ),
            TransitionSpec(
                "deploy_parachute",
                (State.EDL_ENTRY,),
                State.EDL_PARACHUTE,
                guard=self.parachute_due,
                autonomous=True,
                commandable=False,
                on_arrival=(
                    OneShot("parachute_mortar", lambda: self.act.fire(Channel.PARACHUTE_MORTAR)),
                ),
                description="Estimated speed at chute speed (backup: entry timer).",
            ),
            TransitionSpec(
                "start_powered_descent",
                (State.EDL_PARACHUTE,),
                State.EDL_POWERED,
                guard=self.powered_descent_due,
                autonomous=True,
                commandable=False,
                on_arrival=(OneShot("backshell_separation", self._start_powered),),
                description="Altitude below the powered-descent gate (backup: timer).",
            ),
            TransitionSpec(
                "hover",
                (State.EDL_POWERED,),
                State.EDL_HOVER,
                guard=self.hover_reached,
                autonomous=True,
                commandable=False,
                description="Hover altitude reached: hazard avoidance.",
            ),
            TransitionSpec(
                "land",
                (State.EDL_HOVER,),
                State.EDL_TOUCHDOWN,
                guard=self.touchdown,
                autonomous=True,
                commandable=False,
                on_arrival=(OneShot("engine_cutoff", self._engine_cutoff),),
                description="Altimeter reads contact: engine off.",
            ),
            TransitionSpec(
                "landed",
                (State.EDL_TOUCHDOWN,),
                State.SURFACE_EGRESS,
                guard=lambda: self._in_state_s() >= 10.0,
                autonomous=True,
                commandable=False,
                description="Settled on the surface.",
            ),
            TransitionSpec(
                "release_rover",
                (State.SURFACE_EGRESS,),
                State.SURFACE_OPS,
                commandable=False,
                on_arrival=(
                    OneShot("rover_release", lambda: self.act.fire(Channel.ROVER_RELEASE)),
                ),
                description="Hazardous command: release the rover down the ramps.",
            ),
            TransitionSpec(
                "enter_safe",
                safe_sources,
                State.SAFE,
                actions=(self.act.safe,),
                description="Fault protection or ground: wait safely for the ground.",
            ),
        ]
        rows += [
            TransitionSpec(
                "exit_safe",
                (State.SAFE,),
                back,
                guard=self.safe_return_is(back),
                description=f"Ground: resume {back.value} after safing.",
            )
            for back in SAFE_RETURN
        ]
        return rows

    # --- the 50 Hz tick --------------------------------------------------------------------------
    def tick(self) -> None:
        """Navigation and control for the current phase; then end any pyro pulse that is due."""
        self.act.tick()
        if self.machine is None:
            return
        state = self.machine.state
        now = self.now()
        sample = self._imu(watch=state.startswith("EDL"))
        if state == State.MOI_BURN and sample is not None:
            self.dv.update(*sample)
        elif state == State.EDL_ENTRY:
            self._tick_entry(sample, now)
        elif state in (State.EDL_PARACHUTE, State.EDL_POWERED, State.EDL_HOVER):
            if state == State.EDL_PARACHUTE:  # the capsule still flies along its velocity
                self._tick_entry(sample, now)
            self._tick_descent(state, sample, now)
        self._publish(now)
        if self._burn_until is None:
            return
        if now >= self._burn_until and self._drive("main engine off", self.act.main_engine, False):
            self._burn_until = None
            self.events_log.emit(
                EV_BURN,
                burn="trajectory",
                state="complete",
                delta_v_mps=self.dv.delta_v,
                duration_s=now - self._burn_started,
            )
        elif sample is not None:  # burning, or the cutoff was refused: still burning
            self.dv.update(*sample)

    def _drive(self, output: str, write: Callable[[_Setting], None], value: _Setting) -> bool:
        """Send one control output; whether the board took it.

        A refused write must not end the tick: the outputs after it, the published estimates and
        a burn's cutoff would all wait for the next one. Throttle and lateral thrust are sent
        again every tick anyway; a refused cutoff keeps the burn open so the next tick retries
        it. Only HAL errors are caught: a missing board or a bug still reaches the scheduler.
        """
        try:
            write(value)
        except HALError as exc:
            self.events_log.emit(EV_OUTPUT_FAILED, output=output, error=str(exc))
            return False
        return True

    def _tick_entry(
        self, sample: tuple[tuple[float, float, float], float] | None, now: float
    ) -> None:
        if sample is None:
            return
        accel, t = sample
        if self.entry_detected_at() is None:
            magnitude = math.sqrt(sum(a * a for a in accel))
            self._entry_count = self._entry_count + 1 if magnitude > ENTRY_DETECT_MPS2 else 0
            if self._entry_count >= ENTRY_DETECT_SAMPLES:
                self.store.set("mars.entry_detected_met", t)
                self.store.commit()
                self.events_log.emit(EV_ENTRY, accel_mps2=magnitude)
                self.entry_nav = self._new_entry_nav()
            return
        if self.entry_nav is None:  # restarted mid-entry: resume from the last saved estimate
            self.entry_nav = self._restored_entry_nav(t)
        self.entry_nav.update(accel, t)
        if int(t) != int(t - 0.021):  # about once a second: survive a reboot
            st = self.entry_nav.state
            self.store.set(
                "mars.entry_nav", [st.speed_mps, math.degrees(st.flight_path_rad), st.altitude_m, t]
            )
            self.store.commit()

    def _new_entry_nav(self) -> EntryNavigator:
        return EntryNavigator(
            speed_mps=self.p("entry_speed_mps"),
            flight_path_deg=self.p("entry_fpa_deg"),
            altitude_m=self.p("entry_altitude_m"),
        )

    def _restored_entry_nav(self, t: float) -> EntryNavigator:
        saved = self.store.get("mars.entry_nav", None)
        if isinstance(saved, list) and len(saved) == 4:
            nav = EntryNavigator(
                speed_mps=float(saved[0]),
                flight_path_deg=float(saved[1]),
                altitude_m=float(saved[2]),
            )
            nav.anchor(float(saved[3]))
            return nav
        return self._new_entry_nav()

    def _tick_descent(
        self, state: str, sample: tuple[tuple[float, float, float], float] | None, now: float
    ) -> None:
        nav = self.descent_nav
        if sample is not None and state != State.EDL_PARACHUTE:
            nav.propagate(sample[0][2], sample[1], sample[0][0])
        alt = self._altitude_measurement(now)
        if alt is not None:
            if alt[1] not in ("lidar", "radar"):
                self._note_backup("altitude", alt[1])
            nav.measure(alt[0], alt[2])
        if state == State.EDL_PARACHUTE:
            self._tick_parachute()
            return
        if self.controller is None:  # restarted in powered flight: rebuild the controller
            self.controller = DescentController(
                max_thrust_n=self.p("descent_thrust_n"), mass_kg=self.p("lander_mass_kg")
            )
        if nav.altitude_m is None:
            hold = MARS_SURFACE_GRAVITY * self.p("lander_mass_kg") / self.p("descent_thrust_n")
            self._drive("throttle", self.act.set_throttle, hold)
            return
        hover_alt: float | None = None
        lateral = DescentController.lateral_command(nav.horizontal_speed_mps)
        if state == State.EDL_POWERED:
            hover_alt = self.p("hover_altitude_m")
        elif self._in_state_s() < self.p("hover_time_s"):
            hover_alt = self.p("hover_altitude_m")
            lateral = self._hazard_avoidance(lateral)
        self._drive("lateral thrust", self.act.set_lateral, lateral)
        target = DescentController.target_speed(nav.altitude_m, hover_altitude_m=hover_alt)
        throttle = self.controller.throttle(target, nav.vertical_speed_mps, now)
        self._drive("throttle", self.act.set_throttle, throttle)

    def _tick_parachute(self) -> None:
        if (
            self.machine is not None
            and self._in_state_s() >= self.p("heatshield_delay_s")
            and not self.machine.fired("heatshield_jettison")
        ):
            self.machine.fire_once(
                OneShot("heatshield_jettison", lambda: self.act.fire(Channel.HEATSHIELD_RELEASE))
            )

    def _hazard_avoidance(self, hold: float) -> float:
        """Move clear of the hazard the (notional) 3-D imager found under the hover point:
        half the move accelerating, half braking, so the lander ends it at rest again."""
        t = self._in_state_s()
        if t < HAZARD_MOVE_S / 2:
            command = 0.5
        elif t < HAZARD_MOVE_S:
            command = -0.5
        else:
            return hold
        phase = "accelerate" if command > 0 else "brake"
        if phase != self._hazard_phase:
            self._hazard_phase = phase
            self.events_log.emit(EV_HAZARD, action=f"lateral move: {phase}")
        return command

    def _publish(self, now: float) -> None:
        pool = self.pool
        pool.set("gnc.delta_v_mps", self.dv.delta_v, now)
        if self.entry_nav is not None:
            st = self.entry_nav.state
            pool.set("gnc.entry_speed_mps", st.speed_mps, now)
            pool.set("gnc.entry_altitude_m", st.altitude_m, now)
        if self.descent_nav.altitude_m is not None:
            pool.set("gnc.altitude_m", self.descent_nav.altitude_m, now)
            pool.set("gnc.vertical_speed_mps", self.descent_nav.vertical_speed_mps, now)
            pool.set("gnc.horizontal_speed_mps", self.descent_nav.horizontal_speed_mps, now)
        pool.set("gnc.throttle", self.act.throttle, now)

    # --- commands --------------------------------------------------------------------------------
    def _trigger(self, trigger: str) -> Callable[..., str]:
        def handle(**_: Any) -> str:
            if self.machine is None or not self.machine.trigger(trigger, cause="command"):
                state = self.machine.state if self.machine is not None else "?"
                raise CommandError(f"{trigger} refused in {state}")
            return f"now in {self.machine.state}"

        return handle

    def _engine_burn(self, duration_s: float) -> str:
        if self.machine is None or self.machine.state not in (State.CRUISE, State.MOI_ORBIT):
            raise CommandError("trajectory burns are allowed in CRUISE and MOI.ORBIT only")
        self.dv.reset()
        self.act.main_engine(True)
        self._burn_started = self.now()
        self._burn_until = self.now() + duration_s
        return f"burning {duration_s:.1f} s"

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                0x1000,
                "mars.MOI_PREPARE",
                self._trigger("prepare_moi"),
                description="Enter orbit insertion burn preparation.",
            ),
            CommandSpec(
                0x1001,
                "mars.MOI_IGNITE",
                self._trigger("ignite"),
                hazardous=True,
                description="Start the orbit insertion burn.",
            ),
            CommandSpec(
                0x1002,
                "mars.SEPARATE",
                self._trigger("separate"),
                hazardous=True,
                description="Separate the lander and begin EDL.",
            ),
            CommandSpec(
                0x1003,
                "mars.ROVER_RELEASE",
                self._trigger("release_rover"),
                hazardous=True,
                description="Release the rover onto the surface.",
            ),
            CommandSpec(
                0x1004,
                "mars.ENGINE_BURN",
                self._engine_burn,
                (Arg("duration_s", ArgType.FLOAT, "s", 0.1, 600.0),),
                hazardous=True,
                description="Timed main-engine burn (trajectory correction, deorbit).",
            ),
            CommandSpec(
                0x1005,
                "mars.SAFE_ENTER",
                self._trigger("enter_safe"),
                description="Enter safe mode.",
            ),
            CommandSpec(
                0x1006,
                "mars.SAFE_EXIT",
                self._trigger("exit_safe"),
                description="Leave safe mode for the state it was entered from.",
            ),
        ]

    def events(self) -> list[EventSpec]:
        return list(EVENTS)

    def parameters(self) -> list[ParamSpec]:
        return list(PARAMETERS)

    def channels(self) -> list[ChannelSpec]:
        return list(CHANNELS)

    def packets(self) -> list[PacketSpec]:
        return list(PACKETS)
