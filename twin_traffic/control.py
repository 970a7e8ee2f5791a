"""Safe signal control of a running simulation: one phase engine per controlled signal.

Every controller that decides in Python (learned or classical) asks for greens here; the
engines insert yellows, clearances and min/max green, and this module shows their states
in SUMO. Between state changes SUMO runs on its own: the bank advances it straight to
the next moment any engine may change, so a 5-second decision with no switch is a single
SUMO call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from twin_traffic.network import Network
from twin_traffic.signals import PhaseEngine, SignalTiming
from twin_traffic.sim import Simulation

_EPS = 1e-6


@dataclass(frozen=True)
class ControlConfig:
    """How signals are driven.

    Attributes:
        timing: yellow, all-red, min and max green (seconds).
        decision_interval: seconds between a controller's decisions.
    """

    timing: SignalTiming = field(default_factory=SignalTiming)
    decision_interval: float = 5.0

    def __post_init__(self) -> None:
        if self.decision_interval <= 0:
            raise ValueError(f"decision_interval must be positive, got {self.decision_interval}")


class SignalBank:
    """The phase engines of a set of signals, applied to one running simulation."""

    def __init__(
        self,
        network: Network,
        signal_ids: Sequence[str],
        timing: SignalTiming,
        step_length: float = 1.0,
    ) -> None:
        self.ids = tuple(signal_ids)
        self.step_length = step_length
        self.engines = tuple(
            PhaseEngine(
                [phase.state for phase in network.traffic_lights[tls].phases],
                [phase.duration for phase in network.traffic_lights[tls].phases],
                timing,
                step_length,
            )
            for tls in self.ids
        )
        self._api = None

    @property
    def num_greens(self) -> tuple[int, ...]:
        """Number of greens (actions) of each signal."""
        return tuple(engine.num_greens for engine in self.engines)

    def start(self, sim: Simulation, greens: Sequence[int] | None = None) -> None:
        """Take the signals over from their programmes, each showing a green."""
        self._api = sim.api.trafficlight
        for index, (tls, engine) in enumerate(zip(self.ids, self.engines, strict=True)):
            state = engine.reset(greens[index] if greens is not None else 0)
            self._api.setRedYellowGreenState(tls, state)  # type: ignore[attr-defined]

    def request(self, greens: Sequence[int]) -> None:
        """Ask each signal for a green (indices into its engine's greens)."""
        for engine, green in zip(self.engines, greens, strict=True):
            engine.request(int(green))

    def advance(self, sim: Simulation, until: float) -> None:
        """Run SUMO up to time ``until``, showing each engine's states as they change."""
        api = self._api
        while sim.time < until - _EPS:
            remaining = max(1, round((until - sim.time) / self.step_length))
            skip = int(min([remaining, *(engine.steps_until_change() for engine in self.engines)]))
            sim.step(sim.time + skip * self.step_length)
            for tls, engine in zip(self.ids, self.engines, strict=True):
                state = engine.tick_many(skip)
                if state is not None:
                    api.setRedYellowGreenState(tls, state)  # type: ignore[attr-defined]
