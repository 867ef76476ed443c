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
    FreezeWatch,
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
    for i in range(1, 26):  # 1 m/s^2 upward net for 0.5 s, sampled at 50 Hz
        nav.propagate(MARS_SURFACE_GRAVITY + 1.0, i * 0.02, 0.5)
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


def test_a_frozen_output_is_told_from_a_live_one() -> None:
    watch = FreezeWatch(repeats=4)
    assert not any(watch.update((0.1 * i, 0.0, 3.7)) for i in range(50))  # noisy: never frozen
    stuck = (0.0, 0.0, 3.7)
    assert [watch.update(stuck) for _ in range(5)] == [False, False, False, True, True]
    assert not watch.update((0.0, 0.0, 3.71))  # one fresh sample and it is live again


def _entry_navs() -> tuple[EntryNavigator, EntryNavigator]:
    args = {"speed_mps": 4000.0, "flight_path_deg": -12.0, "altitude_m": 40_000.0}
    return EntryNavigator(**args), EntryNavigator(**args)


def test_an_imu_gap_is_bridged_by_interpolating_the_samples_either_side() -> None:
    # Drag rising linearly from 40 to 70 m/s^2 over 8 s: every sample against only both ends.
    def drag(t: float) -> tuple[float, float, float]:
        return (0.0, 0.0, 40.0 + 30.0 * t / 8.0)

    full, gapped = _entry_navs()
    for i in range(401):
        full.update(drag(i * 0.02), i * 0.02)
    gapped.update(drag(0.0), 0.0)
    gapped.update(drag(8.0), 8.0)
    # Within 2 m/s of 440 (coarser steps); integrating one blind second would be 370 out.
    assert gapped.state.speed_mps == pytest.approx(full.state.speed_mps, abs=2.0)
    lost = 4000.0 - full.state.speed_mps
    assert lost > 400.0  # the 440 m/s of the gap, not the 70 of one blind second


def test_ordinary_samples_integrate_exactly_as_one_step_each() -> None:
    nav, _ = _entry_navs()
    nav.update((0.0, 0.0, 50.0), 0.0)
    nav.update((0.0, 0.0, 60.0), 0.02)
    g = 4.2828e13 / (3_389_500.0 + 40_000.0) ** 2
    assert nav.state.speed_mps == 4000.0 + (-60.0 + g * math.sin(math.radians(12.0))) * 0.02


def test_a_resumed_entry_navigator_spans_the_reboot_with_the_first_new_sample() -> None:
    nav, reference = _entry_navs()
    nav.anchor(0.0)
    nav.update((0.0, 0.0, 50.0), 4.0)  # no sample known at the save: 50 m/s^2 throughout
    reference.update((0.0, 0.0, 50.0), 0.0)
    reference.update((0.0, 0.0, 50.0), 4.0)
    assert nav.state.speed_mps == pytest.approx(reference.state.speed_mps)
    assert nav.state.speed_mps < 4000.0 - 190.0


def test_the_descent_navigator_bridges_a_gap_in_lateral_acceleration() -> None:
    nav = DescentNavigator()
    nav.measure(100.0, 0.0)
    nav.propagate(MARS_SURFACE_GRAVITY, 0.0, 0.0)
    nav.propagate(MARS_SURFACE_GRAVITY, 4.0, 1.0)  # lateral push ramping 0 -> 1 m/s^2 over 4 s
    assert nav.horizontal_speed_mps == pytest.approx(2.0, abs=0.06)


def test_a_gap_does_not_count_again_the_descent_the_altimeter_already_measured() -> None:
    nav = DescentNavigator(altitude_gain=1.0, velocity_gain=1.0)
    nav.measure(10.0, 0.0)
    nav.propagate(MARS_SURFACE_GRAVITY, 0.0)
    for i in range(1, 9):  # the IMU is frozen; the altimeter sees 0.5 m/s down for 8 s
        nav.measure(10.0 - 0.5 * i, float(i))
    nav.propagate(MARS_SURFACE_GRAVITY, 8.0)
    assert nav.altitude_m == pytest.approx(6.0 - 0.25)  # half a second, not eight (2 m)
