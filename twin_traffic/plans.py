"""Signal plans as SUMO ``<tlLogic>`` additional files: build, write, read and check them.

A plan file is what a city would deploy: plain SUMO loads it with ``sumo -a plan.add.xml``
(after the network, so its programmes replace the network's own). Timed plans keep every
transition phase (yellow, all-red, partial yellows) of the programme they derive from and
only change green durations, the cycle that follows from them, and the offset.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin_traffic.errors import ControllerError
from twin_traffic.network import Network, Phase, TrafficLight, phases_of


@dataclass(frozen=True)
class Programme:
    """One ``<tlLogic>``: a signal's phases, offset, type and parameters."""

    tls_id: str
    program_id: str
    phases: tuple[Phase, ...]
    offset: float = 0.0
    type: str = "static"
    params: tuple[tuple[str, str], ...] = ()

    @property
    def cycle(self) -> float:
        """Sum of the phase durations, s."""
        return float(sum(phase.duration for phase in self.phases))


def green_slots(phases: Sequence[Phase]) -> tuple[int, ...]:
    """Indices of every green phase, repeats included: each has a duration to set."""
    return tuple(i for i, phase in enumerate(phases) if phase.is_green)


def lost_time(phases: Sequence[Phase]) -> float:
    """Seconds per cycle outside green phases: the programme's yellow and all-red time."""
    return float(sum(phase.duration for phase in phases if not phase.is_green))


def with_greens(
    light: TrafficLight,
    greens: Sequence[float],
    program_id: str,
    offset: float = 0.0,
) -> Programme:
    """The signal's programme with new green durations (one per :func:`green_slots` entry).

    Transition phases keep their durations, so the plan stays as safe as the original.
    """
    slots = green_slots(light.phases)
    if len(greens) != len(slots):
        raise ValueError(f"{light.id}: {len(slots)} green phases, got {len(greens)} durations")
    durations = dict(zip(slots, greens, strict=True))
    phases = tuple(
        Phase(phase.state, float(durations.get(i, phase.duration)))
        for i, phase in enumerate(light.phases)
    )
    return Programme(light.id, program_id, phases, offset=float(offset))


def round_to_total(values: Sequence[float], total: int) -> list[int]:
    """Whole seconds summing to ``total``, each as near its value as possible.

    Largest-remainder rounding, so rounding never shifts time between phases by more than
    one second and the cycle is exactly the intended length.
    """
    array = np.asarray(values, dtype=float)
    floors = np.floor(array).astype(int)
    missing = int(total - floors.sum())
    order = np.argsort(-(array - floors), kind="stable")
    for i in order[: max(0, missing)]:
        floors[i] += 1
    return [int(v) for v in floors]


def plan_xml(programmes: Iterable[Programme], comment: str | None = None) -> str:
    """The text of an additional file holding ``programmes``, deterministic byte for byte."""
    root = ET.Element("additional")
    if comment:
        # "--" may not appear inside an XML comment.
        root.append(ET.Comment(f" {comment.replace('--', '- -')} "))
    for programme in programmes:
        logic = ET.SubElement(
            root,
            "tlLogic",
            id=programme.tls_id,
            type=programme.type,
            programID=programme.program_id,
            offset=_fmt(programme.offset),
        )
        for key, value in programme.params:
            ET.SubElement(logic, "param", key=key, value=value)
        for phase in programme.phases:
            attributes = {"duration": _fmt(phase.duration), "state": phase.state}
            if phase.min_dur is not None:
                attributes["minDur"] = _fmt(phase.min_dur)
            if phase.max_dur is not None:
                attributes["maxDur"] = _fmt(phase.max_dur)
            ET.SubElement(logic, "phase", attributes)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_plan(programmes: Iterable[Programme], path: Path, comment: str | None = None) -> Path:
    """Write ``programmes`` as a SUMO additional file; returns ``path``.

    Written beside ``path`` and renamed into place, so an interrupt never leaves half a plan.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(plan_xml(programmes, comment), encoding="utf-8")
    partial.replace(path)
    return path


def read_plan(path: Path) -> dict[str, Programme]:
    """The ``<tlLogic>`` programmes of an additional (or network) file, by signal id.

    When a file defines several programmes for one signal, the last one wins, as in SUMO.

    Raises:
        ControllerError: the file is missing, not XML, or holds no ``<tlLogic>``.
    """
    try:
        root = ET.parse(path).getroot()
    except OSError as error:
        raise ControllerError(
            f"{path}: cannot read the plan ({error.strerror}); check the path"
        ) from None
    except ET.ParseError as error:
        line, column = error.position
        raise ControllerError(
            f"{path}: the plan is not valid XML (line {line}, column {column}); fix the file or "
            "write it again with `twin-traffic tune`"
        ) from None
    programmes: dict[str, Programme] = {}
    for logic in root.iter("tlLogic"):
        tls_id = logic.get("id", "")
        try:
            phases = phases_of(logic)
            offset = float(logic.get("offset", "0"))
        except ValueError:
            raise ControllerError(
                f'{path}: <tlLogic id="{tls_id}"> has a phase duration or offset that is not '
                "a number of seconds; fix it"
            ) from None
        params = tuple((p.get("key", ""), p.get("value", "")) for p in logic.iter("param"))
        programmes[tls_id] = Programme(
            tls_id,
            logic.get("programID", "0"),
            phases,
            offset=offset,
            type=logic.get("type", "static"),
            params=params,
        )
    if not programmes:
        raise ControllerError(
            f"{path}: no <tlLogic> in the file; a plan needs one <tlLogic> per signal it sets"
        )
    return programmes


def check_plan(programmes: Mapping[str, Programme], network: Network, source: Path) -> None:
    """Raise :class:`ControllerError` unless every programme fits a signal of ``network``."""
    for tls_id, programme in programmes.items():
        light = network.traffic_lights.get(tls_id)
        if light is None:
            known = ", ".join(network.signal_ids)
            raise ControllerError(
                f"{source}: signal '{tls_id}' is not in {network.net_file.name} (signals: "
                f"{known}); the plan was made for another network"
            )
        if not programme.phases:
            raise ControllerError(f"{source}: signal '{tls_id}' has no <phase>; add its phases")
        for phase in programme.phases:
            if len(phase.state) != light.num_links:
                raise ControllerError(
                    f"{source}: signal '{tls_id}' has a phase state '{phase.state}' of "
                    f"{len(phase.state)} links, but it controls {light.num_links}; the plan was "
                    "made for another version of the network"
                )
            if phase.duration <= 0:
                raise ControllerError(
                    f"{source}: signal '{tls_id}' has a phase of {phase.duration:g} s; give "
                    "every phase a positive duration"
                )


def _fmt(seconds: float) -> str:
    # Millisecond precision, no exponent: SUMO reads "12.5" and "3600", not "3.6e+03".
    return f"{float(seconds):.3f}".rstrip("0").rstrip(".")
