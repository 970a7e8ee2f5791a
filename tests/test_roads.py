"""Road stretches: approach and exit lanes extended over junctions without signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import VTYPE, netconvert

from twin_traffic.features import Observer
from twin_traffic.network import load_network
from twin_traffic.roads import Reach, road_stretches, signal_neighbours, stretch
from twin_traffic.scenario import load_scenario
from twin_traffic.sim import SimConfig, Simulation

LENGTHS = {"a": 20.0, "u": 200.0, "v": 100.0, "side": 50.0, "e": 10.0, "s1": 100.0, "s2": 40.0}
# u feeds the approach a and a side lane; v feeds u; the exit e splits into s1 and s2.
SUCCESSORS: dict[str, tuple[str, ...]] = {
    "v": ("u",),
    "u": ("a", "side"),
    "a": (),
    "side": (),
    "e": ("s1", "s2"),
    "s1": (),
    "s2": (),
}


def test_an_approach_takes_the_share_of_its_feeder_within_reach() -> None:
    found = road_stretches(["a"], [], SUCCESSORS, LENGTHS, reach=150.0)
    # u splits its flow over two lanes; 130 of its 200 m lie within 150 m of a's stop line.
    assert found == {"a": pytest.approx({"u": 0.5 * 130 / 200})}


def test_a_longer_reach_goes_on_upstream_with_the_flow_share() -> None:
    found = road_stretches(["a"], [], SUCCESSORS, LENGTHS, reach=300.0)
    assert found["a"] == pytest.approx({"u": 0.5, "v": 0.5 * 80 / 100})


def test_an_exit_takes_its_successors_by_the_share_it_sends_them() -> None:
    found = road_stretches([], ["e"], SUCCESSORS, LENGTHS, reach=50.0)
    assert found == {"e": pytest.approx({"s1": 0.5 * 40 / 100, "s2": 0.5})}


def test_no_reach_and_no_free_neighbours_add_nothing() -> None:
    assert road_stretches(["a"], ["e"], SUCCESSORS, LENGTHS, reach=0.0) == {}
    assert road_stretches(["v"], ["a"], SUCCESSORS, LENGTHS, reach=500.0) == {}


def test_a_loop_of_lanes_is_visited_once() -> None:
    ring = {"x": ("y",), "y": ("x",)}
    assert stretch("x", ring, ring, {"x": 0.0, "y": 0.0}, 100.0, upstream=True) == {"y": 1.0}


def test_signals_are_neighbours_along_the_road_up_to_the_next_signal() -> None:
    # Signal 0's exit x0 runs through an unsignalled junction (x0 -> m) to signal 1's
    # approach a1; signal 1's exit x1 is signal 2's approach; signal 2's exit leaves the
    # network; signal 3 lies beyond signal 1 along m's other branch, past signal 1's approach.
    incoming = [("a0",), ("a1",), ("x1",), ("a3",)]
    outgoing = [("x0",), ("x1",), ("x2",), ()]
    successors = {"x0": ("m",), "m": ("a1", "n"), "n": ("a1",), "a1": ("a3",), "x2": ()}
    neighbours = signal_neighbours(incoming, outgoing, successors)
    # 0 -> 1 through m and n; 1 -> 2 directly; 3 is reached only through signal 1's
    # approach, where the road stops.
    assert neighbours == [frozenset({1}), frozenset({0, 2}), frozenset({1}), frozenset()]


def test_reach_adds_each_stretch_to_its_own_lane_from_the_values_as_read() -> None:
    reach = Reach(np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([0.5, 1.0, 0.25]))
    values = np.array([1.0, 2.0, 4.0])
    assert reach.extend(values).tolist() == [1.0 + 1.0 + 4.0, 2.0 + 1.0, 4.0]
    assert Reach.empty().extend(values) is values


# A road A -> M -> B -> C: M joins the side street S without a signal, 12 m before the
# signal at B, so the queue for B's signal stands on AM and SM.
NODES = """<nodes>
  <node id="A" x="0" y="0" type="priority"/>
  <node id="S" x="188" y="-150" type="priority"/>
  <node id="M" x="188" y="0" type="priority"/>
  <node id="B" x="200" y="0" type="traffic_light"/>
  <node id="C" x="400" y="0" type="priority"/>
</nodes>
"""
EDGES = """<edges>
  <edge id="AM" from="A" to="M" numLanes="1" speed="13.89" priority="2"/>
  <edge id="SM" from="S" to="M" numLanes="1" speed="13.89" priority="1"/>
  <edge id="MB" from="M" to="B" numLanes="1" speed="13.89" priority="2"/>
  <edge id="BC" from="B" to="C" numLanes="1" speed="13.89" priority="2"/>
</edges>
"""


def _short_approach(folder: Path) -> Path:
    net = netconvert(folder, NODES, EDGES)
    cars = "\n".join(
        f'  <vehicle id="v{i}" type="car" route="r" depart="{2 * i}" departSpeed="max"/>'
        for i in range(12)
    )
    (folder / "road.rou.xml").write_text(
        f'<routes>\n  {VTYPE}\n  <route id="r" edges="AM MB BC"/>\n{cars}\n</routes>\n'
    )
    (folder / "plan.add.xml").write_text(
        '<additional><tlLogic id="B" type="static" programID="red" offset="0">'
        '<phase duration="1000" state="r"/></tlLogic></additional>'
    )
    config = folder / "road.sumocfg"
    config.write_text(
        f'<configuration><input><net-file value="{net.name}"/>'
        '<route-files value="road.rou.xml"/><additional-files value="plan.add.xml"/></input>'
        '<time><begin value="0"/><end value="200"/></time></configuration>'
    )
    return config


def test_the_network_knows_which_connections_no_signal_controls(tmp_path: Path) -> None:
    network = load_network(load_scenario(str(_short_approach(tmp_path))))
    assert network.free_successors["AM_0"] == ("MB_0",)
    assert network.free_successors["SM_0"] == ("MB_0",)
    assert network.free_successors["MB_0"] == ()  # through the signal at B


def test_a_queue_behind_a_short_approach_counts_for_its_movement(tmp_path: Path) -> None:
    scenario = load_scenario(str(_short_approach(tmp_path)))
    network = load_network(scenario)
    lane_only = Observer(network, ["B"], observation=(), reward="queue")
    road = Observer(network, ["B"], observation=(), reward="queue", reach=150.0)
    sim = Simulation(scenario, 0, None, SimConfig()).start()
    try:
        for observer in (lane_only, road):
            observer.attach(sim)
        sim.step(120.0)  # twelve cars queued at the red light, most of them on AM
        alone, whole = lane_only.read(sim.time), road.read(sim.time)
        on_feeder = sim.api.lane.getLastStepHaltingNumber("AM_0")
    finally:
        sim.close()
    approach = lane_only.lanes.index("MB_0")
    assert alone.halting[approach] <= 2 < on_feeder  # the 12 m lane holds one or two cars
    # Within 150 m of the stop line: MB and the part of AM nearest to it, all of whose
    # flow goes on to MB.
    lengths = network.lane_lengths
    within = (150.0 - lengths["MB_0"]) / lengths["AM_0"]
    expected = alone.halting[approach] + within * on_feeder
    assert whole.halting[road.lanes.index("MB_0")] == pytest.approx(expected)
    assert whole.halting[road.lanes.index("MB_0")] > 8
