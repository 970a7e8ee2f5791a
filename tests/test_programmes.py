"""A signal's compiled programme: played the way SUMO plays it, the cues of each decision
interval show exactly what the phase engine decides, with at most one cue per signal and
interval when the interval holds one switch, and the programme never changes."""

from __future__ import annotations

import copy
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from twin_traffic.control import _compile, _run_ahead
from twin_traffic.programmes import (
    FOREVER,
    Cue,
    Schedule,
    SignalProgramme,
    agreement,
    cues_for_interval,
)
from twin_traffic.signals import PhaseEngine, SignalTiming

GREENS = ("GGrr", "rrGG", "GrGr")


class Player:
    """SUMO's playback of a static programme: a phase runs for its duration (or the one a
    cue gave it), then its successor starts with its own."""

    def __init__(self, programme: SignalProgramme, cue: Cue) -> None:
        self.programme = programme
        self.cue(cue)

    def cue(self, cue: Cue) -> None:
        self.phase = cue.phase
        phase = self.programme.phases[cue.phase]
        self.left = phase.steps if cue.steps is None else cue.steps

    def step(self) -> str:
        """The state shown during this step."""
        state = self.programme.phases[self.phase].state
        self.left -= 1
        if self.left == 0:
            self.phase = self.programme.phases[self.phase].next
            self.left = self.programme.phases[self.phase].steps
        return state


def test_greens_play_for_ever_and_transitions_end_in_their_green() -> None:
    transitions = {(0, 1): [("yyrr", 3), ("rrrr", 2)], (1, 0): [("rryy", 3)]}
    programme = SignalProgramme(GREENS[:2], transitions)
    for index, green in enumerate(GREENS[:2]):
        assert programme.phases[index] == (green, FOREVER, index)
        assert programme.cue(Schedule((), green)) == Cue(index)
    wanted = Schedule((("GGrr", 4), ("yyrr", 3), ("rrrr", 2)), "rrGG")
    cue = programme.cue(wanted)
    assert cue is not None and cue.steps == 4
    assert programme.plays(cue) == wanted
    # Entering a running transition part-way: the rest of its phase is a duration.
    assert programme.plays(programme.cue(wanted.after(5))) == wanted.after(5)  # type: ignore[arg-type]


def test_agreement_counts_common_steps() -> None:
    a = Schedule((("GGrr", 4), ("yyrr", 3)), "rrGG")
    assert agreement(a, a) == math.inf
    assert agreement(a, Schedule((("GGrr", 2),), "rrGG")) == 2
    assert agreement(a, Schedule((), "GGrr")) == 4
    assert agreement(a, Schedule((), "rrGG")) == 0


def test_two_switches_in_one_interval_are_cut_into_cues() -> None:
    transitions = {(s, d): [("yyyy", 2)] for s in range(3) for d in range(3) if s != d}
    programme = SignalProgramme(GREENS, transitions)
    playing = Schedule((), "GGrr")
    wanted = Schedule((("GGrr", 1), ("yyyy", 2), ("rrGG", 3), ("yyyy", 2)), "GrGr")
    cues, after = cues_for_interval(programme, playing, wanted, 10)
    assert len(cues) == 2 and cues[0][0] == 0
    player = Player(programme, Cue(0))
    shown = []
    for step in range(10):
        for offset, cue in cues:
            if offset == step:
                player.cue(cue)
        shown.append(player.step())
    assert shown == [wanted.after(s).first for s in range(10)]
    assert after == wanted.after(10)


PROGRAMMES = [
    # two greens with the programme's own yellows
    (["GGrr", "yyrr", "rrGG", "rryy"], [30, 3, 30, 3]),
    # protected left, overlapping greens and an all-red
    (["GGgrrr", "GGGrrr", "yyyrrr", "rrrrrr", "rrrGGg", "rrryyy"], [20, 5, 3, 2, 25, 4]),
    # greens with no transitions between them (derived ones) and a split stage
    (["GrGr", "GrGr", "rGrG", "GGrr"], [10, 10, 20, 15]),
]


@settings(max_examples=60, deadline=None)
@given(
    programme=st.sampled_from(PROGRAMMES),
    yellow=st.integers(1, 4),
    all_red=st.integers(0, 3),
    min_green=st.integers(1, 8),
    max_green=st.integers(8, 30),
    plan=st.lists(st.tuples(st.integers(0, 5), st.integers(1, 12)), min_size=1, max_size=40),
)
def test_property_cues_play_the_engine_states(
    programme: tuple[list[str], list[float]],
    yellow: int,
    all_red: int,
    min_green: int,
    max_green: int,
    plan: list[tuple[int, int]],
) -> None:
    states, durations = programme
    timing = SignalTiming(yellow=yellow, all_red=all_red, min_green=min_green, max_green=max_green)
    engine = PhaseEngine(states, durations, timing)
    reference = copy.copy(engine)
    compiled = _compile(engine)
    phases = list(compiled.phases)
    player = Player(compiled, Cue(0))
    playing = Schedule((), engine.state)
    for request, interval in plan:
        green = request % engine.num_greens
        engine.request(green)
        reference.request(green)
        wanted = _run_ahead(engine, interval)
        cues, playing = cues_for_interval(compiled, playing, wanted, interval)
        offsets = [offset for offset, _ in cues]
        assert offsets == sorted(set(offsets))
        if interval <= min_green:  # room for one switch at most
            assert len(cues) <= 1, cues
        for step in range(interval):
            for offset, cue in cues:
                if offset == step:
                    player.cue(cue)
            assert player.step() == reference.state
            reference.tick()
    assert compiled.phases == phases  # the programme never changes
