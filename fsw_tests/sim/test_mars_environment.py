"""MarsEnvironment in closed loop: the test plays the flight software's role through actuators.

Controllers here read the simulator's truth (allowed in tests only) except the orbit insertion,
which ends on delta-v integrated from the sensed acceleration, as the flight software does.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest

from flight.missions.mars.constants import MARS_G0, STANDARD_GRAVITY
from flight.missions.mars.sim.environment import MarsEnvironment, Phase
from flight.missions.mars.sim.params import MarsParams
from hal.sim import Environment

DT = 0.02  # 50 Hz, as the mission simulator runs EDL


def _norm(v):
    return math.sqrt(sum(c * c for c in v))


def fly_moi(env, target_dv=640.0, dt=0.05):
    """Coast to the planned ignition, burn until the IMU has measured target_dv; burn seconds."""
    env.place_on_approach()
    while env.time < env.moi_ignition_time_s - 1e-9:
        env.step(min(1.0, env.moi_ignition_time_s - env.time))
    start, sensed = env.time, 0.0
    env.set_actuators(main_engine=True)
    while sensed < target_dv and env.time - start < 3000.0:
        env.step(dt)
        sensed += _norm(env.env.acceleration_mps2) * dt
    env.set_actuators(main_engine=False)
    burn = env.time - start
    env.step(10.0)
    return burn


def fly_edl(env, *, powered=True, record=None):
    """A nominal EDL sequence: parachute at 460 m/s, heat shield 25 s later, backshell at 1.4 km,
    hover at 100 m with a lateral move, final descent at ~1 m/s."""
    env.place_at_entry_interface()
    cmd = {}
    chute_time = hover_start = None
    while env.phase != Phase.LANDED and env.time < 1500.0:
        t = env.truth
        if chute_time is None and t.speed_mps <= 460.0:
            cmd["parachute"], chute_time = True, env.time
        if chute_time is not None and env.time - chute_time >= 25.0:
            cmd["heatshield_release"] = True
        if powered and cmd.get("heatshield_release") and t.altitude_m <= 1400.0:
            cmd["backshell_sep"] = True
        if cmd.get("backshell_sep"):
            alt, vz, vx = t.altitude_m, t.vertical_speed_mps, t.horizontal_speed_mps
            lateral = max(-1.0, min(1.0, -0.5 * vx))  # null the drift
            if hover_start is None:
                target = -max(-1.0, min(60.0, 0.12 * (alt - 100.0)))
                if alt < 105.0 and abs(vz) < 1.0:
                    hover_start = env.time
            elif env.time - hover_start < 15.0:
                target = -0.12 * (alt - 100.0)
                held = env.time - hover_start
                lateral = 0.6 if held < 4.0 else (-0.6 if held < 8.0 else lateral)
            else:
                target = -max(1.0, min(12.0, 0.15 * alt))
            accel = MARS_G0 + (target - vz)
            cmd["descent_throttle"] = max(0.0, min(1.0, t.mass_kg * accel / 7500.0))
            cmd["lateral_cmd"] = lateral
        env.set_actuators(**cmd)
        env.step(DT)
        if record is not None:
            record.append((env.phase, env.env.acceleration_mps2, env.env.range_m))
    return env.truth


@pytest.fixture(scope="module")
def nominal_edl():
    env = MarsEnvironment(seed=7)
    samples: list = []
    truth = fly_edl(env, record=samples)
    return env, truth, samples


# --- orbit insertion ---------------------------------------------------------------------------
def test_insertion_burn_captures_into_the_10_day_orbit():
    env = MarsEnvironment(seed=1)
    burn = fly_moi(env)
    orbit = env.orbit()
    assert orbit.bound
    assert 350_000.0 <= orbit.periapsis_alt_m <= 450_000.0
    assert 8.0 <= orbit.period_s / 86_400.0 <= 12.0
    assert 13 * 60 <= burn <= 17 * 60  # "about a 15 minute burn"
    assert env.truth.mass_kg == pytest.approx(
        5000.0 - 3000.0 / (315 * STANDARD_GRAVITY) * burn, rel=0.01
    )


def test_approach_without_a_burn_flies_past_mars():
    env = MarsEnvironment()
    env.place_on_approach()
    assert not env.orbit().bound
    for _ in range(30):
        env.step(60.0)
    assert env.truth.altitude_m > 300_000.0
    assert not env.orbit().bound


def test_a_short_burn_is_not_enough_to_capture():
    env = MarsEnvironment(seed=2)
    fly_moi(env, target_dv=300.0)
    assert not env.orbit().bound


def test_main_engine_reads_as_plus_z_and_coast_as_zero():
    env = MarsEnvironment(seed=3)
    env.place_on_approach()
    env.step(1.0)
    assert _norm(env.env.acceleration_mps2) < 0.2
    env.set_actuators(main_engine=True)
    for _ in range(10):
        env.step(0.1)
    ax, ay, az = env.env.acceleration_mps2
    assert az == pytest.approx(3000.0 / env.truth.mass_kg, abs=0.15)
    assert abs(ax) < 0.15 and abs(ay) < 0.15


# --- nominal EDL -------------------------------------------------------------------------------
def test_nominal_edl_peak_deceleration(nominal_edl):
    _, truth, _ = nominal_edl
    assert 7.0 <= truth.peak_deceleration_g <= 10.0


def test_nominal_edl_lasts_about_nine_minutes(nominal_edl):
    _, truth, _ = nominal_edl
    assert truth.touchdown is not None and truth.entry_time_s is not None
    duration = truth.touchdown.time_s - truth.entry_time_s
    assert 6 * 60 <= duration <= 12 * 60


def test_nominal_edl_touches_down_softly_near_the_site(nominal_edl):
    _, truth, _ = nominal_edl
    assert truth.touchdown.vertical_mps < 2.0
    assert truth.touchdown.horizontal_mps < 1.5
    assert truth.touchdown.survived
    assert abs(truth.site_offset_m) < 20_000.0
    assert truth.descent_propellant_kg > 0.0
    assert truth.landed and truth.altitude_m == pytest.approx(0.0, abs=1e-6)


def test_parachute_opens_near_mach_two_at_about_ten_km(nominal_edl):
    env, _, _ = nominal_edl
    (time, text), *_ = [e for e in env.events if "parachute" in e[1]]
    assert "deployed" in text
    mach = float(text.split("Mach ")[1].split(",")[0])
    assert 1.8 <= mach <= 2.1
    assert 60.0 * 3 <= time <= 60.0 * 6  # reported: T+4 min 44 s
    altitudes = [t.altitude_m for t in env.history if abs(t.time_s - time) <= 1.0]
    assert altitudes and 9_000.0 <= min(altitudes) <= 13_000.0


def test_entry_deceleration_is_sensed_along_plus_z(nominal_edl):
    _, truth, samples = nominal_edl
    entry = [a for phase, a, _ in samples if phase == Phase.ENTRY]
    peak = max(entry, key=_norm)
    assert peak[2] > 0.9 * _norm(peak)  # drag along +z dominates; lift is a quarter of it
    assert _norm(peak) / STANDARD_GRAVITY == pytest.approx(truth.peak_deceleration_g, abs=0.1)
    assert min(a[0] for a in entry) < -1.0 < 1.0 < max(a[0] for a in entry)  # lift down, then up


def test_range_follows_altitude_during_descent(nominal_edl):
    _, _, samples = nominal_edl
    ranges = [r for phase, _, r in samples if phase == Phase.POWERED]
    assert ranges and all(r is not None for r in ranges)
    assert max(ranges) <= 1500.0 and min(ranges) < 2.0


def test_landed_vehicle_senses_one_mars_g_up(nominal_edl):
    env, _, _ = nominal_edl
    env.step(1.0)
    ax, ay, az = env.env.acceleration_mps2
    assert az == pytest.approx(MARS_G0, abs=0.15)
    assert abs(ax) < 0.15 and abs(ay) < 0.15
    assert env.env.pressure_pa == pytest.approx(699.0, abs=5.0)
    assert env.env.range_m is not None and env.env.range_m < 0.2


def test_history_is_decimated(nominal_edl):
    env, truth, _ = nominal_edl
    times = [t.time_s for t in env.history]
    assert len(times) < 1.1 * truth.time_s
    assert all(b - a >= 0.99 for a, b in itertools.pairwise(times))


# --- off-nominal EDL ---------------------------------------------------------------------------
def test_parachute_deployed_too_fast_fails():
    env = MarsEnvironment()
    env.place_at_entry_interface()
    while env.truth.mach > 3.5 or env.truth.altitude_m > 60_000.0:
        env.step(0.1)
    env.set_actuators(parachute=True)
    env.step(DT)
    truth = env.truth
    assert truth.parachute_deployed and truth.parachute_failed
    assert any("FAILED" in text for _, text in env.events)


def test_parachute_fired_in_orbit_has_no_effect():
    env = MarsEnvironment()
    env.place_in_parking_orbit()
    before = env.orbit()
    env.set_actuators(parachute=True)
    env.step(10.0)
    assert env.phase == Phase.ORBIT
    assert env.orbit().apoapsis_alt_m == pytest.approx(before.apoapsis_alt_m, rel=1e-6)
    assert any("outside entry" in text for _, text in env.events)


def test_pyro_events_latch():
    env = MarsEnvironment()
    env.place_at_entry_interface()
    env.set_actuators(heatshield_release=True)
    env.set_actuators(heatshield_release=False)
    mass = env.truth.mass_kg
    env.set_actuators(heatshield_release=True)  # a second pulse changes nothing
    assert env.truth.heatshield_jettisoned
    assert env.truth.mass_kg == mass == pytest.approx(1300.0 - 110.0)


def test_attached_heat_shield_blocks_the_descent_engine():
    env = MarsEnvironment(seed=4)
    env.place_at_entry_interface()
    env.set_actuators(backshell_sep=True, descent_throttle=1.0)
    env.step(1.0)
    assert env.phase == Phase.POWERED
    assert env.env.acceleration_mps2[2] < 0.5  # thin air at 125 km, and no thrust
    env.set_actuators(heatshield_release=True, descent_throttle=1.0)
    env.step(1.0)
    assert env.env.acceleration_mps2[2] > 5.0


def test_landing_on_the_parachute_alone_is_not_survivable():
    env = MarsEnvironment()
    truth = fly_edl(env, powered=False)
    assert truth.touchdown is not None and not truth.touchdown.survived
    assert truth.touchdown.vertical_mps > 30.0
    assert any("VEHICLE LOST" in text for _, text in env.events)


# --- determinism and noise ---------------------------------------------------------------------
def _readings(seed):
    env = MarsEnvironment(seed=seed)
    env.place_at_entry_interface()
    out = []
    for i in range(400):
        env.set_actuators(parachute=i > 300)
        env.step(0.25)
        e = env.env
        out.append((e.acceleration_mps2, e.pressure_pa, e.magnetic_field_t, e.bus_voltage_v))
    return out, env.truth


def test_same_seed_gives_identical_readings_and_truth():
    assert _readings(5) == _readings(5)


def test_different_seed_changes_the_noise_not_the_physics():
    (a, truth_a), (b, truth_b) = _readings(5), _readings(6)
    assert a != b
    assert truth_a == truth_b


def test_noise_has_the_documented_sigma():
    env = MarsEnvironment(seed=8)
    env.place_on_surface()
    zs = []
    for _ in range(2000):
        env.step(DT)
        zs.append(env.env.acceleration_mps2[2])
    mean = sum(zs) / len(zs)
    sigma = math.sqrt(sum((z - mean) ** 2 for z in zs) / len(zs))
    assert mean == pytest.approx(MARS_G0, abs=0.01)
    assert sigma == pytest.approx(MarsParams().sigma_accel_mps2, rel=0.1)


# --- other phases and sensors ------------------------------------------------------------------
def test_cruise_sees_vacuum_and_the_interplanetary_field():
    shared = Environment()
    env = MarsEnvironment(env=shared)
    env.step(1.0)
    assert env.phase == Phase.CRUISE
    assert shared.pressure_pa < 2.0
    assert shared.range_m is None and shared.range_strength == 0
    assert 1e-9 < _norm(shared.magnetic_field_t) < 20e-9
    assert _norm(shared.acceleration_mps2) < 0.2


def test_parking_orbit_survives_a_large_time_skip():
    env = MarsEnvironment()
    env.place_in_parking_orbit()
    period = env.orbit().period_s
    env.step(period)
    truth = env.truth
    assert truth.altitude_m == pytest.approx(280_000.0, abs=2_000.0)  # back at periapsis
    assert env.orbit().period_s == pytest.approx(period, rel=1e-6)


def test_orbit_magnetic_field_is_nanotesla_scale():
    env = MarsEnvironment()
    env.place_in_parking_orbit()
    env.step(1.0)
    assert 1e-9 < _norm(env.env.magnetic_field_t) < 2e-6


def test_battery_charges_in_daylight_and_sags_under_load():
    params = MarsParams(local_solar_hour_at_t0=10.0)
    env = MarsEnvironment(params=params)
    env.place_on_surface()
    env.step(0.1)
    soc = env.truth.battery_soc
    assert env.env.current_a < 0.0  # charging
    for _ in range(36):
        env.step(100.0)
    assert env.truth.battery_soc > soc
    night = MarsEnvironment(params=replace(params, local_solar_hour_at_t0=0.0))
    night.place_on_surface()
    night.step(0.1)
    idle = night.env.bus_voltage_v
    night.set_actuators(descent_throttle=0.5, lateral_cmd=0.5)  # two valve drivers on
    night.step(0.1)
    assert night.env.current_a > 0.0
    assert night.env.bus_voltage_v < idle - 0.05


def test_rover_release_is_recorded():
    env = MarsEnvironment()
    env.place_on_surface()
    mass = env.truth.mass_kg
    env.set_actuators(rover_release=True)
    env.step(1.0)
    assert env.truth.rover_released
    assert env.truth.mass_kg == pytest.approx(mass - 240.0)
    assert any("rover released on the surface" in text for _, text in env.events)


def test_history_is_bounded():
    env = MarsEnvironment(params=MarsParams(history_max=10, history_interval_s=0.1))
    for _ in range(100):
        env.step(1.0)
    assert len(env.history) == 10


@pytest.mark.parametrize("dt", [-1.0, math.nan, math.inf])
def test_bad_step_is_rejected(dt):
    with pytest.raises(ValueError, match="dt"):
        MarsEnvironment().step(dt)


@pytest.mark.parametrize("kwargs", [{"descent_throttle": math.nan}, {"lateral_cmd": math.inf}])
def test_non_finite_actuator_levels_are_rejected(kwargs):
    with pytest.raises(ValueError, match="finite"):
        MarsEnvironment().set_actuators(**kwargs)


def test_levels_are_clamped():
    env = MarsEnvironment()
    env.set_actuators(descent_throttle=3.0, lateral_cmd=-7.0)
    assert env.truth.descent_throttle == 1.0
    assert env.truth.lateral_cmd == -1.0


def test_broken_params_are_rejected():
    with pytest.raises(ValueError, match="entry_mass_kg"):
        MarsParams(entry_mass_kg=-1.0)
    with pytest.raises(ValueError, match="dry mass"):
        MarsParams(descent_propellant_kg=2000.0)
