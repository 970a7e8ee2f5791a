"""Roads as a signal's movements see them: approach and exit lanes extended over the
lanes that feed them, or that they feed, through junctions no signal controls.

Real networks split a road into several edges wherever its lanes, its speed or a side
street change; Bologna's Pasubio has approach lanes of 0–40 m whose queue stands on a
200 m edge before them. Counting only the controlled lane leaves such a movement nearly
invisible to pressure, and calls a short exit "full" when two cars pass over it. In the
max-pressure model (Varaiya 2013) a movement's queue is the whole road between two
signals; here it is the road within ``reach`` metres of the stop line (what a camera or a
chain of loops covers), upstream for an approach and downstream for an exit.

A lane joins a stretch with a weight: the share of its traffic that flows on along the
stretch (its connections split evenly, as lane counts do), times the part of its length
within ``reach``. A stretch stops at a signal, at the network's edge, and at ``reach``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

StretchLanes = dict[str, float]
"""Lane id -> weight: the lanes a stretch adds to its own lane."""


def invert(successors: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Predecessors of each lane from its successors."""
    predecessors: dict[str, list[str]] = {}
    for lane, nexts in successors.items():
        for nxt in nexts:
            predecessors.setdefault(nxt, []).append(lane)
    return {lane: tuple(before) for lane, before in predecessors.items()}


def stretch(
    lane: str,
    neighbours: Mapping[str, Sequence[str]],
    successors: Mapping[str, Sequence[str]],
    lengths: Mapping[str, float],
    reach: float,
    upstream: bool,
) -> StretchLanes:
    """The lanes within ``reach`` m of ``lane``'s stop line (``upstream``) or of its start
    (downstream), through ``neighbours`` (predecessors or successors), with their weights.

    A lane's share is ``1 / len(successors[lane])`` of the flow it passes on (upstream:
    of its own flow heading into the stretch; downstream: of the flow it receives).
    """
    weights: StretchLanes = {}
    visited = {lane}
    # (lane, distance from the reference point to the far end of the lane, flow share)
    frontier = [(lane, lengths[lane], 1.0)]
    while frontier:
        current, distance, share = frontier.pop()
        if distance >= reach:
            continue
        for other in neighbours.get(current, ()):
            if other in visited:
                continue
            visited.add(other)
            split = len(successors[other] if upstream else successors[current]) or 1
            flow = share / split
            length = lengths[other]
            within = min(1.0, (reach - distance) / length) if length > 0 else 1.0
            weights[other] = flow * within
            frontier.append((other, distance + length, flow))
    return weights


@dataclass(frozen=True)
class Reach:
    """Adds each stretch's lanes to its own lane in per-lane arrays.

    ``extend(values)[target[i]] += weight[i] * values[source[i]]``, reading the values
    as they were (a lane's own value is never counted twice).
    """

    target: np.ndarray
    source: np.ndarray
    weight: np.ndarray

    @classmethod
    def empty(cls) -> Reach:
        """A reach that changes nothing."""
        return cls(np.zeros(0, dtype=int), np.zeros(0, dtype=int), np.zeros(0))

    def extend(self, values: np.ndarray) -> np.ndarray:
        """``values`` with every stretch's lanes added to its own lane."""
        if not len(self.target):
            return values
        added = np.bincount(
            self.target, weights=self.weight * values[self.source], minlength=len(values)
        )
        return values + added


def road_stretches(
    approaches: Sequence[str],
    exits: Sequence[str],
    successors: Mapping[str, Sequence[str]],
    lengths: Mapping[str, float],
    reach: float,
) -> dict[str, StretchLanes]:
    """Lane -> its stretch: upstream of every approach lane, downstream of every exit
    lane (a lane that is both an exit and an approach has neither: both its ends are
    signals)."""
    if reach <= 0:
        return {}
    predecessors = invert(successors)
    stretches: dict[str, StretchLanes] = {}
    for lane in approaches:
        found = stretch(lane, predecessors, successors, lengths, reach, upstream=True)
        if found:
            stretches[lane] = found
    for lane in exits:
        found = stretch(lane, successors, successors, lengths, reach, upstream=False)
        if found:
            stretches[lane] = {**stretches.get(lane, {}), **found}
    return stretches


def signal_neighbours(
    incoming: Sequence[Sequence[str]],
    outgoing: Sequence[Sequence[str]],
    successors: Mapping[str, Sequence[str]],
) -> list[frozenset[int]]:
    """Per signal, the signals next to it on the road: those whose approaches its exits
    lead to, directly or through junctions no signal controls (``successors``), and
    those whose exits lead to its approaches.

    ``incoming[i]`` and ``outgoing[i]`` are signal ``i``'s approach and exit lanes. A
    road is followed until it reaches a signal's approach (it goes no further: the next
    signal down the road is that one's neighbour) or the network's edge.
    """
    approach_of: dict[str, set[int]] = {}
    for j, lanes in enumerate(incoming):
        for lane in lanes:
            approach_of.setdefault(lane, set()).add(j)
    neighbours: list[set[int]] = [set() for _ in incoming]
    for i, exits in enumerate(outgoing):
        visited = set(exits)
        frontier = list(exits)
        while frontier:
            lane = frontier.pop()
            reached = approach_of.get(lane)
            if reached:
                for j in reached - {i}:
                    neighbours[i].add(j)
                    neighbours[j].add(i)
                continue
            for nxt in successors.get(lane, ()):
                if nxt not in visited:
                    visited.add(nxt)
                    frontier.append(nxt)
    return [frozenset(found) for found in neighbours]
