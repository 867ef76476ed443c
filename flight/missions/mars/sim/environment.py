"""The Mars mission's physical world: the simulator's truth, driven by the actuators.

:class:`MarsEnvironment` closes the loop. The mission simulator reads the flight software's
actuator outputs (PCA9685 channels) and passes them to :meth:`MarsEnvironment.set_actuators`;
:meth:`MarsEnvironment.step` integrates the trajectory and then writes what the sensors would see
into a :class:`hal.sim.Environment`, which the simulated chips read. Nothing here imports the
flight software: this is physics only (``math`` and ``random`` from the standard library).

Vehicle phases (:class:`Phase`): CRUISE and ORBIT fly the orbiter-lander stack with the 3000 N
main engine; ENTRY, PARACHUTE and POWERED fly the entry capsule and then the lander; LANDED is
static. Long phases are compressed by the ``place_*`` scenario setters, which do not reset time.

Body frame of the IMU (and of the magnetometer's vector): +z along the capsule's symmetry axis,
away from the heat shield (along the engine thrust), +x in the trajectory plane (the lift
direction in entry; downrange for the upright lander), +y out of the plane. In cruise, orbit,
entry and on the parachute the body holds +z against the velocity (retrograde: the attitude for
the insertion burn, and the attitude a capsule trims to); after backshell separation it holds +z
up. Attitude changes are rate-limited (``max_slew_dps``), which is what the gyro sees.

Sensor noise: zero-mean Gaussian from one ``random.Random(seed)``, so the same seed and the same
actuator history give identical readings. Sigmas (``MarsParams``, in :mod:`.params`):
accelerometer 0.03 m/s^2 (MPU-6050 noise density over ~40 Hz), gyro 0.05 deg/s, pressure 0.5 Pa,
temperature 0.1 C, magnetic field 2 nT, range 0.02 m + 0.2 % of range, bus voltage 5 mV, current
5 mA.
"""

from __future__ import annotations

import enum
import math
import random
from collections import deque
from dataclasses import dataclass

from flight.missions.mars.constants import (
    ATMOSPHERE_TOP_M,
    GM,
    LANDING_SITE_LAT_DEG,
    LANDING_SITE_LON_DEG,
    MARS_G0,
    MARS_RADIUS_M,
    PARKING_APOAPSIS_ALT_M,
    PARKING_PERIAPSIS_ALT_M,
    ROVER_MASS_KG,
    SOL_S,
    STANDARD_GRAVITY,
)
from flight.missions.mars.sim import atmosphere, magnetic
from flight.missions.mars.sim.dynamics import (
    OrbitElements,
    PlanarDynamics,
    conic_state,
    hyperbolic_true_anomaly,
    orbit_elements,
    state_at,
)
from flight.missions.mars.sim.params import MarsParams
from hal.sim.environment import Environment

__all__ = ["MarsEnvironment", "Phase", "Touchdown", "Truth"]


@enum.unique
class Phase(enum.StrEnum):
    CRUISE = "CRUISE"
    ORBIT = "ORBIT"
    ENTRY = "ENTRY"
    PARACHUTE = "PARACHUTE"
    POWERED = "POWERED"
    LANDED = "LANDED"


_IN_EDL = frozenset({Phase.ENTRY, Phase.PARACHUTE, Phase.POWERED})


@dataclass(frozen=True, slots=True)
class Touchdown:
    """Contact with the ground: speeds are magnitudes at the instant of contact."""

    time_s: float
    vertical_mps: float
    horizontal_mps: float
    survived: bool


@dataclass(frozen=True, slots=True)
class Truth:
    """A snapshot of what really happened, for the simulator's report and plots."""

    time_s: float
    phase: Phase
    altitude_m: float
    downrange_m: float  # surface arc from the last placement
    site_offset_m: float  # surface arc to the landing site (negative: short of it)
    latitude_deg: float
    longitude_deg: float
    speed_mps: float
    vertical_speed_mps: float  # positive up
    horizontal_speed_mps: float
    flight_path_deg: float
    mach: float
    dynamic_pressure_pa: float
    deceleration_g: float  # specific-force magnitude in Earth g
    peak_deceleration_g: float
    mass_kg: float
    descent_propellant_kg: float
    main_propellant_kg: float
    sensed_delta_v_mps: float  # |specific force| integrated since the last placement
    main_engine_on: bool
    descent_throttle: float
    lateral_cmd: float
    parachute_deployed: bool
    parachute_failed: bool
    heatshield_jettisoned: bool
    backshell_separated: bool
    rover_released: bool
    landed: bool
    entry_time_s: float | None
    touchdown: Touchdown | None
    battery_soc: float


Vec3 = tuple[float, float, float]


def _combine(a: float, u: Vec3, b: float, v: Vec3) -> Vec3:
    """a u + b v."""
    return (a * u[0] + b * v[0], a * u[1] + b * v[1], a * u[2] + b * v[2])


def _dot(a: Vec3, b: Vec3) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


class MarsEnvironment:
    """The integrating world model the mission simulator steps.

    Args:
        seed: seeds the sensor noise.
        env: the sensors' environment to update (a new one if None).
        params: the tunables (defaults: the nominal mission).

    The vehicle starts in cruise (see :meth:`place_in_cruise`).
    """

    def __init__(
        self, *, seed: int = 0, env: Environment | None = None, params: MarsParams | None = None
    ) -> None:
        self.params = params or MarsParams()
        self.env = env if env is not None else Environment()
        self._rng = random.Random(seed)
        self._dyn = PlanarDynamics()
        self.time = 0.0
        self.phase = Phase.CRUISE
        self.history: deque[Truth] = deque(maxlen=self.params.history_max)
        self.events: list[tuple[float, str]] = []
        self.moi_ignition_time_s: float | None = None
        # Commands (levels) and latched one-way events
        self._main_engine = False
        self._throttle = 0.0
        self._lateral = 0.0
        self._soc = self.params.battery_soc0
        self._imu_temp = 20.0
        self._next_slow = 0.0
        self._last_slow = 0.0
        self._next_history = 0.0
        self._pitch_rate_dps = 0.0
        self._sf = (0.0, 0.0, 0.0)  # specific force in body axes (truth)
        p = self.params
        self._capsule_cda = p.capsule_cd * math.pi * 0.25 * p.capsule_diameter_m**2
        self._ground_track()
        self.place_in_cruise()

    # --- scenario setters ---------------------------------------------------------------------
    def _reset_vehicle(
        self, phase: Phase, state: tuple[float, float, float, float], mass: float
    ) -> None:
        self.phase = phase
        self._dyn.set_state(state)
        self._dyn.mass_kg = mass
        self._dyn.body_angle_rad = self._target_attitude()
        self._place_angle = self._dyn.angle_rad
        self._chute = False
        self._chute_time = 0.0
        self._chute_failed = False
        self._heatshield_gone = phase in (Phase.POWERED, Phase.LANDED)
        self._backshell_gone = phase in (Phase.POWERED, Phase.LANDED)
        self._rover_released = False
        self._descent_prop = self.params.descent_propellant_kg
        self._main_prop = self.params.main_propellant_kg
        self._touchdown: Touchdown | None = None
        self._peak_g = 0.0
        self._delta_v = 0.0
        self._entry_time: float | None = self.time if phase == Phase.ENTRY else None
        self._sf = (0.0, 0.0, MARS_G0) if phase == Phase.LANDED else (0.0, 0.0, 0.0)
        self._next_slow = self.time  # refresh every sensor on the next step

    def _approach_state(self, time_from_periapsis_s: float) -> tuple[float, float, float, float]:
        p = self.params
        rp = MARS_RADIUS_M + p.approach_periapsis_alt_m
        nu, e = hyperbolic_true_anomaly(time_from_periapsis_s, rp, p.approach_v_inf_mps)
        return conic_state(rp, e, nu, 0.0)

    def place_in_cruise(self) -> None:
        """Far out on the approach hyperbola (a few days from Mars): coasting, main engine ready."""
        state = self._approach_state(-self.params.cruise_days_before_periapsis * 86_400.0)
        self._reset_vehicle(Phase.CRUISE, state, self.params.stack_mass_kg)
        self.moi_ignition_time_s = None

    def place_on_approach(self) -> None:
        """``approach_lead_s`` before the nominal insertion ignition (``moi_ignition_time_s``).

        The hyperbola is tuned so that a retrograde burn started at ``moi_ignition_time_s`` and
        ended when about 640 m/s has been sensed captures into the ~400 km x 10-day orbit.
        """
        p = self.params
        ahead = p.approach_lead_s + p.moi_ignition_before_periapsis_s
        self._reset_vehicle(Phase.ORBIT, self._approach_state(-ahead), p.stack_mass_kg)
        self.moi_ignition_time_s = self.time + p.approach_lead_s

    def place_in_parking_orbit(self, *, true_anomaly_deg: float = 0.0) -> None:
        """On the 280 km x 59,000 km parking orbit (about 2 sols), at periapsis by default."""
        rp = MARS_RADIUS_M + PARKING_PERIAPSIS_ALT_M
        ra = MARS_RADIUS_M + PARKING_APOAPSIS_ALT_M
        e = (ra - rp) / (ra + rp)
        state = conic_state(rp, e, math.radians(true_anomaly_deg), 0.0)
        self._reset_vehicle(Phase.ORBIT, state, self.params.parking_mass_kg)
        self.moi_ignition_time_s = None

    def place_at_entry_interface(self) -> None:
        """The separated capsule at the entry interface (125 km, 4.8 km/s, entry_flight_path_deg).

        Placed ``entry_range_to_site_m`` short of the landing site along the ground track, so a
        nominal descent ends near the site (``Truth.site_offset_m`` near 0).
        """
        p = self.params
        angle = -p.entry_range_to_site_m / MARS_RADIUS_M
        state = state_at(p.entry_altitude_m, p.entry_speed_mps, p.entry_flight_path_deg, angle)
        self._reset_vehicle(Phase.ENTRY, state, p.entry_mass_kg)

    def place_on_surface(self) -> None:
        """Landed at the site after a nominal descent, rover still aboard.

        ``Truth.touchdown`` stays None: no contact was simulated.
        """
        self._reset_vehicle(Phase.LANDED, state_at(0.0, 0.0, 0.0, 0.0), self.params.surface_mass_kg)
        self._descent_prop = 0.4 * self.params.descent_propellant_kg
        self._chute = True

    # --- actuators ----------------------------------------------------------------------------
    def set_actuators(
        self,
        *,
        main_engine: bool = False,
        parachute: bool = False,
        heatshield_release: bool = False,
        backshell_sep: bool = False,
        descent_throttle: float = 0.0,
        lateral_cmd: float = 0.0,
        rover_release: bool = False,
    ) -> None:
        """Apply the actuator outputs; pyro-like events latch on their first True.

        Engines are levels: they stay as set until the next call. The throttle is clamped to 0..1
        and the lateral command to -1..1.

        Raises:
            ValueError: a non-finite throttle or lateral command.
        """
        if not (math.isfinite(descent_throttle) and math.isfinite(lateral_cmd)):
            raise ValueError(
                f"actuator levels must be finite: throttle {descent_throttle},"
                f" lateral {lateral_cmd}"
            )
        self._main_engine = bool(main_engine)
        self._throttle = min(1.0, max(0.0, descent_throttle))
        self._lateral = min(1.0, max(-1.0, lateral_cmd))
        if parachute and not self._chute:
            self._deploy_parachute()
        if heatshield_release and not self._heatshield_gone:
            self._heatshield_gone = True
            self._dyn.mass_kg -= self.params.heatshield_mass_kg
            self._event(f"heat shield jettisoned at Mach {self._mach():.2f}")
        if backshell_sep and not self._backshell_gone:
            self._backshell_gone = True
            self._dyn.mass_kg -= self.params.backshell_mass_kg
            if self.phase in (Phase.ENTRY, Phase.PARACHUTE):
                self.phase = Phase.POWERED
            self._event(f"backshell separated at {self._dyn.altitude_m:.0f} m")
        if rover_release and not self._rover_released:
            self._rover_released = True
            self._dyn.mass_kg -= ROVER_MASS_KG
            where = "on the surface" if self.phase == Phase.LANDED else "IN FLIGHT"
            self._event(f"rover released {where}")

    def _deploy_parachute(self) -> None:
        self._chute = True
        self._chute_time = self.time
        mach, q = self._mach(), self._dynamic_pressure()
        if self.phase not in (Phase.ENTRY, Phase.PARACHUTE):
            self._event(f"parachute fired outside entry ({self.phase}): no effect")
            return
        self.phase = Phase.PARACHUTE
        p = self.params
        self._chute_failed = mach > p.parachute_max_mach or q > p.parachute_max_q_pa
        verdict = "FAILED" if self._chute_failed else "deployed"
        self._event(f"parachute {verdict} at Mach {mach:.2f}, q {q:.0f} Pa")

    def _event(self, text: str) -> None:
        if len(self.events) < 1000:
            self.events.append((self.time, text))

    # --- integration --------------------------------------------------------------------------
    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds, then refresh the sensors' environment.

        Raises:
            ValueError: ``dt`` negative or not finite.
        """
        if not (math.isfinite(dt) and dt >= 0.0):
            raise ValueError(f"step needs a finite dt >= 0, got {dt}")
        angle0 = self._dyn.body_angle_rad
        if self.phase == Phase.LANDED or dt == 0.0:
            self.time += dt
        else:
            n = max(1, math.ceil(dt / self._max_substep() - 1e-9))
            h = dt / n
            for i in range(n):
                if self._substep(h):  # touched down: the rest of dt passes on the ground
                    self.time += h * (n - 1 - i)
                    break
        self._update_specific_force()
        turned = (self._dyn.body_angle_rad - angle0 + math.pi) % (2.0 * math.pi) - math.pi
        self._pitch_rate_dps = math.degrees(turned) / dt if dt > 0.0 else 0.0
        self._update_sensors(dt)
        if self.time >= self._next_history:
            self.history.append(self.truth)
            self._next_history = self.time + self.params.history_interval_s

    def _max_substep(self) -> float:
        d = self._dyn
        r = math.hypot(d.x, d.y)
        if r - MARS_RADIUS_M < ATMOSPHERE_TOP_M:
            return 0.05
        if self._main_engine:
            return 0.5
        return min(60.0, 0.005 * r * math.sqrt(r / GM))

    def _target_attitude(self) -> float:
        d = self._dyn
        if self.phase in (Phase.POWERED, Phase.LANDED) or d.vx * d.vx + d.vy * d.vy < 1.0:
            return math.atan2(d.y, d.x)  # +z up
        return math.atan2(-d.vy, -d.vx)  # +z against the velocity

    def _substep(self, h: float) -> bool:
        """One integration step; True if it ended in touchdown."""
        p, d, phase = self.params, self._dyn, self.phase
        # Attitude: slew towards the target, rate-limited.
        error = (self._target_attitude() - d.body_angle_rad + math.pi) % (2.0 * math.pi) - math.pi
        limit = math.radians(p.max_slew_dps) * h
        d.body_angle_rad += max(-limit, min(limit, error))
        thrust = lateral = flow = 0.0
        if phase in (Phase.CRUISE, Phase.ORBIT):
            d.cda_m2, d.lift_ratio = 20.0, 0.0
            if self._main_engine and self._main_prop > 0.0:
                thrust = p.main_thrust_n
                flow = thrust / (p.main_isp_s * STANDARD_GRAVITY)
                self._main_prop -= flow * h
        else:
            d.cda_m2, d.lift_ratio = self._aero_config()
            if phase == Phase.POWERED and self._heatshield_gone and self._descent_prop > 0.0:
                thrust = self._throttle * p.descent_max_thrust_n
                lateral = self._lateral * p.lateral_thrust_n
                flow = thrust / (p.descent_isp_s * STANDARD_GRAVITY)
                flow += abs(lateral) / (p.lateral_isp_s * STANDARD_GRAVITY)
                self._descent_prop -= flow * h
        d.thrust_n, d.lateral_n = thrust, lateral
        d.advance(h)
        d.mass_kg -= flow * h
        self.time += h
        if d.x * d.x + d.y * d.y <= MARS_RADIUS_M * MARS_RADIUS_M:
            self._touch_down()
            return True
        return False

    def _aero_config(self) -> tuple[float, float]:
        """(drag area, in-plane L/D) of the EDL vehicle as it is now configured."""
        p = self.params
        capsule = self._capsule_cda
        if self._backshell_gone:
            cda = p.lander_cda_m2 + (0.0 if self._heatshield_gone else capsule)
            return cda, 0.0
        if self._heatshield_gone:
            capsule *= p.capsule_cd_factor_no_heatshield
        if not self._chute:
            if self._heatshield_gone:
                return capsule, 0.0
            return capsule, p.lift_to_drag * math.cos(self._bank_rad())
        if self._chute_failed:
            return capsule, 0.0
        opened = min(1.0, ((self.time - self._chute_time) / p.parachute_inflation_s) ** 2)
        return capsule + opened * p.parachute_cd * p.parachute_area_m2, 0.0

    def _bank_rad(self) -> float:
        p = self.params
        late = self._dyn.speed_mps < p.bank_switch_speed_mps
        return math.radians(p.bank_final_deg if late else p.bank_deg)

    def _touch_down(self) -> None:
        d, p = self._dyn, self.params
        vertical, horizontal = d.vertical_horizontal()
        survived = (
            -vertical <= p.touchdown_max_vertical_mps
            and abs(horizontal) <= p.touchdown_max_horizontal_mps
            and self._backshell_gone
        )
        self._touchdown = Touchdown(self.time, abs(vertical), abs(horizontal), survived)
        self._event(
            f"touchdown at {abs(vertical):.2f} m/s vertical, {abs(horizontal):.2f} m/s horizontal"
            + ("" if survived else ": VEHICLE LOST")
        )
        angle = d.angle_rad
        d.set_state((MARS_RADIUS_M * math.cos(angle), MARS_RADIUS_M * math.sin(angle), 0.0, 0.0))
        d.body_angle_rad = angle
        self.phase = Phase.LANDED

    def _update_specific_force(self) -> None:
        d = self._dyn
        if self.phase == Phase.LANDED:
            self._sf = (0.0, 0.0, MARS_G0)
            return
        fx, fy = d.specific_force()
        c, s = math.cos(d.body_angle_rad), math.sin(d.body_angle_rad)
        out_of_plane = 0.0
        if d.lift_ratio > 0.0:  # the banked part of the lift leaves the plane
            q_over_m = self._dynamic_pressure() * d.cda_m2 / d.mass_kg
            out_of_plane = self.params.lift_to_drag * math.sin(self._bank_rad())
            out_of_plane *= q_over_m
        self._sf = (fy * c - fx * s, out_of_plane, fx * c + fy * s)

    # --- sensors ------------------------------------------------------------------------------
    def _update_sensors(self, dt: float) -> None:
        p, env, gauss = self.params, self.env, self._rng.gauss
        ax, ay, az = self._sf
        mag = math.sqrt(ax * ax + ay * ay + az * az)
        if self.phase != Phase.LANDED and mag / STANDARD_GRAVITY > self._peak_g:
            self._peak_g = mag / STANDARD_GRAVITY
        self._delta_v += mag * dt if self.phase != Phase.LANDED else 0.0
        sa = p.sigma_accel_mps2
        env.acceleration_mps2 = (ax + gauss(0.0, sa), ay + gauss(0.0, sa), az + gauss(0.0, sa))
        sg = p.sigma_gyro_dps
        env.angular_rate_dps = (
            gauss(0.0, sg),
            self._pitch_rate_dps + gauss(0.0, sg),
            gauss(0.0, sg),
        )
        altitude = self._dyn.altitude_m if self.phase != Phase.LANDED else 0.0
        env.pressure_pa = max(0.0, atmosphere.pressure(altitude) + gauss(0.0, p.sigma_pressure_pa))
        if altitude <= p.range_max_m:
            sigma = p.sigma_range_m + p.sigma_range_frac * altitude
            env.range_m = max(0.0, altitude + gauss(0.0, sigma))
            env.range_strength = 2000
        else:
            env.range_m = None
            env.range_strength = 0
        if self.time >= self._next_slow:
            self._update_slow(altitude)

    def _update_slow(self, altitude: float) -> None:
        """Quantities that change slowly: field, temperatures, power (at most 10 times a second)."""
        p, env, gauss = self.params, self.env, self._rng.gauss
        elapsed = self.time - self._last_slow
        self._last_slow = self.time
        self._next_slow = self.time + 0.1
        lat, lon, basis = self._geography()
        lst = (p.local_solar_hour_at_t0 + 24.0 * self.time / SOL_S) % 24.0
        sun_lon = LANDING_SITE_LON_DEG + 15.0 * (12.0 - lst)
        sun_lat = math.radians(p.subsolar_lat_deg)
        cos_sza = math.sin(math.radians(lat)) * math.sin(sun_lat) + math.cos(
            math.radians(lat)
        ) * math.cos(sun_lat) * math.cos(math.radians(lon - sun_lon))
        # Magnetic field, rotated from (north, east, up) into body axes.
        if self._dyn.radius_m > 20.0 * MARS_RADIUS_M:
            b_body = (2e-9, -2e-9, 1e-9)  # interplanetary field
        else:
            b_n, b_e, b_u = magnetic.field_local(
                lat, lon, altitude, subsolar_lat_deg=p.subsolar_lat_deg, subsolar_lon_deg=sun_lon
            )
            north, east, up, track, left = basis
            b = _combine(1.0, _combine(b_n, north, b_e, east), b_u, up)
            b_r, b_t, b_left = _dot(b, up), _dot(b, track), _dot(b, left)
            # Plane axes: radial (r_hat), downrange (t_hat); body +z at body_angle - position angle.
            rel = self._dyn.body_angle_rad - self._dyn.angle_rad
            c, s = math.cos(rel), math.sin(rel)
            b_body = (b_t * c - b_r * s, b_left, b_r * c + b_t * s)
        sm = p.sigma_mag_t
        env.magnetic_field_t = (
            b_body[0] + gauss(0.0, sm),
            b_body[1] + gauss(0.0, sm),
            b_body[2] + gauss(0.0, sm),
        )
        # Temperatures: equipment follows a slow first-order lag towards a phase-dependent value.
        landed = self.phase == Phase.LANDED
        target = (
            30.0 if self.phase in _IN_EDL else (5.0 + 15.0 * max(0.0, cos_sza) if landed else 20.0)
        )
        self._imu_temp += (target - self._imu_temp) * min(1.0, elapsed / 600.0)
        env.imu_temperature_c = self._imu_temp + gauss(0.0, p.sigma_temperature_c)
        env.lidar_temperature_c = self._imu_temp + 5.0 + gauss(0.0, p.sigma_temperature_c)
        if altitude < ATMOSPHERE_TOP_M:
            air = atmosphere.temperature(altitude) - 273.15
            air += 25.0 * max(0.0, 1.0 - altitude / 2000.0) * max(-0.6, cos_sza)  # diurnal swing
        else:
            air = self._imu_temp
        env.temperature_c = air + gauss(0.0, p.sigma_temperature_c)
        env.humidity_pct = 0.0
        # Power: battery with internal resistance, charged by the arrays.
        if self.phase in _IN_EDL:
            load, solar = p.load_a[1], 0.0
        elif landed:
            load, solar = p.load_a[2], p.solar_surface_peak_a * max(0.0, cos_sza)
        else:
            load, solar = p.load_a[0], p.solar_stack_a
        valves = int(self._main_engine) + int(self._throttle > 0.0) + int(self._lateral != 0.0)
        current = load + p.valve_load_a * valves - solar
        if current < 0.0 and self._soc >= 1.0:
            current = 0.0  # full: the charger curtails the arrays
        self._soc = min(
            1.0, max(0.0, self._soc - current * elapsed / 3600.0 / p.battery_capacity_ah)
        )
        ocv = p.battery_v_empty + (p.battery_v_full - p.battery_v_empty) * self._soc
        env.bus_voltage_v = max(
            0.0, ocv - current * p.battery_r_ohm + gauss(0.0, p.sigma_voltage_v)
        )
        env.current_a = current + gauss(0.0, p.sigma_current_a)

    def _ground_track(self) -> None:
        """The great circle the trajectory plane cuts through the surface, anchored at the site."""
        lat0, lon0 = math.radians(LANDING_SITE_LAT_DEG), math.radians(LANDING_SITE_LON_DEG)
        az = math.radians(self.params.ground_track_azimuth_deg)
        p0 = (math.cos(lat0) * math.cos(lon0), math.cos(lat0) * math.sin(lon0), math.sin(lat0))
        n0 = (-math.sin(lat0) * math.cos(lon0), -math.sin(lat0) * math.sin(lon0), math.cos(lat0))
        e0 = (-math.sin(lon0), math.cos(lon0), 0.0)
        self._gc = (p0, _combine(math.cos(az), n0, math.sin(az), e0))

    def _geography(self) -> tuple[float, float, tuple[Vec3, Vec3, Vec3, Vec3, Vec3]]:
        """(lat, lon, (north, east, up, track, left)) under the vehicle; the site is at angle 0."""
        p0, t0 = self._gc
        s = self._dyn.angle_rad
        cs, sn = math.cos(s), math.sin(s)
        up = _combine(cs, p0, sn, t0)
        track = _combine(-sn, p0, cs, t0)
        left = (
            up[1] * track[2] - up[2] * track[1],
            up[2] * track[0] - up[0] * track[2],
            up[0] * track[1] - up[1] * track[0],
        )
        lat = math.asin(max(-1.0, min(1.0, up[2])))
        lon = math.atan2(up[1], up[0])
        north = (-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon), math.cos(lat))
        east = (-math.sin(lon), math.cos(lon), 0.0)
        return math.degrees(lat), math.degrees(lon) % 360.0, (north, east, up, track, left)

    # --- truth --------------------------------------------------------------------------------
    def _mach(self) -> float:
        return atmosphere.mach(self._dyn.speed_mps, self._dyn.altitude_m)

    def _dynamic_pressure(self) -> float:
        return 0.5 * atmosphere.density(self._dyn.altitude_m) * self._dyn.speed_mps**2

    def orbit(self) -> OrbitElements:
        """The current osculating orbit (meaningful above the atmosphere)."""
        return orbit_elements(self._dyn.state)

    @property
    def truth(self) -> Truth:
        d = self._dyn
        vertical, horizontal = d.vertical_horizontal()
        speed = d.speed_mps
        ax, ay, az = self._sf
        lat, lon, _ = self._geography()
        return Truth(
            time_s=self.time,
            phase=self.phase,
            altitude_m=d.altitude_m,
            downrange_m=MARS_RADIUS_M * (d.angle_rad - self._place_angle),
            site_offset_m=MARS_RADIUS_M * d.angle_rad,
            latitude_deg=lat,
            longitude_deg=lon,
            speed_mps=speed,
            vertical_speed_mps=vertical,
            horizontal_speed_mps=horizontal,
            flight_path_deg=math.degrees(math.atan2(vertical, horizontal)) if speed > 0 else 0.0,
            mach=self._mach(),
            dynamic_pressure_pa=self._dynamic_pressure(),
            deceleration_g=math.sqrt(ax * ax + ay * ay + az * az) / STANDARD_GRAVITY,
            peak_deceleration_g=self._peak_g,
            mass_kg=d.mass_kg,
            descent_propellant_kg=self._descent_prop,
            main_propellant_kg=self._main_prop,
            sensed_delta_v_mps=self._delta_v,
            main_engine_on=self._main_engine,
            descent_throttle=self._throttle,
            lateral_cmd=self._lateral,
            parachute_deployed=self._chute,
            parachute_failed=self._chute_failed,
            heatshield_jettisoned=self._heatshield_gone,
            backshell_separated=self._backshell_gone,
            rover_released=self._rover_released,
            landed=self.phase == Phase.LANDED,
            entry_time_s=self._entry_time,
            touchdown=self._touchdown,
            battery_soc=self._soc,
        )
