"""Real SUMO runs: every built-in scenario, determinism, backends, gridlock, one libsumo."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import write_scenario

from twin_traffic.errors import ControllerError, SimulationError, TwinTrafficError
from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.metrics import METRICS, run_warnings
from twin_traffic.scenario import builtin_scenarios, load_scenario
from twin_traffic.sim import Simulation

SHORT = 300.0  # seconds of simulated time per test run


@pytest.mark.parametrize("name", list(builtin_scenarios()))
def test_every_builtin_scenario_runs_under_fixed_time(name: str) -> None:
    result = run_episode(RunSpec(name, end=SHORT, emissions=True))
    metrics = result.metrics
    assert set(metrics) == set(METRICS)
    assert metrics["vehicles"] > 10 and metrics["throughput"] > 0
    assert metrics["delay"] > 0 and metrics["co2_kg"] > 0
    assert metrics["teleports"] == 0
    assert list(result.queues.columns[1:]) == list(load_scenario(name).traffic_lights)
    assert result.queues["time"].tolist() == [5.0 * (i + 1) for i in range(int(SHORT / 5))]
    assert result.gridlock_at is None


def test_same_spec_and_seed_give_identical_metrics() -> None:
    first = run_episode(RunSpec("grid3x3", seed=3, end=SHORT))
    again = run_episode(RunSpec("grid3x3", seed=3, end=SHORT))
    other = run_episode(RunSpec("grid3x3", seed=4, end=SHORT))
    assert first.metrics == pytest.approx(again.metrics, rel=0, abs=0, nan_ok=True)
    assert first.trips.equals(again.trips)
    assert first.metrics != pytest.approx(other.metrics, rel=0, abs=0, nan_ok=True)


def test_emissions_are_opt_in_and_do_not_change_the_traffic() -> None:
    with_emissions = run_episode(RunSpec("single", end=SHORT, emissions=True))
    without = run_episode(RunSpec("single", end=SHORT))
    assert without.metrics["delay"] == with_emissions.metrics["delay"]
    assert math.isnan(without.metrics["co2_kg"]) and with_emissions.metrics["co2_kg"] > 0


@pytest.mark.parametrize("controller", ["actuated", "max-pressure"])
def test_traci_and_libsumo_give_the_same_metrics(controller: str) -> None:
    by_libsumo = run_episode(RunSpec("mixed", seed=1, end=200, controller=controller))
    by_traci = run_episode(
        RunSpec("mixed", seed=1, end=200, controller=controller, backend="traci")
    )
    assert by_libsumo.metrics == pytest.approx(by_traci.metrics, rel=0, abs=0, nan_ok=True)


def test_actuated_runs_sumo_actuated_programmes() -> None:
    result = run_episode(RunSpec("arterial", controller="actuated", end=SHORT))
    fixed = run_episode(RunSpec("arterial", end=SHORT))
    assert result.metrics["vehicles"] == fixed.metrics["vehicles"]
    assert result.metrics != pytest.approx(fixed.metrics, rel=0, abs=0, nan_ok=True)


def test_unknown_controller_and_parameter() -> None:
    with pytest.raises(ControllerError, match="unknown controller 'magic'; choose one of"):
        run_episode(RunSpec("single", controller="magic", end=10))
    with pytest.raises(ControllerError, match="actuated: no parameter 'speed'; its parameters"):
        run_episode(RunSpec("single", controller="actuated", params={"speed": 3}, end=10))


def test_gridlock_is_reported(tmp_path: Path) -> None:
    # Cars queue at a red that never ends: every vehicle stands still once the last stops.
    config = write_scenario(tmp_path, [(f"v{i}", i) for i in range(5)], [(1000, "r")], end=200)
    result = run_episode(RunSpec(str(config), gridlock_seconds=60))
    assert result.gridlock_at is not None and 5 <= result.gridlock_at <= 30
    assert run_episode(RunSpec(str(config), gridlock_seconds=500)).gridlock_at is None


def test_moving_traffic_is_no_gridlock(road: Path) -> None:
    assert run_episode(RunSpec(str(road), gridlock_seconds=20)).gridlock_at is None


def test_two_libsumo_simulations_in_one_process_fail_clearly(road: Path) -> None:
    scenario = load_scenario(road)
    with (
        Simulation(scenario, seed=0),
        pytest.raises(SimulationError, match="libsumo runs one simulation per process"),
    ):
        Simulation(scenario, seed=1).start()
    # The first one closed cleanly: a new one may start.
    with Simulation(scenario, seed=2) as sim:
        sim.step()
        assert sim.time == 1.0


def test_a_jam_teleported_away_is_a_gridlock_too(tmp_path: Path) -> None:
    # A red that never ends, with SUMO's default teleporting: after 300 s at the line the
    # first car is teleported away and the queue moves up, so the network never stands
    # still for long; the teleports are what shows the gridlock.
    config = write_scenario(tmp_path, [(f"v{i}", i) for i in range(20)], [(1000, "r")], end=800)
    result = run_episode(RunSpec(str(config)))
    assert result.gridlock_at is None and result.metrics["teleports"] >= 1
    assert result.metrics["gridlock"] == 1.0
    warnings = run_warnings(result.metrics, result.gridlock_at)
    assert any("teleported out of jams" in w for w in warnings), warnings


def test_a_standstill_is_a_gridlock_in_the_metrics(tmp_path: Path) -> None:
    config = write_scenario(tmp_path, [(f"v{i}", i) for i in range(5)], [(1000, "r")], end=200)
    result = run_episode(RunSpec(str(config), gridlock_seconds=60))
    assert result.metrics["gridlock"] == 1.0
    assert run_warnings(result.metrics, result.gridlock_at)[0].startswith(
        "gridlock: every vehicle stood still from t="
    )


def test_a_window_without_demand_says_so(tmp_path: Path) -> None:
    # Every vehicle departs after the window: nothing to measure, and the run says why.
    config = write_scenario(tmp_path, [("late", 500)], [(30, "G"), (30, "r")], end=600)
    result = run_episode(RunSpec(str(config), end=120))
    assert result.metrics["vehicles"] == 0
    assert run_warnings(result.metrics, result.gridlock_at)[0].startswith(
        "no vehicle was due in the window"
    )


def test_a_run_refuses_settings_that_would_never_end_or_a_seed_sumo_cannot_take() -> None:
    with pytest.raises(TwinTrafficError, match="sample_interval must be > 0 seconds"):
        run_episode(RunSpec("single", sample_interval=-1, end=30))
    with pytest.raises(TwinTrafficError, match="SUMO's seed is a whole number from 0 to"):
        run_episode(RunSpec("single", seed=-1, end=30))
