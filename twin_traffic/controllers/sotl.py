"""Self-organising traffic lights (Gershenson & Rosenblueth 2012)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from twin_traffic.controllers.decision import GreenChooser
from twin_traffic.errors import ControllerError
from twin_traffic.features import Observer, SignalLayout, Snapshot
from twin_traffic.signals import PhaseEngine

if TYPE_CHECKING:
    from twin_traffic.network import Network


class SotlController(GreenChooser):
    """Each signal counts the vehicle-seconds of traffic at red (``kappa``: vehicles on
    the lanes of movements that have red, times the seconds between decisions). Once
    ``kappa`` exceeds ``threshold`` and min green has passed, the signal switches to the
    green with the most vehicles waiting for it; it also switches as soon as min green
    has passed when nobody uses the current green and somebody waits at red. The count
    restarts at each switch. These are rules 1, 2 and 4 of Gershenson & Rosenblueth,
    "Self-organizing traffic lights at multiple-street intersections" (2012); the
    short-distance platoon rules need detection finer than a lane and are left out.

    The threshold is a setting to tune per network (Cools, Gershenson & D'Hooghe,
    "Self-organizing traffic lights: a realistic simulation", 2008); the defaults,
    ``threshold`` 120 and ``reach`` 150, were measured over the real networks and the
    built-ins (docs/classical.md): with 60 and 300 SOTL was 1.20× fixed time on
    ``mixed-high`` and 0.69× on Monaco, against 0.93× and 0.66×.

    Args:
        threshold: vehicle-seconds at red that call for a switch.
    """

    name = "sotl"
    needs = frozenset({"vehicles"})

    def __init__(
        self,
        threshold: float = 120.0,
        decision_interval: float = 2.0,
        reach: float = 150.0,
        **settings: object,
    ) -> None:
        super().__init__(decision_interval=decision_interval, reach=reach, **settings)  # type: ignore[arg-type]
        if float(threshold) <= 0:
            raise ControllerError("sotl: threshold must be positive")
        self.threshold = float(threshold)
        self._kappa: dict[str, float] = {}
        self._green: dict[str, int] = {}

    def start(self, network: Network, engines: Sequence[PhaseEngine], observer: Observer) -> None:
        """Begin a run with every count at zero."""
        super().start(network, engines, observer)
        self._kappa = {}
        self._green = {}

    def choose(self, layout: SignalLayout, snapshot: Snapshot, engine: PhaseEngine) -> int:
        """Keep the green until enough traffic has built up at red."""
        current = engine.current_green
        if self._green.get(layout.id) != current:  # a switch happened (or first call)
            self._green[layout.id] = current
            self._kappa[layout.id] = 0.0
        served = layout.green_movements[current]
        at_red = _vehicles(snapshot, layout, ~served)
        assert self.decision_interval is not None
        self._kappa[layout.id] += at_red * self.decision_interval
        if not engine.can_switch or at_red == 0:
            return current
        idle_green = _vehicles(snapshot, layout, served) == 0
        if self._kappa[layout.id] >= self.threshold or idle_green:
            return self.next_green(layout, snapshot, current)
        return current

    def next_green(self, layout: SignalLayout, snapshot: Snapshot, current: int) -> int:
        """The other maximal green with the most vehicles waiting for it (ties: next in
        order); in ``cyclic`` mode the next maximal green in order with vehicles waiting."""
        order = [(current + step) % layout.num_greens for step in range(1, layout.num_greens)]
        if len(layout.maximal) == layout.num_greens:
            order = [g for g in order if layout.maximal[g]]
        if not order:
            return current
        demand = [_vehicles(snapshot, layout, layout.green_movements[g]) for g in order]
        if self.cycle == "cyclic":
            return next((g for g, d in zip(order, demand, strict=True) if d > 0), current)
        return order[int(np.argmax(demand))]


def _vehicles(snapshot: Snapshot, layout: SignalLayout, movements: np.ndarray) -> float:
    """Vehicles on the distinct incoming lanes of the given movements."""
    lanes = np.unique(layout.movement_in[movements])
    return float(snapshot.vehicles[lanes].sum())
