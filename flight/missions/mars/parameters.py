"""The Mars mission's parameters: the numbers the ground may retune without new software.

Each is bounded, so a mistyped value is refused by the parameter store rather than flown. The
mission reads them by name (``MarsMission.p``) at the moment it decides, so a value the ground
changes takes effect at the next decision, without a restart.
"""

from __future__ import annotations

from flight.commands import ArgType
from flight.parameters import ParamSpec

__all__ = ["PARAMETERS"]


def _param(
    pid: int, name: str, default: float, low: float, high: float, units: str, text: str
) -> ParamSpec:
    return ParamSpec(
        pid, name, ArgType.FLOAT, default, minimum=low, maximum=high, units=units, description=text
    )


PARAMETERS = (
    _param(
        0x1000,
        "mars.moi_delta_v_mps",
        640.0,
        100.0,
        1500.0,
        "m/s",
        "Delta-v the orbit insertion burn must measure before cut-off.",
    ),
    _param(
        0x1001,
        "mars.moi_max_burn_s",
        1100.0,
        60.0,
        3000.0,
        "s",
        "Backup cut-off: the longest the insertion burn may run.",
    ),
    _param(
        0x1002,
        "mars.entry_speed_mps",
        4800.0,
        3000.0,
        7000.0,
        "m/s",
        "Ground-navigated speed at the entry interface.",
    ),
    _param(
        0x1003,
        "mars.entry_fpa_deg",
        -11.0,
        -25.0,
        -5.0,
        "deg",
        "Ground-navigated flight-path angle at the entry interface.",
    ),
    _param(
        0x1004,
        "mars.entry_altitude_m",
        125_000.0,
        80_000.0,
        200_000.0,
        "m",
        "Altitude of the entry interface.",
    ),
    _param(
        0x1005,
        "mars.chute_speed_mps",
        460.0,
        250.0,
        700.0,
        "m/s",
        "Estimated speed at which the parachute mortar fires.",
    ),
    _param(
        0x1006,
        "mars.chute_backup_s",
        250.0,
        60.0,
        600.0,
        "s",
        "Backup: seconds after entry detection to fire the parachute without an IMU.",
    ),
    _param(
        0x1007,
        "mars.heatshield_delay_s",
        25.0,
        5.0,
        120.0,
        "s",
        "Seconds on the parachute before the heat shield is jettisoned.",
    ),
    _param(
        0x1008,
        "mars.powered_altitude_m",
        1400.0,
        300.0,
        5000.0,
        "m",
        "Altitude at which the backshell separates and powered descent starts.",
    ),
    _param(
        0x1009,
        "mars.powered_backup_s",
        200.0,
        30.0,
        900.0,
        "s",
        "Backup: seconds on the parachute before powered descent without altitude.",
    ),
    _param(
        0x100A,
        "mars.hover_altitude_m",
        100.0,
        30.0,
        300.0,
        "m",
        "Hover altitude for hazard avoidance.",
    ),
    _param(
        0x100B,
        "mars.hover_time_s",
        15.0,
        2.0,
        120.0,
        "s",
        "Time spent hovering and moving clear of hazards.",
    ),
    _param(
        0x100C,
        "mars.lander_mass_kg",
        1000.0,
        300.0,
        3000.0,
        "kg",
        "Lander mass at powered-descent start, for the throttle controller.",
    ),
    _param(
        0x100D,
        "mars.descent_thrust_n",
        7500.0,
        1000.0,
        20000.0,
        "N",
        "Descent engine thrust at full throttle.",
    ),
)
