"""Signal schedules compiled into one SUMO programme per signal, for SUMO to play alone.

A :class:`Schedule` is what a phase engine will show from now on: states for whole
numbers of steps, then a green until further notice. Each distinct schedule becomes a
chain of phases in the signal's programme that ends by jumping to its green, and the
greens themselves last for ever. Putting a signal on a schedule is then a single
``setPhase``, and a decision interval a single simulation call whatever the signals do.
With TraCI every call is a round trip and every step's reply carries all subscribed
values, so this is most of what control costs there. Schedules repeat (a policy switches
between the same greens through the same yellows), so the programme soon stops growing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

FOREVER = 10**9
"""Steps a programme's green lasts (31 years of 1-second steps): until the next schedule."""


class Schedule(NamedTuple):
    """What a signal shows from now on: each ``(state, steps)`` in turn, then ``final``
    until further notice."""

    steps: tuple[tuple[str, int], ...]
    final: str

    def after(self, elapsed: int) -> Schedule:
        """The rest of this schedule once ``elapsed`` steps have been shown."""
        steps = list(self.steps)
        while steps and elapsed > 0:
            state, length = steps[0]
            if length > elapsed:
                steps[0] = (state, length - elapsed)
                break
            elapsed -= length
            steps.pop(0)
        return Schedule(tuple(steps), self.final)


class ProgrammePhase(NamedTuple):
    """One phase of a compiled programme."""

    state: str
    steps: int
    next: int  # index of the phase that follows


class SignalProgramme:
    """The growing static programme that plays one signal's schedules.

    Args:
        greens: the signal's green states; each gets a phase of its own, in this order.
    """

    def __init__(self, greens: Sequence[str]) -> None:
        self.phases = [ProgrammePhase(green, FOREVER, i) for i, green in enumerate(greens)]
        self._entries: dict[Schedule, int] = {
            Schedule((), green): i for i, green in enumerate(greens)
        }

    def entry(self, schedule: Schedule) -> tuple[int, bool]:
        """The phase to show for ``schedule`` to play, and whether the programme grew to
        hold it (so SUMO must be given the new programme first)."""
        known = self._entries.get(schedule)
        if known is not None:
            return known, False
        # Only a schedule with steps is unknown here, unless its final state is not one of
        # the greens: then that state becomes a phase of its own first.
        final = self._entries.get(Schedule((), schedule.final))
        if final is None:
            final = len(self.phases)
            self.phases.append(ProgrammePhase(schedule.final, FOREVER, final))
            self._entries[Schedule((), schedule.final)] = final
            if not schedule.steps:
                return final, True
        start = len(self.phases)
        for offset, (state, steps) in enumerate(schedule.steps):
            last = offset == len(schedule.steps) - 1
            following = final if last else start + offset + 1
            self.phases.append(ProgrammePhase(state, steps, following))
        self._entries[schedule] = start
        return start, True
