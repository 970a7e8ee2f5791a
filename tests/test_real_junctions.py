"""Junctions as real networks have them, built with SUMO's netconvert and driven through a
real SUMO: pedestrian crossings, joined signals with protected turns that become
permissive, programmes whose phases name their successor (``next``)."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import libsumo
import numpy as np
import pytest

from twin_traffic.control import SignalBank
from twin_traffic.envs import SignalParallelEnv
from twin_traffic.errors import ScenarioError
from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.network import load_network, phases_of
from twin_traffic.scenario import load_scenario
from twin_traffic.signals import GREEN_CHARS, PhaseEngine, SignalTiming, programme_intergreens
from twin_traffic.sim import sumo_binary


def _netconvert(directory: Path, nodes: str, edges: str, *options: str) -> None:
    (directory / "n.nod.xml").write_text(f"<nodes>{nodes}</nodes>")
    (directory / "n.edg.xml").write_text(f"<edges>{edges}</edges>")
    binary = str(sumo_binary().with_name("netconvert"))
    subprocess.run([binary, "-n", "n.nod.xml", "-e", "n.edg.xml", "-o", "x.net.xml",
                    "--no-turnarounds", *options], cwd=directory, check=True,
                   capture_output=True)  # fmt: skip


def _config(directory: Path, routes: str, end: int = 600) -> Path:
    (directory / "x.rou.xml").write_text(f"<routes>{routes}</routes>")
    config = directory / "x.sumocfg"
    config.write_text(
        '<configuration><input><net-file value="x.net.xml"/><route-files value="x.rou.xml"/>'
        f'</input><time><begin value="0"/><end value="{end}"/></time></configuration>'
    )
    return config


def _two_edges(a: str, b: str, lanes: int = 2) -> str:
    return "".join(
        f'<edge id="{x}{y}" from="{x}" to="{y}" numLanes="{lanes}" speed="13.89"/>'
        for x, y in ((a, b), (b, a))
    )


@pytest.fixture(scope="module")
def crossing_junction(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-arm junction with sidewalks and pedestrian crossings (netconvert's own
    programme: walk, 5 s of crossing clearance while the vehicles go on, 3 s yellow),
    traffic on every movement and people crossing every arm."""
    directory = tmp_path_factory.mktemp("crossings")
    arms = {"N": (0, 150), "S": (0, -150), "E": (150, 0), "W": (-150, 0)}
    nodes = '<node id="C" x="0" y="0" type="traffic_light"/>' + "".join(
        f'<node id="{a}" x="{x}" y="{y}"/>' for a, (x, y) in arms.items()
    )
    edges = "".join(_two_edges(a, "C") for a in arms)
    _netconvert(directory, nodes, edges, "--sidewalks.guess", "--crossings.guess")
    opposite = {"N": "S", "S": "N", "E": "W", "W": "E"}
    flows = "".join(
        f'<flow id="{a}{b}" from="{a}C" to="C{b}" begin="0" end="600" probability="0.08"/>'
        for a in arms
        for b in arms
        if a != b
    )
    people = "".join(
        f'<personFlow id="p{a}" begin="0" end="600" period="15">'
        f'<walk from="{a}C" to="C{opposite[a]}"/></personFlow>'
        for a in arms
    )
    return _config(directory, flows + people)


def test_crossings_are_found_and_their_programme_clearance_is_kept(
    crossing_junction: Path,
) -> None:
    network = load_network(load_scenario(crossing_junction))
    light = network.traffic_lights["C"]
    assert light.crossings == frozenset({16, 17, 18, 19})
    engine = SignalBank(network, ["C"], SignalTiming()).engines[0]
    states = [phase.state for phase in light.phases]
    steps = [round(p.duration) for p in light.phases]
    intergreens = programme_intergreens(states, steps, light.crossings)
    # netconvert clears a crossing for 5 s before its vehicles' 3 s yellow; a vehicle
    # link's clearance is its yellow (the programme has no all-red).
    assert {intergreens[(c, v)] for c in light.crossings for v in range(16)
            if (c, v) in intergreens} == {8}  # fmt: skip
    assert {gap for (i, _), gap in intergreens.items() if i not in light.crossings} == {3}
    for src in range(engine.num_greens):
        for dst in range(engine.num_greens):
            shown = [state for state, _ in engine.transition(src, dst)]
            # SUMO shows a crossing no yellow: its green ends in red.
            assert not any(state[c] in "yY" for state in shown for c in light.crossings)


def test_no_vehicle_gets_green_across_a_crossing_before_its_clearance(
    crossing_junction: Path,
) -> None:
    """Random greens every second in a real SUMO: after a crossing's green ends, no
    vehicle link the programme never serves with it turns green for 8 s, as under the
    city's programme, and a crossing never shows yellow."""
    network = load_network(load_scenario(crossing_junction))
    states = [phase.state for phase in network.traffic_lights["C"].phases]
    crossings = [16, 17, 18, 19]  # netconvert numbers them after the 16 vehicle links
    together = {
        (i, j)
        for state in states
        for i, a in enumerate(state)
        for j, b in enumerate(state)
        if a in GREEN_CHARS and b in GREEN_CHARS
    }
    env = SignalParallelEnv(scenario=crossing_junction, end=400, decision_interval=1)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    shown = [libsumo.trafficlight.getRedYellowGreenState("C")]
    while env.agents:
        env.step({a: int(rng.integers(env.action_space(a).n)) for a in env.agents})
        shown.append(libsumo.trafficlight.getRedYellowGreenState("C"))
    env.close()
    assert len({s for s in shown}) > 3  # the random greens did move the signal
    ended: dict[int, int] = {}
    for t in range(1, len(shown)):
        before, now = shown[t - 1], shown[t]
        for c in crossings:
            assert now[c] not in "yY"
            if before[c] in GREEN_CHARS and now[c] not in GREEN_CHARS:
                ended[c] = t
        for v in range(len(now)):
            if before[v] not in GREEN_CHARS and now[v] in GREEN_CHARS:
                for c, at in ended.items():
                    if (c, v) not in together:
                        assert t - at >= 8, f"link {v} green {t - at} s after crossing {c}"


@pytest.fixture(scope="module")
def joined_signal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two junctions 40 m apart joined into one signal (netconvert ``--tls.join``), whose
    programme has protected turns that turn permissive: traffic on every route."""
    directory = tmp_path_factory.mktemp("joined")
    places = {"A": (0, 0), "B": (40, 0), "W": (-200, 0), "E": (240, 0), "AN": (0, 200),
              "AS": (0, -200), "BN": (40, 200), "BS": (40, -200)}  # fmt: skip
    nodes = "".join(
        f'<node id="{n}" x="{x}" y="{y}" type="{"traffic_light" if n in "AB" else "priority"}"/>'
        for n, (x, y) in places.items()
    )
    pairs = [("W", "A"), ("A", "B"), ("B", "E"), ("AN", "A"), ("AS", "A"), ("BN", "B"),
             ("BS", "B")]  # fmt: skip
    edges = "".join(_two_edges(a, b) for a, b in pairs)
    _netconvert(directory, nodes, edges, "--tls.join", "--tls.join-dist", "60")
    ends = {"W": ("WA", "AW"), "E": ("EB", "BE"), "AN": ("ANA", "AAN"), "AS": ("ASA", "AAS"),
            "BN": ("BNB", "BBN"), "BS": ("BSB", "BBS")}  # fmt: skip
    flows = "".join(
        f'<flow id="{o}-{d}" from="{ends[o][0]}" to="{ends[d][1]}" begin="0" end="600" '
        'probability="0.04" departLane="best"/>'
        for o in ends
        for d in ends
        if o != d
    )
    return _config(directory, flows)


def test_a_protected_turn_ends_in_yellow_before_its_opposing_traffic_gets_green(
    joined_signal: Path,
) -> None:
    """Random greens every second in a real SUMO: whenever a link gains green, no link
    drops from protected (G) to permissive (g) at that very second, and no vehicles
    collide."""
    network = load_network(load_scenario(joined_signal))
    (signal,) = network.signal_ids
    greens = SignalBank(network, [signal], SignalTiming()).engines[0].greens
    assert any(  # the programme has a protected turn that becomes permissive
        a == "G" and b == "g" for g in greens for h in greens for a, b in zip(g, h, strict=True)
    )
    env = SignalParallelEnv(scenario=joined_signal, end=400, decision_interval=1)
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    shown = [libsumo.trafficlight.getRedYellowGreenState(signal)]
    collisions = 0
    while env.agents:
        env.step({a: int(rng.integers(env.action_space(a).n)) for a in env.agents})
        shown.append(libsumo.trafficlight.getRedYellowGreenState(signal))
        collisions += libsumo.simulation.getCollidingVehiclesNumber()
    env.close()
    assert collisions == 0
    checked = 0
    for before, now in itertools.pairwise(shown):
        pairs = list(zip(before, now, strict=True))
        if any(a not in GREEN_CHARS and b in GREEN_CHARS for a, b in pairs):
            assert not any(a == "G" and b == "g" for a, b in pairs), (before, now)
            checked += 1
    assert checked > 10


def test_a_programme_with_next_is_played_in_sumos_order() -> None:
    """Phases naming their successor run in that order (here: each yellow is followed by
    its own all-red), and the engine takes its transitions from that order."""
    logic = ET.fromstring(
        '<tlLogic id="C" type="static" programID="p" offset="17">'
        '<phase duration="30" state="GGrr" next="1"/>'
        '<phase duration="3" state="yyrr" next="4"/>'
        '<phase duration="30" state="rrGG"/>'
        '<phase duration="3" state="rryy" next="5"/>'
        '<phase duration="2" state="rrrr" next="2"/>'
        '<phase duration="4" state="rrrr" next="0"/>'
        "</tlLogic>"
    )
    phases = phases_of(logic)
    assert [(p.state, p.duration) for p in phases] == [
        ("GGrr", 30), ("yyrr", 3), ("rrrr", 2), ("rrGG", 30), ("rryy", 3), ("rrrr", 4)
    ]  # fmt: skip
    engine = PhaseEngine([p.state for p in phases], [p.duration for p in phases], SignalTiming())
    assert engine.transition(0, 1) == (("yyrr", 3.0), ("rrrr", 2.0))
    assert engine.transition(1, 0) == (("rryy", 3.0), ("rrrr", 4.0))


def _single_with(tmp_path: Path, additional: str) -> Path:
    """The built-in ``single`` with an additional file of ``additional`` elements."""
    source = load_scenario("single").config_file
    assert source is not None
    for path in source.parent.glob("single*"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "extra.add.xml").write_text(f"<additional>{additional}</additional>")
    config = tmp_path / "single.sumocfg"
    config.write_text(config.read_text().replace(
        '<route-files value="single.rou.xml"/>',
        '<route-files value="single.rou.xml"/><additional-files value="extra.add.xml"/>',
    ))  # fmt: skip
    return config


def test_a_signal_a_waut_switches_is_left_to_fixed_time(tmp_path: Path) -> None:
    """A WAUT would put the city's programmes back in the middle of a run: every
    controller but fixed refuses the signal, naming the file; fixed time runs it."""
    light = load_network(load_scenario("single")).traffic_lights["C"]
    phases = "".join(f'<phase duration="{p.duration:g}" state="{p.state}"/>' for p in light.phases)
    config = _single_with(
        tmp_path,
        f'<tlLogic id="C" type="static" programID="day">{phases}</tlLogic>'
        '<WAUT id="w" refTime="0" startProg="day"><wautSwitch time="60" to="day"/></WAUT>'
        '<wautJunction wautID="w" junctionID="C"/>',
    )
    with pytest.raises(ScenarioError, match=r"extra.add.xml: WAUT 'w' switches signal 'C'"):
        SignalParallelEnv(scenario=config, end=60)
    with pytest.raises(ScenarioError, match="would override max-pressure"):
        run_episode(RunSpec(str(config), "max-pressure", end=60))
    assert run_episode(RunSpec(str(config), "fixed", end=60)).metrics["vehicles"] > 0
    check = subprocess.run([sys.executable, "-m", "twin_traffic.cli", "scenario", "check",
                            str(config)], capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0 and "warning:" in check.stderr and "WAUT 'w'" in check.stderr


def test_a_nema_controller_is_left_to_fixed_time(tmp_path: Path) -> None:
    arms = {"N": (0, 150), "S": (0, -150), "E": (150, 0), "W": (-150, 0)}
    nodes = '<node id="C" x="0" y="0" type="traffic_light"/>' + "".join(
        f'<node id="{a}" x="{x}" y="{y}"/>' for a, (x, y) in arms.items()
    )
    _netconvert(tmp_path, nodes, "".join(_two_edges(a, "C") for a in arms),
                "--tls.default-type", "NEMA")  # fmt: skip
    config = _config(tmp_path, '<flow id="f" from="NC" to="CS" begin="0" end="60" number="5"/>')
    network = load_network(load_scenario(config))
    assert network.traffic_lights["C"].kind == "NEMA"
    with pytest.raises(ScenarioError, match="runs a NEMA controller"):
        run_episode(RunSpec(str(config), "actuated", end=60))
    assert run_episode(RunSpec(str(config), "fixed", end=60)).metrics["vehicles"] == 5
