"""Calibration to counts (the toolkit's route fit, or SUMO's routeSampler), checked by
simulating the result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import sumolib
from conftest import netconvert

from twin_traffic.calibrate import calibrate
from twin_traffic.counts import Count, read_counts, write_counts
from twin_traffic.errors import ScenarioError
from twin_traffic.scenario import load_scenario
from twin_traffic.sensors import add_sensors, record_counts
from twin_traffic.sumo_tools import write_sumocfg

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _copy_builtin(name: str, folder: Path, end: float) -> Path:
    """A built-in scenario's network and demand in a writable folder, with its own window."""
    source = load_scenario(name)
    folder.mkdir()
    for path in (source.net_file, *source.route_files):
        shutil.copy(path, folder / path.name)
    config = folder / f"{name}.sumocfg"
    return write_sumocfg(
        config, source.net_file.name, [p.name for p in source.route_files], end=end
    )


def test_round_trip_reproduces_recorded_counts(tmp_path: Path) -> None:
    """Counts of a known demand, calibrated from scratch, are reproduced with GEH < 5."""
    config = _copy_builtin("single", tmp_path / "single", end=1800)
    add_sensors(config)
    observed = record_counts(config, interval=900, seed=11, out=tmp_path / "counts.csv")
    assert len(observed) == 12 * 2  # 12 approach lanes x 2 intervals
    original_routes = (tmp_path / "single" / "single.rou.xml").read_text()

    before = sorted((p.name, p.stat().st_mtime_ns) for p in config.parent.iterdir())
    result = calibrate(config, tmp_path / "counts.csv", out=tmp_path / "calibrated", seed=5)

    # The demand is new: fitted vehicles over randomTrips' candidate routes, in a
    # new folder; the original scenario is untouched.
    assert result.route_file == tmp_path / "calibrated" / "single.calibrated.rou.xml"
    assert 'id="cal' in result.route_file.read_text()
    assert load_scenario(result.config).route_files == (result.route_file,)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in config.parent.iterdir()) == before
    assert (tmp_path / "single" / "single.rou.xml").read_text() == original_routes
    assert sum(c.count for c in observed) * 0.85 < result.vehicles
    # Checked by an independent simulation of the calibrated scenario with another seed.
    again = {(c.location, c.begin): c.count for c in record_counts(result.config, 900, seed=99)}
    fits = [abs(again[(c.location, c.begin)] - c.count) for c in observed]
    assert len(result.fits) == len(observed)
    assert result.share_ok >= 0.85 and result.accepted
    close = [fit <= 0.25 * c.count + 8 for fit, c in zip(fits, observed, strict=True)]
    assert sum(close) >= 0.85 * len(close)
    assert result.report.read_text().startswith("location,begin,end,observed,simulated,geh\n")
    assert result.plot is not None and result.plot.read_bytes()[:4] == b"\x89PNG"


def test_routesampler_stays_selectable(tmp_path: Path) -> None:
    config = _copy_builtin("single", tmp_path / "single", end=900)
    write_counts(record_counts(load_scenario(config), 900, seed=3), tmp_path / "c.csv")
    result = calibrate(
        config, tmp_path / "c.csv", out=tmp_path / "out", seed=1, plot=False,
        sampler="routesampler",
    )  # fmt: skip
    assert result.sampler == "routesampler" and result.summary()["sampler"] == "routesampler"
    assert result.share_ok >= 0.85
    with pytest.raises(ScenarioError, match="--sampler greedy: choose one of lp, routesampler"):
        calibrate(config, tmp_path / "c.csv", out=tmp_path / "x", sampler="greedy")


def test_calibration_ignores_a_wrong_starting_demand(tmp_path: Path) -> None:
    """Counts from a demand twice as heavy are still met: the old routes play no part."""
    config = _copy_builtin("single", tmp_path / "single", end=900)
    counts = record_counts(load_scenario(config), 900, seed=3)
    doubled = [Count(c.location, c.begin, c.end, 2 * c.count) for c in counts]
    write_counts(doubled, tmp_path / "double.csv")
    result = calibrate(
        config, tmp_path / "double.csv", out=tmp_path / "out", seed=1, plot=False, start="random"
    )
    assert result.plot is None and result.start == "random"
    # In `single` each vehicle passes exactly one loop: vehicles are the counts' sum.
    assert result.vehicles >= 0.95 * sum(c.count for c in doubled)
    assert result.share_ok >= 0.85


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped OSM extract as a scenario folder with its sensors."""
    from twin_traffic.osm import build_from_osm

    folder = tmp_path_factory.mktemp("town") / "town"
    build_from_osm(EXAMPLES / "town.osm", folder, end=3600)
    add_sensors(folder)
    return folder


def _counts(tmp_path: Path, rows: str) -> Path:
    path = tmp_path / "counts.csv"
    path.write_text("location,begin,end,count\n" + rows)
    return path


def test_unknown_locations_are_named(town: Path, tmp_path: Path) -> None:
    path = _counts(tmp_path, "e1_nowhere_0,0,900,10\nMainStreet,0,900,4\n104,0,900,3\n")
    with pytest.raises(ScenarioError) as error:
        calibrate(town, path, out=tmp_path / "out")
    assert str(error.value) == (
        f"{path}: unknown location(s) 'MainStreet', 'e1_nowhere_0': neither a detector of "
        "sensors.add.xml nor an edge of town.net.xml; fix the ids (detectors are listed in "
        "sensors.add.xml, written by 'twin-traffic scenario sensors')"
    )


def test_lane_area_detectors_are_not_counts(town: Path, tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="'e2_102_0' is a lane-area detector"):
        calibrate(town, _counts(tmp_path, "e2_102_0,0,900,10\n"), out=tmp_path / "out")


def test_an_edge_with_uncounted_loops_is_reported_not_guessed(town: Path, tmp_path: Path) -> None:
    path = _counts(tmp_path, "e1_104_0,0,900,10\n102,0,900,8\n")
    result = calibrate(town, path, out=tmp_path / "out", plot=False)
    assert result.unused == (
        ("e1_104_0", "e1_104_1 not counted in [0, 900), so the edge's count is unknown"),
    )
    assert [f.location for f in result.fits] == ["102", "e1_104_0"]  # both in the fit


def test_an_edge_counted_twice_is_refused(town: Path, tmp_path: Path) -> None:
    path = _counts(tmp_path, "e1_104_0,0,900,10\ne1_104_1,0,900,10\n104,0,900,20\n")
    with pytest.raises(ScenarioError, match="edge '104' is counted twice in \\[0, 900\\)"):
        calibrate(town, path, out=tmp_path / "out")


def test_counts_outside_the_window_are_refused(town: Path, tmp_path: Path) -> None:
    path = _counts(tmp_path, "104,3600,4500,10\n")
    with pytest.raises(ScenarioError, match=r"outside the scenario's window \[0, 3600\)"):
        calibrate(town, path, out=tmp_path / "out")


def test_counts_no_route_can_pass_cannot_be_matched(tmp_path: Path) -> None:
    # A bus-only branch at the signal: no car route passes it.
    nodes = (
        '<nodes><node id="A" x="0" y="0"/><node id="B" x="200" y="0" type="traffic_light"/>'
        '<node id="C" x="400" y="0"/><node id="D" x="200" y="200"/></nodes>'
    )
    edges = (
        '<edges><edge id="AB" from="A" to="B" numLanes="1" speed="13.89"/>'
        '<edge id="BC" from="B" to="C" numLanes="1" speed="13.89"/>'
        '<edge id="BD" from="B" to="D" numLanes="1" speed="13.89" allow="bus"/></edges>'
    )
    folder = tmp_path / "bus"
    folder.mkdir()
    net = netconvert(folder, nodes, edges)
    (folder / "r.rou.xml").write_text(
        '<routes><vehicle id="v" depart="0"><route edges="AB BC"/></vehicle></routes>'
    )
    config = write_sumocfg(folder / "bus.sumocfg", net.name, ["r.rou.xml"], end=900)
    path = _counts(tmp_path, "BD,0,900,30\nBC,0,900,30\n")
    with pytest.raises(ScenarioError) as error:
        calibrate(config, path, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written
    assert str(error.value) == (
        f"{path}: counts at BD cannot be matched: no route through the network passes "
        "edge(s) BD; check the location, or the network's connections there"
    )


def test_cli_calibrates_the_town_to_the_example_counts(town: Path, tmp_path: Path) -> None:
    work = tmp_path / "calibrated"
    command = [sys.executable, "-m", "twin_traffic.cli", "scenario", "calibrate", str(town)]
    result = subprocess.run(
        [*command, "--counts", str(EXAMPLES / "town-counts.csv"), "--seed", "1",
         "--out", str(work), "--format", "json"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["accepted"] and summary["share_geh_below_5"] >= 0.85
    # Each step is announced as it begins: the simulating ones take the time.
    steps = [line for line in result.stderr.splitlines() if line.startswith("calibrating (")]
    assert "candidate routes (cover)" in steps[0] and "checking the calibrated" in steps[-1]
    assert sum("simulated: " in line for line in steps) == 5  # rounds 0-4 of the default
    assert len(summary["fits"]) == len(read_counts(EXAMPLES / "town-counts.csv"))
    assert len(summary["worst_locations"]) == 5 and summary["uncovered"] == []
    assert (work / "calibration.png").exists() and (work / "calibration-intervals.png").exists()
    # A folder others may read, as mkdir would make it (not a temporary folder's 0700).
    umask = os.umask(0)
    os.umask(umask)
    assert work.stat().st_mode & 0o777 == 0o777 & ~umask
    assert len(read_counts(EXAMPLES / "town-counts.csv")) + 1 == len(
        (work / "calibration.csv").read_text().splitlines()
    )
    assert not (town / "calibration.csv").exists()
    again = subprocess.run(
        [*command, "--counts", str(EXAMPLES / "town-counts.csv"), "--out", str(work)],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 1 and "already exists and is not empty" in again.stderr
    bad = subprocess.run(
        [
            *command,
            "--out",
            str(tmp_path / "bad"),
            "--counts",
            str(_counts(tmp_path, "nowhere,0,900,1\n")),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("error: ") and "unknown location(s) 'nowhere'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_candidate_routes_that_turn_around_at_a_dead_end_are_left_out(tmp_path: Path) -> None:
    from twin_traffic.calibrate import _drop_turnarounds

    # A -- B -- C, with a side street B -- D: C is a dead end, B a junction.
    net = netconvert(
        tmp_path,
        '<nodes><node id="A" x="0" y="0"/><node id="B" x="100" y="0"/>'
        '<node id="C" x="200" y="0"/><node id="D" x="100" y="100"/></nodes>',
        "<edges>"
        + "".join(
            f'<edge id="{a}{b}" from="{a}" to="{b}" numLanes="1"/>'
            f'<edge id="{b}{a}" from="{b}" to="{a}" numLanes="1"/>'
            for a, b in (("A", "B"), ("B", "C"), ("B", "D"))
        )
        + "</edges>",
    )
    routes = tmp_path / "candidates.rou.xml"
    kept = ["AB BD", "AB BA", "CB BA"]  # a U-turn where B has other ways on stays
    dropped = ["AB BC CB BA", "BC CB BD"]  # into the dead end at C and back
    routes.write_text(
        "<routes>"
        + "".join(
            f'<vehicle id="v{i}" depart="0"><route edges="{edges}"/></vehicle>'
            for i, edges in enumerate(kept + dropped)
        )
        + "</routes>"
    )
    _drop_turnarounds(routes, sumolib.net.readNet(str(net), withInternal=False))
    left = [r.get("edges") for r in ET.parse(routes).getroot().iter("route")]
    assert left == kept
