"""Max-pressure control (Varaiya 2013): serve the green with the largest pressure."""

from __future__ import annotations

from twin_traffic.controllers.decision import GreenChooser, best_green
from twin_traffic.features import SignalLayout, Snapshot
from twin_traffic.signals import PhaseEngine


class MaxPressureController(GreenChooser):
    """The pressure of a green is the sum over its movements of the vehicles on the
    incoming lane minus the vehicles on the outgoing lane; the largest wins (ties keep the
    current green, then the first green). Decisions every ``decision_interval`` s, with
    the phase engine's yellow and min/max green."""

    name = "max-pressure"
    needs = frozenset({"vehicles", "outgoing"})

    def choose(self, layout: SignalLayout, snapshot: Snapshot, engine: PhaseEngine) -> int:
        """The green with the largest pressure."""
        return best_green(pressures(layout, snapshot), engine.current_green)


def pressures(layout: SignalLayout, snapshot: Snapshot) -> list[float]:
    """Pressure of each green of a signal."""
    movement = snapshot.vehicles[layout.movement_in] - snapshot.vehicles[layout.movement_out]
    return [float(value) for value in layout.green_movements.astype(float) @ movement]
