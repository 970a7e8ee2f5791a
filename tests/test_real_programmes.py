"""The phase model on programmes written as real cities write them: stages split into
several phases, protected-left-only stages beside permissive lefts, transitions that keep
some links green, clearance greens inside intergreens; checked on hand-built programmes
and, reading the links back every second, in a real SUMO run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_control import SecondBySecond

from twin_traffic.control import SignalBank
from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.network import Link, Phase, TrafficLight, load_network, programme_min_green
from twin_traffic.scenario import load_scenario
from twin_traffic.signals import PhaseEngine, SignalTiming, dominated_greens
from twin_traffic.sim import SimConfig

# The built-in `single` crossing's 16 links: per approach (N, E, S, W) three links
# through/right, then the left turn (links 3, 7, 11, 15).
A = "GGGgrrrrGGGgrrrr"  # N/S through, lefts permissive
L = "rrrGrrrrrrrGrrrr"  # N/S protected lefts only
B = "rrrrGGGgrrrrGGGg"  # E/W through, lefts permissive
REAL = [
    (A, 30, 10, 40),
    (A, 5, 5, 5),  # the same stage, split: a fixed extension
    ("yyygrrrryyygrrrr", 3, 3, 3),  # through to yellow, the lefts stay green
    (L, 8, 8, 8),
    ("rrryrrrrrrryrrrr", 3, 3, 3),
    ("rrrrrrrrrrrrrrrr", 2, 2, 2),
    (B, 30, 10, 40),
    ("rrrryyyyrrrryyyy", 3, 3, 3),
    ("rrrrrrrrrrrrrrrr", 2, 2, 2),
]


def real_engine(timing: SignalTiming | None = None) -> PhaseEngine:
    return PhaseEngine([p[0] for p in REAL], [p[1] for p in REAL], timing or SignalTiming())


def test_stages_and_their_transitions_follow_the_programme() -> None:
    engine = real_engine()
    assert engine.greens == (A, L, B)
    assert dominated_greens(engine.greens) == (False, False, False)
    # A -> L: the programme's own yellow keeps the permissive lefts green (g) throughout.
    assert engine.transition(0, 1) == (("yyygrrrryyygrrrr", 3.0),)
    assert engine.transition_origin(0, 1) == "programme"
    # L -> A: the lefts lose their protection (G to g) as the opposing through gains
    # green: they clear on yellow first, or a left turner still in the junction meets
    # the through traffic.
    assert engine.transition(1, 0) == (("rrryrrrrrrryrrrr", 3.0),)
    assert engine.transition_origin(1, 0) == "derived"
    # A -> B skips the left stage: derived, only A's links get yellow.
    assert engine.transition(0, 2) == (("yyyyrrrryyyyrrrr", 3.0),)
    # With clearance="programme" the programme's 2 s all-red before B follows too.
    safe = real_engine(SignalTiming(clearance="programme"))
    assert safe.transition(0, 2) == (("yyyyrrrryyyyrrrr", 3.0), ("rrrrrrrrrrrrrrrr", 2.0))
    assert safe.transition(1, 0) == (("rrryrrrrrrryrrrr", 3.0),)  # the turn clears either way
    assert engine.transition(2, 0) == (("rrrryyyyrrrryyyy", 3.0), ("rrrrrrrrrrrrrrrr", 2.0))


def test_a_clearance_green_is_part_of_the_intergreen() -> None:
    # Bologna-style: an always-green bypass link (4) runs through the intergreen.
    states = ["GGrrG", "yyrrG", "rrrrG", "rrGGG", "rryyG", "rrrrG"]
    engine = PhaseEngine(states, [30, 3, 2, 30, 3, 2], SignalTiming())
    assert engine.greens == ("GGrrG", "rrrrG", "rrGGG")
    assert dominated_greens(engine.greens) == (False, True, False)
    assert engine.transition(0, 2) == (("yyrrG", 3.0), ("rrrrG", 2.0))
    assert engine.transition_origin(0, 2) == "programme"
    # With all_red the clearance lasts at least that long, after the programme's yellow.
    engine = PhaseEngine(states, [30, 3, 2, 30, 3, 2], SignalTiming(all_red=4.0))
    assert engine.transition(0, 2) == (("yyrrG", 3.0), ("rrrrG", 4.0))


def test_all_red_follows_a_programme_yellow() -> None:
    states = ["GGrr", "yyrr", "rrGG", "rryy"]
    assert real_engine().transition(0, 1)  # sanity: the fixture programme has transitions
    engine = PhaseEngine(states, [30, 3, 30, 3], SignalTiming(all_red=2.0))
    assert engine.transition(0, 1) == (("yyrr", 3.0), ("rrrr", 2.0))
    assert PhaseEngine(states, [30, 3, 30, 3], SignalTiming()).transition(0, 1) == (("yyrr", 3.0),)


def test_all_red_changes_a_run_on_a_programme_with_its_own_transitions() -> None:
    # grid3x3's programmes have their own yellows: all_red used to be ignored there.
    runs = [
        run_episode(RunSpec("grid3x3", "max-pressure", {"all_red": red}, seed=0, end=300))
        for red in (0, 5)
    ]
    assert runs[0].metrics["delay"] != runs[1].metrics["delay"]


def _real_scenario(tmp_path: Path) -> Path:
    source = load_scenario("single").config_file
    assert source is not None
    for path in source.parent.glob("single*"):
        shutil.copy(path, tmp_path / path.name)
    phases = "\n".join(
        f'    <phase duration="{d}" state="{s}" minDur="{lo}" maxDur="{hi}"/>'
        for s, d, lo, hi in REAL
    )
    (tmp_path / "real.add.xml").write_text(
        f'<additional>\n  <tlLogic id="C" type="static" programID="city" offset="0">\n'
        f"{phases}\n  </tlLogic>\n</additional>\n"
    )
    config = tmp_path / "single.sumocfg"
    config.write_text(
        config.read_text().replace(
            '<route-files value="single.rou.xml"/>',
            '<route-files value="single.rou.xml"/>\n'
            '        <additional-files value="real.add.xml"/>',
        )
    )
    return config


@pytest.mark.parametrize("backend", ["libsumo", "traci"])
def test_sumo_keeps_shared_links_green_on_a_real_programme(backend: str, tmp_path: Path) -> None:
    scenario = load_scenario(_real_scenario(tmp_path), end=200)
    network = load_network(scenario)
    assert [p.state for p in network.traffic_lights["C"].phases] == [p[0] for p in REAL]
    timing = SignalTiming(yellow=3.0, min_green=5.0, max_green=60.0)
    bank = SignalBank(network, ["C"], timing)
    # The bank holds each green for the programme's own minimum (A: 10 + 5 s, split).
    minimums = [programme_min_green(network.traffic_lights["C"].phases, g) for g in (A, L, B)]
    assert minimums == [15.0, 8.0, 10.0]
    reference = PhaseEngine([p[0] for p in REAL], [p[1] for p in REAL], timing,
                            green_minimums=minimums)  # fmt: skip
    order = [1, 0, 2, 0, 1, 2, 1, 0]  # A->L->A->B->A->L->B->L->A
    expected: list[str] = []
    with SecondBySecond(scenario, 0, None, SimConfig(backend=backend)) as sim:
        sim.ids, sim.shown, sim.commands = ("C",), [], 0
        bank.start(sim)
        for second in range(200):
            green = order[(second // 20) % len(order)]
            bank.request([green])
            reference.request(green)
            expected.append(reference.state)
            reference.tick()
            bank.advance(sim, sim.time + 1)
        shown = [row["C"] for row in sim.shown]
    assert shown == expected
    # The lefts lose right of way only when the next green stops them (L -> B, or A ->
    # B): between A and L they stay green, also while the through links show yellow.
    left_yellows = {state for state in shown if state[3] in "yY" or state[11] in "yY"}
    assert left_yellows <= {"rrryrrrrrrryrrrr", "yyyyrrrryyyyrrrr"}
    assert "yyygrrrryyygrrrr" in shown
    assert {A, L, B} <= set(shown)


def test_actuated_keeps_a_real_programmes_fixed_phases(tmp_path: Path) -> None:
    from twin_traffic.controllers.actuated import ActuatedController
    from twin_traffic.plans import read_plan

    scenario = load_scenario(_real_scenario(tmp_path), end=300)
    [path] = ActuatedController().additional_files(load_network(scenario), tmp_path)
    phases = read_plan(path)["C"].phases
    # The city's minimum on its stages and its maximum capped at 1.25x the programme's
    # 30 s (the split is the maximum green); the fixed extension and intergreens stay fixed.
    assert [(p.min_dur, p.max_dur) for p in phases if p.min_dur is not None] == [
        (10, 37.5),
        (10, 37.5),
    ]
    assert [p.duration for p in phases] == [p[1] for p in REAL]
    result = run_episode(RunSpec(str(scenario.config_file), "actuated", seed=0, end=300))
    assert result.metrics["vehicles"] > 0


def test_actuated_bounds_a_split_stage_by_the_programmes_green() -> None:
    from twin_traffic.controllers.actuated import ActuatedController

    # A static programme without bounds (Pasubio's 219 is one): a 36 + 6 s stage, a
    # clearance green inside the intergreen, and a short 9 s stage.
    states = ["GGrrr", "GGrrr", "yGrrr", "rGrrr", "rryyr", "rrGGG", "rryyy"]
    durations = [36, 6, 3, 3, 3, 9, 3]
    phases = tuple(Phase(s, d) for s, d in zip(states, durations, strict=True))
    light = TrafficLight("X", "0", phases, tuple(Link(i, f"a{i}", f"b{i}") for i in range(5)))
    ranges = ActuatedController().bounds(light)
    # The stage's first phase carries its actuation, up to 1.25 x 42 s less the fixed 6 s
    # that follow; the split's tail and the clearance green rG... keep their durations.
    assert ranges == {0: (5, pytest.approx(1.25 * 42 - 6)), 5: (5, pytest.approx(1.25 * 9))}
    assert ActuatedController(max_factor=1.0).bounds(light) == {0: (5, 36), 5: (5, 9)}
    # max_green still caps long stages, but never below the programme's own green.
    assert ActuatedController(max_green=40).bounds(light)[0] == (5, 42 - 6)


def test_webster_times_a_real_programmes_stages_only(tmp_path: Path) -> None:
    from twin_traffic.controllers.webster import adjustable_stages

    light = load_network(load_scenario(_real_scenario(tmp_path))).traffic_lights["C"]
    # A's adjustable phase and B's: A's fixed extension and the fixed left stay as they are.
    assert adjustable_stages(light) == [[0], [6]]
    # Bologna's kind: a clearance green (always-green bypass) is never a stage.
    states = ["GGrrG", "yyrrG", "rrrrG", "rrGGG", "rryyG", "rrrrG"]
    phases = tuple(Phase(s, d) for s, d in zip(states, [30, 3, 2, 30, 3, 2], strict=True))
    bypass = TrafficLight("X", "0", phases, tuple(Link(i, f"a{i}", f"b{i}") for i in range(5)))
    assert adjustable_stages(bypass) == [[0], [3]]
