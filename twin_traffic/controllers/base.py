"""The contract every signal controller keeps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from twin_traffic.network import Network
    from twin_traffic.sim import Simulation


@runtime_checkable
class Controller(Protocol):
    """Drives a scenario's signals during one run.

    A controller either installs programmes and lets SUMO run them (``additional_files``
    returns them before SUMO starts; ``decision_interval`` is ``None``), or decides in
    Python: ``reset`` once the simulation has started, then ``act`` every
    ``decision_interval`` seconds.
    """

    name: str
    decision_interval: float | None

    def additional_files(self, network: Network, directory: Path) -> list[Path]:
        """Write the SUMO additional files (signal programmes) this controller needs."""
        ...

    def reset(self, network: Network, sim: Simulation) -> None:
        """Prepare for a new run on a freshly started simulation."""
        ...

    def act(self, sim: Simulation) -> None:
        """Take one decision (only called when ``decision_interval`` is set)."""
        ...

    def advance(self, sim: Simulation, until: float) -> None:
        """Run the simulation to time ``until`` under this controller's signals (only
        called when ``decision_interval`` is set; otherwise SUMO runs the programmes)."""
        ...
