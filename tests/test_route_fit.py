"""The route fit's lane model and linear programme on small networks built with netconvert."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import netconvert

from twin_traffic.counts import Count
from twin_traffic.route_fit import (
    Problem,
    observed_shares,
    onward_lanes,
    route_shares,
    solve,
    whole_vehicles,
)
from twin_traffic.sensors import Detector

# A two-lane approach AB into a 40 m link BC of three lanes, which splits at C into a
# straight exit CD (from BC's lanes 0 and 1) and a left exit CE (from lane 2): AB's right
# lane feeds BC's lanes 0 and 1, its left lane feeds lane 2.
NODES = (
    '<nodes><node id="A" x="0" y="0"/><node id="B" x="200" y="0"/>'
    '<node id="C" x="240" y="0"/><node id="D" x="440" y="0"/><node id="E" x="240" y="200"/>'
    "</nodes>"
)
EDGES = (
    '<edges><edge id="AB" from="A" to="B" numLanes="2" speed="13.89"/>'
    '<edge id="BC" from="B" to="C" numLanes="3" speed="13.89"/>'
    '<edge id="CD" from="C" to="D" numLanes="2" speed="13.89"/>'
    '<edge id="CE" from="C" to="E" numLanes="1" speed="13.89"/></edges>'
)
CONNECTIONS = (
    '<connection from="AB" to="BC" fromLane="0" toLane="0"/>'
    '<connection from="AB" to="BC" fromLane="0" toLane="1"/>'
    '<connection from="AB" to="BC" fromLane="1" toLane="2"/>'
    '<connection from="BC" to="CD" fromLane="0" toLane="0"/>'
    '<connection from="BC" to="CD" fromLane="1" toLane="1"/>'
    '<connection from="BC" to="CE" fromLane="2" toLane="0"/>'
)


@pytest.fixture
def net(tmp_path: Path) -> object:
    import sumolib

    path = netconvert(tmp_path, NODES, EDGES, CONNECTIONS)
    return sumolib.net.readNet(str(path), withInternal=False)


def loop(name: str, lane: str, pos: float) -> Detector:
    return Detector(name, "e1", lane, pos)


def test_a_vehicle_keeps_to_the_lanes_that_lead_along_its_route_across_a_short_edge(
    net: object,
) -> None:
    straight = [net.getEdge(e) for e in ("AB", "BC", "CD")]  # type: ignore[attr-defined]
    left = [net.getEdge(e) for e in ("AB", "BC", "CE")]  # type: ignore[attr-defined]
    # Both lanes of AB lead to BC, but BC is too short to change lanes on: a vehicle for
    # CD keeps right on AB, one for CE left.
    assert onward_lanes(straight, 0) == {"AB_0"}
    assert onward_lanes(left, 0) == {"AB_1"}
    assert onward_lanes(straight, 1) == {"BC_0", "BC_1"}
    assert onward_lanes(straight, 2) == {"CD_0", "CD_1"}  # the last edge: every lane


def test_shares_follow_the_lanes_a_route_can_be_on_at_each_loop(net: object) -> None:
    loops = [
        loop("ab_right", "AB_0", 100.0),
        loop("ab_left", "AB_1", 100.0),
        loop("bc_entry", "BC_1", 2.0),  # just past the junction
        loop("cd", "CD_0", 100.0),
    ]
    assert route_shares(["AB", "BC", "CD"], loops, net) == {
        ("ab_right", 0): 1.0,
        ("bc_entry", 0): 0.5,  # reached from AB_0: BC_0 or BC_1
        ("cd", 0): 0.5,
    }
    assert route_shares(["AB", "BC", "CE"], loops, net) == {("ab_left", 0): 1.0}
    # An edge count is passed by every route through the edge.
    assert route_shares(["AB", "BC", "CE"], loops, net, {"BC"})[("BC", 0)] == 1.0


def test_the_programme_reproduces_counts_a_demand_explains() -> None:
    counts = [
        Count("ab_right", 0, 900, 30), Count("ab_left", 0, 900, 12), Count("cd", 0, 900, 15),
        Count("ab_right", 900, 1800, 20), Count("ab_left", 900, 1800, 0),
        Count("cd", 900, 1800, 10),
    ]  # fmt: skip
    problem = Problem.from_counts(counts)
    assert problem.intervals == ((0.0, 900.0), (900.0, 1800.0))
    shares = [
        {("ab_right", 0): 1.0, ("cd", 0): 0.5},  # AB BC CD
        {("ab_left", 0): 1.0},  # AB BC CE
        {("cd", 0): 0.5},  # BC CD, entering at B
    ]
    flows = whole_vehicles(solve(problem, shares))
    # 30 straight on AB (half of them on CD_0), 12 left; no extra entries at B.
    assert flows == [[30, 20], [12, 0], [0, 0]]


def test_a_route_that_reaches_a_loop_an_interval_later_counts_there() -> None:
    problem = Problem.from_counts([Count("far", 0, 900, 0), Count("far", 900, 1800, 40)])
    flows = whole_vehicles(solve(problem, [{("far", 1): 1.0}]))
    assert flows == [[40, 0]]  # departing in the first interval, counted in the second


def test_measured_shares_leave_out_vehicles_that_never_arrived() -> None:
    intervals = [(0.0, 900.0), (900.0, 1800.0)]
    route_of = {"a": 0, "b": 0, "c": 0, "d": 1}
    departs = {"a": 10.0, "b": 20.0, "c": 800.0, "d": 30.0}
    passes = [("x", "a", 50.0), ("y", "b", 60.0), ("x", "c", 950.0), ("x", "d", 40.0)]
    shares, vehicles = observed_shares(passes, route_of, departs, intervals, {"a", "b", "c"})
    # d is still queued at the end: its route is not measured.
    assert vehicles == {0: 3}
    assert shares == {0: {("x", 0): 1 / 3, ("y", 0): 1 / 3, ("x", 1): 1 / 3}}


def test_whole_vehicles_keep_each_intervals_total() -> None:
    flows = whole_vehicles([[0.4, 1.5], [0.4, 1.5], [0.2, 0.0]])
    assert [sum(col) for col in zip(*flows, strict=True)] == [1, 3]
