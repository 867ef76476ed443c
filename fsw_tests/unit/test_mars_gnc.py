"""Onboard GNC of the Mars lander: pure estimators and controllers, tested without a simulator."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flight.missions.mars.gnc import (
    MARS_SURFACE_GRAVITY,
    DeltaVMeter,
    DescentController,
    DescentNavigator,
    EntryNavigator,
    altitude_from_pressure,
)
from flight.missions.mars.sim.atmosphere import pressure


def test_delta_v_is_the_integral_of_sensed_acceleration() -> None:
    meter = DeltaVMeter()
    for i in range(101):  # 1 s of 0.6 m/s^2 along x and 0.8 along z: |a| = 1.0
        meter.update((0.6, 0.0, 0.8), i * 0.01)
    assert meter.delta_v == pytest.approx(1.0)


def test_a_long_gap_in_imu_samples_is_not_integrated_blind() -> None:
    meter = DeltaVMeter()
    meter.update((0.0, 0.0, 10.0), 0.0)
    meter.update((0.0, 0.0, 10.0), 100.0)
    assert meter.delta_v == pytest.approx(10.0)  # at most one second counted


@given(st.floats(min_value=0.0, max_value=40_000.0))
def test_barometric_altitude_inverts_the_reference_atmosphere(altitude: float) -> None:
    # The backup altimeter uses the same exponential as the model below 40 km.
    estimate = altitude_from_pressure(pressure(altitude))
    assert estimate is not None
    assert estimate == pytest.approx(altitude, abs=1.0)


def test_no_altitude_from_no_pressure() -> None:
    assert altitude_from_pressure(0.0) is None


def test_the_descent_navigator_ignores_a_repeated_altimeter_sample() -> None:
    nav = DescentNavigator(velocity_gain=1.0)
    nav.measure(100.0, 0.0)
    assert nav.measure(90.0, 1.0)
    assert nav.vertical_speed_mps == pytest.approx(-10.0)
    # The same reading again (the poller has not produced a new one) must not read as hovering.
    assert not nav.measure(90.0, 1.0)
    assert nav.vertical_speed_mps == pytest.approx(-10.0)


def test_the_descent_navigator_propagates_on_the_imu_between_altimeter_samples() -> None:
    nav = DescentNavigator()
    nav.measure(100.0, 0.0)
    nav.propagate(MARS_SURFACE_GRAVITY, 0.0, 0.5)
    nav.propagate(MARS_SURFACE_GRAVITY + 1.0, 0.5, 0.5)  # 1 m/s^2 upward net for 0.5 s
    assert nav.vertical_speed_mps == pytest.approx(0.5)
    assert nav.horizontal_speed_mps == pytest.approx(0.25)


def test_hover_throttle_balances_gravity() -> None:
    ctl = DescentController(max_thrust_n=7500.0, mass_kg=1000.0)
    throttle = ctl.throttle(0.0, 0.0, 0.0)
    assert throttle == pytest.approx(1000.0 * MARS_SURFACE_GRAVITY / 7500.0)


def test_throttle_rises_when_falling_too_fast_and_stays_within_limits() -> None:
    ctl = DescentController(max_thrust_n=7500.0, mass_kg=1000.0)
    hover = ctl.throttle(0.0, 0.0, 0.0)
    assert ctl.throttle(-2.0, -10.0, 0.1) > hover
    for vz in (-500.0, 500.0):
        assert 0.0 <= ctl.throttle(0.0, vz, 0.2) <= 1.0


def test_the_speed_profile_brakes_to_a_hover_then_descends_gently() -> None:
    target = DescentController.target_speed
    assert target(1400.0, hover_altitude_m=100.0) == pytest.approx(-40.0)
    assert target(100.0, hover_altitude_m=100.0) == 0.0
    assert target(2.0, hover_altitude_m=None) == pytest.approx(-0.8)
    assert DescentController.lateral_command(3.0) == -1.0


def test_entry_dead_reckoning_follows_a_drag_free_fall() -> None:
    # With no sensed force, speed changes only by gravity along the path.
    nav = EntryNavigator(speed_mps=4800.0, flight_path_deg=-14.5, altitude_m=125_000.0)
    for i in range(101):
        nav.update((0.0, 0.0, 0.0), i * 0.1)
    g = 4.2828e13 / (3_389_500.0 + 125_000.0) ** 2
    expected = 4800.0 + g * math.sin(math.radians(14.5)) * 10.0
    assert nav.state.speed_mps == pytest.approx(expected, rel=1e-3)
    assert nav.state.altitude_m < 125_000.0 - 10_000.0
