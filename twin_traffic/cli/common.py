"""Pieces several commands share: the options that describe a scenario and its protocol,
seeds, controller parameters, and running specs with a progress display.

Every command that takes a scenario declares the scenario options with the same aliases
below, so ``--routes``, ``--begin``, ``--end``, ``--protocol``, ``--time-to-teleport`` and
``--sumo-option`` mean the same everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from twin_traffic.errors import TwinTrafficError

if TYPE_CHECKING:
    from twin_traffic.network import Network
    from twin_traffic.protocol import RunProtocol


class ProtocolChoice(str, Enum):
    """The benchmark presets (see :mod:`twin_traffic.protocol`)."""

    resco = "resco"


ScenarioArg = Annotated[
    str, typer.Argument(help="Built-in name, .sumocfg, or .net.xml with --routes.")
]
RoutesOption = Annotated[
    list[Path] | None, typer.Option(help="Route files of a .net.xml scenario; repeat for several.")
]
BeginOption = Annotated[float | None, typer.Option(help="Start time override, s.")]
EndOption = Annotated[float | None, typer.Option(help="End time override, s.")]
ProtocolOption = Annotated[
    ProtocolChoice | None,
    typer.Option(
        help="Benchmark protocol preset: resco = no teleports, a decision every 10 s, 3 s "
        "yellow (recorded in every run's spec)."
    ),
]
TeleportOption = Annotated[
    float | None,
    typer.Option(
        "--time-to-teleport",
        help="SUMO's time-to-teleport, s: a vehicle stuck this long jumps ahead (-1: never; "
        "default: the scenario's own, SUMO's 300).",
    ),
]
SumoOption = Annotated[
    list[str] | None,
    typer.Option(
        "--sumo-option",
        help="Another SUMO option for every run, as one string, e.g. --sumo-option "
        "'--max-depart-delay 600'; repeat for several.",
    ),
]
WorkersOption = Annotated[int, typer.Option(min=1, help="Simulations run in parallel.")]
HOLDOUT_SEEDS = "200-204"
"""The default held-out seeds of every final comparison (train, tune)."""


def plural(count: int, noun: str) -> str:
    """``1 signal``, ``8 signals``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def check_output_folder(path: Path, option: str = "--out") -> None:
    """Refuse, before anything runs, a results folder the command could not write at its
    end, or one that already holds something: two commands' results never mix."""
    if path.exists() and not path.is_dir():
        raise TwinTrafficError(f"{path}: not a folder; choose another {option}")
    if path.is_dir() and any(path.iterdir()):
        raise TwinTrafficError(
            f"{path}: already holds results; choose a new or empty {option} (or remove it)"
        )
    _check_writable(path, option)


def check_plot_folder(path: Path, option: str = "--plots") -> None:
    """Refuse, before anything is written, a folder for files of fixed names (plots) that
    is a file or cannot be written."""
    if path.exists() and not path.is_dir():
        raise TwinTrafficError(f"{path}: not a folder; choose another {option}")
    _check_writable(path, option)


def check_output_file(path: Path, option: str = "--out") -> None:
    """Refuse, before anything runs, a file path the command could not write at its end."""
    if path.is_dir():
        raise TwinTrafficError(
            f"{path}: a folder; {option} takes a file name, e.g. {path / 'out'}{path.suffix}"
            if path.suffix else f"{path}: a folder; {option} takes a file name inside it"
        )  # fmt: skip
    _check_writable(path, option)


def _check_writable(path: Path, option: str) -> None:
    """The nearest existing folder at or above ``path`` must be a folder this user can
    write (``path`` itself when it is a folder already)."""
    ancestor = path.absolute() if path.is_dir() else path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise TwinTrafficError(
            f"{path}: {ancestor} is a file, not a folder; choose another {option}"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise TwinTrafficError(f"{path}: cannot write in {ancestor}; choose another {option}")


def seeds_option(values: Sequence[str] | None, default: str, option: str = "--seeds") -> list[int]:
    """The seeds of a seed option (see :mod:`twin_traffic.seeds`), or ``default``."""
    from twin_traffic.seeds import parse_seeds

    text = " ".join(values) if values else default
    return list(parse_seeds(text, option))


def protocol_from(
    protocol: ProtocolChoice | None, time_to_teleport: float | None, sumo_options: list[str] | None
) -> RunProtocol:
    """The checked run protocol of the scenario options."""
    from twin_traffic.protocol import make_protocol

    return make_protocol(protocol.value if protocol else None, time_to_teleport,
                         sumo_options or ())  # fmt: skip


def route_paths(routes: Sequence[Path] | None) -> tuple[str, ...]:
    """Route files as absolute paths (workers may run elsewhere)."""
    return tuple(str(Path(r).resolve()) for r in routes or ())


class OutputFormat(str, Enum):
    """How ``evaluate`` prints its figures."""

    table = "table"
    json = "json"


class BackendChoice(str, Enum):
    """The simulation backends."""

    libsumo = "libsumo"
    traci = "traci"


def checked_controllers(
    params: dict[str, dict[str, Any]], protocol: RunProtocol, network: Network
) -> dict[str, dict[str, Any]]:
    """Every controller's parameters checked and the controller built once, before any run,
    with the protocol's timings where it takes them, and checked against ``network`` (a
    plan's signals, the signals it takes over); errors are one line."""
    from twin_traffic.controllers import make_controller
    from twin_traffic.controllers.parameters import parameters_of
    from twin_traffic.evaluate import check_fits
    from twin_traffic.protocol import with_timings

    checked = {}
    for name, given in params.items():
        accepted = [p.name for p in parameters_of(name) or ()]
        values = with_timings(given, accepted, protocol)
        # Unknown names, keys, types and ranges fail here, then what does not fit.
        check_fits(make_controller(name, values), network)
        checked[name] = values
    return checked


def controller_params(items: list[str], controllers: list[str]) -> dict[str, dict[str, Any]]:
    """Parse ``KEY=VALUE`` / ``CONTROLLER.KEY=VALUE`` into parameters per controller."""
    params: dict[str, dict[str, Any]] = {name: {} for name in controllers}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TwinTrafficError(f"--param '{item}': write KEY=VALUE, e.g. min_green=5")
        target, dot, key = key.rpartition(".")
        if dot and target not in params:
            raise TwinTrafficError(
                f"--param '{item}': '{target}' is not one of the chosen controllers "
                f"({', '.join(controllers)})"
            )
        if not dot and len(controllers) > 1:
            raise TwinTrafficError(
                f"--param '{item}': several controllers are compared; name one, "
                f"e.g. {controllers[-1]}.{key}={value}"
            )
        params[target or controllers[0]][key] = parse_value(value)
    return params


def parse_value(text: str) -> Any:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    lowered = text.lower()
    return {"true": True, "false": False}.get(lowered, text)
