"""A simple, deterministic magnetic field of Mars for the magnetometer: crustal plus induced.

Mars has no global dynamo field. What a magnetometer sees is:

* Crustal remanence [C in amplitude, U in pattern]: up to +-200 nT at 400 km over the southern
  highlands (strongest around Terra Cimmeria and Sirenum, near 180 E), 10-20 nT or less over the
  northern lowlands such as Utopia Planitia [U]. The pattern here is a smooth amplitude map times
  east-west elongated stripes of alternating polarity (the observed banding), written as a
  potential field of one horizontal wavelength: north and vertical components of equal amplitude
  in quadrature, so the field's magnitude follows the amplitude map. A potential field of
  wavelength L decays upward as exp(-2 pi h / L); L = 680 km [U] makes the field grow tenfold from
  400 km down to about 150 km (thousands of nT over the strongest regions) and about fortyfold to
  the surface (several uT in the south, about 0.5 uT at Utopia: "of order uT" [U]).
* Induced field [U]: the solar wind's field piled up and draped around the dayside ionosphere,
  10-50 nT on the dayside above ~150 km, a few nT at night, shielded below ~100 km, and the
  interplanetary field (about 3 nT) beyond a few thousand km.

Nothing here is a fitted model (no spherical-harmonic coefficients): it is a plausible,
continuous, cheap stand-in, deterministic so the same trajectory gives the same readings. Vectors
are local geographic components (north, east, up) in tesla; :func:`field_upright` gives them in the
body axes of a lander standing upright (x north, y west, z up).
"""

from __future__ import annotations

import math

__all__ = [
    "CRUSTAL_NORTH_NT",
    "CRUSTAL_SOUTH_MAX_NT",
    "CRUSTAL_WAVELENGTH_M",
    "IMF_NT",
    "field_local",
    "field_upright",
]

_NT = 1e-9
_RADIUS_M = 3_389_500.0
_REF_ALT_M = 400_000.0
CRUSTAL_NORTH_NT = 12.0  # northern lowlands at 400 km [U]
CRUSTAL_SOUTH_MAX_NT = 195.0  # strongest southern highlands at 400 km [C: "up to +-200 nT"]
CRUSTAL_WAVELENGTH_M = 680_000.0  # horizontal wavelength of the stripes, sets the decay [U]
_K = 2.0 * math.pi / CRUSTAL_WAVELENGTH_M
INDUCED_DAY_NT = (10.0, 40.0)  # dayside: base + cos(solar zenith angle) term [U]
INDUCED_NIGHT_NT = 3.0  # [U]
IMF_NT = 3.0  # interplanetary field far from Mars [U]
_IONOSPHERE_BOTTOM_M = 100_000.0  # induced field shielded below (10 % leaks to the surface) [U]
_IONOSPHERE_TOP_M = 300_000.0
_BOW_SHOCK_M = 2_000_000.0  # induced region ends, IMF beyond 4,000 km [U]


def _smoothstep(x: float) -> float:
    x = 0.0 if x < 0.0 else 1.0 if x > 1.0 else x
    return x * x * (3.0 - 2.0 * x)


def crustal_amplitude_nt(lat_deg: float, lon_deg: float) -> float:
    """Crustal field magnitude at 400 km over (lat, lon), in nT: the amplitude map."""
    south = _smoothstep((10.0 - lat_deg) / 50.0)  # 0 north of 10 N, 1 south of 40 S
    lon_weight = 0.3 + 0.35 * (1.0 + math.cos(math.radians(lon_deg - 180.0)))
    return CRUSTAL_NORTH_NT + (CRUSTAL_SOUTH_MAX_NT - CRUSTAL_NORTH_NT) * south * lon_weight


def _induced_nt(altitude_m: float, cos_sza: float) -> float:
    magnitude = INDUCED_NIGHT_NT
    if cos_sza > 0.0:
        magnitude += INDUCED_DAY_NT[0] + INDUCED_DAY_NT[1] * cos_sza
    if altitude_m < _IONOSPHERE_TOP_M:
        span = _IONOSPHERE_TOP_M - _IONOSPHERE_BOTTOM_M
        shield = 0.1 + 0.9 * _smoothstep((altitude_m - _IONOSPHERE_BOTTOM_M) / span)
        return magnitude * shield
    outside = _smoothstep((altitude_m - _BOW_SHOCK_M) / _BOW_SHOCK_M)
    return magnitude + (IMF_NT - magnitude) * outside


def field_local(
    lat_deg: float,
    lon_deg: float,
    altitude_m: float,
    *,
    subsolar_lat_deg: float = 0.0,
    subsolar_lon_deg: float = 0.0,
) -> tuple[float, float, float]:
    """Field at a point as (north, east, up) in tesla.

    The crustal part is continued upward from 400 km (and held at its surface value below
    ground); the induced part is horizontal, pointing east-north-east [U], scaled by the solar
    zenith angle computed from the subsolar point.
    """
    h = altitude_m if altitude_m > 0.0 else 0.0
    lat = math.radians(lat_deg)
    lon = math.radians(lon_deg)
    crust = crustal_amplitude_nt(lat_deg, lon_deg) * math.exp(_K * (_REF_ALT_M - h)) * _NT
    phase = _K * _RADIUS_M * lat + 0.8 * math.sin(lon)
    north = crust * math.cos(phase)
    up = crust * math.sin(phase)
    east = 0.25 * crust * math.cos(phase + 3.0 * lon)
    sun_lat = math.radians(subsolar_lat_deg)
    cos_sza = math.sin(lat) * math.sin(sun_lat) + math.cos(lat) * math.cos(sun_lat) * math.cos(
        lon - math.radians(subsolar_lon_deg)
    )
    induced = _induced_nt(h, cos_sza) * _NT
    return (north + 0.4 * induced, east + 0.9 * induced, up)


def field_upright(
    lat_deg: float,
    lon_deg: float,
    altitude_m: float,
    *,
    subsolar_lat_deg: float = 0.0,
    subsolar_lon_deg: float = 0.0,
) -> tuple[float, float, float]:
    """The field in the body axes of an upright lander facing north: (x north, y west, z up)."""
    north, east, up = field_local(
        lat_deg,
        lon_deg,
        altitude_m,
        subsolar_lat_deg=subsolar_lat_deg,
        subsolar_lon_deg=subsolar_lon_deg,
    )
    return (north, -east, up)
