"""Base of the controllers that decide in Python: every few seconds they pick a green per
signal from movement-level state, and the phase engines serve it safely.

The state of a signal is read per lane and per controlled link (an incoming lane to an
outgoing lane), never per vehicle. What every deciding controller shares:

* **spill-back**: a link whose outgoing lane holds ``spillback`` × its capacity has no
  claim to green (serving it would only block the junction);
* **blocked lanes**: a lane that is green, holds a queue and has let no vehicle over
  its stop line for ``blocked_after`` seconds (a permissive turner waiting at its head
  for a gap, a queue stopped past the junction) has no claim to *keep* its green: the
  green is not serving it. Varaiya's pressure weighs each movement by the rate it
  discharges at when served; a blocked lane's rate under the green it has is zero;
* **entry queues**: vehicles SUMO could not insert on an approach's edge count as queued
  on it, so a queue that reaches back past the network's entry is not invisible;
* **starvation guard**: a lane with demand that has not had green for ``max_wait``
  seconds is served next, whatever the scores say;
* **switching cost**: a switch must win by more than the green time its transition
  loses (see :func:`decide`);
* **cycle**: ``acyclic`` serves any green next; ``cyclic`` keeps the programme's order,
  skipping greens without demand, never jumping back (Levin et al. 2020);
* only *maximal* greens are chosen (a green whose links another green serves at least
  as well — a clearance green, a lead phase — never beats it), besides the current one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from twin_traffic.errors import ControllerError
from twin_traffic.features import (
    DEFAULT_SENSOR_RANGE,
    Observer,
    SignalLayout,
    Snapshot,
    discharged_since,
    exit_open,
    unserved_since,
)
from twin_traffic.signals import PhaseEngine, SignalTiming

if TYPE_CHECKING:
    from twin_traffic.network import Network

CYCLES = ("acyclic", "cyclic")
# Real approaches lose several seconds per switch (yellows, clearance greens, start-up):
# measured on Bologna's Pasubio, 15 s halves the delay of 5 s and costs little on Monaco.
DEFAULT_MIN_GREEN = 15.0
DEFAULT_REACH = 300.0
# Seconds a standing queue loses before it flows at saturation headway (HCM's start-up
# lost time).
STARTUP_LOST = 2.0


class GreenChooser(ABC):
    """Picks one green per signal at each decision; subclasses define :meth:`choose`.

    Args:
        decision_interval: seconds between decisions.
        min_green, max_green, yellow, all_red: the phase engine's safety timings, s.
        cycle: ``acyclic`` (any green next) or ``cyclic`` (programme order, greens
            without demand skipped).
        spillback: share of an outgoing lane's capacity (length / 7.5 m) at which its
            links lose their claim to green.
        max_wait: seconds a lane with demand may go without green before it is served.
        sensor_range: metres before the stop line that lane-area detectors cover, for
            controllers that read vehicles within range.
        reach: metres of road before a lane (up to the previous junction) whose
            vehicles count as the lane's.
        initial_per_vehicle: seconds of green per vehicle a green inherits queued
            (the variable initial, see :meth:`hold_initial`); 0 turns it off.
        max_initial: the longest variable initial, s.
        clearance: ``yellow`` (derived transitions last ``yellow + all_red``) or
            ``programme`` (at least the programme's own intergreens too); see
            :class:`~twin_traffic.signals.SignalTiming`.
        blocked_after: seconds a green lane with a queue may let no vehicle over its stop
            line before its links lose their claim to keep the green (0: never; read
            from induction loops at the stop lines).
    """

    name = "decision"
    needs: frozenset[str] = frozenset({"vehicles", "halting"})

    def __init__(
        self,
        decision_interval: float = 5.0,
        min_green: float = DEFAULT_MIN_GREEN,
        max_green: float = 60.0,
        yellow: float = 3.0,
        all_red: float = 0.0,
        cycle: str = "acyclic",
        spillback: float = 0.9,
        max_wait: float = 120.0,
        sensor_range: float = DEFAULT_SENSOR_RANGE,
        reach: float = DEFAULT_REACH,
        initial_per_vehicle: float = 0.0,
        max_initial: float = 30.0,
        clearance: str = "yellow",
        blocked_after: float = 0.0,
    ) -> None:
        try:
            self.timing = SignalTiming(float(yellow), float(all_red), float(min_green),
                                       float(max_green), str(clearance))  # fmt: skip
        except ValueError as error:
            raise ControllerError(f"{self.name}: {error}") from None
        if float(decision_interval) <= 0:
            raise ControllerError(f"{self.name}: decision_interval must be positive")
        if cycle not in CYCLES:
            raise ControllerError(f"{self.name}: cycle must be one of {', '.join(CYCLES)}")
        if not float(spillback) > 0:
            raise ControllerError(f"{self.name}: spillback must be positive")
        if not float(reach) >= 0:
            raise ControllerError(f"{self.name}: reach must be 0 or more")
        if not float(initial_per_vehicle) >= 0 or not float(max_initial) >= 0:
            raise ControllerError(
                f"{self.name}: initial_per_vehicle and max_initial must be 0 or more"
            )
        if not float(blocked_after) >= 0:
            raise ControllerError(f"{self.name}: blocked_after must be 0 or more")
        if not float(max_wait) > 0 or not float(sensor_range) > 0:
            raise ControllerError(f"{self.name}: max_wait and sensor_range must be positive")
        self.decision_interval: float | None = float(decision_interval)
        self.cycle = cycle
        self.spillback = float(spillback)
        self.max_wait = float(max_wait)
        self.sensor_range = float(sensor_range)
        self.reach = float(reach)
        self.initial_per_vehicle = float(initial_per_vehicle)
        self.max_initial = float(max_initial)
        self._unserved_since: dict[str, np.ndarray] = {}
        self._inherited: dict[str, np.ndarray] = {}
        self.blocked_after = float(blocked_after)
        if self.blocked_after > 0:
            self.needs = self.needs | {"crossed"}  # the stop-line loops
        self._discharged: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def additional_files(self, network: Network, directory: Path) -> list[Path]:
        """Lane-area detectors when the controller reads vehicles within range."""
        observer = self.observer_for(network)
        if not observer.needs_detectors:
            return []
        return [observer.detector_file(directory / "decision-detectors.add.xml",
                                       network.lane_lengths)]  # fmt: skip

    def observer_for(self, network: Network) -> Observer:
        """What the controller reads: the lane variables it ``needs``."""
        return Observer(network, network.controlled_ids, observation=(), reward="queue",
                        sensor_range=self.sensor_range, extra_needs=self.needs,
                        reach=self.reach)  # fmt: skip

    def start(self, network: Network, engines: Sequence[PhaseEngine], observer: Observer) -> None:
        """Begin a run: forget what earlier runs left."""
        self._unserved_since = {}
        self._inherited = {}
        self._discharged = {}

    def greens(
        self, snapshot: Snapshot, engines: Sequence[PhaseEngine], observer: Observer
    ) -> list[int]:
        """Each signal's green, chosen one signal at a time by :meth:`choose`."""
        chosen = [
            self.choose(layout, snapshot, engine)
            for layout, engine in zip(observer.layouts, engines, strict=True)
        ]
        if self.initial_per_vehicle <= 0:
            return chosen
        return [
            self.hold_initial(layout, snapshot, engine, green)
            for layout, engine, green in zip(observer.layouts, engines, chosen, strict=True)
        ]

    def hold_initial(
        self, layout: SignalLayout, snapshot: Snapshot, engine: PhaseEngine, green: int
    ) -> int:
        """``green``, or the current green while it is within its *variable initial*.

        Actuated controllers in the street (FHWA Signal Timing Manual, 2008, §5.3.3:
        "variable initial", NEMA's "added initial") lengthen the minimum green by a few
        seconds for every vehicle that queued on the green's lanes during red, so that a
        green is never cut before its standing queue has had time to start and pass,
        while a green with no queue may end after the short minimum. Here the queue a
        green inherits is the longest queue (halting vehicles, the lane's road stretch
        included) on a lane it serves, as last read before the green came on; the
        initial is ``STARTUP_LOST + initial_per_vehicle × queue``, at most
        ``max_initial``.
        """
        queues = (layout.served * snapshot.halting[layout.link_in]).max(axis=1, initial=0.0)
        current = engine.current_green
        inherited = self._inherited.get(layout.id)
        queue = queues[current] if inherited is None else inherited[current]
        if not engine.in_transition:  # the green is on: its queue stays the one it inherited
            queues[current] = queue
        self._inherited[layout.id] = queues
        initial = min(self.max_initial, STARTUP_LOST + self.initial_per_vehicle * queue)
        if green != current and not engine.in_transition and engine.time_in_green < initial:
            return current
        return green

    @abstractmethod
    def choose(self, layout: SignalLayout, snapshot: Snapshot, engine: PhaseEngine) -> int:
        """The green (index into the signal's greens) to ask for now."""

    # -- shared state and decision rule ---------------------------------------------------

    def open_links(self, layout: SignalLayout, snapshot: Snapshot) -> np.ndarray:
        """1.0 for links whose outgoing lane has room, 0.0 where it spills back."""
        return exit_open(layout, snapshot, self.spillback)

    def scores(
        self, layout: SignalLayout, snapshot: Snapshot, open_links: np.ndarray | None = None
    ) -> np.ndarray:
        """Each green's score from the links ``open_links`` marks 1.0 (by default those
        whose exit has room)."""
        if open_links is None:
            open_links = self.open_links(layout, snapshot)
        return self.green_scores(layout, snapshot, open_links)

    def green_scores(
        self, layout: SignalLayout, snapshot: Snapshot, open_links: np.ndarray
    ) -> np.ndarray:
        """Each green's score from the links ``open_links`` marks 1.0; controllers that
        score greens define it."""
        raise NotImplementedError(f"{self.name} does not score greens")

    def claimed_scores(
        self,
        layout: SignalLayout,
        snapshot: Snapshot,
        engine: PhaseEngine,
        open_links: np.ndarray | None = None,
    ) -> np.ndarray:
        """Each green's score from the links with a claim to it: their exit has room
        (``open_links``, computed when not given), and for the current green, their lane
        is not blocked (see :meth:`blocked`)."""
        if open_links is None:
            open_links = self.open_links(layout, snapshot)
        scores = self.scores(layout, snapshot, open_links)
        blocked = self.blocked(layout, snapshot, engine)
        if blocked.any():
            current = engine.current_green
            scores[current] = self.scores(layout, snapshot, open_links * ~blocked)[current]
        return scores

    def blocked(self, layout: SignalLayout, snapshot: Snapshot, engine: PhaseEngine) -> np.ndarray:
        """Per link: True where its lane is green, holds a queue, and has let no vehicle
        over its stop line for ``blocked_after`` seconds. Updated at every decision."""
        if self.blocked_after <= 0:
            return np.zeros(len(layout.link_in), dtype=bool)
        last = discharged_since(self._discharged.get(layout.id), layout, snapshot, engine)
        self._discharged[layout.id] = last
        queued = snapshot.halting[layout.link_in] > 0
        return (snapshot.time - last[1] >= self.blocked_after) & queued

    def starving(self, layout: SignalLayout, snapshot: Snapshot, engine: PhaseEngine) -> np.ndarray:
        """Per link: seconds its lane has had demand without green, once past ``max_wait``
        (0 elsewhere). Updated at every decision."""
        since = unserved_since(self._unserved_since.get(layout.id), layout, snapshot, engine)
        self._unserved_since[layout.id] = since
        waited = snapshot.time - since
        return np.where(waited >= self.max_wait, waited, 0.0)

    def decide(
        self,
        layout: SignalLayout,
        scores: np.ndarray,
        engine: PhaseEngine,
        starved: np.ndarray | None = None,
    ) -> int:
        """The green to request given each green's score (see :func:`decide`)."""
        assert self.decision_interval is not None
        return decide(layout, scores, engine, self.decision_interval, self.cycle, starved)


def lost_seconds(engine: PhaseEngine, src: int, dst: int) -> float:
    """Seconds of the transition from green ``src`` to ``dst`` (no green is gained)."""
    return float(sum(seconds for _, seconds in engine.transition(src, dst)))


def decide(
    layout: SignalLayout,
    scores: np.ndarray,
    engine: PhaseEngine,
    decision_interval: float,
    cycle: str = "acyclic",
    starved: np.ndarray | None = None,
) -> int:
    """The green to request.

    A green is held for the programme's own minimum (its ``minDur``) where it has one.
    Candidates are the maximal greens and the current one. A starving link (``starved``
    > 0 per link) is served first: the candidate serving most starved seconds. Otherwise
    the best-scoring candidate is chosen, if it wins after paying for the switch: over
    a horizon ``H = lost + max(min green, decision interval)`` the best green serves
    for ``H - lost`` seconds and the current one for all ``H``, so a switch needs
    ``score[best] * (H - lost) > score[current] * H``. In ``cyclic`` mode a switch goes
    to the next candidate in programme order that has demand (score > 0).
    """
    current = engine.current_green
    candidates = np.array(layout.maximal, dtype=bool).copy()
    if len(candidates) != engine.num_greens:
        candidates = np.ones(engine.num_greens, dtype=bool)
    candidates[current] = True
    own_minimum = layout.min_green[current] if len(layout.min_green) > current else 0.0
    if engine.time_in_green < own_minimum and not engine.in_transition:
        return current  # the programme's own minimum for this green
    if starved is not None and starved.any():
        need = layout.served @ starved
        need = np.where(candidates, need, 0.0)
        if need.max() > 0 and need[current] <= 0:
            if cycle == "cyclic":
                return _next_in_cycle(current, need > 0)
            return int(np.argmax(need))
        if need[current] > 0:
            return current
    masked = np.where(candidates, scores, -np.inf)
    best = int(np.argmax(masked))
    if best == current or masked[best] <= 0 or masked[best] <= masked[current]:
        return current
    lost = lost_seconds(engine, current, best)
    horizon = lost + max(engine.timing.min_green, decision_interval)
    if masked[best] * (horizon - lost) <= max(masked[current], 0.0) * horizon:
        return current
    if cycle == "cyclic":
        return _next_in_cycle(current, candidates & (scores > 0))
    return best


def _next_in_cycle(current: int, allowed: np.ndarray) -> int:
    """The first allowed green after ``current`` in programme order (``current`` if none)."""
    n = len(allowed)
    for step in range(1, n):
        green = (current + step) % n
        if allowed[green]:
            return green
    return current


def best_green(scores: list[float], current: int) -> int:
    """Index of the highest score; ties keep the current green, then the lowest index."""
    top = max(scores)
    if scores[current] == top:
        return current
    return scores.index(top)
