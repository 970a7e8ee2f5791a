"""Webster's method: the formulas against published worked examples, the controller on SUMO."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from twin_traffic.controllers.webster import (
    WebsterController,
    measure_lane_counts,
    measure_served_counts,
    phase_flow_ratios,
    read_lane_counts,
    webster_cycle,
    webster_greens,
    webster_timing,
)
from twin_traffic.errors import ControllerError
from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.network import load_network
from twin_traffic.plans import green_slots, lost_time, read_plan
from twin_traffic.scenario import load_scenario
from twin_traffic.sim import sumo_binary


def test_cycle_of_the_gate_two_phase_example() -> None:
    # GATE Civil Engineering exam question, two-phase signal with through traffic only:
    # N-S 1000 veh/h against 2500 veh/h saturation, E-W 900 against 3000, L = 12 s.
    # Published answer: C0 = (1.5 * 12 + 5) / (1 - 0.7) = 76.7, i.e. 77 s.
    y = [1000 / 2500, 900 / 3000]
    assert y == pytest.approx([0.4, 0.3])
    assert webster_cycle(12, sum(y)) == pytest.approx(23 / 0.3)
    assert round(webster_cycle(12, sum(y))) == 77


def test_cycle_and_splits_of_the_khanna_justo_example() -> None:
    # Khanna & Justo, "Highway Engineering", design of a two-phase signal by Webster's
    # method: roads A and B carry 400 and 250 pcu/h against saturation flows of 1250 and
    # 1000 pcu/h; 12 s all-red for pedestrians and 2 s lost per phase, so L = 2*2 + 12 =
    # 16 s. Published: Y = 0.57, C0 = 67.4 s (taken as 67.5 s), greens 28.9 ~ 29 s for A
    # and 22.6 ~ 23 s for B.
    y = [400 / 1250, 250 / 1000]
    assert sum(y) == pytest.approx(0.57)
    assert webster_cycle(16, sum(y)) == pytest.approx(29 / 0.43)
    assert round(webster_cycle(16, sum(y)), 1) == 67.4
    green_a, green_b = webster_greens(67.5, 16, y)
    assert (round(green_a, 1), round(green_b, 1)) == (28.9, 22.6)
    assert (round(green_a), round(green_b)) == (29, 23)
    assert green_a + green_b == pytest.approx(67.5 - 16)


def test_timing_caps_an_oversaturated_junction_and_clamps_the_cycle() -> None:
    timing = webster_timing([0.7, 0.5], 10, max_cycle=150, max_flow_ratio=0.9)
    assert timing.oversaturated and timing.flow_ratio_sum == pytest.approx(1.2)
    # Y capped at 0.9 gives (1.5*10 + 5) / 0.1 = 200 s, clamped to 150 s.
    assert timing.cycle == pytest.approx(150)
    assert timing.greens == pytest.approx((140 * 0.7 / 1.2, 140 * 0.5 / 1.2))
    light = webster_timing([0.05, 0.05], 10, min_cycle=40)
    assert not light.oversaturated and light.cycle == pytest.approx(40)


def test_timing_gives_every_phase_its_minimum_green() -> None:
    timing = webster_timing([0.5, 0.01, 0.2], 12, min_green=7)
    assert timing.greens[1] == pytest.approx(7)
    assert sum(timing.greens) == pytest.approx(timing.cycle - 12)
    # The others keep their ratio to each other.
    assert timing.greens[0] / timing.greens[2] == pytest.approx(0.5 / 0.2)
    crowded = webster_timing([0.1, 0.1, 0.1], 20, max_cycle=30, min_green=5)
    assert crowded.greens == (5, 5, 5) and crowded.cycle == 35


def test_lane_served_by_two_phases_shares_its_ratio_as_the_programme_serves_it() -> None:
    light = load_network(load_scenario("mixed")).traffic_lights["J2"]
    # J2's eastbound lanes run in the 10 s leading green and in the 24 s shared green
    # after it: a lane of 900 veh/h (y = 0.5) needs 0.5 C of green over the two together,
    # and was served in them 10 : 24.
    assert [light.phases[i].duration for i in green_slots(light.phases)][:2] == [10, 24]
    flows = dict.fromkeys(light.incoming_lanes, 0.0)
    eastbound = [lane for lane in light.incoming_lanes if lane.startswith("J1_J2")]
    assert eastbound
    flows[eastbound[0]] = 900.0
    ratios = phase_flow_ratios(light, flows, 1800)
    assert ratios[0] == pytest.approx(0.5 * 10 / 34) and ratios[1] == pytest.approx(0.5 * 24 / 34)
    assert sum(ratios[:2]) == pytest.approx(0.5)
    assert ratios[2:] == [0.0, 0.0]


def _run_plain_sumo(scenario_name: str, plan: Path, end: float) -> subprocess.CompletedProcess[str]:
    scenario = load_scenario(scenario_name, end=end)
    command = [str(sumo_binary()), *scenario.sumo_args([plan]), "--no-step-log", "true"]
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("name", ["single", "mixed"])
def test_webster_plan_loads_in_plain_sumo_and_keeps_transitions(name: str, tmp_path: Path) -> None:
    network = load_network(load_scenario(name, end=900))
    controller = WebsterController(min_green=6)
    [plan] = controller.additional_files(network, tmp_path)
    assert _run_plain_sumo(name, plan, 900).returncode == 0
    programmes = read_plan(plan)
    assert set(programmes) == set(network.signal_ids)
    for tls, light in network.traffic_lights.items():
        phases = programmes[tls].phases
        assert [p.state for p in phases] == [p.state for p in light.phases]
        for i, (new, old) in enumerate(zip(phases, light.phases, strict=True)):
            if i not in green_slots(light.phases):
                assert new.duration == old.duration  # yellows and all-reds untouched
            else:
                assert new.duration >= 6 and new.duration == int(new.duration)
        assert 30 <= programmes[tls].cycle <= 150 + lost_time(light.phases)
        timing = controller.timings[tls]
        assert 0 < timing.flow_ratio_sum < 0.9


def test_webster_serves_the_heaviest_movement_longest(tmp_path: Path) -> None:
    # single: N/S carry 850 veh/h per approach against 620 for E/W, and 70% go through.
    network = load_network(load_scenario("single", end=900))
    controller = WebsterController()
    [plan] = controller.additional_files(network, tmp_path)
    greens = [p.duration for p in read_plan(plan)["C"].phases if p.is_green]
    ns_left, ns_through, ew_left, ew_through = greens
    assert ns_through > ew_through > max(ns_left, ew_left)


def test_webster_runs_as_a_controller_and_changes_the_traffic() -> None:
    fixed = run_episode(RunSpec("single", end=600, emissions=False))
    webster = run_episode(RunSpec("single", controller="webster", end=600, emissions=False))
    assert webster.metrics["vehicles"] == fixed.metrics["vehicles"]
    assert webster.metrics["delay"] != fixed.metrics["delay"]
    again = run_episode(RunSpec("single", controller="webster", end=600, emissions=False))
    assert again.metrics["delay"] == webster.metrics["delay"]
    assert again.trips.equals(webster.trips)


def test_webster_from_a_lane_flow_file(tmp_path: Path) -> None:
    network = load_network(load_scenario("single"))
    light = network.traffic_lights["C"]
    # Only the north-south through lanes carry traffic: 720 veh in 30 min = 1440 veh/h.
    lanes = "".join(f'<lane id="{lane}" left="720"/>' for lane in ("N_C_0", "S_C_0"))
    counts = tmp_path / "counts.xml"
    counts.write_text(
        f'<meandata><interval begin="0" end="1800"><edge id="x">{lanes}</edge></interval>'
        "</meandata>"
    )
    assert read_lane_counts(counts).design_flows(["N_C_0", "E_C_0"]) == {
        "N_C_0": 1440.0,
        "E_C_0": 0.0,
    }
    controller = WebsterController(flows=str(counts), min_green=5)
    [plan] = controller.additional_files(network, tmp_path)
    timing = controller.timings["C"]
    assert timing.flow_ratios == pytest.approx((0, 0.8, 0, 0))
    assert timing.oversaturated is False and timing.flow_ratio_sum == pytest.approx(0.8)
    # C0 = (1.5*14 + 5) / 0.2 = 130 s; the three idle phases keep their 5 s minimum.
    greens = [p.duration for p in read_plan(plan)["C"].phases if p.is_green]
    assert greens == [5, 130 - lost_time(light.phases) - 15, 5, 5]


def test_webster_can_time_for_the_flows_a_deciding_controller_serves(tmp_path: Path) -> None:
    # single-high is near saturation: its own plan passes less than adaptive control does.
    scenario = load_scenario("single-high", end=900)
    network = load_network(scenario)
    lanes = network.traffic_lights["C"].incoming_lanes
    (tmp_path / "fixed").mkdir()
    (tmp_path / "served").mkdir()
    own = measure_lane_counts(scenario, 0, 900, tmp_path / "fixed").design_flows(lanes)
    served = measure_served_counts(scenario, "advanced-max-pressure", 0, 900, tmp_path / "served")
    assert sum(served.design_flows(lanes).values()) > sum(own.values())
    controller = WebsterController(flow_controller="advanced-max-pressure")
    [plan] = controller.additional_files(network, tmp_path)
    textbook = WebsterController()
    textbook.plan(network, tmp_path / "fixed")
    assert controller.timings["C"].flow_ratio_sum > textbook.timings["C"].flow_ratio_sum
    assert _run_plain_sumo("single-high", plan, 900).returncode == 0
    with pytest.raises(ControllerError, match="flow_controller 'policy' cannot measure flows"):
        WebsterController(flow_controller="policy")


def test_webster_parameters_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ControllerError, match="webster: need 0 < min_cycle <= max_cycle"):
        WebsterController(min_cycle=90, max_cycle=60)
    with pytest.raises(ControllerError, match="lane flow file not found"):
        WebsterController(flows=str(tmp_path / "none.xml"))
    empty = tmp_path / "empty.xml"
    empty.write_text("<meandata/>")
    with pytest.raises(ControllerError, match="no <interval> with <lane> counts"):
        WebsterController(flows=str(empty)).additional_files(
            load_network(load_scenario("single")), tmp_path
        )


def test_webster_can_keep_each_programmes_cycle(tmp_path: Path) -> None:
    network = load_network(load_scenario("mixed", end=900))
    controller = WebsterController(cycle="programme")
    [plan] = controller.additional_files(network, tmp_path)
    programmes = read_plan(plan)
    for tls, light in network.traffic_lights.items():
        # The cycle, so the coordination of signals that share it, stays the programme's;
        # the splits are Webster's.
        assert programmes[tls].cycle == sum(p.duration for p in light.phases)
    assert _run_plain_sumo("mixed", plan, 900).returncode == 0
    optimal = WebsterController()
    optimal.plan(network, tmp_path)
    assert any(t.cycle != controller.timings[tls].cycle for tls, t in optimal.timings.items())
    with pytest.raises(ControllerError, match="cycle must be webster or programme"):
        WebsterController(cycle="city")
