"""The baseline: the network's own fixed-time programmes, run by SUMO itself."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin_traffic.network import Network


class FixedTimeController:
    """Leaves every signal on the programme the scenario defines.

    SUMO runs the plans natively, so this is also the fastest controller: nothing is
    decided in Python during the run.
    """

    name = "fixed"
    decision_interval: float | None = None

    def additional_files(self, network: Network, directory: Path) -> list[Path]:
        """None: the scenario's programmes are the plan."""
        return []
