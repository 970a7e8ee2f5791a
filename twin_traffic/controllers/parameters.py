"""The parameters every controller takes: name, type, default, range and meaning.

One table serves the up-front check of ``--param`` and sweep ``params`` (a typo or an
out-of-range value stops before any run, with the valid keys listed), the help of
``twin-traffic evaluate`` and the README. Declarations carry no imports, so the check
and the help stay fast; a test holds every registered controller's constructor to its
declaration.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from twin_traffic.errors import ControllerError

Kind = Literal["float", "int", "bool", "str", "path"]


@dataclass(frozen=True)
class Param:
    """One controller parameter.

    Attributes:
        name: the keyword (``--param NAME=VALUE``).
        kind: ``float``, ``int``, ``bool``, ``str`` or ``path`` (a file name).
        default: the value when not given; ``None`` for a required parameter.
        doc: what it means, with its unit.
        minimum, maximum: inclusive bounds of a number (``None``: unbounded).
        positive: a number that must be > 0 (``minimum`` is then the exclusive 0).
    """

    name: str
    kind: Kind
    default: Any
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False

    @property
    def required(self) -> bool:
        """True when the controller cannot run without it."""
        return self.default is None

    def range_text(self) -> str:
        """The allowed values, for messages and help (empty when anything goes)."""
        if self.positive:
            return "> 0" if self.maximum is None else f"in (0, {self.maximum:g}]"
        if self.minimum is not None and self.maximum is not None:
            return f"in [{self.minimum:g}, {self.maximum:g}]"
        if self.minimum is not None:
            return f">= {self.minimum:g}"
        if self.maximum is not None:
            return f"<= {self.maximum:g}"
        return ""

    def check(self, value: Any, owner: str) -> Any:
        """``value`` converted to this parameter's type; ControllerError when it does not fit."""
        where = f"{owner}: {self.name}={value!r}"
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ControllerError(f"{where} is not true or false")
        if self.kind == "path" and isinstance(value, os.PathLike):
            value = os.fspath(value)
        if self.kind in ("str", "path"):
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ControllerError(f"{where} must be a {_KIND_NAMES[self.kind]}")
            if str(value) == "":
                raise ControllerError(f"{where}: give a {_KIND_NAMES[self.kind]}")
            return str(value)
        number = _number(value)
        if number is None or (self.kind == "int" and not float(number).is_integer()):
            raise ControllerError(f"{where} must be {_KIND_NAMES[self.kind]}")
        low_ok = (number > 0) if self.positive else (self.minimum is None or number >= self.minimum)
        high_ok = self.maximum is None or number <= self.maximum
        if not (low_ok and high_ok):
            raise ControllerError(
                f"{where} is out of range; {self.name} must be {self.range_text()}"
            )
        return int(number) if self.kind == "int" else float(number)


_KIND_NAMES = {
    "float": "a number",
    "int": "a whole number",
    "bool": "true or false",
    "str": "text",
    "path": "file path",
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _timing(
    decision_interval: float = 5.0,
    sensor_range: float = 50.0,
    reach: float = 300.0,
    max_wait: float = 120.0,
    min_green: float = 15.0,
    initial_per_vehicle: float = 0.0,
    max_initial: float = 30.0,
    blocked_after: float | None = None,
) -> tuple[Param, ...]:
    """What every Python-deciding controller takes: the phase-engine timings, the phase
    order and the movement state it decides from (defaults as in
    :class:`twin_traffic.controllers.decision.GreenChooser`); ``blocked_after`` only for
    the controllers that score greens (``None``: not taken)."""
    blocked = () if blocked_after is None else (
        Param("blocked_after", "float", blocked_after,
              "s a green lane with a queue may let no vehicle over its stop line before it "
              "loses its claim to keep the green (0: never)", minimum=0),
    )  # fmt: skip
    return (
        Param("decision_interval", "float", decision_interval, "seconds between decisions",
              positive=True),
        Param("min_green", "float", min_green, "shortest green before a switch, s", minimum=0),
        Param("max_green", "float", 60.0, "longest green before a forced switch, s",
              positive=True),
        Param("yellow", "float", 3.0, "yellow where the programme has none, s", minimum=0),
        Param("all_red", "float", 0.0, "all-red after every yellow, s", minimum=0),
        Param("clearance", "str", "yellow",
              "yellow (a switch clears with yellow + all_red) or programme (at least as "
              "long as the programme's own intergreens)"),
        Param("cycle", "str", "acyclic", "acyclic (any green) or cyclic (programme order)"),
        Param("spillback", "float", 0.9,
              "exit occupancy share above which a movement has no claim to green",
              positive=True, maximum=1.0),
        Param("max_wait", "float", max_wait, "longest wait at red before a movement is served, s",
              positive=True),
        Param("sensor_range", "float", sensor_range,
              "distance from the stop line the state is read within, m", positive=True),
        Param("reach", "float", reach,
              "road before the stop line (after the exit) counted as a movement's, m", minimum=0),
        Param("initial_per_vehicle", "float", initial_per_vehicle,
              "variable initial: s of green per vehicle the green inherits queued (0: off)",
              minimum=0),
        Param("max_initial", "float", max_initial, "longest variable initial, s", minimum=0),
        *blocked,
    )  # fmt: skip


# Seconds a green lane with a queue may discharge nobody before it loses its claim to keep
# the green: the start-up lost time and two saturation headways (about 2 s each).
BLOCKED_AFTER = 6.0

# The max-pressure family: a short minimum lengthened per queued vehicle, a decision
# every second (when a queue has gone is known to the second), and no claim to keep a
# green for a lane it does not discharge.
_MAX_PRESSURE_FAMILY = {
    "decision_interval": 1.0,
    "min_green": 5.0,
    "initial_per_vehicle": 2.0,
    "max_initial": 20.0,
    "blocked_after": BLOCKED_AFTER,
}

_PLAN = Param("file", "path", None, "the <tlLogic> plan file (e.g. written by `tune`)")
_PLAN_ALIAS = Param("plan", "path", None, "another name for file")

PARAMETERS: dict[str, tuple[Param, ...]] = {
    "fixed": (),
    "actuated": (
        Param("min_green", "float", 5.0, "shortest actuated green, s", positive=True),
        Param("max_green", "float", 90.0, "longest actuated green, s", positive=True),
        Param("max_gap", "float", 3.0, "gap between vehicles that ends a green, s", positive=True),
        Param("detector_gap", "float", 2.0, "detector distance from the stop line, s", minimum=0),
        Param(
            "max_factor",
            "float",
            1.25,
            "longest green as a multiple of the programme's own green",
            minimum=1.0,
        ),
    ),
    "max-pressure": _timing(sensor_range=150.0, **_MAX_PRESSURE_FAMILY),
    "efficient-max-pressure": _timing(max_wait=90.0, **_MAX_PRESSURE_FAMILY),
    "advanced-max-pressure": _timing(sensor_range=75.0, **_MAX_PRESSURE_FAMILY),
    "greedy": _timing(reach=0.0, blocked_after=BLOCKED_AFTER),
    "sotl": (
        Param(
            "threshold",
            "float",
            120.0,
            "vehicle-seconds at red that call for a switch",
            positive=True,
        ),
        *_timing(decision_interval=2.0, reach=150.0),
    ),
    "policy": (
        Param("model", "path", None, "the trained model (.zip, e.g. runs/NAME/best.zip)"),
        Param("deterministic", "bool", True, "take the most likely action (else sample)"),
        Param(
            "decision_interval",
            "float",
            0.0,
            "seconds between decisions (0: the agent's own, agent.json's deploy_interval)",
            minimum=0,
        ),
    ),
    "webster": (
        Param("saturation_flow", "float", 1800.0, "veh/h per lane at a green", positive=True),
        Param("min_cycle", "float", 30.0, "shortest cycle, s", positive=True),
        Param("max_cycle", "float", 150.0, "longest cycle, s", positive=True),
        Param("min_green", "float", 5.0, "shortest green of any phase, s", positive=True),
        Param(
            "max_flow_ratio",
            "float",
            0.9,
            "cap on the flow ratio Y (0 < Y < 1)",
            positive=True,
            maximum=1.0,
        ),
        Param("flows", "str", "measured", "measured, or a SUMO <laneData> output file"),
        Param("flow_seed", "int", 0, "seed of the measuring run", minimum=0),
        Param("flow_period", "float", 900.0, "seconds per measurement interval", positive=True),
        Param("cycle", "str", "webster", "webster (optimal cycle) or programme (keep the cycle)"),
        Param(
            "flow_controller",
            "str",
            "fixed",
            "fixed (the scenario's plans) or a deciding controller whose run measures the flows",
        ),
    ),
    "plan": (_PLAN, _PLAN_ALIAS),
    "tuned": (
        Param("plan", "path", None, "the plan written by `twin-traffic tune`"),
        Param("file", "path", None, "another name for plan"),
    ),
}
# Pairs of parameters whose first may not exceed the second.
_ORDERED = (("min_green", "max_green"), ("min_cycle", "max_cycle"))
# Controllers whose required file may be given under either of two names.
_EITHER = frozenset({"plan", "tuned"})


def parameters_of(controller: str) -> tuple[Param, ...] | None:
    """The declared parameters of a registered controller (``None``: not declared)."""
    return PARAMETERS.get(controller)


def check_params(controller: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check a controller's parameters against its declaration, before any run.

    Returns the parameters converted to their declared types. Raises ControllerError with
    one line: the unknown key and the valid ones, or the value and its allowed range.
    """
    from twin_traffic.controllers import CONTROLLERS

    if controller not in CONTROLLERS:
        known = ", ".join(sorted(CONTROLLERS))
        raise ControllerError(f"unknown controller '{controller}'; choose one of: {known}")
    declared = parameters_of(controller)
    if declared is None:
        return dict(params)
    by_name = {p.name: p for p in declared}
    checked: dict[str, Any] = {}
    for key, value in params.items():
        if key not in by_name:
            valid = ", ".join(by_name) if by_name else "none (it takes no parameters)"
            raise ControllerError(
                f"{controller}: no parameter '{key}'; its parameters are: {valid}"
            )
        checked[key] = by_name[key].check(value, controller)
    missing = [p for p in declared if p.required and p.name not in checked]
    for low, high in _ORDERED:
        if low in by_name and high in by_name:
            values = {n: checked.get(n, by_name[n].default) for n in (low, high)}
            if values[low] > values[high]:
                raise ControllerError(
                    f"{controller}: {low}={values[low]:g} is more than {high}={values[high]:g}; "
                    f"choose {low} <= {high}"
                )
    if controller in _EITHER:
        missing = []  # the controller itself says how to make the file it needs
    if missing:
        param = missing[0]
        raise ControllerError(
            f"{controller}: needs {param.name}=...; pass --param {param.name}=VALUE ({param.doc})"
        )
    return checked


def summary(controller: str) -> str:
    """The parameters and their defaults in one line, e.g. ``threshold=60, yellow=3``."""
    params = parameters_of(controller) or ()
    if controller in _EITHER:
        return " or ".join(p.name for p in params) + " (a plan file, required)"

    def text(param: Param) -> str:
        if param.required:
            return f"{param.name} (required)"
        default = f"{param.default:g}" if isinstance(param.default, float) else param.default
        return f"{param.name}={default}"

    return ", ".join(text(p) for p in params) or "none"
