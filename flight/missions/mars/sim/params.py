"""The Mars simulator's numbers: vehicle, entry, power and sensor noise.

These tune the physical world, not the flight software (whose parameters, which the ground may
change in flight, are in :mod:`flight.missions.mars.parameters`). Tags follow
:mod:`flight.missions.mars.constants`: [C] confirmed, [D] derived, [U] unconfirmed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flight.missions.mars.constants import (
    DESCENT_ENGINE_MAX_N,
    ENTRY_ALTITUDE_M,
    ENTRY_FLIGHT_PATH_DEG,
    ENTRY_SPEED_MPS,
    MOI_THRUST_N,
    PARACHUTE_AREA_M2,
)

__all__ = ["MarsParams"]


@dataclass(frozen=True)
class MarsParams:
    """Every tunable of the model.

    The [U] entry values are tuned together: a -14.5 degree entry flown lift-down (bank 180) to
    4.2 km/s and lift-up after it peaks at about 7.5 Earth g, slows to 460 m/s (Mach 1.95) at about
    11 km some 245 s after the entry interface; with a Tianwen-like sequence (heat shield 25 s
    after the parachute, backshell at 1.4 km, hover at 100 m for 15 s) the vehicle touches down
    about 440 s (7.3 min) after entry, close to the reported flight (parachute at T+4 min 44 s,
    touchdown at T+7 min 30 s). The approach hyperbola is tuned so a 640 m/s burn (about 16 min
    at 3000 N from 5000 kg) started 480 s before periapsis captures into 400 km x 10 days.

    Raises:
        ValueError: a mass, thrust, Isp, area or capacity that is not a positive finite number.
    """

    # Orbiter stack: cruise and orbit insertion
    stack_mass_kg: float = 5000.0  # wet mass at insertion [U]
    main_thrust_n: float = MOI_THRUST_N  # [C]
    main_isp_s: float = 315.0  # [U]
    main_propellant_kg: float = 1400.0  # available at insertion [U]
    approach_v_inf_mps: float = 2417.0  # hyperbolic excess speed, tuned for capture [D]
    approach_periapsis_alt_m: float = 428_000.0  # before the burn, tuned [D]
    moi_ignition_before_periapsis_s: float = 480.0  # about half the ~960 s burn [D]
    approach_lead_s: float = 600.0  # place_on_approach: time left before nominal ignition
    cruise_days_before_periapsis: float = 5.0  # place_in_cruise: far out on the approach
    parking_mass_kg: float = 3900.0  # [U]
    # Entry capsule [U except where marked]
    entry_altitude_m: float = ENTRY_ALTITUDE_M  # [C]
    entry_speed_mps: float = ENTRY_SPEED_MPS  # [C]
    entry_flight_path_deg: float = ENTRY_FLIGHT_PATH_DEG
    entry_range_to_site_m: float = 592_000.0  # entry interface to the landing site, surface arc
    ground_track_azimuth_deg: float = 160.0  # heading of the trajectory plane at the site
    entry_mass_kg: float = 1300.0
    capsule_diameter_m: float = 2.6
    capsule_cd: float = 1.6
    lift_to_drag: float = 0.24  # trimmed by the trim tab [C: lifting entry]
    bank_deg: float = 180.0  # lift direction from vertical; in-plane lift is L/D cos(bank)
    bank_switch_speed_mps: float = 4200.0  # below this speed the bank becomes bank_final_deg
    bank_final_deg: float = 0.0
    heatshield_mass_kg: float = 110.0
    backshell_mass_kg: float = 190.0  # backshell and parachute
    capsule_cd_factor_no_heatshield: float = 0.6
    parachute_area_m2: float = PARACHUTE_AREA_M2  # [C]
    parachute_cd: float = 0.6
    parachute_inflation_s: float = 1.5
    parachute_max_mach: float = 2.5
    parachute_max_q_pa: float = 1000.0
    # Lander and powered descent [U]
    lander_cda_m2: float = 4.0
    descent_max_thrust_n: float = DESCENT_ENGINE_MAX_N
    descent_isp_s: float = 300.0
    descent_propellant_kg: float = 250.0
    lateral_thrust_n: float = 500.0
    lateral_isp_s: float = 220.0
    max_slew_dps: float = 30.0
    touchdown_max_vertical_mps: float = 3.0  # above this the landing legs fail
    touchdown_max_horizontal_mps: float = 1.5
    surface_mass_kg: float = 1000.0 - 150.0  # place_on_surface: lander after a nominal descent
    # Surface, power and thermal [U]
    subsolar_lat_deg: float = 11.0  # late northern spring at landing
    local_solar_hour_at_t0: float = 8.0  # at the landing site, at time zero
    battery_capacity_ah: float = 40.0
    battery_soc0: float = 0.9
    battery_r_ohm: float = 0.1
    battery_v_empty: float = 10.5  # open-circuit voltage 10.5..12.6 V (3S Li-ion)
    battery_v_full: float = 12.6
    load_a: tuple[float, float, float] = (0.8, 1.5, 0.7)  # stack / EDL / surface base load
    valve_load_a: float = 0.4  # per open engine valve
    solar_stack_a: float = 1.6  # orbiter arrays, always sunlit (no eclipses)
    solar_surface_peak_a: float = 3.0  # lander arrays at zero solar zenith angle
    range_max_m: float = 200_000.0  # no altimeter return above
    # Sensor noise (1 sigma)
    sigma_accel_mps2: float = 0.03
    sigma_gyro_dps: float = 0.05
    sigma_pressure_pa: float = 0.5
    sigma_temperature_c: float = 0.1
    sigma_mag_t: float = 2e-9
    sigma_range_m: float = 0.02
    sigma_range_frac: float = 0.002
    sigma_voltage_v: float = 0.005
    sigma_current_a: float = 0.005
    # Bookkeeping
    history_interval_s: float = 1.0
    history_max: int = 50_000

    def __post_init__(self) -> None:
        positive = (
            "stack_mass_kg",
            "main_thrust_n",
            "main_isp_s",
            "entry_mass_kg",
            "capsule_diameter_m",
            "capsule_cd",
            "parachute_inflation_s",
            "descent_isp_s",
            "lateral_isp_s",
            "max_slew_dps",
            "battery_capacity_ah",
            "parking_mass_kg",
            "surface_mass_kg",
            "approach_v_inf_mps",
            "history_interval_s",
            "history_max",
        )
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"MarsParams.{name} must be a positive number, got {value!r}")
        light = self.entry_mass_kg - self.heatshield_mass_kg - self.backshell_mass_kg
        if light - self.descent_propellant_kg <= 0:
            raise ValueError("MarsParams: the lander's dry mass must be positive")
