"""Counts and calibration at a city's own loops: their ids, positions, gaps and outputs."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import sumolib
from conftest import netconvert, write_scenario

from twin_traffic.calibrate import _targets, calibrate
from twin_traffic.counts import Count, missing_counts, read_counts, write_counts
from twin_traffic.errors import ScenarioError
from twin_traffic.redirect import OUTPUTS_DIR, scenario_args
from twin_traffic.scenario import load_scenario
from twin_traffic.sensors import detector_source, record_counts
from twin_traffic.sim import sumo_binary
from twin_traffic.sumo_tools import write_sumocfg

# A city's loops: one mid-block on the approach, one past the signal, both declaring the
# output file the city's own runs write.
CITY_LOOPS = """<additional>
    <e1Detector id="via_roma_mid" lane="AB_0" pos="100" freq="1800" file="e1_output.xml"/>
    <!--e1Detector id="via_roma_old" lane="AB_0" pos="20" freq="1800" file="e1_output.xml"/-->
    <inductionLoop id="via_roma_exit" lane="BC_0" pos="50" period="1800" file="e1_output.xml"/>
</additional>
"""


@pytest.fixture
def city(tmp_path: Path) -> Path:
    """The one-signal road with the city's loops and a .sumocfg declaring its own outputs."""
    folder = tmp_path / "city"
    folder.mkdir()
    config = write_scenario(
        folder, [("v0", 0), ("v1", 5), ("v2", 40)], [(30, "G"), (3, "y"), (30, "r")], end=120
    )
    (folder / "loops.add.xml").write_text(CITY_LOOPS)
    text = config.read_text().replace(
        '<additional-files value="plan.add.xml"/>',
        '<additional-files value="plan.add.xml,loops.add.xml"/>',
    )
    outputs = (
        '  <output><tripinfo-output value="tripinfos.xml"/></output>\n'
        '  <report><log value="sumo_log.txt"/></report>\n</configuration>'
    )
    config.write_text(text.replace("</configuration>", outputs))
    return config


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_counts_are_keyed_by_the_scenarios_own_loops(city: Path) -> None:
    detectors, origin = detector_source(load_scenario(city))
    assert [d.id for d in detectors] == ["via_roma_mid", "via_roma_exit"]  # comment skipped
    assert origin == "loops.add.xml"
    counts = record_counts(city, interval=60)
    # v0 and v1 pass the mid-block loop (100 m) in the first minute, v2 at about 47 s.
    assert [(c.location, c.begin, c.count) for c in counts] == [
        ("via_roma_mid", 0, 3),
        ("via_roma_exit", 0, 2),
        ("via_roma_mid", 60, 0),
        ("via_roma_exit", 60, 1),
    ]


def test_counts_on_a_read_only_copy_leave_it_unchanged(city: Path, tmp_path: Path) -> None:
    before = snapshot(city.parent)
    for path in [city.parent, *city.parent.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "twin_traffic.cli", "scenario", "counts", str(city),
             "--out", str(tmp_path / "counts.csv"), "--interval", "60"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        for path in [city.parent, *city.parent.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert done.returncode == 0, done.stderr
    assert "2 loops × 2 intervals, 6 vehicles counted" in done.stdout
    assert snapshot(city.parent) == before
    assert {c.location for c in read_counts(tmp_path / "counts.csv")} == {
        "via_roma_mid",
        "via_roma_exit",
    }


def test_sumo_detector_output_is_read_as_counts(city: Path, tmp_path: Path) -> None:
    # The city's own output file, written by a real SUMO run (redirected to tmp_path).
    scenario = load_scenario(city)
    args = scenario_args(scenario, (), tmp_path)
    subprocess.run([str(sumo_binary()), *args, "--seed", "0"], check=True, capture_output=True)
    counts = read_counts(tmp_path / OUTPUTS_DIR / "e1_output.xml")
    assert sorted((c.location, c.begin, c.end, c.count) for c in counts) == [
        ("via_roma_exit", 0, 120, 3),
        ("via_roma_mid", 0, 120, 3),
    ]
    bad = tmp_path / "bad.xml"
    bad.write_text('<detector><interval begin="0" end="60" id="x"/></detector>')
    with pytest.raises(ScenarioError, match=r'bad\.xml: <interval id="x"> lacks numeric'):
        read_counts(bad)


def test_a_missing_interval_is_reported_not_guessed() -> None:
    counts = [Count("a", 0, 900, 5), Count("b", 0, 900, 4), Count("a", 900, 1800, 6)]
    assert missing_counts(counts) == [("b", 900.0, 1800.0)]


# A T junction: AB leads straight on to BC and left to BD.
T_NODES = (
    '<nodes><node id="A" x="0" y="0"/><node id="B" x="200" y="0" type="traffic_light"/>'
    '<node id="C" x="400" y="0"/><node id="D" x="200" y="200"/></nodes>'
)
T_EDGES = (
    '<edges><edge id="AB" from="A" to="B" numLanes="2" speed="13.89"/>'
    '<edge id="BC" from="B" to="C" numLanes="1" speed="13.89"/>'
    '<edge id="BD" from="B" to="D" numLanes="1" speed="13.89"/></edges>'
)


def _loops(path: Path, rows: list[tuple[str, str, float]]) -> Path:
    lines = [
        f'<e1Detector id="{i}" lane="{lane}" pos="{pos}" file="NUL"/>' for i, lane, pos in rows
    ]
    path.write_text("<additional>" + "".join(lines) + "</additional>")
    return path


def test_a_mid_block_loop_counts_what_passes_it(tmp_path: Path) -> None:
    net = netconvert(tmp_path, T_NODES, T_EDGES)
    mid = {d.id: d for d in _read(_loops(tmp_path / "mid.add.xml", [
        ("m0", "AB_0", 100.0), ("m1", "AB_1", 100.0), ("s0", "AB_0", -2.0),
    ]))}  # fmt: skip
    counts = [Count("m0", 0, 900, 30), Count("m1", 0, 900, 12), Count("s0", 0, 900, 30)]
    targets, unused = _targets(counts, mid, net, tmp_path / "c.csv")
    # Mid-block, both lanes: one edge count; the stop-line loop (on one lane of two) cannot
    # tell the edge's count, so it is reported.
    assert targets.edges == {(0.0, 900.0): {"AB": 42}} and targets.turns == {}
    assert unused == [("s0", "loops cover lane(s) AB_0 of 2, so the edge's count is unknown")]
    stop = {d.id: d for d in _read(_loops(tmp_path / "stop.add.xml", [
        ("s0", "AB_0", -2.0), ("s1", "AB_1", -2.0),
    ]))}  # fmt: skip
    targets, unused = _targets(
        [Count("s0", 0, 900, 30), Count("s1", 0, 900, 12)], stop, net, tmp_path / "c.csv"
    )
    # At the stop line the lanes tell the turns.
    assert targets.edges == {} and unused == []
    assert sum(targets.turns[(0.0, 900.0)].values()) == 42


# A three-lane approach whose right lane also serves a bus-only street.
CROSS_NODES = (
    '<nodes><node id="A" x="0" y="0"/><node id="B" x="200" y="0" type="traffic_light"/>'
    '<node id="C" x="400" y="0"/><node id="D" x="200" y="200"/><node id="E" x="200" y="-200"/>'
    "</nodes>"
)
CROSS_EDGES = (
    '<edges><edge id="AB" from="A" to="B" numLanes="3" speed="13.89"/>'
    '<edge id="BC" from="B" to="C" numLanes="2" speed="13.89"/>'
    '<edge id="BD" from="B" to="D" numLanes="1" speed="13.89"/>'
    '<edge id="BE" from="B" to="E" numLanes="1" speed="13.89" allow="bus"/></edges>'
)


def _cross(folder: Path, connections: str | None = None) -> Path:
    """The three-lane approach (lane 0 right to the bus street and straight, lane 1
    straight, lane 2 left), with ``connections`` replacing the approach's own."""
    return netconvert(folder, CROSS_NODES, CROSS_EDGES, connections)


def test_stop_line_loops_on_some_lanes_tell_the_turns_of_those_lanes(tmp_path: Path) -> None:
    net = _cross(tmp_path)
    two = {d.id: d for d in _read(_loops(tmp_path / "two.add.xml", [
        ("s0", "AB_0", -2.0), ("s1", "AB_1", -2.0),
    ]))}  # fmt: skip
    counts = [Count("s0", 0, 900, 20), Count("s1", 0, 900, 30)]
    targets, unused = _targets(counts, two, net, tmp_path / "c.csv")
    # Both straight lanes are counted: the through movement is known; the left turn has
    # its own, uncounted lane and stays free. No car turns into the bus street.
    assert unused == [] and targets.edges == {}
    assert targets.turns == {(0.0, 900.0): {("AB", "BC"): 50.0}}
    three = {
        **two,
        **{d.id: d for d in _read(_loops(tmp_path / "l.add.xml", [("s2", "AB_2", -2.0)]))},
    }
    targets, unused = _targets([*counts, Count("s2", 0, 900, 7)], three, net, tmp_path / "c.csv")
    assert unused == []
    assert targets.turns == {(0.0, 900.0): {("AB", "BC"): 50.0, ("AB", "BD"): 7.0}}


def test_a_lane_that_leads_nowhere_is_not_needed_for_the_edge_count(tmp_path: Path) -> None:
    # Lane 2 of the approach ends at the junction: cars pass on lanes 0 and 1 only.
    net = _cross(tmp_path, (
        '<connection from="AB" to="BC" fromLane="0" toLane="0"/>'
        '<connection from="AB" to="BC" fromLane="1" toLane="1"/>'
    ))  # fmt: skip
    mid = {d.id: d for d in _read(_loops(tmp_path / "mid.add.xml", [
        ("m0", "AB_0", 100.0), ("m1", "AB_1", 100.0),
    ]))}  # fmt: skip
    counts = [Count("m0", 0, 900, 30), Count("m1", 0, 900, 12)]
    targets, unused = _targets(counts, mid, net, tmp_path / "c.csv")
    assert unused == [] and targets.edges == {(0.0, 900.0): {"AB": 42}}


def test_covering_routes_pass_every_counted_turn(tmp_path: Path) -> None:
    from twin_traffic.calibrate import Targets, _add_covering_routes

    net = _cross(tmp_path)
    routes = tmp_path / "candidates.rou.xml"
    # Every counted edge is passed, but no candidate turns from AB into BD.
    routes.write_text('<routes><route id="r0" edges="AB BC"/><route id="r1" edges="BD"/></routes>')
    targets = Targets({}, {(0.0, 900.0): {("AB", "BC"): 5.0, ("AB", "BD"): 3.0}})
    _add_covering_routes(routes, sumolib.net.readNet(str(net), withInternal=False), targets)
    text = routes.read_text()
    assert 'edges="AB BC"' in text and 'edges="AB BD"' in text


def _read(path: Path) -> list:  # type: ignore[type-arg]
    from twin_traffic.sensors import read_detectors

    return read_detectors(path)


def test_a_loop_no_route_can_reach_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "bus"
    folder.mkdir()
    edges = T_EDGES.replace(
        'id="BD" from="B" to="D" numLanes="1"', 'id="BD" from="B" to="D" numLanes="1" allow="bus"'
    )
    net = netconvert(folder, T_NODES, edges)
    (folder / "r.rou.xml").write_text(
        '<routes><vehicle id="v" depart="0"><route edges="AB BC"/></vehicle></routes>'
    )
    config = write_sumocfg(folder / "bus.sumocfg", net.name, ["r.rou.xml"], end=900)
    loops = _loops(tmp_path / "city.add.xml", [("bus_gate", "BD_0", 50.0), ("main", "BC_0", 50.0)])
    path = tmp_path / "counts.csv"
    write_counts([Count("bus_gate", 0, 900, 20), Count("main", 0, 900, 30)], path)
    with pytest.raises(ScenarioError) as error:
        calibrate(config, path, out=tmp_path / "out", detectors_file=loops)
    assert str(error.value).startswith(f"{path}: counts at bus_gate cannot be matched: no route")
    assert not (tmp_path / "out").exists()
