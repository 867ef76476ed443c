"""The crustal + induced magnetic field model: magnitudes where Mars has them."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from flight.missions.mars.constants import LANDING_SITE_LAT_DEG, LANDING_SITE_LON_DEG
from flight.missions.mars.sim import magnetic

NT = 1e-9
UTOPIA = (LANDING_SITE_LAT_DEG, LANDING_SITE_LON_DEG)


def _norm(v):
    return math.sqrt(sum(c * c for c in v))


def _night(lat, lon, alt):
    """Field with the Sun on the far side: crustal part (plus a few nT of night-side field)."""
    return magnetic.field_local(lat, lon, alt, subsolar_lat_deg=0.0, subsolar_lon_deg=lon + 180.0)


def _max_over_south(alt):
    return max(_norm(_night(lat, lon, alt)) for lat in range(-80, 0, 2) for lon in range(0, 360, 5))


def test_utopia_is_weak_from_orbit():
    assert 5 * NT <= _norm(_night(*UTOPIA, 400_000.0)) <= 20 * NT


def test_southern_highlands_reach_about_200_nt_at_400_km():
    assert 150 * NT <= _max_over_south(400_000.0) <= 250 * NT


def test_low_altitude_fields_reach_thousands_of_nt():
    assert _max_over_south(150_000.0) >= 1000 * NT
    assert _max_over_south(150_000.0) > 5 * _max_over_south(400_000.0)


def test_surface_field_is_of_order_microtesla():
    assert 0.1e-6 <= _norm(_night(*UTOPIA, 0.0)) <= 10e-6
    assert _norm(_night(*UTOPIA, 0.0)) == _norm(_night(*UTOPIA, -100.0))


def test_dayside_induced_field_adds_tens_of_nt_above_the_ionosphere():
    lat, lon = UTOPIA
    day = magnetic.field_local(lat, lon, 1_000_000.0, subsolar_lat_deg=lat, subsolar_lon_deg=lon)
    night = _night(lat, lon, 1_000_000.0)
    assert 10 * NT <= _norm(day) - _norm(night) <= 50 * NT


def test_upright_body_frame_is_north_west_up():
    n, e, u = magnetic.field_local(-50.0, 180.0, 200_000.0)
    assert magnetic.field_upright(-50.0, 180.0, 200_000.0) == (n, -e, u)


@given(
    st.floats(min_value=-90.0, max_value=90.0),
    st.floats(min_value=-360.0, max_value=720.0),
    st.floats(min_value=-1000.0, max_value=1e8),
)
def test_field_is_finite_and_bounded_everywhere(lat, lon, alt):
    b = magnetic.field_local(lat, lon, alt)
    assert all(math.isfinite(c) for c in b)
    assert _norm(b) < 20e-6


def test_field_is_continuous_along_a_track():
    previous = _night(-40.0, 170.0, 300_000.0)
    for i in range(1, 200):
        b = _night(-40.0 + 0.01 * i, 170.0, 300_000.0)
        assert _norm([x - y for x, y in zip(b, previous, strict=True)]) < 10 * NT
        previous = b
