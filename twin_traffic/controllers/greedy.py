"""Greedy control: serve the green whose lanes hold the longest queue."""

from __future__ import annotations

import numpy as np

from twin_traffic.controllers.decision import GreenChooser, best_green
from twin_traffic.features import SignalLayout, Snapshot
from twin_traffic.signals import PhaseEngine


class GreedyController(GreenChooser):
    """At each decision, the green that gives way to the longest queue (halting vehicles
    on one incoming lane) is requested; ties keep the current green, then the first."""

    name = "greedy"
    needs = frozenset({"halting"})

    def choose(self, layout: SignalLayout, snapshot: Snapshot, engine: PhaseEngine) -> int:
        """The green serving the longest queue."""
        return best_green(longest_queues(layout, snapshot), engine.current_green)


def longest_queues(layout: SignalLayout, snapshot: Snapshot) -> list[float]:
    """For each green, the longest queue among the lanes it gives green to."""
    queue = snapshot.halting[layout.movement_in]
    return [float(np.max(queue[served], initial=0.0)) for served in layout.green_movements]
