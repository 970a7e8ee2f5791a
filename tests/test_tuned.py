"""Tuning: the plan space, the optimiser on SUMO, and the plan it writes in plain SUMO."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.metrics import read_tripinfo
from twin_traffic.network import load_network
from twin_traffic.plans import green_slots, lost_time, read_plan
from twin_traffic.scenario import load_scenario
from twin_traffic.sim import OutputFiles, sumo_binary
from twin_traffic.tuning import (
    PlanSpace,
    current_programmes,
    population_size,
    tune,
    write_tuned_plan,
)

END = 600.0


def test_plan_space_encodes_the_own_plan_exactly() -> None:
    scenario = load_scenario("mixed")
    network = load_network(scenario)
    space = PlanSpace(network, min_cycle=30, max_cycle=150, min_green=5)
    # One shared cycle, 2 + 4 + 3 green weights, 3 offsets.
    assert space.dimension == 1 + 9 + 3
    own = current_programmes(scenario, network)
    # J1 runs 66 s and J2/J3 75 s: the shared cycle is the commonest, so J2 and J3 stay
    # exactly as they are and J1's greens stretch to fill 75 s.
    decoded = space.decode(space.encode(own))
    assert [p.cycle for p in decoded] == [75, 75, 75]
    assert (decoded[1].phases, decoded[2].phases) == (own["J2"].phases, own["J3"].phases)
    assert decoded[0].phases != own["J1"].phases


def test_plan_space_decodes_any_vector_into_a_valid_plan() -> None:
    network = load_network(load_scenario("mixed"))
    space = PlanSpace(network, min_cycle=40, max_cycle=120, min_green=6)
    rng = np.random.default_rng(7)
    lows, highs = np.array(space.bounds).T
    for _ in range(50):
        x = rng.uniform(lows, highs)
        plan = space.decode(x)
        cycles = {p.cycle for p in plan}
        assert len(cycles) == 1  # one shared cycle coordinates the offsets
        cycle = cycles.pop()
        assert abs(cycle - round(x[0])) < 1 and 40 <= cycle <= 121
        for programme, light in zip(plan, network.traffic_lights.values(), strict=True):
            assert 0 <= programme.offset < cycle and programme.offset == int(programme.offset)
            greens = [programme.phases[i].duration for i in green_slots(light.phases)]
            assert min(greens) >= 6
            assert lost_time(programme.phases) == lost_time(light.phases)
    assert space.decode(x) == space.decode(x)


def test_population_follows_the_budget() -> None:
    assert [population_size(n) for n in (5, 10, 60, 400)] == [5, 5, 12, 30]


def test_tuned_plan_beats_its_start_and_reproduces_in_plain_sumo(tmp_path: Path) -> None:
    result = tune("single", budget=10, seeds=[0], workers=2, end=END)
    assert result.evaluations == 10 and len(result.history) == 10
    assert result.history == sorted(result.history, reverse=True)
    # The first candidate is the scenario's own plan, so it is exactly the fixed-time run.
    fixed = run_episode(RunSpec("single", seed=0, end=END))
    assert result.baseline == fixed.metrics["delay"]
    assert result.delay <= result.baseline and result.delay == result.per_seed[0]

    plan = write_tuned_plan(result, tmp_path / "plan.add.xml", "single", [0])
    outputs = OutputFiles(tmp_path / "out")
    outputs.directory.mkdir()
    scenario = load_scenario("single", end=END)
    command = [
        str(sumo_binary()),
        *scenario.sumo_args([plan]),
        "--seed", "0",
        *outputs.sumo_args(),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    assert read_tripinfo(outputs.tripinfo)["delay"].mean() == result.per_seed[0]
    assert read_plan(plan)["C"].program_id == "twin-traffic-tuned"


def test_tune_command_reports_training_and_held_out_seeds(tmp_path: Path) -> None:
    out = tmp_path / "plan.add.xml"
    command = [sys.executable, "-m", "twin_traffic.cli", "tune", "mixed", "--budget", "5"]
    command += ["--seeds", "0", "--holdout-seeds", "100", "101", "--end", "300"]
    done = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "training 0" in done.stdout and "held-out 100 101" in done.stdout
    assert "tuning: 5/5 plans, best delay" in done.stderr
    assert set(read_plan(out)) == {"J1", "J2", "J3"}
    clash = subprocess.run(
        [*command[:-4], "--holdout-seeds", "0", "--out", str(out)], capture_output=True, text=True
    )
    assert clash.returncode == 1
    assert clash.stderr.strip() == (
        "error: seeds 0 are both training and held-out seeds; choose --holdout-seeds the "
        "tuning never sees"
    )


@pytest.mark.parametrize("budget", [4])
def test_tune_refuses_a_tiny_budget(budget: int) -> None:
    from twin_traffic.errors import TwinTrafficError

    with pytest.raises(TwinTrafficError, match="tuning needs at least 5 plans"):
        tune("single", budget=budget, seeds=[0])
