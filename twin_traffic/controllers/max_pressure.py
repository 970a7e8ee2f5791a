"""The max-pressure family, at movement level: Varaiya (2013), Efficient-MP (Wu et al.
2021) and Advanced-MP (Zhang et al. 2022).

A movement is a controlled link, from an incoming lane to an outgoing lane. Its
pressure is what waits on its incoming lane minus what its outgoing lane holds; a lane
feeding several links counts once over them (each link carries its share), so a lane's
pressure is its own count minus the mean over its exits. Negative pressure is no claim,
nor is a link whose exit spills back. A green's pressure sums its links' pressures
(permissive ``g`` links as protected ones). The shared rules (starvation guard, blocked
lanes, switching cost, cyclic mode, maximal greens) are in :mod:`.decision`.
"""

from __future__ import annotations

import numpy as np

from twin_traffic.controllers.decision import GreenChooser
from twin_traffic.controllers.parameters import BLOCKED_AFTER
from twin_traffic.features import (
    DEFAULT_SENSOR_RANGE,
    SignalLayout,
    Snapshot,
    green_pressures,
    link_pressure,
    queued_or_arriving,
    running_vehicles,
    with_pending,
)
from twin_traffic.signals import PhaseEngine

__all__ = [
    "AdvancedMaxPressureController",
    "EfficientMaxPressureController",
    "MaxPressureController",
    "green_pressures",
    "link_pressure",
    "running_vehicles",
]


class MaxPressureController(GreenChooser):
    """Max-pressure control (P. Varaiya, "Max pressure control of a network of signalized
    intersections", Transportation Research Part C 36, 2013): serve the green with the
    largest pressure, a link's pressure being the vehicles queued or arriving on its
    incoming lane minus the vehicles on its outgoing lane.

    Varaiya's state is the queue of vehicles waiting to use each link. Here a link's
    incoming count is its lane's queue (halting vehicles over its road, ``reach``, and
    those waiting to enter) plus the vehicles moving within ``sensor_range`` (150 m) of
    the stop line, which join the queue or cross within seconds
    (:func:`~twin_traffic.features.queued_or_arriving`); a vehicle still far up the road
    is not yet demand for this green. Counting every vehicle on the road instead let a
    main street's moving traffic outweigh a side street's standing queue: 0.70×, 0.76×
    and 0.80× fixed time on Pasubio, ``mixed`` and ``mixed-high`` (seeds 5-7), against
    0.68×, 0.61× and 0.68× with this count alone (seeds 5-9; docs/classical.md, "Why
    max-pressure counts queued and arriving vehicles").

    The whole family decides every second, with a 5 s minimum green lengthened by a
    *variable initial* (2 s per vehicle the green inherits queued, at most 20 s; see
    :meth:`~twin_traffic.controllers.decision.GreenChooser.hold_initial`): a fixed 10 s
    minimum with a decision every 5 s left an isolated near-saturated junction
    (``single-high``) at 1.07× fixed time (seeds 100-104), against 0.66× now. On seeds
    5-9 it is better on six of ten networks (Pasubio 0.67× to 0.63×, ``mixed`` 0.61× to
    0.57×) and at most 0.02 worse on the others (docs/classical.md, "Why max-pressure
    takes the family's variable initial").

    Args:
        sensor_range: metres before the stop line within which moving vehicles count.
        decision_interval: seconds between decisions.
        min_green: shortest green before a switch, s.
        initial_per_vehicle, max_initial: the variable initial, s per queued vehicle
            and at most.
    """

    name = "max-pressure"
    needs = frozenset({"vehicles", "halting", "outgoing", "pending", "sensor"})

    def __init__(
        self,
        sensor_range: float = 150.0,
        decision_interval: float = 1.0,
        min_green: float = 5.0,
        initial_per_vehicle: float = 2.0,
        max_initial: float = 20.0,
        blocked_after: float = BLOCKED_AFTER,
        **settings: object,
    ) -> None:
        super().__init__(
            sensor_range=sensor_range,
            decision_interval=decision_interval,
            min_green=min_green,
            initial_per_vehicle=initial_per_vehicle,
            max_initial=max_initial,
            blocked_after=blocked_after,
            **settings,  # type: ignore[arg-type]
        )

    def green_scores(
        self, layout: SignalLayout, snapshot: Snapshot, open_links: np.ndarray
    ) -> np.ndarray:
        """Each green's pressure."""
        return green_pressures(
            layout, queued_or_arriving(snapshot), open_links, exits=snapshot.vehicles
        )

    def choose(self, layout: SignalLayout, snapshot: Snapshot, engine: PhaseEngine) -> int:
        """The green with the largest pressure, under the shared rules."""
        starved = self.starving(layout, snapshot, engine)
        return self.decide(layout, self.claimed_scores(layout, snapshot, engine), engine, starved)


class EfficientMaxPressureController(MaxPressureController):
    """Efficient-MP (Q. Wu, L. Zhang, J. Shen, L. Lü, B. Du, J. Wu, "Efficient pressure:
    improving efficiency for signalized intersections", arXiv:2112.02336, 2021): a
    movement's pressure is the *queue* (halting vehicles) on its entry lane minus the
    mean queue on its exit lanes; the green with the largest efficient pressure is
    served.

    Queues alone say nothing of the vehicles still moving towards a red light, so the
    starvation guard steps in sooner than for the other deciding controllers
    (``max_wait`` 90 s; on Bologna's Pasubio 0.65× fixed time against 0.70× with 120 s,
    and the same on the built-ins, 5 seeds).

    A queue-based pressure drops as soon as a green's queue starts to move, so a fixed
    minimum green either cuts greens whose queues are still discharging (short) or holds
    empty ones (long). The family's short minimum (5 s) with a variable initial gave
    0.42-0.72× fixed time on every network of the benchmark (seeds 5-7), against
    0.45-0.89× with a 15 s minimum and 0.45-0.80× with a plain 5 s one
    (docs/classical.md, "Why a variable initial").

    Deciding every second (as an actuated controller checks its detectors) matters most
    here: a queue-based pressure says when a queue has gone, and a decision every 5 s
    kept each green up to 5 s past it. On seeds 5-7 efficient max-pressure went from
    0.42-0.72× to 0.43-0.67× fixed time (Pasubio 0.71× to 0.63×), advanced max-pressure
    from 0.42-0.77× to 0.42-0.70× (docs/classical.md, "Why a decision every second")."""

    name = "efficient-max-pressure"
    needs = frozenset({"vehicles", "halting", "outgoing", "pending"})

    def __init__(
        self,
        sensor_range: float = DEFAULT_SENSOR_RANGE,
        max_wait: float = 90.0,
        **settings: object,
    ) -> None:
        super().__init__(
            sensor_range=sensor_range,
            max_wait=max_wait,
            **settings,  # type: ignore[arg-type]
        )

    def green_scores(
        self, layout: SignalLayout, snapshot: Snapshot, open_links: np.ndarray
    ) -> np.ndarray:
        """Each green's efficient pressure."""
        return green_pressures(layout, with_pending(snapshot.halting, snapshot), open_links)


class AdvancedMaxPressureController(EfficientMaxPressureController):
    """Advanced-MP (L. Zhang, Q. Wu, J. Shen, L. Lü, B. Du, J. Wu, "Expression might be
    enough: representing pressure and demand for reinforcement learning based traffic
    signal control", ICML 2022): the current green is kept while its *effective running
    vehicles* — moving vehicles within ``sensor_range`` m of the stop line on the lanes
    it serves, which would cross during the next green — outnumber the best efficient
    pressure; otherwise the green with the best efficient pressure is served.

    Its minimum green is the family's 5 s under the variable initial. It took 10 s while
    5 s jammed one of Pasubio's seeds (168 s/trip against 113-124 for the others); since
    the blocked-lane rule, Pasubio's seeds 0-24 run at 98-112 s/trip with 5 s, and 5 s is
    better than 10 s on every network of the benchmark: Pasubio 0.55× to 0.54× fixed
    time, ``mixed`` 0.56× to 0.51×, ``arterial`` 0.47× to 0.43× (seeds 0-4;
    docs/classical.md, "Why advanced max-pressure takes the family's 5 s").

    Args:
        sensor_range: the effective range, m (the paper: the distance a vehicle covers
            at the speed limit in one action interval).
    """

    name = "advanced-max-pressure"
    needs = frozenset({"vehicles", "halting", "outgoing", "pending", "sensor"})

    def __init__(
        self,
        sensor_range: float = 75.0,
        max_wait: float = 120.0,
        **settings: object,
    ) -> None:
        super().__init__(sensor_range=sensor_range, max_wait=max_wait, **settings)

    def choose(self, layout: SignalLayout, snapshot: Snapshot, engine: PhaseEngine) -> int:
        """Keep the current green while its running vehicles outweigh the best pressure."""
        starved = self.starving(layout, snapshot, engine)
        open_links = self.open_links(layout, snapshot)
        scores = self.claimed_scores(layout, snapshot, engine, open_links)
        current = engine.current_green
        running = running_vehicles(layout, snapshot, open_links)
        candidates = layout.maximal.copy()
        candidates[current] = True
        if not starved.any() and running[current] >= np.where(candidates, scores, 0).max():
            return current
        return self.decide(layout, scores, engine, starved)
