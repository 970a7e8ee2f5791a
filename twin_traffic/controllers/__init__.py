"""Signal controllers, selectable by name with parameters from the CLI.

Controllers are imported only when made, so a name's heavy dependencies (torch for a
trained policy) load only when that controller is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from twin_traffic.controllers.base import Controller
from twin_traffic.controllers.parameters import check_params
from twin_traffic.errors import ControllerError

__all__ = ["CONTROLLERS", "Controller", "check_params", "make_controller"]

_MP = "twin_traffic.controllers.max_pressure"
# name -> "module:Class"; the class takes the parameters given as --param key=value.
CONTROLLERS: dict[str, str] = {
    "fixed": "twin_traffic.controllers.fixed_time:FixedTimeController",
    "actuated": "twin_traffic.controllers.actuated:ActuatedController",
    "max-pressure": "twin_traffic.controllers.max_pressure:MaxPressureController",
    "efficient-max-pressure": f"{_MP}:EfficientMaxPressureController",
    "advanced-max-pressure": f"{_MP}:AdvancedMaxPressureController",
    "greedy": "twin_traffic.controllers.greedy:GreedyController",
    "sotl": "twin_traffic.controllers.sotl:SotlController",
    "policy": "twin_traffic.controllers.policy:PolicyController",
    "webster": "twin_traffic.controllers.webster:WebsterController",
    "plan": "twin_traffic.controllers.plan:PlanController",
    "tuned": "twin_traffic.controllers.tuned:TunedController",
}


def make_controller(name: str, params: Mapping[str, object] | None = None) -> Controller:
    """Build a controller by name; unknown names and parameters raise ControllerError.

    The parameters are checked against the controller's declaration first (see
    :mod:`twin_traffic.controllers.parameters`), so a typo names the valid keys.
    """
    checked = check_params(name, dict(params or {}))
    module_name, _, class_name = CONTROLLERS[name].partition(":")
    factory = getattr(importlib.import_module(module_name), class_name)
    try:
        controller: Controller = factory(**checked)
    except TypeError as error:
        raise ControllerError(f"controller '{name}': bad parameters ({error})") from None
    return controller
