"""Mars and mission constants for the simulator's physical model, one value each project-wide.

Tags follow ``reference/mars.md``: [C] confirmed (agency statements, NASA fact sheets), [D] derived
from confirmed inputs, [U] unconfirmed (a tunable; ``MarsParams`` in ``sim/params.py`` holds the
ones the simulation is tuned with). Units are SI throughout (m, s, kg, N, Pa, K).
"""

from __future__ import annotations

import math

__all__ = [
    "ATMOSPHERE_TOP_M",
    "CAPTURE_PERIAPSIS_ALT_M",
    "CAPTURE_PERIOD_S",
    "CRUISE_DAYS",
    "DEORBIT_TO_ENTRY_S",
    "DESCENT_ENGINE_MAX_N",
    "EDL_DURATION_S",
    "ENTRY_ALTITUDE_M",
    "ENTRY_FLIGHT_PATH_DEG",
    "ENTRY_SPEED_MPS",
    "GAMMA",
    "GAS_CONSTANT",
    "GM",
    "HEATSHIELD_DELAY_S",
    "HOVER_ALTITUDE_M",
    "LANDING_SITE_LAT_DEG",
    "LANDING_SITE_LON_DEG",
    "MARS_G0",
    "MARS_RADIUS_M",
    "MOI_BURN_S",
    "MOI_DELTA_V_MPS",
    "MOI_THRUST_N",
    "PARACHUTE_AREA_M2",
    "PARACHUTE_DEPLOY_SPEED_MPS",
    "PARKING_APOAPSIS_ALT_M",
    "PARKING_PERIAPSIS_ALT_M",
    "PEAK_DECELERATION_G",
    "POWERED_DESCENT_ALTITUDE_M",
    "POWERED_DESCENT_SPEED_MPS",
    "ROTATION_RATE_RAD_S",
    "ROVER_MASS_KG",
    "SCALE_HEIGHT_M",
    "SOL_S",
    "STANDARD_GRAVITY",
    "TOUCHDOWN_VERTICAL_MPS",
    "YEAR_DAYS",
]

# --- Mars [C] -------------------------------------------------------------------------------------
GM = 4.2828e13  # m^3/s^2 (42,828 km^3/s^2) [C]
MARS_RADIUS_M = 3_389_500.0  # mean radius [C]
MARS_G0 = 3.71  # surface gravity, m/s^2: the one value used project-wide [C]
SOL_S = 88_775.244  # mean solar day [C]
YEAR_DAYS = 686.98  # Earth days [C]
GAMMA = 1.29  # ratio of specific heats, CO2 atmosphere [C]
GAS_CONSTANT = 192.1  # specific gas constant, J/(kg K) [C]
SCALE_HEIGHT_M = 11_100.0  # [C]
STANDARD_GRAVITY = 9.80665  # Earth g, only for reporting g-loads and Isp [C]

#: Top of the model atmosphere: the entry interface is at 125 km, and the exponential is continued
#: to 200 km so the density has no step there; above this it is vacuum [D].
ATMOSPHERE_TOP_M = 200_000.0

# --- Landing site: Utopia Planitia [C] ---------------------------------------------------------
LANDING_SITE_LAT_DEG = 25.1
LANDING_SITE_LON_DEG = 109.9

# --- Timeline (reference/mars.md) ----------------------------------------------------------------
CRUISE_DAYS = 202.0  # launch to Mars orbit insertion [C]
MOI_THRUST_N = 3000.0  # orbit insertion engine [C]
MOI_BURN_S = 15.0 * 60.0  # "about a 15 minute burn" [C]
MOI_DELTA_V_MPS = 640.0  # not published; 620-660 m/s [D]
CAPTURE_PERIAPSIS_ALT_M = 400_000.0  # [C]
CAPTURE_PERIOD_S = 10.0 * 86_400.0  # "about 10 days" [C]
PARKING_PERIAPSIS_ALT_M = 280_000.0  # [C]
PARKING_APOAPSIS_ALT_M = 59_000_000.0  # [C]; period about 2 sols [D]
DEORBIT_TO_ENTRY_S = 3.0 * 3600.0  # lander separation to entry interface, about 3 h [C]
ENTRY_ALTITUDE_M = 125_000.0  # entry interface [C]
ENTRY_SPEED_MPS = 4_800.0  # at the entry interface [C]
ENTRY_FLIGHT_PATH_DEG = -14.5  # not published; 10-15 degrees for 7-10 g; tuned [U]
PEAK_DECELERATION_G = (7.0, 10.0)  # Earth g, for 10-15 degree entries [D]
PARACHUTE_DEPLOY_SPEED_MPS = 460.0  # [C]; about Mach 1.9 at about 10 km [D]
PARACHUTE_AREA_M2 = 200.0  # canopy nominal area [C]
HEATSHIELD_DELAY_S = (20.0, 30.0)  # after the parachute opens [U]
POWERED_DESCENT_SPEED_MPS = 100.0  # backshell separation below this [C]
POWERED_DESCENT_ALTITUDE_M = (1_000.0, 1_500.0)  # [U]
HOVER_ALTITUDE_M = 100.0  # [C]
EDL_DURATION_S = 9.0 * 60.0  # entry interface to touchdown, "about nine minutes" [C]
TOUCHDOWN_VERTICAL_MPS = (1.0, 2.0)  # [C / D]
ROVER_MASS_KG = 240.0  # [C]
DESCENT_ENGINE_MAX_N = 7_500.0  # variable-thrust engine of the lander [U]

#: Mars rotation is not modelled in the trajectory (a non-rotating planet; about 240 m/s at the
#: equator would change the entry's air-relative speed by a few percent). Kept for reference.
ROTATION_RATE_RAD_S = 2.0 * math.pi / 88_642.663  # sidereal day [C]
