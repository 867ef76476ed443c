"""Planar point-mass dynamics: two-body accuracy, conics, thrust, drag and lift."""

from __future__ import annotations

import math

import pytest

from flight.missions.mars.constants import GM, MARS_RADIUS_M, SOL_S
from flight.missions.mars.sim.dynamics import (
    PlanarDynamics,
    conic_state,
    hyperbolic_true_anomaly,
    orbit_elements,
    state_at,
)


def _circular(altitude_m):
    r = MARS_RADIUS_M + altitude_m
    return (r, 0.0, 0.0, math.sqrt(GM / r))


def test_rk4_keeps_a_circular_orbit_closed_for_one_period():
    altitude = 400_000.0
    dyn = PlanarDynamics(_circular(altitude), mass_kg=1000.0)
    start = orbit_elements(dyn.state)
    period = start.period_s
    steps = 1000
    for _ in range(steps):
        dyn.advance(period / steps)
    assert dyn.altitude_m == pytest.approx(altitude, abs=1.0)
    assert dyn.x == pytest.approx(MARS_RADIUS_M + altitude, abs=50.0)  # back where it started
    assert orbit_elements(dyn.state).energy_j_per_kg == pytest.approx(
        start.energy_j_per_kg, rel=1e-9
    )


def test_parking_orbit_elements_round_trip():
    rp, ra = MARS_RADIUS_M + 280_000.0, MARS_RADIUS_M + 59_000_000.0
    e = (ra - rp) / (ra + rp)
    for nu in (0.0, 1.0, math.pi, 4.0):
        elements = orbit_elements(conic_state(rp, e, nu, 0.3))
        assert elements.periapsis_alt_m == pytest.approx(280_000.0, abs=1.0)
        assert elements.apoapsis_alt_m == pytest.approx(59_000_000.0, rel=1e-9)
        assert elements.bound
    assert elements.period_s / SOL_S == pytest.approx(2.05, abs=0.05)  # "about 2 sols"


def test_hyperbola_is_unbound_and_placed_by_time():
    rp, v_inf = MARS_RADIUS_M + 400_000.0, 2400.0
    nu0, e = hyperbolic_true_anomaly(0.0, rp, v_inf)
    assert nu0 == 0.0
    assert e > 1.0
    before, _ = hyperbolic_true_anomaly(-3600.0, rp, v_inf)
    after, _ = hyperbolic_true_anomaly(3600.0, rp, v_inf)
    assert before == pytest.approx(-after)
    elements = orbit_elements(conic_state(rp, e, before, 0.0))
    assert not elements.bound
    assert elements.period_s == math.inf
    assert math.sqrt(2.0 * elements.energy_j_per_kg) == pytest.approx(v_inf, rel=1e-9)
    assert elements.periapsis_alt_m == pytest.approx(400_000.0, abs=1.0)


def test_hyperbola_time_of_flight_matches_integration():
    rp, v_inf = MARS_RADIUS_M + 400_000.0, 2400.0
    nu, e = hyperbolic_true_anomaly(-1200.0, rp, v_inf)
    dyn = PlanarDynamics(conic_state(rp, e, nu, 0.0))
    for _ in range(1200):
        dyn.advance(1.0)
    assert dyn.altitude_m == pytest.approx(400_000.0, abs=50.0)  # at periapsis 1200 s later
    assert dyn.y == pytest.approx(0.0, abs=2000.0)


def test_hyperbola_needs_a_positive_excess_speed():
    with pytest.raises(ValueError, match="v_inf"):
        hyperbolic_true_anomaly(0.0, MARS_RADIUS_M, 0.0)


def test_orbit_elements_of_the_centre_do_not_raise():
    assert math.isnan(orbit_elements((0.0, 0.0, 1.0, 0.0)).eccentricity)


def test_state_at_gives_altitude_speed_and_flight_path():
    dyn = PlanarDynamics(state_at(125_000.0, 4800.0, -11.0, 0.7))
    vertical, horizontal = dyn.vertical_horizontal()
    assert dyn.altitude_m == pytest.approx(125_000.0)
    assert dyn.speed_mps == pytest.approx(4800.0)
    assert math.degrees(math.atan2(vertical, horizontal)) == pytest.approx(-11.0)
    assert dyn.angle_rad == pytest.approx(0.7)


def test_thrust_along_body_z_adds_t_over_m_of_speed():
    far = (1e12, 0.0, 0.0, 0.0)  # gravity ~4e-11 m/s^2: free space
    dyn = PlanarDynamics(far, mass_kg=5000.0)
    dyn.thrust_n = 3000.0
    dyn.body_angle_rad = math.pi / 2  # +z along +Y
    for _ in range(100):
        dyn.advance(1.0)
    assert dyn.vy == pytest.approx(60.0, rel=1e-6)
    assert dyn.vx == pytest.approx(0.0, abs=1e-6)
    assert dyn.specific_force() == pytest.approx((0.0, 0.6))


def test_lateral_force_is_body_z_turned_counter_clockwise():
    dyn = PlanarDynamics((1e12, 0.0, 0.0, 0.0), mass_kg=100.0)
    dyn.lateral_n = 100.0
    dyn.body_angle_rad = 0.0  # +z along +X, so +x along +Y
    assert dyn.specific_force() == pytest.approx((0.0, 1.0))


def test_coasting_senses_no_force():
    dyn = PlanarDynamics(_circular(400_000.0), mass_kg=1000.0)
    dyn.cda_m2 = 10.0  # no air at 400 km
    assert dyn.specific_force() == (0.0, 0.0)


def test_drag_opposes_velocity_and_lift_points_away_from_the_planet():
    state = state_at(30_000.0, 3000.0, 0.0, 0.0)  # horizontal flight over +X, moving +Y
    dyn = PlanarDynamics(state, mass_kg=1300.0)
    dyn.cda_m2 = 8.5
    fx, fy = dyn.specific_force()
    assert fy < 0.0  # drag against +Y motion
    assert fx == pytest.approx(0.0, abs=1e-12)
    dyn.lift_ratio = 0.24
    lx, ly = dyn.specific_force()
    assert ly == pytest.approx(fy)
    assert lx == pytest.approx(-0.24 * fy)  # up (+X), a quarter of the drag


def test_lift_up_holds_the_vehicle_higher():
    def altitude_after(lift_ratio):
        dyn = PlanarDynamics(state_at(60_000.0, 4000.0, -10.0, 0.0), mass_kg=1300.0)
        dyn.cda_m2, dyn.lift_ratio = 8.5, lift_ratio
        for _ in range(300):
            dyn.advance(0.1)
        return dyn.altitude_m

    assert altitude_after(0.24) > altitude_after(0.0) > altitude_after(-0.24)
