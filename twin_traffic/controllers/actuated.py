"""SUMO's own gap-based actuated control, built from each signal's programme."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from twin_traffic.errors import ControllerError

if TYPE_CHECKING:
    from twin_traffic.network import Network

PROGRAM_ID = "twin-traffic-actuated"


class ActuatedController:
    """Extends a green while vehicles keep arriving within ``max_gap`` seconds.

    Every green phase of the scenario's programme becomes actuated between ``min_green``
    and ``max_green``; yellow and all-red phases keep their durations. SUMO places the
    induction loops and runs the logic itself, so no decision is taken in Python.
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

    def additional_files(self, network: Network, directory: Path) -> list[Path]:
        """Write one actuated ``<tlLogic>`` per signal."""
        root = ET.Element("additional")
        for light in network.traffic_lights.values():
            logic = ET.SubElement(
                root, "tlLogic", id=light.id, type="actuated", programID=PROGRAM_ID, offset="0"
            )
            for key, value in (("max-gap", self.max_gap), ("detector-gap", self.detector_gap)):
                ET.SubElement(logic, "param", key=key, value=f"{value:g}")
            for phase in light.phases:
                attributes = {"duration": f"{phase.duration:g}", "state": phase.state}
                if phase.is_green:
                    attributes.update(
                        duration=f"{min(max(phase.duration, self.min_green), self.max_green):g}",
                        minDur=f"{self.min_green:g}",
                        maxDur=f"{self.max_green:g}",
                    )
                ET.SubElement(logic, "phase", attributes)
        path = directory / "actuated.add.xml"
        ET.indent(root)
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
        return [path]
