"""The Mars atmosphere model: NASA Glenn fit samples, the high-altitude patch, Mach."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flight.missions.mars.constants import ATMOSPHERE_TOP_M, GAMMA, GAS_CONSTANT
from flight.missions.mars.sim import atmosphere


@pytest.mark.parametrize(
    ("altitude_m", "pressure_pa"),
    [(0.0, 699.0), (10_000.0, 284.0), (20_000.0, 116.0), (40_000.0, 19.0)],
)
def test_pressure_matches_the_reference_samples(altitude_m, pressure_pa):
    assert atmosphere.pressure(altitude_m) == pytest.approx(pressure_pa, rel=0.01)


def test_surface_temperature_and_density_follow_the_fit():
    assert atmosphere.temperature(0.0) == pytest.approx(-31.0 + 273.1)
    # rho = p[kPa] / (0.1921 (T + 273.1))
    assert atmosphere.density(0.0) == pytest.approx(0.699 / (0.1921 * 242.1), rel=1e-9)
    assert atmosphere.temperature(10_000.0) == pytest.approx(-23.4 - 22.2 + 273.1)


def test_temperature_is_held_at_the_floor_high_up_and_meets_the_fit_continuously():
    for h in (60_000.0, 80_000.0, 100_000.0, 125_000.0):
        assert atmosphere.temperature(h) == atmosphere.TEMPERATURE_FLOOR_K
    # Where the fit crosses the floor there is no step.
    crossing = (-23.4 + 273.1 - atmosphere.TEMPERATURE_FLOOR_K) / 0.00222
    below, above = atmosphere.temperature(crossing - 1.0), atmosphere.temperature(crossing + 1.0)
    assert abs(below - above) < 0.01
    assert atmosphere.temperature(crossing - 5000.0) > atmosphere.TEMPERATURE_FLOOR_K


def test_pressure_keeps_the_scale_height_up_to_the_entry_interface():
    ratio = atmosphere.pressure(125_000.0) / atmosphere.pressure(114_000.0)
    assert ratio == pytest.approx(math.exp(-11_000.0 / 11_111.1), rel=1e-3)
    assert atmosphere.pressure(125_000.0) > 0.0


def test_vacuum_above_the_model_top():
    assert atmosphere.pressure(ATMOSPHERE_TOP_M) == 0.0
    assert atmosphere.density(400_000.0) == 0.0
    # The density just below the top is already negligible: no step an entering vehicle feels.
    assert atmosphere.density(ATMOSPHERE_TOP_M - 1.0) < 1e-9


def test_speed_of_sound_and_mach_at_the_parachute_point():
    t = atmosphere.temperature(10_000.0)
    assert atmosphere.speed_of_sound(10_000.0) == pytest.approx(math.sqrt(GAMMA * GAS_CONSTANT * t))
    assert 1.85 <= atmosphere.mach(460.0, 10_000.0) <= 2.0  # "~Mach 1.9 at ~10 km"


def test_below_ground_returns_surface_values():
    assert atmosphere.pressure(-50.0) == atmosphere.pressure(0.0)
    assert atmosphere.temperature(-50.0) == atmosphere.temperature(0.0)


@given(st.floats(min_value=-10_000.0, max_value=1e9, allow_nan=False))
def test_every_altitude_gives_finite_non_negative_values(h):
    for value in (atmosphere.pressure(h), atmosphere.density(h), atmosphere.temperature(h)):
        assert math.isfinite(value)
        assert value >= 0.0
    assert atmosphere.speed_of_sound(h) > 0.0


@given(
    st.floats(min_value=0.0, max_value=ATMOSPHERE_TOP_M - 2.0),
    st.floats(min_value=1.0, max_value=5000.0),
)
def test_density_and_pressure_fall_with_altitude(h, dh):
    higher = min(h + dh, ATMOSPHERE_TOP_M - 1.0)
    assert atmosphere.pressure(higher) <= atmosphere.pressure(h)
    # The fit's 1 K temperature step at 7 km may not raise density by more than ~1 %.
    assert atmosphere.density(higher) <= atmosphere.density(h) * 1.01
