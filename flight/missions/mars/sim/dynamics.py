"""Point-mass flight dynamics in the trajectory plane: gravity, drag, lift and thrust.

The vehicle moves in a plane through the centre of Mars (inertial X, Y; motion counter-clockwise,
so the angular momentum points along +Z). Mars does not rotate here and the atmosphere is at rest
in this frame, so the inertial velocity is also the air-relative velocity; a planar point mass is
enough for orbit insertion (a coplanar burn) and for a lifting entry flown lift-up, whose bank
only scales the in-plane lift.

Forces, held constant over one integration step except where they depend on the state:

* gravity -GM r / |r|^3;
* drag 0.5 rho v^2 CdA against the velocity, and lift (L/D times drag) along the velocity turned
  90 degrees away from the planet (``lift_ratio`` is the in-plane L/D, that is L/D cos(bank));
* thrust along the body +z axis and a lateral force along body +x, where the body +z axis points
  at ``body_angle_rad`` in the plane and body +x is +z turned 90 degrees counter-clockwise (for a
  vertical lander: +z up, +x downrange).

:class:`PlanarDynamics` integrates with a fixed-step classical Runge-Kutta (deterministic, fourth
order); the environment chooses the step. Nothing here raises: inputs are the environment's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flight.missions.mars.constants import ATMOSPHERE_TOP_M, GM, MARS_RADIUS_M
from flight.missions.mars.sim.atmosphere import density

__all__ = [
    "OrbitElements",
    "PlanarDynamics",
    "conic_state",
    "hyperbolic_true_anomaly",
    "orbit_elements",
    "state_at",
]

State = tuple[float, float, float, float]  # x, y, vx, vy (m, m/s)


class PlanarDynamics:
    """The vehicle's planar state and the force inputs for the next step.

    Attributes set by the caller before :meth:`advance`: ``mass_kg``, ``cda_m2`` (drag area of all
    bodies together), ``lift_ratio``, ``thrust_n`` (body +z), ``lateral_n`` (body +x) and
    ``body_angle_rad``.
    """

    __slots__ = (
        "_tx",
        "_ty",
        "body_angle_rad",
        "cda_m2",
        "lateral_n",
        "lift_ratio",
        "mass_kg",
        "thrust_n",
        "vx",
        "vy",
        "x",
        "y",
    )

    def __init__(self, state: State = (MARS_RADIUS_M, 0.0, 0.0, 0.0), mass_kg: float = 1.0) -> None:
        self.x, self.y, self.vx, self.vy = state
        self.mass_kg = mass_kg
        self.cda_m2 = 0.0
        self.lift_ratio = 0.0
        self.thrust_n = 0.0
        self.lateral_n = 0.0
        self.body_angle_rad = 0.0
        self._tx = 0.0
        self._ty = 0.0

    @property
    def state(self) -> State:
        return (self.x, self.y, self.vx, self.vy)

    def set_state(self, state: State) -> None:
        self.x, self.y, self.vx, self.vy = state

    def _prepare(self) -> None:
        """Thrust acceleration vector for this step (the body angle is held over a step)."""
        c = math.cos(self.body_angle_rad)
        s = math.sin(self.body_angle_rad)
        inv_m = 1.0 / self.mass_kg
        a_axial = self.thrust_n * inv_m
        a_lateral = self.lateral_n * inv_m
        self._tx = a_axial * c - a_lateral * s
        self._ty = a_axial * s + a_lateral * c

    def _aero(self, x: float, y: float, vx: float, vy: float) -> tuple[float, float]:
        """Aerodynamic acceleration (drag + lift) at a state."""
        if self.cda_m2 <= 0.0:
            return 0.0, 0.0
        altitude = math.sqrt(x * x + y * y) - MARS_RADIUS_M
        if altitude >= ATMOSPHERE_TOP_M:
            return 0.0, 0.0
        k = 0.5 * density(altitude) * math.sqrt(vx * vx + vy * vy) * self.cda_m2 / self.mass_kg
        lr = self.lift_ratio
        return -k * (vx - lr * vy), -k * (vy + lr * vx)

    def _deriv(self, x: float, y: float, vx: float, vy: float) -> tuple[float, float]:
        r2 = x * x + y * y
        g = -GM / (r2 * math.sqrt(r2))
        ax, ay = self._aero(x, y, vx, vy)
        return g * x + ax + self._tx, g * y + ay + self._ty

    def advance(self, h: float) -> None:
        """One fixed RK4 step of ``h`` seconds with the current force inputs."""
        self._prepare()
        x, y, vx, vy = self.x, self.y, self.vx, self.vy
        d = self._deriv
        a1x, a1y = d(x, y, vx, vy)
        hh = 0.5 * h
        v2x, v2y = vx + hh * a1x, vy + hh * a1y
        a2x, a2y = d(x + hh * vx, y + hh * vy, v2x, v2y)
        v3x, v3y = vx + hh * a2x, vy + hh * a2y
        a3x, a3y = d(x + hh * v2x, y + hh * v2y, v3x, v3y)
        v4x, v4y = vx + h * a3x, vy + h * a3y
        a4x, a4y = d(x + h * v3x, y + h * v3y, v4x, v4y)
        h6 = h / 6.0
        self.x = x + h6 * (vx + 2.0 * (v2x + v3x) + v4x)
        self.y = y + h6 * (vy + 2.0 * (v2y + v3y) + v4y)
        self.vx = vx + h6 * (a1x + 2.0 * (a2x + a3x) + a4x)
        self.vy = vy + h6 * (a1y + 2.0 * (a2y + a3y) + a4y)

    def specific_force(self) -> tuple[float, float]:
        """What an accelerometer senses now (aero + thrust, no gravity), inertial X/Y in m/s^2."""
        self._prepare()
        ax, ay = self._aero(self.x, self.y, self.vx, self.vy)
        return ax + self._tx, ay + self._ty

    # --- derived quantities -----------------------------------------------------------------------
    @property
    def radius_m(self) -> float:
        return math.hypot(self.x, self.y)

    @property
    def altitude_m(self) -> float:
        return math.hypot(self.x, self.y) - MARS_RADIUS_M

    @property
    def speed_mps(self) -> float:
        return math.hypot(self.vx, self.vy)

    @property
    def angle_rad(self) -> float:
        """Polar angle of the position in the plane (downrange angle, counter-clockwise)."""
        return math.atan2(self.y, self.x)

    def vertical_horizontal(self) -> tuple[float, float]:
        """(radial speed, positive up; horizontal speed, positive downrange) in m/s."""
        r = math.hypot(self.x, self.y)
        ux, uy = self.x / r, self.y / r
        return self.vx * ux + self.vy * uy, self.vy * ux - self.vx * uy


# --- orbits ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrbitElements:
    """The osculating two-body conic of a state (altitudes above the mean radius)."""

    energy_j_per_kg: float
    eccentricity: float
    periapsis_alt_m: float
    apoapsis_alt_m: float  # inf when unbound
    period_s: float  # inf when unbound

    @property
    def bound(self) -> bool:
        return self.energy_j_per_kg < 0.0


def orbit_elements(state: State) -> OrbitElements:
    """Two-body elements of a planar state (gravity only: useful above the atmosphere).

    A state exactly at the centre of Mars has no orbit: its elements come out as NaN/inf rather
    than raising.
    """
    x, y, vx, vy = state
    r = math.hypot(x, y)
    if r <= 0.0:
        return OrbitElements(-math.inf, math.nan, math.nan, math.nan, math.nan)
    v2 = vx * vx + vy * vy
    energy = 0.5 * v2 - GM / r
    h = x * vy - y * vx
    e = math.sqrt(max(0.0, 1.0 + 2.0 * energy * h * h / (GM * GM)))
    p = h * h / GM
    rp = p / (1.0 + e)
    if energy < 0.0 and e < 1.0:
        ra = p / (1.0 - e)
        a = -GM / (2.0 * energy)
        period = 2.0 * math.pi * math.sqrt(a * a * a / GM)
    else:
        ra = math.inf
        period = math.inf
    return OrbitElements(energy, e, rp - MARS_RADIUS_M, ra - MARS_RADIUS_M, period)


def state_at(
    altitude_m: float, speed_mps: float, flight_path_deg: float, angle_rad: float
) -> State:
    """State at a polar angle with a speed and a flight-path angle (negative: descending)."""
    r = MARS_RADIUS_M + altitude_m
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    gamma = math.radians(flight_path_deg)
    v_up = speed_mps * math.sin(gamma)
    v_down_range = speed_mps * math.cos(gamma)
    return (r * c, r * s, v_up * c - v_down_range * s, v_up * s + v_down_range * c)


def conic_state(
    periapsis_radius_m: float,
    eccentricity: float,
    true_anomaly_rad: float,
    periapsis_angle_rad: float,
) -> State:
    """State on a conic (ellipse or hyperbola) at a true anomaly, moving counter-clockwise."""
    p = periapsis_radius_m * (1.0 + eccentricity)
    r = p / (1.0 + eccentricity * math.cos(true_anomaly_rad))
    k = math.sqrt(GM / p)
    v_radial = k * eccentricity * math.sin(true_anomaly_rad)
    v_tangential = k * (1.0 + eccentricity * math.cos(true_anomaly_rad))
    theta = periapsis_angle_rad + true_anomaly_rad
    c, s = math.cos(theta), math.sin(theta)
    return (r * c, r * s, v_radial * c - v_tangential * s, v_radial * s + v_tangential * c)


def hyperbolic_true_anomaly(
    time_from_periapsis_s: float, periapsis_radius_m: float, v_inf_mps: float
) -> tuple[float, float]:
    """(true anomaly, eccentricity) on a hyperbola ``time_from_periapsis_s`` after periapsis.

    Negative times are before periapsis. Solves Kepler's hyperbolic equation by Newton's method.

    Raises:
        ValueError: for a non-positive ``v_inf_mps`` (not a hyperbola).
    """
    if not v_inf_mps > 0.0:
        raise ValueError(f"hyperbola needs a positive v_inf, got {v_inf_mps}")
    a = GM / (v_inf_mps * v_inf_mps)  # |semi-major axis|
    e = 1.0 + periapsis_radius_m / a
    mean = time_from_periapsis_s * math.sqrt(GM / (a * a * a))
    f = math.asinh(mean / e)
    for _ in range(50):
        step = (e * math.sinh(f) - f - mean) / (e * math.cosh(f) - 1.0)
        f -= step
        if abs(step) < 1e-13:
            break
    nu = 2.0 * math.atan(math.sqrt((e + 1.0) / (e - 1.0)) * math.tanh(0.5 * f))
    return nu, e
