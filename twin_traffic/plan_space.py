"""The space of fixed-time plans a tuner searches: cycles, splits and offsets.

Each signal keeps its own programme: its phase sequence, its transitions (yellows,
all-reds, the short phases that keep some movements green) and the fixed tails of stages
split into several phases. Only its *tunable* greens change:

* a green phase with ``minDur`` < ``maxDur`` (a city's actuated range, as in the Bologna
  plans) is tunable down to ``max(minDur, min_green)``; one with ``minDur == maxDur`` is a
  fixed part of the programme;
* a green phase without those bounds is tunable (down to ``min_green``) when it lasts at
  least ``min_green`` and does not continue the stage of the phase before it (a split
  stage keeps its later parts);
* a signal where nothing qualifies has its longest green tunable.

Signals are timed in *coordination groups* that share one cycle: by default the signals
whose own plans already share a cycle (a city coordinates the signals it gives one
cycle) and whose other starting plans (Webster's, when the tuner starts from it) share
one too, so that the plan the search starts from is a point of the space; or groups
given by the user. Every signal has an offset, counted from the
scenario's begin as SUMO's ``offset="begin"`` counts (SUMO 1.28 accepts it): offset 0
starts a signal's cycle at the first second of the scenario, whatever the begin time.
The programmes carry it as SUMO's plain number ``(begin + offset) mod cycle``, which
SUMO runs identically and which, unlike ``"begin"``, can differ between signals.

With the default groups the scenario's own plan and the other starting plans are points
of the space (whole-second durations and offsets): ``decode(encode(plan)) == plan``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from twin_traffic.errors import TwinTrafficError
from twin_traffic.network import Network, TrafficLight
from twin_traffic.plans import Programme, round_to_total

PROGRAM_ID = "twin-traffic-tuned"


@dataclass(frozen=True)
class SignalTiming:
    """Which phases of a signal's programme are tuned, and how short they may get.

    Attributes:
        light: the signal and its programme.
        slots: indices of the tunable green phases.
        lows: the shortest duration of each tunable phase, s.
    """

    light: TrafficLight
    slots: tuple[int, ...]
    lows: tuple[float, ...]

    @property
    def fixed(self) -> float:
        """Seconds per cycle in phases that are not tuned."""
        tuned = set(self.slots)
        return float(sum(p.duration for i, p in enumerate(self.light.phases) if i not in tuned))

    @property
    def shortest_cycle(self) -> float:
        """The cycle when every tunable phase is at its minimum, s."""
        return self.fixed + sum(self.lows)


def signal_timing(light: TrafficLight, min_green: float) -> SignalTiming:
    """The tunable phases of one signal (see the module's rules)."""
    phases = light.phases
    slots: list[int] = []
    lows: list[float] = []
    for i, phase in enumerate(phases):
        if not phase.is_green:
            continue
        if phase.min_dur is not None and phase.max_dur is not None:
            if phase.max_dur > phase.min_dur:
                slots.append(i)
                lows.append(min(max(phase.min_dur, min_green), phase.duration))
            continue
        continues_stage = i > 0 and phases[i - 1].state == phase.state
        if phase.duration >= min_green and not continues_stage:
            slots.append(i)
            lows.append(min_green)
    if not slots:
        greens = [i for i, phase in enumerate(phases) if phase.is_green]
        if not greens:
            raise TwinTrafficError(
                f"signal '{light.id}' has no green phase to time; give its programme a "
                "phase with G or g"
            )
        longest = max(greens, key=lambda i: phases[i].duration)
        slots, lows = [longest], [min(min_green, phases[longest].duration)]
    return SignalTiming(light, tuple(slots), tuple(lows))


def cycle_groups(
    programmes: Mapping[str, Programme],
    signal_ids: Sequence[str],
    starts: Sequence[Mapping[str, Programme]] = (),
) -> list[list[str]]:
    """Signals whose plans share a cycle, in network order: the coordination a city made.

    With ``starts`` (other plans of the same signals), signals share a group only when
    they share a cycle in each of them too.
    """
    groups: dict[tuple[float, ...], list[str]] = {}
    for tls in signal_ids:
        cycles = tuple(round(plan[tls].cycle, 3) for plan in (programmes, *starts) if tls in plan)
        groups.setdefault(cycles, []).append(tls)
    return list(groups.values())


def parse_groups(text: str, signal_ids: Sequence[str]) -> list[list[str]] | str:
    """``--groups``: ``auto``, ``each``, ``one``, or ``A,B;C,D`` (unnamed signals alone)."""
    if text in ("auto", "each", "one"):
        return text
    named: list[list[str]] = []
    seen: set[str] = set()
    for part in text.split(";"):
        members = [m.strip() for m in part.split(",") if m.strip()]
        for member in members:
            if member not in signal_ids:
                raise TwinTrafficError(
                    f"--groups: signal '{member}' is not in the network (signals: "
                    f"{', '.join(signal_ids)})"
                )
            if member in seen:
                raise TwinTrafficError(f"--groups: signal '{member}' is in two groups")
            seen.add(member)
        if members:
            named.append(members)
    return named + [[tls] for tls in signal_ids if tls not in seen]


class PlanSpace:
    """Maps decision vectors in a box to whole-second fixed-time plans, and back.

    Layout: one cycle per coordination group, then per signal (network order) the
    weights of its tunable greens (none with a single tunable green: the cycle sets it)
    and its offset as a fraction of the cycle (even alone, a signal's offset decides
    which phase the scenario starts in).

    Args:
        network: the signals and their programmes.
        own: the scenario's own plan (it sets the default groups and widens the cycle
            bounds so that it lies inside them).
        starts: other plans the search starts from (Webster's); the default groups and
            the cycle bounds take them in as they take ``own``.
        groups: ``"auto"`` (signals whose own plans, and ``starts``, share a cycle),
            ``"each"`` (a cycle per signal), ``"one"`` (one cycle for all) or explicit
            lists of signal ids.
        min_cycle: shortest cycle, s (longer when transitions and minimum greens need it).
        max_cycle: longest cycle, s (never shorter than a cycle of the own plan).
        min_green: shortest tunable green, s.
        begin: the scenario's begin, s; offsets count from it.
    """

    def __init__(
        self,
        network: Network,
        own: Mapping[str, Programme],
        groups: str | Sequence[Sequence[str]] = "auto",
        min_cycle: float = 30.0,
        max_cycle: float = 150.0,
        min_green: float = 5.0,
        begin: float = 0.0,
        starts: Sequence[Mapping[str, Programme]] = (),
    ) -> None:
        ids = list(network.signal_ids)
        self.begin = float(begin)
        self.timings = [signal_timing(network.traffic_lights[tls], min_green) for tls in ids]
        if groups == "auto":
            self.groups = cycle_groups(own, ids, starts)
        elif groups == "each":
            self.groups = [[tls] for tls in ids]
        elif groups == "one":
            self.groups = [ids]
        elif isinstance(groups, str):
            raise TwinTrafficError(f"groups '{groups}': use auto, each, one or lists of signals")
        else:
            self.groups = [list(g) for g in groups]
        position = {tls: k for k, tls in enumerate(ids)}
        self.group_of = {tls: g for g, members in enumerate(self.groups) for tls in members}
        if sorted(self.group_of) != sorted(ids):
            raise TwinTrafficError("groups must name every signal of the network exactly once")
        self.cycle_bounds: list[tuple[float, float]] = []
        for members in self.groups:
            needed = max(self.timings[position[tls]].shortest_cycle for tls in members)
            cycles = [plan[tls].cycle for plan in (own, *starts) for tls in members if tls in plan]
            low = max(math.ceil(needed), min(min_cycle, *cycles) if cycles else min_cycle)
            high = max(max_cycle, *cycles, low) if cycles else max(max_cycle, low)
            if needed > high:
                raise TwinTrafficError(
                    f"signals {', '.join(members)} need a cycle of at least {needed:g} s for "
                    f"their transitions and minimum greens; raise max_cycle above {high:g} s "
                    "or lower min_green"
                )
            self.cycle_bounds.append((float(low), float(high)))
        # Index of each signal's weights and offset in the decision vector.
        self._weights: list[slice] = []
        self._offset: list[int] = []
        at = len(self.groups)
        for timing in self.timings:
            count = len(timing.slots) if len(timing.slots) > 1 else 0
            self._weights.append(slice(at, at + count))
            at += count
            self._offset.append(at)
            at += 1
        self.dimension = at

    @property
    def bounds(self) -> list[tuple[float, float]]:
        """Box bounds of each coordinate."""
        return [*self.cycle_bounds, *[(0.0, 1.0)] * (self.dimension - len(self.groups))]

    def decode(self, x: Sequence[float] | np.ndarray) -> list[Programme]:
        """The plan a decision vector stands for (whole seconds, deterministic)."""
        programmes = []
        for k, timing in enumerate(self.timings):
            light = timing.light
            group = self.group_of[light.id]
            low, high = self.cycle_bounds[group]
            cycle = int(min(max(round(float(x[group])), math.ceil(low)), math.floor(high)))
            spare = max(0, round(cycle - timing.shortest_cycle))
            weights = np.clip(np.asarray(x[self._weights[k]], dtype=float), 0.0, 1.0)
            if len(timing.slots) == 1:
                extra = [spare]
            else:
                total = float(weights.sum())
                shares = weights / total if total > 0 else np.full(len(weights), 1 / len(weights))
                extra = round_to_total(list(shares * spare), spare)
            durations = {
                slot: low_ + e
                for slot, low_, e in zip(timing.slots, timing.lows, extra, strict=True)
            }
            phases = tuple(
                dataclasses.replace(phase, duration=float(durations[i]))
                if i in durations
                else phase
                for i, phase in enumerate(light.phases)
            )
            length = float(sum(p.duration for p in phases))
            relative = round(float(np.clip(x[self._offset[k]], 0.0, 1.0)) * length) % length
            offset = (self.begin + relative) % length
            programmes.append(Programme(light.id, PROGRAM_ID, phases, offset=offset))
        return programmes

    def encode(self, programmes: Mapping[str, Programme]) -> np.ndarray:
        """A decision vector for programmes of the same signals (clipped to the box).

        Exact (``decode`` gives the programmes back, up to the programme id) when every
        group's programmes share a cycle within its bounds, phases other than the tunable
        greens are unchanged, and durations and offsets are whole seconds.
        """
        vector = np.zeros(self.dimension)
        for g, members in enumerate(self.groups):
            cycles = [programmes[tls].cycle for tls in members]
            common = max(cycles, key=lambda c: (cycles.count(c), c))
            vector[g] = float(np.clip(common, *self.cycle_bounds[g]))
        for k, timing in enumerate(self.timings):
            programme = programmes[timing.light.id]
            if len(timing.slots) > 1:
                greens = np.array([programme.phases[i].duration for i in timing.slots])
                extra = np.maximum(greens - np.array(timing.lows), 0.0)
                top = float(extra.max())
                vector[self._weights[k]] = extra / top if top > 0 else 1.0
            cycle = programme.cycle
            vector[self._offset[k]] = ((programme.offset - self.begin) % cycle) / cycle
        return vector

    def describe(self) -> str:
        """The groups and what is tuned, for a plan file's header."""
        parts = []
        for members, (low, high) in zip(self.groups, self.cycle_bounds, strict=True):
            parts.append(f"[{' '.join(members)}] cycle {low:g}-{high:g} s")
        return "; ".join(parts)
