"""The Mars atmosphere: NASA Glenn's curve fit with a high-altitude patch.

The Glenn fit (reference/mars.md, h in metres above the reference radius)::

    h < 7000:  T[C] = -31 - 0.000998 h
    h >= 7000: T[C] = -23.4 - 0.00222 h
    p[kPa] = 0.699 exp(-0.00009 h)
    rho = p / (0.1921 (T + 273.1))

Its temperature heads for 0 K above ~80 km, so the temperature is held at a floor of 130 K [U]
wherever the fit falls below it (from about 54 km up); the floor meets the fit, so temperature,
density and speed of sound stay continuous. The pressure fit already has an 11.1 km scale height
and is used as is up to the 125 km entry interface, then continued to 200 km (the density there
is ~1e-10 kg/m^3) and set to vacuum above, so an entering vehicle sees no density step. The fit's
own 1 K step in temperature at 7 km is kept: it is the published fit.

Below the surface (h < 0, a vehicle that has just crashed) the surface values are returned. These
functions never raise: they are called inside the integrator, thousands of times a second.
"""

from __future__ import annotations

import math

from flight.missions.mars.constants import ATMOSPHERE_TOP_M, GAMMA, GAS_CONSTANT

__all__ = [
    "TEMPERATURE_FLOOR_K",
    "density",
    "mach",
    "pressure",
    "speed_of_sound",
    "temperature",
]

TEMPERATURE_FLOOR_K = 130.0  # [U] hold near 130 K at high altitude
_ZERO_C_K = 273.1  # the fit's own Celsius offset (not 273.15)
_P0_PA = 699.0
_P_RATE = 0.00009  # 1/m: an 11.1 km scale height
_GAMMA_R = GAMMA * GAS_CONSTANT


def temperature(altitude_m: float) -> float:
    """Air temperature in kelvin at ``altitude_m`` (surface value below ground)."""
    h = altitude_m if altitude_m > 0.0 else 0.0
    t_c = -31.0 - 0.000998 * h if h < 7000.0 else -23.4 - 0.00222 * h
    t_k = t_c + _ZERO_C_K
    return t_k if t_k > TEMPERATURE_FLOOR_K else TEMPERATURE_FLOOR_K


def pressure(altitude_m: float) -> float:
    """Static pressure in pascal (0 above the model's top)."""
    if altitude_m >= ATMOSPHERE_TOP_M:
        return 0.0
    h = altitude_m if altitude_m > 0.0 else 0.0
    return _P0_PA * math.exp(-_P_RATE * h)


def density(altitude_m: float) -> float:
    """Air density in kg/m^3 (0 above the model's top).

    Written out rather than composed from :func:`pressure` and :func:`temperature`: the
    integrator calls it four times per step.
    """
    if altitude_m >= ATMOSPHERE_TOP_M:
        return 0.0
    h = altitude_m if altitude_m > 0.0 else 0.0
    t_k = (-31.0 - 0.000998 * h if h < 7000.0 else -23.4 - 0.00222 * h) + _ZERO_C_K
    if t_k < TEMPERATURE_FLOOR_K:
        t_k = TEMPERATURE_FLOOR_K
    return _P0_PA * math.exp(-_P_RATE * h) / (GAS_CONSTANT * t_k)


def speed_of_sound(altitude_m: float) -> float:
    """sqrt(gamma R T), m/s; the temperature floor keeps it defined in vacuum (about 227 m/s)."""
    return math.sqrt(_GAMMA_R * temperature(altitude_m))


def mach(speed_mps: float, altitude_m: float) -> float:
    """Mach number of an air-relative ``speed_mps`` at ``altitude_m``."""
    return abs(speed_mps) / speed_of_sound(altitude_m)
