"""Static topology of a scenario's signals, read with sumolib without running SUMO.

For every traffic light: the programme SUMO will run (the net's, or the last one an
additional file loads), its phases, the lanes each link connects, and which phases are
greens. Nothing here assumes greens and yellows alternate, nor that a programme lacks
all-red phases: a green is any phase that shows green to some link and yellow to none.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import sumolib

from twin_traffic.errors import ScenarioError
from twin_traffic.scenario import Scenario
from twin_traffic.signals import GREEN_CHARS, green_phase_indices, is_green_phase


@dataclass(frozen=True)
class Phase:
    """One phase of a signal programme, with SUMO's link-state string."""

    state: str
    duration: float
    min_dur: float | None = None
    max_dur: float | None = None

    @property
    def is_green(self) -> bool:
        """True when some link has green and none is in a yellow/red-yellow transition."""
        return is_green_phase(self.state)


@dataclass(frozen=True)
class Link:
    """A controlled connection: the signal's link ``index`` from ``in_lane`` to ``out_lane``."""

    index: int
    in_lane: str
    out_lane: str


@dataclass(frozen=True)
class TrafficLight:
    """A signal with its active programme and the lanes it controls."""

    id: str
    program_id: str
    phases: tuple[Phase, ...]
    links: tuple[Link, ...]
    # Link indices onto pedestrian crossings (SUMO shows them no yellow).
    crossings: frozenset[int] = frozenset()
    # The programme's type (static, actuated, delay_based, NEMA...).
    kind: str = "static"
    # "FILE: WAUT 'ID'" when a WAUT switches the signal between programmes at run time.
    switched_by: str | None = None

    @property
    def num_links(self) -> int:
        """Length of the signal's state string."""
        return len(self.phases[0].state)

    @cached_property
    def green_phases(self) -> tuple[int, ...]:
        """Indices of the programme's distinct green phases, in programme order."""
        return green_phase_indices([phase.state for phase in self.phases])

    @cached_property
    def incoming_lanes(self) -> tuple[str, ...]:
        """Lanes entering the junction through a controlled link, without duplicates."""
        return tuple(dict.fromkeys(link.in_lane for link in self.links))

    @cached_property
    def outgoing_lanes(self) -> tuple[str, ...]:
        """Lanes leaving the junction through a controlled link, without duplicates."""
        return tuple(dict.fromkeys(link.out_lane for link in self.links))

    @cached_property
    def movements(self) -> tuple[tuple[str, str], ...]:
        """Distinct (incoming lane, outgoing lane) pairs the signal controls."""
        return tuple(dict.fromkeys((link.in_lane, link.out_lane) for link in self.links))

    def green_movements(self, phase_index: int) -> tuple[tuple[str, str], ...]:
        """Movements that have green (``G`` or ``g``) in the given phase."""
        state = self.phases[phase_index].state
        pairs = (
            (link.in_lane, link.out_lane) for link in self.links if state[link.index] in GREEN_CHARS
        )
        return tuple(dict.fromkeys(pairs))


@dataclass(frozen=True)
class Network:
    """The controllable part of a scenario's network."""

    net_file: Path
    traffic_lights: dict[str, TrafficLight]
    lane_lengths: dict[str, float]
    lane_speeds: dict[str, float]
    # Lanes each lane leads to through connections no signal controls: a road split
    # into several edges at junctions without signals (see :mod:`twin_traffic.roads`).
    free_successors: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    # The scenario it was read from: controllers that measure demand (webster) run it.
    scenario: Scenario | None = field(default=None, compare=False, repr=False)

    @property
    def signal_ids(self) -> tuple[str, ...]:
        """Traffic-light ids in a stable order."""
        return tuple(self.traffic_lights)

    def check_takeover(self, signal_ids: Sequence[str], controller: str) -> None:
        """Raise :class:`ScenarioError` when ``controller`` cannot take ``signal_ids``
        over from their programmes: a WAUT would switch them back to its own programmes
        during the run, and a NEMA programme's phases are ring-barrier phases, not the
        link states the toolkit's greens and transitions are built from."""
        for tls in signal_ids:
            light = self.traffic_lights[tls]
            if light.switched_by is not None:
                raise ScenarioError(
                    f"{light.switched_by} switches signal '{tls}' between programmes during "
                    f"the run, which would override {controller}: remove the <WAUT> and its "
                    "<wautJunction> (the fixed controller runs them as they are)"
                )
            if light.kind == "NEMA":
                raise ScenarioError(
                    f"{self.net_file}: signal '{tls}' runs a NEMA controller (ring-barrier "
                    f"phases), which {controller} cannot take over; convert it to a phase "
                    "sequence (netconvert --tls.default-type static) or run fixed"
                )

    @cached_property
    def controlled_ids(self) -> tuple[str, ...]:
        """The signals a deciding controller or an env takes over: those with two greens
        or more. A programme with a single green (a ramp meter, a green broken only by
        all-red) leaves nothing to choose, and holding its green would delete its red;
        such a signal keeps running its own programme."""
        return tuple(tls for tls, light in self.traffic_lights.items()
                     if len(light.green_phases) > 1)  # fmt: skip


def load_network(scenario: Scenario) -> Network:
    """Read the scenario's signals and their programmes with sumolib."""
    net = sumolib.net.readNet(str(scenario.net_file), withPrograms=True, withInternal=False)
    overrides, switched = _additional_signals(scenario.additional_files)
    crossings = _crossing_links(scenario.net_file)
    lights: dict[str, TrafficLight] = {}
    for tls in sorted(net.getTrafficLights(), key=lambda t: t.getID()):
        tls_id = tls.getID()
        links = tuple(
            sorted(
                (
                    Link(index, in_lane.getID(), out_lane.getID())
                    for in_lane, out_lane, index in tls.getConnections()
                ),
                key=lambda link: (link.index, link.in_lane, link.out_lane),
            )
        )
        if tls_id in overrides:
            program_id, kind, phases = overrides[tls_id]
        else:
            programs = tls.getPrograms()
            program_id = list(programs)[-1]  # SUMO runs the last programme loaded
            kind = str(getattr(programs[program_id], "_type", "static") or "static")
            raw = programs[program_id].getPhases()
            phases = played_order(
                tuple(
                    Phase(p.state, float(p.duration), _optional(p.minDur), _optional(p.maxDur))
                    for p in raw
                ),
                [_successor(p.next or ()) for p in raw],
            )
        lights[tls_id] = TrafficLight(
            tls_id, program_id, phases, links, crossings.get(tls_id, frozenset()), kind,
            switched.get(tls_id),
        )  # fmt: skip
    lanes = [lane for edge in net.getEdges() for lane in edge.getLanes()]
    lengths = {lane.getID(): float(lane.getLength()) for lane in lanes}
    speeds = {lane.getID(): float(lane.getSpeed()) for lane in lanes}
    free = {
        lane.getID(): tuple(
            dict.fromkeys(c.getToLane().getID() for c in lane.getOutgoing() if not c.getTLSID())
        )
        for lane in lanes
    }
    return Network(scenario.net_file, lights, lengths, speeds, free, scenario=scenario)


def _crossing_links(net_file: Path) -> dict[str, frozenset[int]]:
    """Per signal, its links onto pedestrian crossings: connections from a walking area
    to an internal edge of ``function="crossing"`` (sumolib without internal edges does
    not list them)."""
    crossing_edges: set[str] = set()
    links: list[tuple[str, int, str]] = []
    for _, element in ET.iterparse(net_file):
        if element.tag == "edge" and element.get("function") == "crossing":
            crossing_edges.add(element.get("id", ""))
        elif element.tag == "connection" and element.get("tl") is not None:
            links.append((element.get("tl", ""), int(element.get("linkIndex", -1)),
                          element.get("to", "")))  # fmt: skip
        if element.tag in ("edge", "connection", "junction"):
            element.clear()
    found: dict[str, set[int]] = {}
    for tls, index, to in links:
        if to in crossing_edges:
            found.setdefault(tls, set()).add(index)
    return {tls: frozenset(indices) for tls, indices in found.items()}


def _additional_signals(
    files: tuple[Path, ...],
) -> tuple[dict[str, tuple[str, str, tuple[Phase, ...]]], dict[str, str]]:
    """From the additional files, read once each: the programmes they define (id, type,
    phases; SUMO runs the last one loaded per signal), and the signals a WAUT (a
    switching schedule between programmes) drives, as ``FILE: WAUT 'ID'``."""
    programs: dict[str, tuple[str, str, tuple[Phase, ...]]] = {}
    switched: dict[str, str] = {}
    for path in files:
        root = ET.parse(path).getroot()
        for logic in root.iter("tlLogic"):
            phases = phases_of(logic)
            if phases:
                programs[logic.get("id", "")] = (
                    logic.get("programID", "0"), logic.get("type", "static"), phases
                )  # fmt: skip
        for junction in root.iter("wautJunction"):
            switched[junction.get("junctionID", "")] = (
                f"{path}: WAUT '{junction.get('wautID', '')}'"
            )
    return programs, switched


def phases_of(logic: ET.Element) -> tuple[Phase, ...]:
    """The phases of a ``<tlLogic>`` element; ``ValueError`` when a duration is no number."""
    elements = list(logic.iter("phase"))
    return played_order(
        tuple(
            Phase(
                p.get("state", ""),
                float(p.get("duration", "")),
                _optional(p.get("minDur")),
                _optional(p.get("maxDur")),
            )
            for p in elements
        ),
        [_successor(p.get("next", "").split()) for p in elements],
    )


def played_order(phases: tuple[Phase, ...], successors: Sequence[int | None]) -> tuple[Phase, ...]:
    """The phases in the order SUMO plays them: from phase 0, each phase's ``next``
    (its first one where it names several) or else the phase after it, once round the
    cycle. Phases the cycle never reaches are left out. A programme without ``next`` is
    returned as it is."""
    if all(successor is None for successor in successors):
        return phases
    order: list[int] = []
    index = 0
    while index not in order and 0 <= index < len(phases):
        order.append(index)
        successor = successors[index]
        index = successor if successor is not None else (index + 1) % len(phases)
    return tuple(phases[i] for i in order)


def _successor(indices: Sequence[object]) -> int | None:
    """A phase's ``next``: the first index it names, ``None`` when it names none."""
    first = str(indices[0]) if len(indices) else ""
    return int(first) if first.lstrip("-").isdigit() else None


def _optional(value: object) -> float | None:
    if value is None or value == "":
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if number < 0 else number


def programme_min_green(phases: Sequence[Phase], green: str) -> float:
    """The programme's minimum for a green: the sum of ``minDur`` over a run of
    consecutive phases showing it (a stage split into several phases), the longest run
    if it appears several times; 0 when the programme gives no ``minDur``."""
    best = run = 0.0
    previous = None
    for phase in (*phases, *phases):  # twice round, for a stage that wraps
        if phase.state == green:
            run = run + (phase.min_dur or 0.0) if previous == green else (phase.min_dur or 0.0)
            best = max(best, run)
        previous = phase.state
    return best
