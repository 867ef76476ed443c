"""Onboard guidance, navigation and control for the Mars lander: what the flight software knows.

Everything here is computed from device readings in the data pool, never from the simulator's
truth: the IMU's specific force, the radar altimeter's and LiDAR's ranges, the barometer's
pressure. The simulator checks afterwards how well these estimates matched reality.

Body frame (the IMU's axes): +z along the capsule's symmetry axis, away from the heat shield, so
aerodynamic drag and engine thrust both read as +z specific force; +x is the lift direction.

* :class:`DeltaVMeter` integrates sensed acceleration during a burn: the orbit insertion burn
  ends when enough delta-v has been measured, not after a fixed time.
* :class:`EntryNavigator` dead-reckons speed, flight-path angle and altitude through entry from the
  entry state the ground uplinked, integrating sensed drag and lift with Mars gravity; it decides
  when the vehicle is at parachute-deploy speed.
* :class:`DescentNavigator` fuses the altimeters with the IMU into altitude and vertical speed.
* :class:`DescentController` turns a vertical-speed target into a throttle set-point (PI), to
  hover near 100 m and touch down slowly.
* :class:`FreezeWatch` tells a stuck IMU (the same sample over and over) from a live one. A
  frozen stretch is skipped, and the gap it leaves, like any gap in the IMU data, is bridged by
  interpolating between the samples either side wherever nothing else measures the quantity
  (entry speed, horizontal speed): integrating the frozen value for seconds at peak deceleration
  put the entry speed estimate 35 m/s out and the lander down sideways.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flight.missions.mars.constants import GM, MARS_G0, MARS_RADIUS_M

__all__ = [
    "MARS_GM",
    "MARS_RADIUS_M",
    "MARS_SURFACE_GRAVITY",
    "DeltaVMeter",
    "DescentController",
    "DescentNavigator",
    "EntryNavigator",
    "FreezeWatch",
    "altitude_from_pressure",
]

# The same constants the simulator's world uses: the flight software knows Mars as well as the
# simulator does; what it does not know is where it is.
MARS_SURFACE_GRAVITY = MARS_G0
MARS_GM = GM

#: Identical IMU samples in a row that mark its output as frozen. The accelerometer's noise spans
#: several counts, so all three axes repeating exactly happens about once in 10,000 samples and
#: four alike in a row about once in 10^12 (six centuries at 50 Hz), while a chip whose output
#: registers stopped updating repeats for as long as it is stuck. It assumes the chip samples at
#: least as fast as it is polled (100 Hz against 50 Hz with the reference configuration), or fresh
#: reads would repeat too.
FROZEN_SAMPLES = 4
#: The longest gap in the IMU data (frozen, or reads failing) that the navigators bridge; beyond it
#: they integrate only this long, as they have no better guess of what the vehicle did meanwhile.
MAX_BRIDGE_S = 10.0
#: Interpolation step across a gap. An ordinary sample interval (20 ms) is shorter and integrates
#: as one step with the new sample, exactly as without a gap.
BRIDGE_STEP_S = 0.1

Vector = tuple[float, float, float]


def _bridge(previous: Vector | None, current: Vector, gap_s: float) -> list[tuple[Vector, float]]:
    """(specific force, step) pairs that integrate a gap of ``gap_s`` ending at ``current``.

    The specific force is interpolated linearly from ``previous`` (``None``: unknown, so the
    current sample stands for the whole gap); the last step always uses ``current`` itself.
    """
    gap_s = min(gap_s, MAX_BRIDGE_S)
    steps = max(1, math.ceil(gap_s / BRIDGE_STEP_S - 1e-9))
    h = gap_s / steps
    if steps == 1 or previous is None:
        return [(current, h)] * steps
    (px, py, pz), (cx, cy, cz) = previous, current
    out: list[tuple[Vector, float]] = []
    for i in range(1, steps):
        f = i / steps
        out.append(((px + (cx - px) * f, py + (cy - py) * f, pz + (cz - pz) * f), h))
    out.append((current, h))
    return out


class FreezeWatch:
    """Whether a sensor's output has stopped changing (the part answers, but with old data)."""

    def __init__(self, repeats: int = FROZEN_SAMPLES) -> None:
        self.repeats = repeats
        self._last: tuple[float, ...] | None = None
        self._same = 0

    @property
    def frozen(self) -> bool:
        return self._same >= self.repeats

    def update(self, sample: tuple[float, ...]) -> bool:
        """Take a new sample; returns True while the output is frozen."""
        if sample == self._last:
            self._same += 1
        else:
            self._last, self._same = sample, 1
        return self.frozen


# Reference atmosphere for barometric backup altitude (NASA Glenn fit, reference/mars.md).
_P0_PA = 699.0
_P_SCALE_PER_M = 0.00009


def altitude_from_pressure(pressure_pa: float) -> float | None:
    """Altitude above the reference surface from static pressure (the EDL backup altimeter).

    Returns None for a non-positive pressure: nothing to invert.
    """
    if pressure_pa <= 0.0:
        return None
    return -math.log(pressure_pa / _P0_PA) / _P_SCALE_PER_M


class DeltaVMeter:
    """Accumulated |specific force| x dt over a burn, from successive IMU samples."""

    def __init__(self) -> None:
        self.delta_v = 0.0
        self._last_time: float | None = None

    def reset(self) -> None:
        self.delta_v = 0.0
        self._last_time = None

    def update(self, accel_mps2: tuple[float, float, float], time: float) -> float:
        """Add one IMU sample taken at ``time``; returns the accumulated delta-v (m/s)."""
        if self._last_time is not None and time > self._last_time:
            dt = min(time - self._last_time, 1.0)  # a gap longer than 1 s is not integrated blind
            self.delta_v += math.sqrt(sum(a * a for a in accel_mps2)) * dt
        self._last_time = time
        return self.delta_v


@dataclass
class EntryState:
    speed_mps: float
    flight_path_rad: float  # negative: descending
    altitude_m: float


class EntryNavigator:
    """Planar dead reckoning from the entry interface with sensed drag (+z) and lift (+x).

    Along-track: dv/dt = -D - g sin(gamma); cross-track: dgamma/dt = L/v + (v/r - g/v) cos(gamma);
    dh/dt = v sin(gamma), where D and L are the IMU's z and x specific force. Starting values come
    from the ground's navigation solution (parameters uplinked before separation).
    """

    def __init__(self, *, speed_mps: float, flight_path_deg: float, altitude_m: float) -> None:
        self.state = EntryState(speed_mps, math.radians(flight_path_deg), altitude_m)
        self._last_time: float | None = None
        self._last_accel: Vector | None = None

    def anchor(self, time: float) -> None:
        """Start integrating from ``time`` with no sample known there (resuming a saved state)."""
        self._last_time, self._last_accel = time, None

    def update(self, accel_mps2: Vector, time: float) -> EntryState:
        if self._last_time is None or time <= self._last_time:
            self._last_time, self._last_accel = time, accel_mps2
            return self.state
        gap = time - self._last_time
        previous, self._last_time, self._last_accel = self._last_accel, time, accel_mps2
        for accel, dt in _bridge(previous, accel_mps2, gap):
            self._step(accel, dt)
        return self.state

    def _step(self, accel_mps2: Vector, dt: float) -> None:
        s = self.state
        lift, _, drag = accel_mps2
        r = MARS_RADIUS_M + s.altitude_m
        g = MARS_GM / (r * r)
        v = max(s.speed_mps, 1.0)
        s.speed_mps = max(0.0, s.speed_mps + (-drag - g * math.sin(s.flight_path_rad)) * dt)
        s.flight_path_rad += (lift / v + (v / r - g / v) * math.cos(s.flight_path_rad)) * dt
        s.flight_path_rad = max(-math.pi / 2, min(math.pi / 2, s.flight_path_rad))
        s.altitude_m += v * math.sin(s.flight_path_rad) * dt


class DescentNavigator:
    """Altitude, vertical and horizontal speed from an altimeter blended with the IMU.

    Between altimeter samples the IMU propagates: dv_z = (a_z - g) dt and dv_x = a_x dt (the
    lander is upright under its engines). Each *new* altimeter sample pulls altitude and vertical
    speed towards the measurement with fixed gains (a complementary filter): cheap,
    deterministic, and robust to an altimeter that drops out for a while. Horizontal speed has no
    direct measurement; it starts from the entry navigator's estimate at backshell separation.
    """

    def __init__(self, *, altitude_gain: float = 0.2, velocity_gain: float = 0.1) -> None:
        self.altitude_m: float | None = None
        self.vertical_speed_mps = 0.0
        self.horizontal_speed_mps = 0.0
        self._alt_gain = altitude_gain
        self._vel_gain = velocity_gain
        self._last_imu: float | None = None
        self._last_accel: Vector | None = None
        self._last_alt: tuple[float, float] | None = None

    def propagate(self, accel_z_mps2: float, time: float, accel_x_mps2: float = 0.0) -> None:
        """Advance on an IMU sample taken at ``time``.

        Across a gap in the IMU data, horizontal speed (which nothing else measures) is bridged
        by interpolation; altitude and vertical speed are propagated over half a second at most,
        because the altimeters went on correcting them through the gap and bridging them too
        would count the descent twice.
        """
        current = (accel_x_mps2, 0.0, accel_z_mps2)
        if self._last_imu is not None and time > self._last_imu:
            gap = time - self._last_imu
            for (ax, _, _), dt in _bridge(self._last_accel, current, gap):
                self.horizontal_speed_mps += ax * dt
            if self.altitude_m is not None:
                dt = min(gap, 0.5)
                self.vertical_speed_mps += (accel_z_mps2 - MARS_SURFACE_GRAVITY) * dt
                self.altitude_m += self.vertical_speed_mps * dt
        self._last_imu, self._last_accel = time, current

    def measure(self, altitude_m: float, time: float) -> bool:
        """Blend in an altimeter sample taken at ``time``; a sample seen before is ignored
        (re-using it would read as zero vertical speed). Returns True if it was new."""
        if self._last_alt is not None and time <= self._last_alt[1]:
            return False
        if self.altitude_m is None or self._last_alt is None:
            self.altitude_m = altitude_m
            self._last_alt = (altitude_m, time)
            return True
        rate = (altitude_m - self._last_alt[0]) / (time - self._last_alt[1])
        self.vertical_speed_mps += self._vel_gain * (rate - self.vertical_speed_mps)
        self.altitude_m += self._alt_gain * (altitude_m - self.altitude_m)
        self._last_alt = (altitude_m, time)
        return True

    def age(self, time: float) -> float:
        """Seconds since the last altimeter measurement."""
        return math.inf if self._last_alt is None else time - self._last_alt[1]


class DescentController:
    """Vertical-speed PI controller producing a throttle fraction for the descent engine.

    Args:
        max_thrust_n: engine thrust at full throttle.
        mass_kg: the lander's mass at ignition (an estimate; the integral term absorbs the error
            and the propellant burned).
    """

    def __init__(
        self, *, max_thrust_n: float, mass_kg: float, kp: float = 0.6, ki: float = 0.08
    ) -> None:
        self.max_thrust_n = max_thrust_n
        self.mass_kg = mass_kg
        self.kp = kp
        self.ki = ki
        self._integral = 0.0
        self._last_time: float | None = None

    def throttle(self, target_vz: float, vz: float, time: float) -> float:
        """Throttle 0..1 that drives the vertical speed ``vz`` towards ``target_vz``."""
        dt = 0.0 if self._last_time is None else max(0.0, min(time - self._last_time, 0.5))
        self._last_time = time
        error = target_vz - vz
        accel_cmd = MARS_SURFACE_GRAVITY + self.kp * error + self._integral
        thrust = self.mass_kg * accel_cmd
        command = thrust / self.max_thrust_n
        saturated = (command >= 1.0 and error > 0) or (command <= 0.0 and error < 0)
        if not saturated:  # anti-windup: stop integrating against a saturated engine
            self._integral = max(-3.0, min(3.0, self._integral + self.ki * error * dt))
        return max(0.0, min(1.0, command))

    @staticmethod
    def lateral_command(horizontal_speed_mps: float) -> float:
        """Lateral thrust -1..1 that brings horizontal speed to zero (full thrust at 1 m/s)."""
        return max(-1.0, min(1.0, -horizontal_speed_mps))

    @staticmethod
    def target_speed(altitude_m: float, *, hover_altitude_m: float | None) -> float:
        """Vertical-speed profile: brake towards the hover altitude, or descend gently to touch.

        At most 1 m/s upward is commanded: a lander that climbs wastes propellant it lacks.
        """
        if hover_altitude_m is not None:
            return -max(-1.0, min(40.0, 0.12 * (altitude_m - hover_altitude_m)))
        return -max(0.8, min(12.0, 0.15 * altitude_m))
