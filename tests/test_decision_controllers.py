"""Max-pressure, greedy and SOTL on hand-built states, and on real SUMO runs."""

from __future__ import annotations

import numpy as np
import pytest

from twin_traffic.controllers.greedy import GreedyController, longest_queues
from twin_traffic.controllers.max_pressure import MaxPressureController, pressures
from twin_traffic.controllers.sotl import SotlController
from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.features import SignalLayout, Snapshot
from twin_traffic.signals import PhaseEngine, SignalTiming

# A crossing: lanes 0,1 (north/south) feed lane 4, lanes 2,3 (east/west) feed lane 5.
# Green 0 serves the north/south movements, green 1 the east/west ones.
LAYOUT = SignalLayout(
    id="X",
    num_greens=2,
    in_lanes=np.array([0, 1, 2, 3]),
    movement_in=np.array([0, 1, 2, 3]),
    movement_out=np.array([4, 4, 5, 5]),
    green_movements=np.array([[True, True, False, False], [False, False, True, True]]),
)


def snapshot(vehicles: list[float], halting: list[float] | None = None) -> Snapshot:
    zeros = np.zeros(6)
    return Snapshot(
        time=0.0,
        vehicles=np.array(vehicles, dtype=float),
        halting=np.array(halting if halting is not None else vehicles, dtype=float),
        speed=zeros, waiting=zeros, sensor_occupancy=zeros, sensor_halting=zeros,
        crossed=zeros,
    )  # fmt: skip


def engine(min_green: float = 5.0) -> PhaseEngine:
    timing = SignalTiming(yellow=3, min_green=min_green, max_green=60)
    return PhaseEngine(["GGrr", "yyrr", "rrGG", "rryy"], [30, 3, 30, 3], timing)


def test_max_pressure_picks_the_largest_incoming_minus_outgoing() -> None:
    # N/S: (6 - 9) + (2 - 9) = -10; E/W: (3 - 1) + (4 - 1) = 5 -> east/west.
    state = snapshot([6, 2, 3, 4, 9, 1])
    assert pressures(LAYOUT, state) == [-10.0, 5.0]
    assert MaxPressureController().choose(LAYOUT, state, engine()) == 1
    # A full downstream lane is what turns the choice: same queues, empty lane 4.
    assert MaxPressureController().choose(LAYOUT, snapshot([6, 2, 3, 4, 0, 1]), engine()) == 0


def test_max_pressure_ties_keep_the_current_green() -> None:
    state = snapshot([2, 2, 2, 2, 0, 0])
    signal = engine()
    assert MaxPressureController().choose(LAYOUT, state, signal) == 0
    signal.reset(1)
    assert MaxPressureController().choose(LAYOUT, state, signal) == 1


def test_greedy_serves_the_single_longest_queue() -> None:
    # E/W holds more vehicles in total (5 + 5), but the longest queue is north (8).
    state = snapshot([0, 0, 0, 0, 0, 0], halting=[8, 0, 5, 5, 0, 0])
    assert longest_queues(LAYOUT, state) == [8.0, 5.0]
    assert GreedyController().choose(LAYOUT, state, engine()) == 0
    state = snapshot([0] * 6, halting=[1, 0, 0, 2, 0, 0])
    assert GreedyController().choose(LAYOUT, state, engine()) == 1


def test_sotl_switches_once_red_traffic_exceeds_the_threshold() -> None:
    controller = SotlController(threshold=30, decision_interval=2)
    signal = engine(min_green=0)
    state = snapshot([3, 3, 4, 3, 0, 0])  # 7 vehicles at red, 6 on the green
    # kappa grows by 7 * 2 = 14 per decision: 14, 28 keep green 0, 42 switches.
    assert controller.choose(LAYOUT, state, signal) == 0
    assert controller.choose(LAYOUT, state, signal) == 0
    assert controller.choose(LAYOUT, state, signal) == 1


def test_sotl_respects_min_green_and_leaves_an_idle_green_at_once() -> None:
    controller = SotlController(threshold=1000, decision_interval=2)
    idle = snapshot([0, 0, 1, 0, 0, 0])  # nobody on the green, one car at red
    signal = engine(min_green=5)
    assert controller.choose(LAYOUT, idle, signal) == 0  # min green not reached yet
    for _ in range(5):
        signal.tick()
    assert signal.can_switch
    assert controller.choose(LAYOUT, idle, signal) == 1
    assert controller.choose(LAYOUT, snapshot([0, 0, 0, 0, 0, 0]), signal) == 0


@pytest.mark.parametrize("name", ["max-pressure", "greedy", "sotl"])
def test_decision_controllers_beat_fixed_time_on_the_grid(name: str) -> None:
    fixed = run_episode(RunSpec("grid3x3", seed=1, end=900))
    result = run_episode(RunSpec("grid3x3", controller=name, seed=1, end=900))
    assert result.metrics["vehicles"] == fixed.metrics["vehicles"]
    assert result.metrics["delay"] < fixed.metrics["delay"]
    again = run_episode(RunSpec("grid3x3", controller=name, seed=1, end=900))
    assert again.metrics == pytest.approx(result.metrics, rel=0, abs=0, nan_ok=True)
