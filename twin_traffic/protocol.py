"""The benchmark protocol of a run: how SUMO treats jams and which extra options it gets.

Results are only comparable under the same protocol, so it is part of every run's spec.
SUMO teleports a vehicle that has stood still for ``time_to_teleport`` seconds (300 by
default), which hides gridlock; benchmarks switch that off (``-1``). ``sumo_options``
passes further SUMO options to every run, checked against SUMO's own option list.

The ``resco`` preset reproduces the protocol of the RESCO benchmark (Ault & Sharon,
"Reinforcement Learning Benchmarks for Traffic Signal Control", NeurIPS 2021 Datasets
and Benchmarks; ``multi_signal.py`` and ``map_config.py`` of Pi-Star-Lab/RESCO): no
teleports (``--time-to-teleport -1``), a decision every 10 s and 3 s of yellow. Its
timings apply to the controllers that decide in Python and to training environments,
unless given explicitly.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from twin_traffic.errors import TwinTrafficError

PRESETS: dict[str, dict[str, float]] = {
    "resco": {"time_to_teleport": -1.0, "decision_interval": 10.0, "yellow": 3.0},
}
# Options the toolkit sets itself for every run; a user's copy would break a run's
# outputs, its seeding or its scenario.
RESERVED_OPTIONS = frozenset(
    {
        "-c", "--configuration-file", "-n", "--net-file", "-r", "--route-files",
        "-a", "--additional-files", "-b", "--begin", "-e", "--end", "--seed", "--random",
        "--remote-port", "--tripinfo-output", "--statistic-output", "--error-log",
        "--time-to-teleport", "--output-prefix",
    }
)  # fmt: skip


class ProtocolError(TwinTrafficError):
    """A protocol option that cannot be used."""


@dataclass(frozen=True)
class RunProtocol:
    """How SUMO runs every simulation of an experiment.

    Attributes:
        name: the preset it comes from (``resco``), or ``None``.
        time_to_teleport: SUMO's ``--time-to-teleport``, s (-1: never teleport; ``None``:
            the scenario's own setting, SUMO's 300 s by default).
        sumo_options: further SUMO options, e.g. ``("--max-depart-delay", "600")``.
    """

    name: str | None = None
    time_to_teleport: float | None = None
    sumo_options: tuple[str, ...] = ()

    def sumo_args(self) -> list[str]:
        """The SUMO command-line arguments of this protocol."""
        args = list(self.sumo_options)
        if self.time_to_teleport is not None:
            args += ["--time-to-teleport", f"{self.time_to_teleport:g}"]
        return args

    def timings(self) -> dict[str, float]:
        """The controller timings the preset fixes (decision interval, yellow)."""
        preset = PRESETS.get(self.name or "", {})
        return {k: v for k, v in preset.items() if k != "time_to_teleport"}


def make_protocol(
    name: str | None = None,
    time_to_teleport: float | None = None,
    sumo_options: Sequence[str] = (),
    source: str = "--protocol",
) -> RunProtocol:
    """A checked protocol: a preset, overridden by an explicit ``time_to_teleport``, plus
    SUMO options (each ``"--key value"`` or ``"--key"``, split like a shell would)."""
    if name is not None and name not in PRESETS:
        raise ProtocolError(
            f"{source} '{name}': unknown protocol; choose one of: {', '.join(PRESETS)}"
        )
    if time_to_teleport is None and name is not None:
        time_to_teleport = PRESETS[name].get("time_to_teleport")
    if time_to_teleport is not None and time_to_teleport < 0 and time_to_teleport != -1:
        raise ProtocolError(
            f"--time-to-teleport {time_to_teleport:g}: give seconds >= 0, or -1 for never"
        )
    return RunProtocol(name, time_to_teleport, parse_sumo_options(sumo_options))


def protocol_sumo_args(
    preset: str | None, time_to_teleport: float | None, sumo_options: Sequence[str]
) -> tuple[str, ...]:
    """The SUMO options of a run: a preset (checked), an explicit time-to-teleport that
    overrides its own, and further options (already split into SUMO's tokens)."""
    checked = make_protocol(preset, time_to_teleport, source="protocol")
    return tuple(RunProtocol(preset, checked.time_to_teleport, tuple(sumo_options)).sumo_args())


def parse_sumo_options(items: Sequence[str]) -> tuple[str, ...]:
    """Split and check ``--sumo-option`` values against SUMO's own option names."""
    args: list[str] = []
    for item in items:
        try:
            tokens = shlex.split(item)
        except ValueError as error:
            raise ProtocolError(
                f"--sumo-option '{item}': {error}; quote it as one string"
            ) from None
        if not tokens or not tokens[0].startswith("-") or len(tokens) > 2:
            raise ProtocolError(
                f"--sumo-option '{item}': write one SUMO option and its value, e.g. "
                "--sumo-option '--max-depart-delay 600'"
            )
        key = tokens[0]
        if key in RESERVED_OPTIONS:
            hint = {
                "--time-to-teleport": "use --time-to-teleport",
                "--output-prefix": "it would move the outputs the toolkit reads each run from",
            }.get(key, "the toolkit sets it for every run")
            raise ProtocolError(f"--sumo-option '{item}': {key} cannot be passed here; {hint}")
        known = sumo_option_types()
        if known and key.lstrip("-") not in known:
            raise ProtocolError(
                f"--sumo-option '{item}': SUMO has no option {key}; see `sumo --help`"
            )
        kind = known.get(key.lstrip("-"), "BOOL" if len(tokens) == 1 else "")
        if len(tokens) == 1 and kind != "BOOL":
            raise ProtocolError(
                f"--sumo-option '{item}': {key} takes a value ({kind.lower()}); write it "
                f"after the option in one string, e.g. --sumo-option '{key} VALUE'"
            )
        args += tokens
    return tuple(args)


def sumo_option_tokens(options: Sequence[str]) -> tuple[str, ...]:
    """SUMO options given to the Python API (``EnvConfig``, ``RunSpec``), checked as
    ``--sumo-option`` values are, as SUMO's tokens. Each option comes before its value,
    as two items (``("--scale", "2")``) or as one string (``("--scale 2",)``)."""
    tokens = [
        token
        for item in options
        for token in (shlex.split(item) if str(item).lstrip().startswith("-") else [item])
    ]
    known = sumo_option_types()
    groups: list[str] = []
    i = 0
    while i < len(tokens):
        key = tokens[i]
        if not key.startswith("-"):
            raise ProtocolError(
                f"sumo_options {list(options)}: '{key}' is not an option; give each option "
                "before its value, e.g. ('--max-depart-delay', '600')"
            )
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        kind = known.get(key.lstrip("-"))
        if kind is None:  # unknown to SUMO (refused below) or SUMO cannot be asked
            takes_value = following is not None and not following.startswith("-")
        elif kind == "BOOL":
            takes_value = following is not None and following.lower() in ("true", "false")
        else:
            takes_value = following is not None
        group = tokens[i : i + 2] if takes_value else tokens[i : i + 1]
        groups.append(shlex.join(group))
        i += len(group)
    return parse_sumo_options(groups)


@lru_cache(maxsize=1)
def sumo_option_types() -> dict[str, str]:
    """Every option the packaged SUMO knows, with its type as SUMO names it (``BOOL``,
    ``FLOAT``, ``STR`` …; empty if it cannot be asked)."""
    import xml.etree.ElementTree as ET

    from twin_traffic.sim import sumo_binary

    try:
        template = subprocess.run(
            [str(sumo_binary()), "--save-template", "/dev/stdout"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
        root = ET.fromstring(template)
    except (OSError, subprocess.SubprocessError, ET.ParseError, TwinTrafficError):
        return {}
    return {option.tag: option.get("type", "") for section in root for option in section}


def with_timings(
    params: Mapping[str, Any], accepted: Sequence[str], protocol: RunProtocol
) -> dict[str, Any]:
    """A controller's parameters with the preset's timings where the controller takes them
    and the user did not set them."""
    extra = {k: v for k, v in protocol.timings().items() if k in accepted and k not in params}
    return {**params, **extra}
