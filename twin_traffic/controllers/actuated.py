"""SUMO's own gap-based actuated control, built from each signal's programme."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from twin_traffic.errors import ControllerError
from twin_traffic.signals import dominated_greens

if TYPE_CHECKING:
    from twin_traffic.network import Network, TrafficLight

PROGRAM_ID = "twin-traffic-actuated"


class ActuatedController:
    """Extends a green while vehicles keep arriving within ``max_gap`` seconds.

    Each stage of the scenario's programme becomes actuated; everything else keeps its
    duration. A stage may end early when its traffic runs out (gap-out) and may run at
    most ``max_factor`` times the programme's own green for it: the programme's split is
    the *maximum green* of actuated control, as signal timing practice sets a maximum
    green from the green the phase needs at the design flow plus a margin (FHWA Signal
    Timing Manual, Koonce et al. 2008, ch. 5). Without such a bound a green
    under continuous arrivals never gaps out and runs to its maximum, so near saturation
    every stage maxes out and the splits follow the maxima instead of the demand (on
    Bologna's Pasubio the city's own maxima of up to 4x the programme's greens made
    actuated control 1.34x the city's fixed plan; see ``docs/classical.md``).

    Bounds per stage: a green phase the programme bounds (``minDur`` < ``maxDur``, as a
    city's actuated or adaptive plan does) keeps the city's minimum and has its maximum
    capped as above; one it fixes (``minDur`` = ``maxDur``: the extension phases and
    intergreen greens real programmes are full of) stays fixed, as do clearance greens
    (greens another green serves at least as well) and the later phases of a stage split
    into several phases of the same state (the first carries the stage's actuation).
    Other greens run from ``min_green`` up to ``max_factor`` times the stage's green, and
    never beyond ``max_green``. SUMO places the induction loops ``detector_gap`` seconds of
    travel upstream of the stop line, where its actuated logic expects them, and runs the
    logic itself, so no decision is taken in Python.
    """

    name = "actuated"
    decision_interval: float | None = None

    def __init__(
        self,
        min_green: float = 5.0,
        max_green: float = 90.0,
        max_gap: float = 3.0,
        detector_gap: float = 2.0,
        max_factor: float = 1.25,
    ) -> None:
        self.min_green = float(min_green)
        self.max_green = float(max_green)
        self.max_gap = float(max_gap)
        self.detector_gap = float(detector_gap)
        self.max_factor = float(max_factor)
        if not 0 < self.min_green <= self.max_green:
            raise ControllerError(
                f"actuated: need 0 < min_green <= max_green, got {self.min_green:g} and "
                f"{self.max_green:g}"
            )
        if self.max_factor < 1:
            raise ControllerError(
                f"actuated: max_factor must be at least 1 (a stage may always run its "
                f"programme's green), got {self.max_factor:g}"
            )

    def bounds(self, light: TrafficLight) -> dict[int, tuple[float, float]]:
        """Actuation range ``(minDur, maxDur)`` per actuated phase of ``light``."""
        phases = light.phases
        states = list(dict.fromkeys(p.state for p in phases if p.is_green))
        clearance = dict(zip(states, dominated_greens(states), strict=True))
        ranges: dict[int, tuple[float, float]] = {}
        for i, phase in enumerate(phases):
            if not phase.is_green or clearance[phase.state]:
                continue
            if phase.min_dur is not None and phase.max_dur is not None:
                if phase.min_dur < phase.max_dur:
                    high = min(phase.max_dur, self.max_factor * phase.duration)
                    ranges[i] = (phase.min_dur, max(phase.min_dur, high))
                continue
            if i > 0 and phases[i - 1].state == phase.state:
                continue  # a later part of a split stage keeps its duration
            rest = 0.0
            for later in phases[i + 1 :]:
                if later.state != phase.state:
                    break
                rest += later.duration
            stage = phase.duration + rest
            low = min(self.min_green, phase.duration)
            high = min(self.max_factor * stage, max(self.max_green, stage)) - rest
            ranges[i] = (low, max(low, high))
        return ranges

    def additional_files(self, network: Network, directory: Path) -> list[Path]:
        """Write one actuated ``<tlLogic>`` per signal."""
        root = ET.Element("additional")
        for light in network.traffic_lights.values():
            logic = ET.SubElement(
                root, "tlLogic", id=light.id, type="actuated", programID=PROGRAM_ID, offset="0"
            )
            for key, value in (("max-gap", self.max_gap), ("detector-gap", self.detector_gap)):
                ET.SubElement(logic, "param", key=key, value=f"{value:g}")
            ranges = self.bounds(light)
            for i, phase in enumerate(light.phases):
                attributes = {"duration": f"{phase.duration:g}", "state": phase.state}
                if i in ranges:
                    low, high = ranges[i]
                    attributes.update(duration=f"{min(max(phase.duration, low), high):g}",
                                      minDur=f"{low:g}", maxDur=f"{high:g}")  # fmt: skip
                ET.SubElement(logic, "phase", attributes)
        path = directory / "actuated.add.xml"
        ET.indent(root)
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
        return [path]
