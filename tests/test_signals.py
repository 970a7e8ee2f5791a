"""Tests of the safe phase engine (twin_traffic.signals).

Unit tests pin down the transitions on hand-written programmes; property tests
drive the engine tick by tick with random programmes, timings and request
sequences (and with the programmes of every ``networks/*/*.net.xml``) and check
the emitted state sequence.

Yellow rule checked: a link that loses green always shows yellow first, for at
least one step; for a derived transition the yellow lasts exactly
``ceil(timing.yellow / step)`` steps, for a programme transition it lasts the
programme's yellow duration rounded up to whole steps (at least one step).
"""

from __future__ import annotations

import functools
import itertools
import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from twin_traffic.scenario import builtin_dir
from twin_traffic.signals import (
    PhaseEngine,
    SignalTiming,
    green_phase_indices,
    is_green_phase,
    programme_intergreens,
)

GREEN = frozenset("Gg")
YELLOW = frozenset("yY")

# ----------------------------------------------------------------- helpers


def expand(plan: tuple[tuple[str, float], ...], step: float) -> list[str]:
    """A transition as one state per step."""
    out: list[str] = []
    for state, seconds in plan:
        n = round(seconds / step)
        assert math.isclose(n * step, seconds), "transition durations are whole steps"
        out.extend([state] * n)
    return out


def ceil_steps(seconds: float, step: float) -> int:
    return max(0, math.ceil(seconds / step - 1e-9))


@dataclass
class Record:
    state: str
    green: int
    in_transition: bool


def run(engine: PhaseEngine, start: int, actions: list[int | None]) -> list[Record]:
    """Drive ``engine`` and check request semantics step by step (oracle).

    ``actions[k]`` is requested (if not None) just before the k-th tick.
    Returns one record per step: the reset state, then the state after each tick.
    """
    n = engine.num_greens
    min_steps = engine.min_green_steps
    max_steps = engine.max_green_steps
    step = engine.step_length
    records = [Record(engine.reset(start), start, False)]
    assert engine.state == engine.greens[start]
    pending: int | None = None
    dwell = 0  # steps the current green has been shown (oracle's own count)
    for action in actions:
        if action is not None:
            engine.request(action)
            pending = None if action == engine.current_green else action
        assert engine.pending == pending
        prev_state, prev_green, prev_trans = (
            engine.state,
            engine.current_green,
            engine.in_transition,
        )
        if not prev_trans:
            assert engine.can_switch == (dwell >= min_steps)
        changed = engine.tick()
        if changed is None:
            assert engine.state == prev_state
        else:
            assert changed == engine.state != prev_state
        switched = engine.current_green != prev_green or (engine.in_transition and not prev_trans)
        if prev_trans:
            # Nothing redirects a running transition.
            assert engine.current_green == prev_green
            if not engine.in_transition:
                dwell = 0
                assert engine.state == engine.greens[prev_green]
        else:
            dwell += 1
            if pending is not None and dwell >= min_steps:
                assert switched, "a pending request is served once min green is reached"
                assert engine.current_green == pending
                pending = None
                dwell = 0
            elif n >= 2 and dwell >= max_steps:
                assert switched, "max green forces a switch"
                assert engine.current_green == (prev_green + 1) % n
                dwell = 0
            else:
                assert not switched
            if not engine.in_transition:
                assert math.isclose(engine.time_in_green, dwell * step)
        if engine.in_transition:
            assert engine.time_in_green == 0.0
            assert not engine.can_switch
        records.append(Record(engine.state, engine.current_green, engine.in_transition))
    return records


def check_sequence(engine: PhaseEngine, records: list[Record]) -> None:
    """Safety / timing properties of an emitted state sequence."""
    timing, step, n = engine.timing, engine.step_length, engine.num_greens
    states = [r.state for r in records]
    n_links = len(states[0])

    # (5) every state is a programme state or a transition the engine computed.
    allowed = set(engine.programme_states)
    for i in range(n):
        for j in range(n):
            allowed.update(s for s, _ in engine.transition(i, j))
    assert set(states) <= allowed

    # (1) green never goes straight to anything but yellow.
    for k in range(len(states) - 1):
        a, b = states[k], states[k + 1]
        for link in range(n_links):
            if a[link] in GREEN and b[link] not in GREEN:
                assert b[link] in YELLOW, f"link {link}: {a!r} -> {b!r} at step {k}"

    # Split into green dwells and transitions.
    k = 0
    while k < len(records):
        r = records[k]
        # A run: consecutive records with the same (in_transition, green); two
        # transitions or two dwells of one green are never adjacent.
        end = k
        while end + 1 < len(records) and (
            records[end + 1].in_transition,
            records[end + 1].green,
        ) == (r.in_transition, r.green):
            end += 1
        complete = end + 1 < len(records)
        if not r.in_transition:
            length = end - k + 1
            if complete:
                # (3) min green before a switch; (4) never beyond max green.
                assert length >= engine.min_green_steps
                if n >= 2:
                    assert length <= engine.max_green_steps
                    assert length * step <= timing.max_green + step + 1e-9
                nxt = records[end + 1]
                if not nxt.in_transition:  # direct switch: nothing may lose green
                    assert engine.transition_origin(r.green, nxt.green) == "direct"
                    src, dst = engine.greens[r.green], engine.greens[nxt.green]
                    assert not any(
                        a in GREEN and b not in GREEN for a, b in zip(src, dst, strict=True)
                    )
                    # ... nor lose its protection (G to g) while another link gains green.
                    assert not (
                        any(a == "G" and b == "g" for a, b in zip(src, dst, strict=True))
                        and any(
                            a not in GREEN and b in GREEN for a, b in zip(src, dst, strict=True)
                        )
                    )
        else:
            src_i, dst_i = records[k - 1].green, r.green
            src, dst = engine.greens[src_i], engine.greens[dst_i]
            shown = states[k : end + 1]
            expected = expand(engine.transition(src_i, dst_i), step)
            if complete:
                assert shown == expected
                assert states[end + 1] == dst
            else:
                assert shown == expected[: len(shown)]
            origin = engine.transition_origin(src_i, dst_i)
            assert origin in ("programme", "derived")
            if origin == "derived" and complete:
                # A link loses right of way when its green ends or its G becomes g.
                gaining = [i for i in range(n_links) if src[i] not in GREEN and dst[i] in GREEN]
                priority = gaining or any(
                    a == "g" and b == "G" for a, b in zip(src, dst, strict=True)
                )
                losing = [i for i in range(n_links)
                          if (src[i] in GREEN and dst[i] not in GREEN)
                          or (src[i] == "G" and dst[i] == "g" and priority)]  # fmt: skip
                n_yellow = ceil_steps(timing.yellow, step)
                assert all(s[i] == "y" for s in shown[:n_yellow] for i in losing)
                assert all(s[i] not in YELLOW for s in shown[n_yellow:] for i in losing)
                # (2) clearance: at least all_red, and at least the programme's own
                # intergreen between a losing and a gaining link.
                assert len(shown) >= n_yellow + ceil_steps(timing.all_red, step)
                intergreens = programme_intergreens(
                    engine.programme_states,
                    [ceil_steps(d, step) for d in engine.programme_durations],
                )
                if timing.clearance == "programme":
                    for i in losing:
                        for j in gaining:
                            assert len(shown) >= intergreens.get((i, j), 0)
                else:  # yellow + all_red, exactly
                    n_clear = ceil_steps(timing.all_red, step)
                    assert len(shown) == n_yellow + n_clear
                for s in shown[n_yellow:]:  # losing links red, nothing new green
                    assert all(s[i] == "r" for i in losing)
                    assert not any(s[i] in GREEN for i in gaining)
        k = end + 1


def check_engine(
    states: list[str],
    durations: list[float],
    timing: SignalTiming,
    step: float,
    start: int,
    actions: list[int | None],
) -> None:
    engine = PhaseEngine(states, durations, timing, step_length=step)
    n = engine.num_greens
    start %= n
    acts = [None if a is None else a % n for a in actions]
    records = run(engine, start, acts)
    check_sequence(engine, records)
    # Coverage report for --hypothesis-show-statistics.
    for prev, cur in itertools.pairwise(records):
        if cur.green != prev.green:
            event(f"switch: {engine.transition_origin(prev.green, cur.green)}")


# ------------------------------------------------------------ strategies

STEPS = st.sampled_from([0.25, 0.5, 1.0, 2.0])
DURATIONS = st.floats(min_value=0.0, max_value=40.0, allow_nan=False)


@st.composite
def timings(draw: st.DrawFn) -> SignalTiming:
    min_green = draw(st.floats(min_value=0.0, max_value=12.0))
    return SignalTiming(
        yellow=draw(st.floats(min_value=0.1, max_value=6.0)),
        all_red=draw(st.one_of(st.just(0.0), st.floats(min_value=0.1, max_value=4.0))),
        min_green=min_green,
        # Often short, so that runs also exercise max-green forced switches.
        max_green=max(0.1, min_green + draw(st.floats(min_value=0.0, max_value=30.0))),
        clearance=draw(st.sampled_from(["yellow", "programme"])),
    )


@st.composite
def random_programmes(draw: st.DrawFn) -> tuple[list[str], list[float]]:
    """Arbitrary state strings: greens, yellows, all-reds, odd chars, unsafe hops."""
    n_links = draw(st.integers(1, 6))
    green_like = st.text(alphabet="GgGrrs", min_size=n_links, max_size=n_links)
    other = st.text(alphabet="yyrrGgusoO", min_size=n_links, max_size=n_links)
    states = draw(st.lists(st.one_of(green_like, other), min_size=1, max_size=8))
    if not any(is_green_phase(s) for s in states):
        states.insert(draw(st.integers(0, len(states))), "G" * n_links)
    durations = draw(st.lists(DURATIONS, min_size=len(states), max_size=len(states)))
    return states, durations


@st.composite
def structured_programmes(draw: st.DrawFn) -> tuple[list[str], list[float]]:
    """SUMO-like programmes: greens followed by optional yellow / all-red phases."""
    n_links = draw(st.integers(2, 8))
    greens = draw(
        st.lists(
            st.text(alphabet="GGgrrs", min_size=n_links, max_size=n_links).filter(
                lambda s: "G" in s or "g" in s
            ),
            min_size=1,
            max_size=4,
        )
    )
    states: list[str] = []
    for i, g in enumerate(greens):
        nxt = greens[(i + 1) % len(greens)]
        states.append(g)
        kind = draw(st.sampled_from(["none", "yellow", "yellow+clear", "yellow+allred"]))
        lose = [a in GREEN and b not in GREEN for a, b in zip(g, nxt, strict=True)]
        if kind != "none":
            states.append("".join("y" if x else c for x, c in zip(lose, g, strict=True)))
        if kind == "yellow+clear":
            states.append("".join("r" if x else c for x, c in zip(lose, g, strict=True)))
        if kind == "yellow+allred":
            states.append("r" * n_links)
    durations = draw(st.lists(DURATIONS, min_size=len(states), max_size=len(states)))
    return states, durations


# Blocks of (repeat, request): long runs from few draws, like an agent that
# repeats its choice, or a sparse controller (None = no request that step).
ACTIONS = st.lists(
    st.tuples(st.integers(1, 40), st.one_of(st.none(), st.integers(0, 50))),
    min_size=1,
    max_size=30,
).map(lambda blocks: [a for n, a in blocks for _ in range(n)])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    programme=st.one_of(random_programmes(), structured_programmes()),
    timing=timings(),
    step=STEPS,
    start=st.integers(0, 50),
    actions=ACTIONS,
)
def test_property_random_programmes(
    programme: tuple[list[str], list[float]],
    timing: SignalTiming,
    step: float,
    start: int,
    actions: list[int | None],
) -> None:
    states, durations = programme
    check_engine(states, durations, timing, step, start, actions)


# ------------------------------------------------------- real SUMO nets


@functools.cache
def net_programmes(path: Path) -> list[tuple[str, list[str], list[float]]]:
    """(label, states, durations) of every tlLogic programme in a .net.xml."""
    import sumolib  # only the tests need SUMO tooling

    net = sumolib.net.readNet(str(path), withPrograms=True)
    out = []
    for tls in net.getTrafficLights():
        for pid, prog in tls.getPrograms().items():
            phases = prog.getPhases()
            states = [p.state for p in phases]
            if any(is_green_phase(s) for s in states):
                out.append((f"{tls.getID()}/{pid}", states, [float(p.duration) for p in phases]))
    return out


def check_net_programmes(path: Path, data: st.DataObject) -> None:
    programmes = net_programmes(path)
    if not programmes:
        pytest.skip(f"{path.name} has no signal programme with a green phase")
    _label, states, durations = data.draw(st.sampled_from(programmes), label="programme")
    check_engine(
        states,
        durations,
        data.draw(timings(), label="timing"),
        data.draw(STEPS, label="step"),
        data.draw(st.integers(0, 50), label="start"),
        data.draw(ACTIONS, label="actions"),
    )


NETS = sorted(builtin_dir().glob("*/*.net.xml"))


@pytest.mark.parametrize("path", NETS, ids=[p.parent.name for p in NETS])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_property_network_programmes(path: Path, data: st.DataObject) -> None:
    check_net_programmes(path, data)


def test_network_programmes_build_engines() -> None:
    """Every programme of every shipped net yields an engine with full transitions."""
    for path in NETS:
        for label, states, durations in net_programmes(path):
            engine = PhaseEngine(states, durations, SignalTiming(all_red=2.0))
            for i in range(engine.num_greens):
                for j in range(engine.num_greens):
                    assert (engine.transition_origin(i, j) == "none") == (i == j), label


@pytest.fixture(scope="module")
def generated_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A netgenerate grid with protected lefts and all-red phases (if SUMO is there)."""
    exe = shutil.which("netgenerate")
    if exe is None:
        pytest.skip("netgenerate not available")
    out = tmp_path_factory.mktemp("net") / "grid.net.xml"
    subprocess.run(
        [
            exe,
            "--grid",
            "--grid.number=3",
            "--turn-lanes=1",
            "--tls.guess=true",
            "--tls.left-green.time=6",
            "--tls.allred.time=2",
            f"--output-file={out}",
        ],
        check=True,
        capture_output=True,
    )
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_property_generated_net(generated_net: Path, data: st.DataObject) -> None:
    check_net_programmes(generated_net, data)


def test_generated_net_uses_programme_transitions(generated_net: Path) -> None:
    programmes = net_programmes(generated_net)
    assert programmes
    for label, states, durations in programmes:
        engine = PhaseEngine(states, durations, SignalTiming())
        n = engine.num_greens
        # netgenerate cycles green -> yellow -> (green | all-red -> green).
        for i in range(n):
            assert engine.transition_origin(i, (i + 1) % n) in ("programme", "direct"), label


# ------------------------------------------------------------ unit tests

TWO_PHASE = (["GGrr", "yyrr", "rrGG", "rryy"], [30.0, 3.0, 30.0, 4.0])


def test_two_phase_programme_transitions() -> None:
    engine = PhaseEngine(*TWO_PHASE, SignalTiming(yellow=5.0, all_red=2.0))
    assert engine.greens == ("GGrr", "rrGG")
    assert engine.num_greens == 2
    # The programme's 3 s yellow, then the configured all-red clearance.
    assert engine.transition(0, 1) == (("yyrr", 3.0), ("rrrr", 2.0))
    assert engine.transition(1, 0) == (("rryy", 4.0), ("rrrr", 2.0))
    assert engine.transition_origin(0, 1) == "programme"
    assert engine.transition(0, 0) == ()
    assert engine.transition_origin(1, 1) == "none"


def test_programme_durations_round_up_to_steps() -> None:
    engine = PhaseEngine(["GGrr", "yyrr", "rrGG", "rryy"], [30, 2.5, 30, 0.0], SignalTiming(), 2)
    assert engine.transition(0, 1) == (("yyrr", 4.0),)
    # A zero-length programme yellow is still shown for one step.
    assert engine.transition(1, 0) == (("rryy", 2.0),)


def test_all_red_phase_between_yellow_and_green() -> None:
    states = ["GGrr", "yyrr", "rrrr", "rrGG", "rryy", "rrrr"]
    engine = PhaseEngine(states, [30, 4, 2, 30, 4, 1.5], SignalTiming(), 0.5)
    assert engine.greens == ("GGrr", "rrGG")
    assert engine.transition(0, 1) == (("yyrr", 4.0), ("rrrr", 2.0))
    assert engine.transition(1, 0) == (("rryy", 4.0), ("rrrr", 1.5))


def test_red_yellow_phase_is_a_transition() -> None:
    states = ["GGrr", "yyrr", "rruu", "rrGG", "rryy", "uurr"]
    engine = PhaseEngine(states, [30, 3, 1, 30, 3, 1], SignalTiming())
    assert engine.greens == ("GGrr", "rrGG")
    assert engine.transition(0, 1) == (("yyrr", 3.0), ("rruu", 1.0))


PROTECTED_LEFT = [
    "GGrrrrGGrrrr",  # N-S through
    "yyrrrryyrrrr",
    "rrGrrrrrGrrr",  # N-S protected left
    "rryrrrrryrrr",
    "rrrGGrrrrGGr",  # E-W through
    "rrryyrrrryyr",
    "rrrrrGrrrrrG",  # E-W protected left
    "rrrrryrrrrry",
]


def test_protected_left_programme() -> None:
    timing = SignalTiming(yellow=4.0, all_red=1.0)
    engine = PhaseEngine(PROTECTED_LEFT, [30, 3] * 4, timing)
    assert engine.greens == tuple(PROTECTED_LEFT[0::2])
    assert green_phase_indices(PROTECTED_LEFT) == (0, 2, 4, 6)
    for i in range(4):  # programme order: the programme's own 3 s yellows
        assert engine.transition_origin(i, (i + 1) % 4) == "programme"
        assert engine.transition(i, (i + 1) % 4) == (
            (PROTECTED_LEFT[2 * i + 1], 3.0),
            ("rrrrrrrrrrrr", 1.0),  # all-red clearance after the programme's yellow
        )
    # Skipping the left: derived yellow (timing) + all-red clearance.
    assert engine.transition_origin(0, 2) == "derived"
    assert engine.transition(0, 2) == (("yyrrrryyrrrr", 4.0), ("rrrrrrrrrrrr", 1.0))
    # Backwards, left -> through of the same approach.
    assert engine.transition(1, 0) == (("rryrrrrryrrr", 4.0), ("rrrrrrrrrrrr", 1.0))


NON_ALTERNATING = ["GGrr", "GGGr", "yyyr", "rrrr", "rrrG", "rrry"]


def test_non_alternating_programme() -> None:
    engine = PhaseEngine(NON_ALTERNATING, [20, 10, 3, 2, 30, 3], SignalTiming(all_red=1.0))
    assert engine.greens == ("GGrr", "GGGr", "rrrG")
    # Green -> green that only adds links: direct switch.
    assert engine.transition_origin(0, 1) == "direct"
    assert engine.transition(0, 1) == ()
    # Green -> yellow -> all-red -> green: taken from the programme.
    assert engine.transition(1, 2) == (("yyyr", 3.0), ("rrrr", 2.0))
    assert engine.transition(2, 0) == (("rrry", 3.0), ("rrrr", 1.0))
    # Not in the programme: derived.
    assert engine.transition_origin(0, 2) == "derived"
    assert engine.transition(0, 2) == (("yyrr", 3.0), ("rrrr", 1.0))
    # With clearance="programme", as long as the programme's own clearance from links
    # 0-1 to link 3 (3 s yellow, 2 s all-red), longer than all_red.
    timing = SignalTiming(all_red=1.0, clearance="programme")
    engine = PhaseEngine(NON_ALTERNATING, [20, 10, 3, 2, 30, 3], timing)
    assert engine.transition(0, 2) == (("yyrr", 3.0), ("rrrr", 2.0))
    # Dropping one link keeps the others green throughout.
    assert engine.transition(1, 0) == (("GGyr", 3.0), ("GGrr", 1.0))


def test_non_alternating_direct_switch_in_run() -> None:
    engine = PhaseEngine(NON_ALTERNATING, [20, 10, 3, 2, 30, 3], SignalTiming(min_green=2))
    engine.reset(0)
    engine.request(1)
    assert engine.tick() is None
    assert engine.tick() == "GGGr"
    assert not engine.in_transition
    assert engine.current_green == 1
    assert engine.time_in_green == 0.0


def test_unsafe_programme_hop_is_replaced_by_derived() -> None:
    # The programme goes green -> all-red without yellow: not trusted.
    engine = PhaseEngine(["GGrr", "rrrr", "rrGG", "rryy"], [30, 2, 30, 3], SignalTiming())
    assert engine.transition_origin(0, 1) == "derived"
    assert engine.transition(0, 1) == (("yyrr", 3.0),)
    assert engine.transition_origin(1, 0) == "programme"


def test_green_to_green_with_loss_is_derived() -> None:
    engine = PhaseEngine(["GGrr", "rrGG"], [30, 30], SignalTiming(yellow=2.0))
    assert engine.transition(0, 1) == (("yyrr", 2.0),)
    assert engine.transition(1, 0) == (("rryy", 2.0),)


def test_derived_keeps_non_green_chars_and_s() -> None:
    engine = PhaseEngine(["GsrO", "rGgO"], [30, 30], SignalTiming(yellow=2.0, all_red=1.0))
    assert engine.transition(0, 1) == (("ysrO", 2.0), ("rsrO", 1.0))
    assert engine.transition(1, 0) == (("ryyO", 2.0), ("rrrO", 1.0))


def test_duplicate_greens_are_deduplicated() -> None:
    states = ["GGrr", "yyrr", "rrGG", "rryy", "GGrr", "yyrr", "rrGg", "rryy"]
    assert green_phase_indices(states) == (0, 2, 6)
    engine = PhaseEngine(states, [10, 3] * 4, SignalTiming())
    assert engine.greens == ("GGrr", "rrGG", "rrGg")
    # GGrr -> rrGg exists in the programme (second occurrence of GGrr).
    assert engine.transition_origin(0, 2) == "programme"
    assert engine.transition_origin(1, 2) == "direct"  # only G -> g


def test_green_phase_classification() -> None:
    assert is_green_phase("Ggrr")
    assert is_green_phase("rrsg")
    assert not is_green_phase("Gyrr")
    assert not is_green_phase("Gurr")
    assert not is_green_phase("rrrr")
    assert not is_green_phase("ssoO")
    assert green_phase_indices(["rrrr", "yyyy"]) == ()


# ------------------------------------------------------- request semantics


def make(**kw: float) -> PhaseEngine:
    return PhaseEngine(*TWO_PHASE, SignalTiming(**kw))


def test_min_green_then_switch_through_yellow() -> None:
    engine = make(min_green=3, max_green=100)
    assert engine.reset(0) == "GGrr"
    engine.request(1)  # early: remembered
    assert engine.pending == 1
    assert not engine.can_switch
    assert [engine.tick() for _ in range(3)] == [None, None, "yyrr"]
    assert engine.in_transition
    assert engine.current_green == 1
    assert engine.pending is None
    assert [engine.tick() for _ in range(3)] == [None, None, "rrGG"]
    assert not engine.in_transition
    assert engine.time_in_green == 0.0
    assert engine.tick() is None
    assert engine.time_in_green == 1.0


def test_request_current_green_cancels_pending() -> None:
    engine = make(min_green=3, max_green=100)
    engine.reset(0)
    engine.request(1)
    engine.tick()
    engine.request(0)
    assert engine.pending is None
    assert all(engine.tick() is None for _ in range(10))
    assert engine.state == "GGrr"


def test_request_during_transition_is_served_after_min_green() -> None:
    engine = make(min_green=2, max_green=100)
    engine.reset(0)
    engine.request(1)
    engine.tick()
    assert engine.tick() == "yyrr"
    engine.request(0)  # mid-yellow: does not redirect
    assert engine.current_green == 1
    assert [engine.tick() for _ in range(3)] == [None, None, "rrGG"]
    assert engine.pending == 0
    assert [engine.tick() for _ in range(2)] == [None, "rryy"]


def test_request_replaced_before_served() -> None:
    states = ["GGrrrr", "yyrrrr", "rrGGrr", "rryyrr", "rrrrGG", "rrrryy"]
    engine = PhaseEngine(states, [10, 3] * 3, SignalTiming(min_green=3))
    engine.reset(0)
    engine.request(1)
    engine.tick()
    engine.request(2)
    engine.tick()
    engine.tick()
    assert engine.current_green == 2
    assert engine.state == "yyrrrr"  # derived yellow towards green 2


def test_max_green_forces_next_green() -> None:
    states = ["GGrrrr", "yyrrrr", "rrGGrr", "rryyrr", "rrrrGG", "rrrryy"]
    engine = PhaseEngine(states, [10, 3] * 3, SignalTiming(min_green=1, max_green=4))
    engine.reset(2)
    out = [engine.tick() for _ in range(4)]
    assert out == [None, None, None, "rrrryy"]
    assert engine.current_green == 0  # cyclically next


def test_single_green_never_switches() -> None:
    engine = PhaseEngine(["GGrr", "yyrr"], [30, 3], SignalTiming(min_green=1, max_green=2))
    engine.reset()
    engine.request(0)
    assert all(engine.tick() is None for _ in range(20))
    assert engine.time_in_green == 20.0


def test_zero_min_green_switches_next_tick() -> None:
    engine = make(min_green=0, max_green=100)
    engine.reset(0)
    assert engine.can_switch
    engine.request(1)
    assert engine.tick() == "yyrr"


def test_infinite_max_green() -> None:
    engine = make(max_green=math.inf)
    engine.reset(1)
    assert all(engine.tick() is None for _ in range(500))


def test_step_length_rounds_timings_up() -> None:
    engine = PhaseEngine(
        ["GGrr", "rrGG"], [30, 30], SignalTiming(yellow=2.5, min_green=1.2, max_green=3.1), 0.5
    )
    assert engine.min_green_steps == 3
    assert engine.max_green_steps == 7
    assert engine.transition(0, 1) == (("yyrr", 2.5),)


# ------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"yellow": 0.0}, "yellow must be > 0"),
        ({"yellow": -1.0}, "non-negative"),
        ({"all_red": -0.5}, "all_red must be non-negative"),
        ({"min_green": -1.0}, "min_green must be non-negative"),
        ({"min_green": 10.0, "max_green": 5.0}, "min_green .* must be <= max_green"),
        ({"max_green": 0.0, "min_green": 0.0}, "max_green must be > 0"),
        ({"yellow": math.nan}, "yellow must be non-negative"),
        ({"min_green": math.inf}, "must be finite"),
    ],
)
def test_timing_validation(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SignalTiming(**kwargs)


def test_programme_validation() -> None:
    t = SignalTiming()
    with pytest.raises(ValueError, match="no green phase"):
        PhaseEngine(["yyrr", "rrrr"], [3, 2], t)
    with pytest.raises(ValueError, match="no phases"):
        PhaseEngine([], [], t)
    with pytest.raises(ValueError, match="durations"):
        PhaseEngine(["GGrr"], [1, 2], t)
    with pytest.raises(ValueError, match="links"):
        PhaseEngine(["GGrr", "rrG"], [1, 2], t)
    with pytest.raises(ValueError, match="invalid chars"):
        PhaseEngine(["GGrx"], [1], t)
    with pytest.raises(ValueError, match="step_length"):
        PhaseEngine(["GGrr"], [1], t, step_length=0)


def test_invalid_action_index() -> None:
    engine = make()
    for bad in (2, -1):
        with pytest.raises(ValueError, match="out of range"):
            engine.request(bad)
        with pytest.raises(ValueError, match="out of range"):
            engine.reset(bad)
        with pytest.raises(ValueError, match="out of range"):
            engine.transition(0, bad)
    with pytest.raises(ValueError, match="integer"):
        engine.request(1.0)  # type: ignore[arg-type]


def test_intergreens_count_yellows_and_all_reds_not_other_movements_greens() -> None:
    # Link 0 ends in yellow and a 2 s all-red before link 1 starts: 5 s. Link 1 ends in
    # yellow, then link 2 (a bypass, or people walking) runs alone for 7 s before link
    # 0 starts: that is a stage of its own, so 1 -> 0 is not a clearance of 10 s.
    states = ["GrG", "yrG", "rrr", "rGG", "ryG", "rrG", "GrG"]
    assert programme_intergreens(states, [20, 3, 2, 20, 3, 7, 1]) == {(0, 1): 5}
    # A crossing (link 2 here) is cleared with time while vehicles still run.
    walk = ["GrG", "Grr", "yrr", "rGr", "ryr"]
    assert programme_intergreens(walk, [20, 5, 3, 20, 3], frozenset({2})) == {
        (0, 1): 3, (1, 0): 3, (1, 2): 3, (2, 1): 8
    }  # fmt: skip
