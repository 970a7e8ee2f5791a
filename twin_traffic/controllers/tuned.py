"""A plan found by black-box optimisation (``twin-traffic tune``), run by SUMO itself."""

from __future__ import annotations

from pathlib import Path

from twin_traffic.controllers.plan import PlanController
from twin_traffic.errors import ControllerError


class TunedController(PlanController):
    """Runs a plan written by ``twin-traffic tune`` (``--param plan=PLAN.add.xml``).

    Tuning takes many simulated episodes, so it is a step of its own and never happens
    silently inside an evaluation: without a plan this controller stops with the command
    that makes one.

    Args:
        plan: the tuned plan file.
        file: another name for ``plan``.
    """

    name = "tuned"

    def __init__(self, plan: str | Path | None = None, file: str | Path | None = None) -> None:
        if plan is None and file is None:
            raise ControllerError(
                "tuned: no plan; make one with `twin-traffic tune SCENARIO --budget N --out "
                "plan.add.xml`, then pass --param plan=plan.add.xml"
            )
        super().__init__(file=file, plan=plan)
