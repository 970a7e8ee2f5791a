"""Base of the controllers that decide in Python: every few seconds they pick a green per
signal from lane-level state, and the phase engines serve it safely."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

from twin_traffic.control import SignalBank
from twin_traffic.errors import ControllerError
from twin_traffic.features import Observer, SignalLayout, Snapshot
from twin_traffic.signals import PhaseEngine, SignalTiming

if TYPE_CHECKING:
    from twin_traffic.network import Network
    from twin_traffic.sim import Simulation


class GreenChooser(ABC):
    """Picks one green per signal at each decision; subclasses define :meth:`choose`.

    Args:
        decision_interval: seconds between decisions.
        min_green, max_green, yellow, all_red: the phase engine's safety timings, s.
    """

    name = "decision"
    needs: frozenset[str] = frozenset({"vehicles", "halting"})

    def __init__(
        self,
        decision_interval: float = 5.0,
        min_green: float = 5.0,
        max_green: float = 60.0,
        yellow: float = 3.0,
        all_red: float = 0.0,
    ) -> None:
        try:
            self.timing = SignalTiming(float(yellow), float(all_red), float(min_green),
                                       float(max_green))  # fmt: skip
        except ValueError as error:
            raise ControllerError(f"{self.name}: {error}") from None
        if float(decision_interval) <= 0:
            raise ControllerError(f"{self.name}: decision_interval must be positive")
        self.decision_interval: float | None = float(decision_interval)
        self.bank: SignalBank | None = None
        self.observer: Observer | None = None

    def additional_files(self, network: Network, directory: Path) -> list[Path]:
        """None: the signals are driven from Python."""
        return []

    def reset(self, network: Network, sim: Simulation) -> None:
        """Take every signal over and prepare to read the lanes."""
        ids = network.signal_ids
        self.bank = SignalBank(network, ids, self.timing, sim.step_length)
        self.bank.start(sim)
        self.observer = self.observer_for(network)
        self.observer.attach(sim)

    def observer_for(self, network: Network) -> Observer:
        """What the controller reads: the lane variables it ``needs``."""
        return Observer(network, network.signal_ids, observation=(), reward="queue",
                        extra_needs=self.needs)  # fmt: skip

    def act(self, sim: Simulation) -> None:
        """Read the lanes once and request each signal's chosen green."""
        assert self.bank is not None and self.observer is not None
        snapshot = self.observer.read(sim.time)
        self.bank.request(
            [
                self.choose(layout, snapshot, engine)
                for layout, engine in zip(self.observer.layouts, self.bank.engines, strict=True)
            ]
        )

    def advance(self, sim: Simulation, until: float) -> None:
        """Run SUMO to ``until`` through the phase engines."""
        assert self.bank is not None
        self.bank.advance(sim, until)

    @abstractmethod
    def choose(self, layout: SignalLayout, snapshot: Snapshot, engine: PhaseEngine) -> int:
        """The green (index into the signal's greens) to ask for now."""


def best_green(scores: list[float], current: int) -> int:
    """Index of the highest score; ties keep the current green, then the lowest index."""
    top = max(scores)
    if scores[current] == top:
        return current
    return scores.index(top)
