"""Virtual sensors placed on a real network and counted by a real SUMO run."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import sumolib

from twin_traffic.counts import Count, geh, read_counts, rebin, write_counts
from twin_traffic.errors import ScenarioError
from twin_traffic.scenario import load_scenario
from twin_traffic.sensors import (
    SENSORS_FILE,
    STOP_LINE_OFFSET,
    add_sensors,
    record_counts,
    sensor_layout,
)


def test_every_signal_approach_lane_gets_a_loop_and_an_area_detector() -> None:
    scenario = load_scenario("arterial")
    net = sumolib.net.readNet(str(scenario.net_file))
    approach = {
        lane.getID() for tls in net.getTrafficLights() for lane, _, _ in tls.getConnections()
    }
    detectors = sensor_layout(scenario.net_file)
    loops = {d.lane: d for d in detectors if d.kind == "e1"}
    areas = {d.lane: d for d in detectors if d.kind == "e2"}
    assert set(loops) == set(areas) == approach
    for lane, loop in loops.items():
        length = net.getLane(lane).getLength()
        assert loop.pos == pytest.approx(length - STOP_LINE_OFFSET, abs=0.01)
        assert loop.id == f"e1_{lane}" and loop.edge == net.getLane(lane).getEdge().getID()
        assert areas[lane].pos + areas[lane].length == pytest.approx(length, abs=0.02)


def test_add_sensors_lists_them_in_the_config(road: Path) -> None:
    path, detectors = add_sensors(road.parent)
    assert path == road.parent / SENSORS_FILE
    assert [d.id for d in detectors] == ["e1_AB_0", "e2_AB_0"]
    scenario = load_scenario(road)
    assert scenario.additional_files[-1] == path
    add_sensors(road)  # again: listed once
    assert ET.parse(road).getroot().find("input/additional-files").get("value") == (  # type: ignore[union-attr]
        f"plan.add.xml,{SENSORS_FILE}"
    )


def test_loops_count_each_vehicle_in_its_interval(road: Path, tmp_path: Path) -> None:
    # v0 departs at 0 s and v1 at 5 s on 200 m of road at 13.89 m/s; the signal is green
    # until 30 s, so v0 passes the loop (198 m) at about 14 s and v1 about 5 s later.
    add_sensors(road.parent)
    counts = record_counts(road, interval=30, out=tmp_path / "counts.csv")
    assert [(c.location, c.begin, c.end, c.count) for c in counts] == [
        ("e1_AB_0", 0, 30, 2),
        ("e1_AB_0", 30, 60, 0),
        ("e1_AB_0", 60, 90, 0),
        ("e1_AB_0", 90, 120, 0),
    ]
    assert read_counts(tmp_path / "counts.csv") == counts
    fine = [c.count for c in record_counts(road, interval=10)]
    assert fine[:2] == [0, 1] and sum(fine) == 2
    assert sorted(p.name for p in road.parent.iterdir()) == [  # sensors write nothing there
        "counts.csv", "n.edg.xml", "n.nod.xml", "plan.add.xml", "road.net.xml",
        "road.rou.xml", "road.sumocfg", SENSORS_FILE,
    ]  # fmt: skip


def test_counts_csv_round_trip_and_rebinning(tmp_path: Path) -> None:
    counts = [Count("e1_a", 0, 300, 10), Count("e1_a", 300, 600, 5), Count("E", 0, 300, 2)]
    path = write_counts(counts, tmp_path / "c.csv")
    assert path.read_text().splitlines()[0] == "location,begin,end,count"
    assert read_counts(path) == counts
    assert rebin(counts, 900, path) == [Count("E", 0, 900, 2), Count("e1_a", 0, 900, 15)]
    with pytest.raises(ScenarioError, match="straddles two 200 s intervals"):
        rebin(counts, 200, path)
    # From a scenario's begin, as `scenario counts` counts from it.
    late = [Count("e1_a", 700, 1000, 4), Count("e1_a", 1000, 1600, 6)]
    assert rebin(late, 900, path, start=700) == [Count("e1_a", 700, 1600, 10)]


def test_counts_as_spreadsheets_write_them_are_read(tmp_path: Path) -> None:
    path = tmp_path / "counts.csv"
    # Excel's "CSV UTF-8" (a byte-order mark) and a header with spaces after the commas.
    path.write_bytes("\ufefflocation, begin, end, count\r\nA, 0, 900, 3\r\n".encode())
    assert read_counts(path) == [Count("A", 0, 900, 3)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("location,begin,count\n", "missing column(s) end; the header must be"),
        ("location,begin,end,count\nA,0,900,-3\n", "line 2: count -3 for 'A' is not a number"),
        ("location,begin,end,count\nA,900,0,3\n", "line 2: interval [900, 0) is empty"),
        ("location,begin,end,count\nA,0,x,3\n", "line 2: begin, end and count must be numbers"),
        ("location,begin,end,count\nA,0,9,3\nA,0,9,4\n", "'A' is counted twice in [0, 9)"),
        (
            "location,begin,end,count\nA,900,1800,3\nA,0,1000,4\n",
            "'A' is counted twice in [0, 1000) and [900, 1800), which overlap",
        ),
        ("location,begin,end,count\nA,nan,900,3\n", "line 2: interval [nan, 900) is empty"),
        ("location,begin,end,count\n", "no counts; add rows of location,begin,end,count"),
    ],
)
def test_bad_counts_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "counts.csv"
    path.write_text(text)
    with pytest.raises(ScenarioError) as error:
        read_counts(path)
    assert str(error.value).startswith(str(path))
    assert message in str(error.value)


def test_geh() -> None:
    assert geh(100, 100) == 0
    assert geh(0, 0) == 0
    assert geh(150, 100) == pytest.approx(((2 * 50**2) / 250) ** 0.5)
