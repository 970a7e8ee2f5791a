"""Scenarios built from an OpenStreetMap extract with netconvert, randomTrips and duarouter."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from twin_traffic.errors import ScenarioError
from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.osm import build_from_osm, check_osm
from twin_traffic.scenario import load_scenario

TOWN = Path(__file__).resolve().parent.parent / "examples" / "town.osm"


def test_town_builds_and_runs_under_fixed_and_actuated(tmp_path: Path) -> None:
    built = build_from_osm(TOWN, tmp_path / "town", seed=3, end=600)
    scenario = load_scenario(built.config)
    # The staggered Lindenallee crossing (two tagged nodes) is one joined controller; the
    # Bahnhofstrasse crossing, tagged on its approaches, is found by --tls.guess-signals.
    assert len(scenario.traffic_lights) == 2
    assert any(light.startswith("cluster_") for light in scenario.traffic_lights)
    assert (scenario.begin, scenario.end) == (0.0, 600.0)
    assert built.vehicles == pytest.approx(600 / 2.5, abs=5)
    net = built.net_file.read_text()
    assert "footway" not in net  # cars only
    delays = {}
    for controller in ("fixed", "actuated"):
        result = run_episode(RunSpec(str(built.config), controller=controller, end=300))
        assert result.metrics["throughput"] > 50
        assert result.metrics["teleports"] == 0
        delays[controller] = result.metrics["delay"]
    assert delays["fixed"] != delays["actuated"]


def test_demand_follows_the_seed(tmp_path: Path) -> None:
    first = build_from_osm(TOWN, tmp_path / "a", seed=1, end=300).route_file.read_text()
    again = build_from_osm(TOWN, tmp_path / "b", seed=1, end=300).route_file.read_text()
    other = build_from_osm(TOWN, tmp_path / "c", seed=2, end=300).route_file.read_text()

    def strip(text: str) -> str:  # randomTrips stamps the date and the paths
        return re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)

    assert strip(first) == strip(again)
    assert strip(first) != strip(other)


def _osm(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "area.osm"
    path.write_text(text)
    return path


def test_extract_without_signals_is_refused(tmp_path: Path) -> None:
    no_signals = _osm(tmp_path, TOWN.read_text().replace('v="traffic_signals"', 'v="stop"'))
    with pytest.raises(ScenarioError) as error:
        build_from_osm(no_signals, tmp_path / "out")
    assert str(error.value) == (
        f"{no_signals}: no traffic signals (no <node> tagged highway=traffic_signals), so "
        "there is nothing to control; export an area with signalised intersections"
    )
    assert not (tmp_path / "out").exists()


def test_extract_without_roads_is_refused(tmp_path: Path) -> None:
    paths = _osm(
        tmp_path,
        '<osm version="0.6"><node id="1" lat="52.52" lon="13.40">'
        '<tag k="highway" v="traffic_signals"/></node><node id="2" lat="52.521" lon="13.40"/>'
        '<way id="5"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/></way></osm>',
    )
    with pytest.raises(ScenarioError, match=r"area\.osm: no roads for cars \(no <way> tagged"):
        check_osm(paths)


def test_a_file_that_is_not_osm_is_refused(tmp_path: Path) -> None:
    net = _osm(tmp_path, "<net></net>")
    with pytest.raises(ScenarioError, match=r"not an OpenStreetMap extract \(root element <net>"):
        check_osm(net)
    broken = _osm(tmp_path, "<osm><node")
    with pytest.raises(ScenarioError, match=r"area\.osm: not valid XML \(line 1"):
        check_osm(broken)


def test_signals_off_the_roads_are_refused(tmp_path: Path) -> None:
    # The only signal is tagged on a footway, which the car network drops.
    area = _osm(
        tmp_path,
        '<osm version="0.6">'
        '<node id="1" lat="52.5200" lon="13.4000"/><node id="2" lat="52.5200" lon="13.4050"/>'
        '<node id="3" lat="52.5210" lon="13.4020"><tag k="highway" v="traffic_signals"/></node>'
        '<node id="4" lat="52.5220" lon="13.4020"/>'
        '<way id="5"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way>'
        '<way id="6"><nd ref="3"/><nd ref="4"/><tag k="highway" v="footway"/></way></osm>',
    )
    with pytest.raises(ScenarioError) as error:
        build_from_osm(area, tmp_path / "out")
    assert str(error.value) == (
        f"{area}: its highway=traffic_signals nodes are not on intersections of car roads, "
        "so the network has no signals; export an area with signalised intersections"
    )
    # Nothing half-built is left: no folder, no hidden staging folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["area.osm"]


def test_a_non_empty_out_is_refused_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "town"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ScenarioError, match="--out is not empty; choose a new folder or pass"):
        build_from_osm(TOWN, out, end=120)
    # --force replaces a scenario folder only: these notes are not one.
    with pytest.raises(ScenarioError, match=r"this one holds no \.sumocfg"):
        build_from_osm(TOWN, out, end=120, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (out / "town.sumocfg").write_text("<configuration/>")  # an older build
    built = build_from_osm(TOWN, out, end=120, force=True)
    assert built.config == out / "town.sumocfg" and load_scenario(built.config).end == 120
    assert not (out / "notes.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["town"]  # no staging left
    monkeypatch.chdir(out)
    with pytest.raises(ScenarioError, match="--out holds the current folder"):
        build_from_osm(TOWN, Path("."), end=120, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["town"]


def test_cli_from_osm(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "twin_traffic.cli", "scenario", "from-osm"]
    result = subprocess.run(
        [*command, str(TOWN), "--out", str(tmp_path / "t"), "--end", "600"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok {tmp_path / 't' / 'town.sumocfg'}: 2 signals")
    missing = subprocess.run(
        [*command, str(tmp_path / "none.osm"), "--out", str(tmp_path / "u")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"error: {tmp_path / 'none.osm'}: OSM file not found; check the path (or its spelling)"
    )
    again = subprocess.run(
        [*command, str(TOWN), "--out", str(tmp_path / "t")], capture_output=True, text=True
    )
    assert again.returncode == 1 and again.stderr.strip() == (
        f"error: {tmp_path / 't'}: --out is not empty; choose a new folder or pass --force "
        "to replace it"
    )
