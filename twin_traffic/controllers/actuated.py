"""SUMO's own gap-based actuated control, built from each signal's programme."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from twin_traffic.errors import ControllerError
from twin_traffic.signals import dominated_greens

if TYPE_CHECKING:
    from twin_traffic.network import Network, Phase

PROGRAM_ID = "twin-traffic-actuated"


class ActuatedController:
    """Extends a green while vehicles keep arriving within ``max_gap`` seconds.

    Each stage of the scenario's programme becomes actuated; everything else keeps its
    duration. A green phase the programme already bounds (``minDur`` < ``maxDur``, as a
    city's actuated or adaptive plan does) keeps the city's bounds; one it fixes
    (``minDur`` = ``maxDur``: the extension phases and intergreen greens real programmes
    are full of) stays fixed, as do clearance greens (greens another green serves at
    least as well); the other greens run between ``min_green`` and ``max_green``. SUMO
    places the induction loops ``detector_gap`` seconds of travel upstream of the stop
    line, where its actuated logic expects them, and runs the logic itself, so no
    decision is taken in Python.
    """

    name = "actuated"
    decision_interval: float | None = None

    def __init__(
        self,
        min_green: float = 5.0,
        max_green: float = 50.0,
        max_gap: float = 3.0,
        detector_gap: float = 2.0,
    ) -> None:
        self.min_green = float(min_green)
        self.max_green = float(max_green)
        self.max_gap = float(max_gap)
        self.detector_gap = float(detector_gap)
        if not 0 < self.min_green <= self.max_green:
            raise ControllerError(
                f"actuated: need 0 < min_green <= max_green, got {self.min_green:g} and "
                f"{self.max_green:g}"
            )

    def _bounds(self, phase: Phase) -> tuple[float, float] | None:
        """A green phase's actuation range: the programme's own, ours, or none (fixed)."""
        if phase.min_dur is not None and phase.max_dur is not None:
            return (phase.min_dur, phase.max_dur) if phase.min_dur < phase.max_dur else None
        return self.min_green, self.max_green

    def additional_files(self, network: Network, directory: Path) -> list[Path]:
        """Write one actuated ``<tlLogic>`` per signal."""
        root = ET.Element("additional")
        for light in network.traffic_lights.values():
            logic = ET.SubElement(
                root, "tlLogic", id=light.id, type="actuated", programID=PROGRAM_ID, offset="0"
            )
            for key, value in (("max-gap", self.max_gap), ("detector-gap", self.detector_gap)):
                ET.SubElement(logic, "param", key=key, value=f"{value:g}")
            states = list(dict.fromkeys(p.state for p in light.phases if p.is_green))
            clearance = dict(zip(states, dominated_greens(states), strict=True))
            for phase in light.phases:
                attributes = {"duration": f"{phase.duration:g}", "state": phase.state}
                bounds = self._bounds(phase) if phase.is_green else None
                if bounds is not None and not clearance[phase.state]:
                    low, high = bounds
                    attributes.update(duration=f"{min(max(phase.duration, low), high):g}",
                                      minDur=f"{low:g}", maxDur=f"{high:g}")  # fmt: skip
                ET.SubElement(logic, "phase", attributes)
        path = directory / "actuated.add.xml"
        ET.indent(root)
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
        return [path]
