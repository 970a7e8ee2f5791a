"""The contract every signal controller keeps, and the one the runner keeps with it.

Two kinds of controller, told apart by ``decision_interval``:

* a **programme controller** (``decision_interval`` is ``None``: fixed, plan, tuned,
  webster, actuated) writes the SUMO programmes it needs before SUMO starts
  (``additional_files``) and SUMO runs them alone;
* a **deciding controller** (max-pressure, greedy, sotl, policy...) only chooses greens
  from a state. The runner (evaluate's episode loop, or an env's ``SignalTwin``) owns the
  phase engines and the lane reader: it builds the engines from the controller's
  ``timing``, the reader from ``observer_for``, calls ``start`` once per run, and then,
  every ``decision_interval`` seconds, reads the lanes and asks ``greens`` which green
  each signal should show; the engines serve those requests safely.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from twin_traffic.features import Observer, Snapshot
    from twin_traffic.network import Network
    from twin_traffic.signals import PhaseEngine, SignalTiming


@runtime_checkable
class Controller(Protocol):
    """What every controller has: a name, a decision interval (``None`` for a programme
    controller), and the additional files SUMO must load for it."""

    name: str
    decision_interval: float | None

    def additional_files(self, network: Network, directory: Path) -> list[Path]:
        """Write the SUMO additional files (programmes, detectors) this controller needs."""
        ...


@runtime_checkable
class DecidingController(Controller, Protocol):
    """A controller that chooses greens from a state; the runner owns engines and reader."""

    timing: SignalTiming

    def observer_for(self, network: Network) -> Observer:
        """The lane reader this controller decides from."""
        ...

    def start(self, network: Network, engines: Sequence[PhaseEngine], observer: Observer) -> None:
        """Begin a run (clear any state kept between decisions; check the signals fit)."""
        ...

    def greens(
        self, snapshot: Snapshot, engines: Sequence[PhaseEngine], observer: Observer
    ) -> list[int]:
        """The green to request for each signal (indices into its engine's greens)."""
        ...


def is_deciding(controller: Controller) -> bool:
    """True for a controller that chooses greens (it has a decision interval)."""
    return controller.decision_interval is not None
