"""Every transition of a signal compiled into one SUMO programme, loaded once per episode.

A :class:`Schedule` is what a phase engine will show from now on: states for whole
numbers of steps, then a green until further notice. :class:`SignalProgramme` holds, from
the start, every schedule a phase engine can produce with one switch: each green on its
own (lasting for ever), and for every ordered pair of greens a *hold* phase of the first
green followed by the pair's transition phases, ending in the second green. SUMO then
plays any decision interval by itself from a :class:`Cue`: one ``setPhase`` and, when the
phase must end earlier than programmed (a remaining min green, a transition already
running), one ``setPhaseDuration``. The programme never grows, so a decision costs the
same at the end of an episode as at its start, and the commands it sends are a few bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

FOREVER = 10**9
"""Steps a programme's green lasts (31 years of 1-second steps): until the next cue."""


class Schedule(NamedTuple):
    """What a signal shows from now on: each ``(state, steps)`` in turn, then ``final``
    until further notice. Consecutive runs of one state are always merged."""

    steps: tuple[tuple[str, int], ...]
    final: str

    @classmethod
    def of(cls, runs: Iterable[tuple[str, int]], final: str) -> Schedule:
        """The schedule showing ``runs`` then ``final``, with equal neighbours merged and
        empty runs dropped."""
        merged: list[tuple[str, int]] = []
        for state, steps in runs:
            if steps <= 0:
                continue
            if merged and merged[-1][0] == state:
                merged[-1] = (state, merged[-1][1] + steps)
            else:
                merged.append((state, steps))
        while merged and merged[-1][0] == final:
            merged.pop()
        return cls(tuple(merged), final)

    @property
    def first(self) -> str:
        """The state shown now."""
        return self.steps[0][0] if self.steps else self.final

    def after(self, elapsed: int) -> Schedule:
        """The rest of this schedule once ``elapsed`` steps have been shown."""
        if elapsed <= 0 or not self.steps:
            return self
        steps = list(self.steps)
        while steps and elapsed > 0:
            state, length = steps[0]
            if length > elapsed:
                steps[0] = (state, length - elapsed)
                break
            elapsed -= length
            steps.pop(0)
        return Schedule(tuple(steps), self.final)


def agreement(a: Schedule, b: Schedule) -> float:
    """Steps for which ``a`` and ``b`` show the same states (``math.inf``: for ever)."""
    shown = 0
    while True:
        if a == b:
            return math.inf
        if a.first != b.first:
            return shown
        # Both show the same state: for as long as the shorter of their runs lasts.
        length = min(
            a.steps[0][1] if a.steps else math.inf,
            b.steps[0][1] if b.steps else math.inf,
        )
        shown += int(length)
        a, b = a.after(int(length)), b.after(int(length))


class ProgrammePhase(NamedTuple):
    """One phase of a compiled programme."""

    state: str
    steps: int
    next: int  # index of the phase that follows


class Cue(NamedTuple):
    """Put a signal on phase ``phase``, to end after ``steps`` steps (``None``: as
    programmed)."""

    phase: int
    steps: int | None = None


class SignalProgramme:
    """The static programme that plays every schedule of one signal.

    Args:
        greens: the signal's green states; each gets a phase of its own, in this order,
            which lasts for ever.
        transitions: for each ordered pair ``(src, dst)`` of green indices, the
            ``(state, steps)`` shown between them (empty: a direct switch).
    """

    def __init__(
        self,
        greens: Sequence[str],
        transitions: Mapping[tuple[int, int], Sequence[tuple[str, int]]],
    ) -> None:
        self.greens = tuple(greens)
        self.phases = [ProgrammePhase(green, FOREVER, i) for i, green in enumerate(self.greens)]
        for (src, dst), steps in sorted(transitions.items()):
            # The hold phase shows src until its cue's duration ends, then the transition.
            hold = len(self.phases)
            self.phases.append(ProgrammePhase(self.greens[src], FOREVER, hold + 1))
            for state, length in steps:
                self.phases.append(ProgrammePhase(state, length, len(self.phases) + 1))
            last = self.phases[-1]
            self.phases[-1] = last._replace(next=dst)
        # What each phase plays once it ends by itself (its fixed successors).
        self._tails = [self._tail(index) for index in range(len(self.phases))]
        self._by_state: dict[str, list[int]] = {}
        for index, phase in enumerate(self.phases):
            self._by_state.setdefault(phase.state, []).append(index)
        self._exact: dict[tuple[str, Schedule], int] = {}
        for index in reversed(range(len(self.phases))):  # the lowest index wins
            phase = self.phases[index]
            tail = self._tails[index]
            if tail.first != phase.state:  # a tail that starts alike would merge with it
                self._exact[(phase.state, tail)] = index

    def _tail(self, index: int) -> Schedule:
        runs: list[tuple[str, int]] = []
        following = self.phases[index].next
        for _ in range(len(self.phases)):
            phase = self.phases[following]
            if phase.steps == FOREVER:
                return Schedule.of(runs, phase.state)
            runs.append((phase.state, phase.steps))
            following = phase.next
        raise ValueError("a programme's transitions must end in a green")

    def plays(self, cue: Cue) -> Schedule:
        """What SUMO shows from ``cue`` on."""
        phase = self.phases[cue.phase]
        steps = phase.steps if cue.steps is None else cue.steps
        if steps >= FOREVER:
            return Schedule((), phase.state)
        tail = self._tails[cue.phase]
        return Schedule.of(((phase.state, steps), *tail.steps), tail.final)

    def cue(self, schedule: Schedule) -> Cue | None:
        """A cue that plays ``schedule`` exactly, if there is one."""
        if not schedule.steps:
            index = self._exact_green(schedule.final)
            return None if index is None else Cue(index)
        (state, steps), rest = schedule.steps[0], Schedule(schedule.steps[1:], schedule.final)
        index = self._exact.get((state, rest))
        if index is None:
            return None
        return Cue(index, None if self.phases[index].steps == steps else steps)

    def _exact_green(self, state: str) -> int | None:
        for index in self._by_state.get(state, ()):
            if self.phases[index].steps == FOREVER and self._tails[index].first == state:
                return index  # a green that plays itself for ever
        return None

    def best_cue(self, schedule: Schedule) -> tuple[Cue, float]:
        """The cue that plays the longest beginning of ``schedule``, and for how many
        steps it does (``math.inf``: all of it).

        Raises:
            ValueError: when no phase shows the schedule's first state.
        """
        first_steps = schedule.steps[0][1] if schedule.steps else None
        best: tuple[Cue, float] | None = None
        for index in self._by_state.get(schedule.first, ()):
            for steps in {None, first_steps}:
                cue = Cue(index, steps)
                shown = agreement(self.plays(cue), schedule)
                if best is None or shown > best[1]:
                    best = (cue, shown)
        if best is None:
            raise ValueError(f"no phase of the programme shows {schedule.first!r}")
        return best


def cues_for_interval(
    programme: SignalProgramme, playing: Schedule, wanted: Schedule, steps: int
) -> tuple[list[tuple[int, Cue]], Schedule]:
    """The cues (step offset, cue) that make a signal playing ``playing`` show ``wanted``
    over the next ``steps`` steps, and what it plays after them.

    One cue at the start of the interval, or none, whenever a single switch happens in
    it; only a schedule that no phase chain holds (two switches in one interval) is cut
    into several cues.
    """
    cues: list[tuple[int, Cue]] = []
    offset = 0
    while offset < steps:
        target = wanted.after(offset)
        if playing == target:
            break
        exact = programme.cue(target)
        if exact is not None:
            cues.append((offset, exact))
            playing = target
            break
        kept = agreement(playing, target)
        if kept >= steps - offset:
            break  # what plays now is right until the interval ends
        cue, shown = programme.best_cue(target)
        if shown > kept:
            cues.append((offset, cue))
            playing, kept = programme.plays(cue), shown
        advance = int(min(kept, steps - offset))
        playing = playing.after(advance)
        offset += advance
    return cues, playing.after(steps - offset)
