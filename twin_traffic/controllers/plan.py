"""A given fixed-time plan: a ``<tlLogic>`` additional file, run by SUMO itself."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from twin_traffic.errors import ControllerError
from twin_traffic.plans import check_plan, read_plan

if TYPE_CHECKING:
    from twin_traffic.network import Network


class PlanController:
    """Runs the signal programmes of a ``<tlLogic>`` additional file.

    The file is checked against the scenario's network (signal ids, number of links,
    positive durations) and then handed to SUMO, which loads it after the scenario's own
    files, so its programmes replace the network's. Signals the file does not mention keep
    their own programme. Any programme type SUMO knows (static, actuated, delay_based)
    works.

    Args:
        file: the plan, e.g. one written by ``twin-traffic tune`` or a city's own timing.
        plan: another name for ``file``.
    """

    name = "plan"
    decision_interval: float | None = None

    def __init__(self, file: str | Path | None = None, plan: str | Path | None = None) -> None:
        given = file if file is not None else plan
        if given is None or str(given) == "":
            raise ControllerError(
                f"{self.name}: no plan file; pass --param file=PLAN.add.xml "
                "(e.g. one written by `twin-traffic tune`)"
            )
        if file is not None and plan is not None and Path(file) != Path(plan):
            raise ControllerError(f"{self.name}: give the plan once, as file= or plan=, not both")
        # Resolved now: worker processes may not share the caller's working directory.
        self.file = Path(given).expanduser().resolve()
        if not self.file.is_file():
            raise ControllerError(f"{self.file}: plan file not found; check the path")

    def check(self, network: Network) -> None:
        """Raise :class:`ControllerError` unless the plan fits ``network``."""
        check_plan(read_plan(self.file), network, self.file)

    def additional_files(self, network: Network, directory: Path) -> list[Path]:
        """The plan file itself, after checking it fits the network."""
        self.check(network)
        return [self.file]
