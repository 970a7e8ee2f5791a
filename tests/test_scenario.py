"""Scenario loading and validation: each bad input gets one clear message naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import netconvert, write_scenario

from twin_traffic.errors import ScenarioError
from twin_traffic.scenario import builtin_scenarios, load_scenario

BUILTINS = ["single", "arterial", "grid3x3", "mixed"]


def test_every_builtin_scenario_loads_with_two_demand_levels() -> None:
    names = builtin_scenarios()
    for base in BUILTINS:
        for name in (base, f"{base}-high"):
            scenario = load_scenario(name)
            assert scenario.builtin and scenario.traffic_lights
            assert (scenario.begin, scenario.end) == (0, 3600)
            assert scenario.config_file == names[name]


def test_time_window_comes_from_the_config_and_can_be_overridden(road: Path) -> None:
    assert (load_scenario(road).begin, load_scenario(road).end) == (0, 120)
    scenario = load_scenario(road, begin=10, end=50)
    assert (scenario.begin, scenario.end) == (10, 50)
    assert scenario.sumo_args()[-4:] == ["--begin", "10", "--end", "50"]


def test_net_and_routes_pair_loads(road: Path) -> None:
    scenario = load_scenario(
        road.parent / "road.net.xml", routes=[road.parent / "road.rou.xml"], end=60
    )
    assert scenario.name == "road" and scenario.traffic_lights == ("B",)


def test_user_sumocfg_with_relative_paths_elsewhere_on_disk(tmp_path: Path) -> None:
    source = builtin_scenarios()["single"].parent
    data = tmp_path / "city" / "data"
    data.mkdir(parents=True)
    for name in ("single.net.xml", "single.rou.xml"):
        shutil.copy(source / name, data / name)
    config = tmp_path / "city" / "configs" / "mine.sumocfg"
    config.parent.mkdir()
    config.write_text(
        '<configuration><input><net-file value="../data/single.net.xml"/>'
        '<route-files value="../data/single.rou.xml"/></input>'
        '<time><begin value="0"/><end value="900"/></time></configuration>'
    )
    scenario = load_scenario(config)
    assert scenario.name == "mine" and scenario.net_file == (data / "single.net.xml").resolve()
    assert scenario.route_files == ((data / "single.rou.xml").resolve(),)


def _message(excinfo: pytest.ExceptionInfo[ScenarioError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_missing_sumocfg(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(tmp_path / "nowhere.sumocfg")
    assert "nowhere.sumocfg: scenario configuration not found" in _message(excinfo)


def test_missing_route_file(road: Path) -> None:
    (road.parent / "road.rou.xml").unlink()
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(road)
    message = _message(excinfo)
    assert "road.rou.xml: route file named in road.sumocfg not found" in message


def test_malformed_network(road: Path) -> None:
    net = road.parent / "road.net.xml"
    net.write_text(net.read_text()[:300])
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(road)
    message = _message(excinfo)
    assert str(net) in message and "the network is not valid XML" in message
    assert "line" in message


def test_route_with_unknown_edge(road: Path) -> None:
    routes = road.parent / "road.rou.xml"
    routes.write_text(routes.read_text().replace('edges="AB BC"', 'edges="AB XY"'))
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(road)
    message = _message(excinfo)
    assert str(routes) in message
    assert "<route id=\"r\"> uses edge 'XY', which is not in road.net.xml" in message


def test_network_without_signals(tmp_path: Path) -> None:
    nodes = '<nodes><node id="A" x="0" y="0"/><node id="B" x="200" y="0"/></nodes>'
    edges = '<edges><edge id="AB" from="A" to="B"/></edges>'
    net = netconvert(tmp_path, nodes=nodes, edges=edges)
    routes = tmp_path / "r.rou.xml"
    routes.write_text('<routes><vehicle id="v" depart="0"><route edges="AB"/></vehicle></routes>')
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(net, routes=[routes], end=60)
    assert "the network has no traffic lights" in _message(excinfo)


def test_empty_time_window(road: Path) -> None:
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(road, begin=100, end=100)
    assert "time window begin=100 s, end=100 s is empty" in _message(excinfo)


def test_not_a_network(tmp_path: Path) -> None:
    fake = tmp_path / "fake.net.xml"
    fake.write_text("<routes/>")
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(fake, routes=[fake], end=60)
    assert "not a SUMO network (root element <routes>" in _message(excinfo)


def test_unknown_name_lists_the_builtins() -> None:
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario("grid9x9")
    assert "unknown scenario 'grid9x9'" in _message(excinfo)
    assert "grid3x3" in str(excinfo.value)


def test_network_alone_needs_routes(road: Path) -> None:
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(road.parent / "road.net.xml")
    assert "add --routes" in _message(excinfo)


def test_network_and_routes_need_an_end(road: Path) -> None:
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(road.parent / "road.net.xml", routes=[road.parent / "road.rou.xml"])
    assert "no end time" in _message(excinfo) and "--end SECONDS" in str(excinfo.value)
    assert "sumocfg" not in str(excinfo.value)  # there is none to edit


def test_write_scenario_helper_is_valid(tmp_path: Path) -> None:
    config = write_scenario(tmp_path, [("a", 0)], [(10, "G")], end=20)
    assert load_scenario(config).route_files


def test_routes_with_a_builtin_scenario_are_refused_not_ignored() -> None:
    with pytest.raises(
        ScenarioError, match=r"single: route files \(--routes\) go with a .net.xml; .*single"
    ):
        load_scenario("single", routes=["other.rou.xml"])


def test_a_folder_names_its_configurations(tmp_path: Path) -> None:
    (tmp_path / "b.sumocfg").write_text("<configuration/>")
    (tmp_path / "a.sumocfg").write_text("<configuration/>")
    with pytest.raises(
        ScenarioError, match=r"a folder; give one of its .sumocfg files \(a.sumocfg, b.sumocfg\)"
    ):
        load_scenario(str(tmp_path))
    # A folder with one configuration stands for it, as in the scenario commands.
    single = builtin_scenarios()["single"].parent
    (tmp_path / "one").mkdir()
    for name in ("single.net.xml", "single.rou.xml", "single.sumocfg"):
        shutil.copy(single / name, tmp_path / "one" / name)
    assert load_scenario(str(tmp_path / "one")).config_file == tmp_path / "one" / "single.sumocfg"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScenarioError, match=r"a folder with no \.sumocfg in it"):
        load_scenario(str(tmp_path / "empty"))


def test_a_sumocfg_without_an_end_says_where_to_set_it(road: Path) -> None:
    config = road.parent / "no-end.sumocfg"
    config.write_text(
        '<configuration><input><net-file value="road.net.xml"/>'
        '<route-files value="road.rou.xml"/></input></configuration>'
    )
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(config)
    assert "no-end.sumocfg: no end time" in str(excinfo.value)
    assert "<end value=...> in the sumocfg or pass --end SECONDS" in str(excinfo.value)
