"""The reference mission flown end to end by the closed-loop simulator, nominal and with faults.

Each run is the real flight software on the real drivers over simulated chips, fed by the Mars
world model, commanded by a scripted ground through the authenticated, light-time-delayed link.
Figures are checked against the simulator's truth, not the flight software's own opinion.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from flight.missions.mars.sim.harness import FAULTS, MissionSim, SimOptions
from flight.missions.mars.sim.timeline import DAY, one_way_light_time

NOMINAL_PATH = [
    "MOI.PREP",
    "MOI.BURN",
    "MOI.ORBIT",
    "EDL.ENTRY",
    "EDL.PARACHUTE",
    "EDL.POWERED",
    "EDL.HOVER",
    "EDL.TOUCHDOWN",
    "SURFACE.EGRESS",
    "SURFACE.OPS",
]

_cache: dict[tuple[int, tuple[str, ...], str | None], dict[str, Any]] = {}


def fly(tmp: Path, seed: int = 0, faults: tuple[str, ...] = (), until: str | None = None) -> Any:
    key = (seed, faults, until)
    if key not in _cache:
        sim = MissionSim(
            SimOptions(seed=seed, faults=faults, until=until, progress=False, out=io.StringIO()),
            tmp / f"run-{seed}-{'-'.join(faults) or 'nominal'}-{until}",
        )
        _cache[key] = sim.run()
    return _cache[key]


def assert_landed_safely(report: dict[str, Any]) -> None:
    td, edl = report["touchdown"], report["edl"]
    assert td["survived"] is True
    assert td["truth_vertical_mps"] < 2.0
    assert td["truth_horizontal_mps"] < 1.5
    assert 6 * 60 <= edl["truth_duration_s"] <= 12 * 60
    assert 7.0 <= edl["truth_peak_deceleration_g"] <= 10.0


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim")


def test_the_nominal_mission_flies_every_mode_in_order_and_lands_softly(runs: Path) -> None:
    report = fly(runs)
    assert [t["dest"] for t in report["transitions"]] == NOMINAL_PATH
    assert report["final_state"] == "SURFACE.OPS"
    assert_landed_safely(report)
    assert report["commands"]["rejected"] == 0
    assert report["commands"]["accepted"] == report["commands"]["responses"] > 0


def test_edl_decisions_are_autonomous_and_ground_decisions_are_commanded(runs: Path) -> None:
    causes = {t["dest"]: t["cause"] for t in fly(runs)["transitions"]}
    for state in ("MOI.ORBIT", "EDL.PARACHUTE", "EDL.POWERED", "EDL.HOVER", "EDL.TOUCHDOWN"):
        assert causes[state] == "autonomous", state
    for state in ("MOI.PREP", "MOI.BURN", "EDL.ENTRY", "SURFACE.OPS"):
        assert causes[state] == "command", state


def test_the_ground_plans_the_egress_when_the_landing_reaches_it(runs: Path) -> None:
    # The rover is released 7 days after the ground hears of the landing, which is one light
    # time after it (17.8 min). Skipping quiet time over the light time once made it two days.
    met = {t["dest"]: t["met_s"] for t in fly(runs)["transitions"]}
    landed = met["SURFACE.EGRESS"]
    heard = met["SURFACE.OPS"] - 7 * DAY
    assert 0 <= heard - landed - one_way_light_time(landed) < 10.0


def test_the_report_sets_onboard_figures_beside_the_truth(runs: Path) -> None:
    report = fly(runs)
    edl, td = report["edl"], report["touchdown"]
    # The flight software saw the same deceleration pulse through its IMU register reads.
    assert edl["flight_peak_sensed_g"] == pytest.approx(edl["truth_peak_deceleration_g"], rel=0.05)
    # Onboard EDL timing starts at sensed entry, a little after the 125 km interface.
    assert 0 < edl["truth_duration_s"] - edl["flight_duration_s"] < 60
    assert -2.0 < td["flight_vertical_estimate_mps"] < 0.0


def test_the_orbit_insertion_burn_ends_on_measured_delta_v_and_captures(runs: Path) -> None:
    report = fly(runs)
    moi = report["orbit_insertion"]
    assert 640.0 <= moi["flight_delta_v_mps"] < 645.0  # cut off by the IMU's measurement
    assert moi["captured"] is True
    assert 350.0 < moi["truth_periapsis_km"] < 450.0  # ~400 km, period ~10 days (mars.md)
    assert 8.0 < moi["truth_period_days"] < 12.0
    assert report["flight_events"]["mars.BURN"] >= 2  # a correction burn and the insertion


def test_the_same_seed_flies_the_same_mission(runs: Path, tmp_path: Path) -> None:
    first = fly(runs, seed=1, until="SURFACE")
    second = MissionSim(
        SimOptions(seed=1, until="SURFACE", progress=False, out=io.StringIO()), tmp_path
    ).run()
    assert second["transitions"] == first["transitions"]
    assert second["touchdown"] == first["touchdown"]
    other = fly(runs, seed=2, until="SURFACE")
    assert other["touchdown"]["truth_vertical_mps"] != first["touchdown"]["truth_vertical_mps"]


@pytest.mark.parametrize("seed", [1, 2])
def test_other_seeds_land_too(runs: Path, seed: int) -> None:
    assert_landed_safely(fly(runs, seed=seed, until="SURFACE"))


def test_lidar_dropout_lands_on_the_radar(runs: Path) -> None:
    report = fly(runs, seed=1, faults=("lidar_dropout",), until="SURFACE")
    assert_landed_safely(report)
    assert report["flight_events"].get("dev.OFFLINE", 0) >= 1


def test_imu_bus_errors_are_retried_and_survived(runs: Path) -> None:
    report = fly(runs, seed=1, faults=("imu_bus_errors",), until="SURFACE")
    assert_landed_safely(report)
    assert report["flight_events"].get("dev.READ_FAILED", 0) > 0


def test_a_frozen_imu_in_entry_is_bridged_and_the_lander_lands(runs: Path) -> None:
    report = fly(runs, seed=1, faults=("imu_stuck",), until="SURFACE")
    assert_landed_safely(report)
    events = report["flight_events"]
    assert events.get("mars.IMU_FROZEN", 0) == 1
    assert events.get("mars.IMU_LIVE", 0) == 1
    # The entry estimate at parachute deploy stays as close to the truth as without the fault.
    nominal = fly(runs, seed=1, until="SURFACE")["edl"]["chute_speed_error_mps"]
    assert abs(report["edl"]["chute_speed_error_mps"]) < abs(nominal) + 10.0  # 53 m/s if not


def test_a_pyro_the_relay_board_refused_is_retried_and_the_lander_lands(runs: Path) -> None:
    report = fly(runs, seed=1, faults=("pyro_bus_errors",), until="SURFACE")
    assert_landed_safely(report)
    world = [e["text"] for e in report["world_events"]]
    assert sum("backshell separated" in text for text in world) == 1
    events = report["flight_events"]
    assert events.get("mode.ACTION_RETRYING", 0) >= 1
    assert events.get("mode.ACTION_RETRY_OK", 0) >= 1
    assert events.get("mode.ONESHOT_FAILED", 0) == 0
    # The throttle writes refused in the first second of powered flight are reported, and the
    # rest of each tick still ran.
    assert events.get("mars.OUTPUT_FAILED", 0) >= 1
    assert events.get("sched.TASK_ERROR", 0) == 0


def test_a_reboot_during_edl_resumes_the_phase_and_fires_nothing_twice(runs: Path) -> None:
    report = fly(runs, seed=1, faults=("reboot_edl",), until="SURFACE")
    assert_landed_safely(report)
    assert report["boots"] == 2
    dests = [t["dest"] for t in report["transitions"]]
    assert dests.count("EDL.PARACHUTE") == 1  # resumed, not re-entered
    world = [e["text"] for e in report["world_events"]]
    assert sum("parachute" in text for text in world) == 1
    assert sum("backshell separated" in text for text in world) == 1


def test_a_link_outage_over_edl_is_played_back_afterwards(runs: Path) -> None:
    report = fly(runs, seed=1, faults=("link_loss",))
    assert report["final_state"] == "SURFACE.OPS"  # the ground learned of the landing late
    assert_landed_safely(report)
    assert report["link"]["played_back"] > 100
    assert report["flight_events"]["link.DOWN"] >= 1
    assert report["flight_events"]["link.PLAYBACK_DONE"] >= 1


def test_an_unknown_fault_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        MissionSim(SimOptions(faults=("gremlins",), progress=False), tmp_path)
    assert set(FAULTS) == {
        "lidar_dropout",
        "imu_bus_errors",
        "imu_stuck",
        "pyro_bus_errors",
        "reboot_edl",
        "link_loss",
    }


def test_fsw_sim_writes_a_report_and_an_edl_plot(tmp_path: Path, capsys: Any) -> None:
    pytest.importorskip("matplotlib", reason="--plot needs the plot extra (matplotlib)")
    from flight.cli import main

    report, plot = tmp_path / "r.json", tmp_path / "edl.png"
    argv = ["sim", "--quiet", "--seed", "1", "--until", "SURFACE"]
    assert main([*argv, "--report", str(report), "--plot", str(plot)]) == 0
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert '"final_state": "SURFACE.EGRESS"' in report.read_text()
    assert "touchdown" in capsys.readouterr().out


def test_the_readme_shows_what_fsw_sim_prints(capsys: Any) -> None:
    """The quick start's sample output is the nominal run's, line for line (it once drifted)."""
    from flight.cli import main

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    start = readme.index("```\n", readme.index("`fsw sim` flies cruise")) + 4
    shown = [line for line in readme[start : readme.index("```", start)].splitlines() if line]
    assert len(shown) >= 10
    assert main(["sim"]) == 0
    printed = set(capsys.readouterr().out.splitlines())
    assert [line for line in shown if line not in printed] == []
