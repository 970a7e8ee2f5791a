"""Signal controllers, selectable by name with string parameters from the CLI."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from twin_traffic.controllers.actuated import ActuatedController
from twin_traffic.controllers.base import Controller
from twin_traffic.controllers.fixed_time import FixedTimeController
from twin_traffic.errors import ControllerError

__all__ = ["CONTROLLERS", "Controller", "make_controller"]

# Each factory takes the parameters given as --param key=value (strings or numbers).
CONTROLLERS: dict[str, Callable[..., Controller]] = {
    "fixed": FixedTimeController,
    "actuated": ActuatedController,
}


def make_controller(name: str, params: Mapping[str, object] | None = None) -> Controller:
    """Build a controller by name; unknown names and parameters raise ControllerError."""
    factory = CONTROLLERS.get(name)
    if factory is None:
        known = ", ".join(sorted(CONTROLLERS))
        raise ControllerError(f"unknown controller '{name}'; choose one of: {known}")
    try:
        return factory(**dict(params or {}))
    except TypeError as error:
        raise ControllerError(f"controller '{name}': bad parameters ({error})") from None
