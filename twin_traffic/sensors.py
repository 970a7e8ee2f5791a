"""Virtual sensors: the detectors a city has at its signals, and the counts they give.

Every lane entering a signalised junction gets an induction loop (SUMO's E1) just before
the stop line, which counts vehicles as a city's loops do, and a lane-area detector (E2)
over the last metres of the approach, which sees queues and occupancy. They are written to
``sensors.add.xml`` in the scenario's folder and listed in its ``.sumocfg``. There they
write nothing (``file="NUL"``): ordinary runs stay free of stray output files, and
:func:`record_counts` runs the scenario with the same detectors writing to a scratch folder.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from twin_traffic.counts import Count, write_counts
from twin_traffic.errors import ScenarioError
from twin_traffic.scenario import Scenario, load_scenario
from twin_traffic.sumo_tools import binary, config_files, find_config, run_tool, set_config_files

SENSORS_FILE = "sensors.add.xml"
STOP_LINE_OFFSET = 2.0
"""Metres between an induction loop and the stop line."""
E2_LENGTH = 50.0
"""Length of a lane-area detector, m (shorter on shorter lanes)."""
DEFAULT_INTERVAL = 900.0
"""Counting interval, s: 15 minutes, the usual period of published counts."""

_TAGS = {"e1": "inductionLoop", "e2": "laneAreaDetector"}
_KINDS = {tag: kind for kind, tag in _TAGS.items()}


@dataclass(frozen=True)
class Detector:
    """A detector on a lane: an induction loop (``e1``) or a lane-area detector (``e2``).

    ``pos`` is the position along the lane in metres (the start of an ``e2``), ``length``
    the extent of an ``e2``.
    """

    id: str
    kind: Literal["e1", "e2"]
    lane: str
    pos: float
    length: float = 0.0

    @property
    def edge(self) -> str:
        """The edge of the detector's lane (SUMO names lanes ``EDGE_INDEX``)."""
        return self.lane.rpartition("_")[0]


def sensor_layout(net_file: str | Path) -> list[Detector]:
    """An E1 and an E2 on every lane that enters a signalised junction, in a stable order."""
    import sumolib

    net = sumolib.net.readNet(str(net_file), withInternal=False)
    lanes: dict[str, float] = {}
    for light in sorted(net.getTrafficLights(), key=lambda t: t.getID()):
        for in_lane, _, _ in light.getConnections():
            lanes.setdefault(in_lane.getID(), float(in_lane.getLength()))
    detectors: list[Detector] = []
    for lane, length in sorted(lanes.items()):
        loop_pos = max(0.0, length - STOP_LINE_OFFSET)
        area = min(E2_LENGTH, length)
        detectors.append(Detector(f"e1_{lane}", "e1", lane, round(loop_pos, 2)))
        detectors.append(
            Detector(f"e2_{lane}", "e2", lane, round(length - area, 2), round(area, 2))
        )
    return detectors


def write_detectors(
    detectors: Iterable[Detector],
    path: Path,
    period: float = DEFAULT_INTERVAL,
    output: str | Path = "NUL",
    kinds: Sequence[str] = ("e1", "e2"),
) -> Path:
    """Write detectors as a SUMO additional file; ``output`` is their output file."""
    root = ET.Element("additional")
    for detector in detectors:
        if detector.kind not in kinds:
            continue
        attributes = {
            "id": detector.id,
            "lane": detector.lane,
            "pos": f"{detector.pos:g}",
            "period": f"{period:g}",
            "file": str(output),
        }
        if detector.kind == "e2":
            attributes["length"] = f"{detector.length:g}"
        ET.SubElement(root, _TAGS[detector.kind], attributes)
    ET.indent(root, space="    ")
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)
    return path


def read_detectors(path: Path) -> list[Detector]:
    """The induction loops and lane-area detectors of an additional file."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as error:
        raise ScenarioError(f"{path}: cannot read the sensors ({error}); rebuild them") from None
    detectors = []
    for element in root:
        kind = _KINDS.get(element.tag)
        if kind is None:
            continue
        detectors.append(
            Detector(
                element.get("id", ""),
                "e1" if kind == "e1" else "e2",
                element.get("lane", ""),
                float(element.get("pos", "0")),
                float(element.get("length", "0")),
            )
        )
    return detectors


def add_sensors(scenario_dir: str | Path) -> tuple[Path, list[Detector]]:
    """Place the sensors of a scenario folder and list them in its ``.sumocfg``.

    Args:
        scenario_dir: the folder holding one ``.sumocfg``, or the ``.sumocfg`` itself.

    Returns:
        the ``sensors.add.xml`` written and its detectors.
    """
    config = find_config(scenario_dir)
    scenario = load_scenario(config)
    detectors = sensor_layout(scenario.net_file)
    if not detectors:
        raise ScenarioError(f"{scenario.net_file}: no lane enters a signal; nothing to detect")
    path = write_detectors(detectors, config.parent / SENSORS_FILE)
    listed = config_files(config, "additional-files")
    if not any(Path(name).name == SENSORS_FILE for name in listed):
        set_config_files(config, "additional-files", [*listed, SENSORS_FILE])
    load_scenario(config)  # the updated configuration still loads
    return path, detectors


def scenario_detectors(scenario: Scenario) -> list[Detector]:
    """The scenario's own sensors (its ``sensors.add.xml``), or the standard layout."""
    for path in scenario.additional_files:
        if path.name == SENSORS_FILE:
            return read_detectors(path)
    return sensor_layout(scenario.net_file)


@dataclass(frozen=True)
class Measurement:
    """Vehicles counted per (location, interval begin) in one simulation.

    ``detectors`` holds induction-loop counts (vehicles whose front passed the loop);
    ``edges`` holds, per edge, vehicles that entered or departed on it.
    """

    period: float
    detectors: dict[tuple[str, float], float]
    edges: dict[tuple[str, float], float]


def measure(
    scenario: Scenario,
    detectors: Sequence[Detector],
    period: float = DEFAULT_INTERVAL,
    seed: int = 0,
    edges: bool = False,
) -> Measurement:
    """Run the scenario with SUMO and count at the induction loops (and edges) per period.

    The scenario's own ``sensors.add.xml`` is left out of the run: the same detectors are
    loaded again writing to a scratch folder.
    """
    loops = [d for d in detectors if d.kind == "e1"]
    with tempfile.TemporaryDirectory(prefix="twin-traffic-sensors-") as scratch:
        folder = Path(scratch)
        loop_out, edge_out = folder / "e1.xml", folder / "edges.xml"
        extra = write_detectors(loops, folder / "loops.add.xml", period, loop_out, ("e1",))
        if edges:
            root = ET.parse(extra).getroot()
            ET.SubElement(root, "edgeData", id="counts", period=f"{period:g}", file=str(edge_out))
            ET.ElementTree(root).write(extra, encoding="UTF-8", xml_declaration=True)
        own = tuple(p for p in scenario.additional_files if p.name != SENSORS_FILE)
        run = dataclasses.replace(scenario, additional_files=own)
        run_tool(
            [
                binary("sumo"),
                *run.sumo_args([extra]),
                "--seed", str(seed),
                "--no-step-log", "--no-warnings", "--duration-log.disable",
            ],
            f"SUMO counting run of {scenario.config_file or scenario.net_file}",
        )  # fmt: skip
        loop_counts = _interval_values(loop_out, "interval", ("nVehContrib",)) if loops else {}
        edge_counts = _edge_values(edge_out) if edges else {}
    return Measurement(period, loop_counts, edge_counts)


def record_counts(
    scenario: Scenario | str | Path,
    interval: float = DEFAULT_INTERVAL,
    seed: int = 0,
    out: str | Path | None = None,
) -> list[Count]:
    """The counts a city would have: vehicles per induction loop and interval.

    Args:
        scenario: a loaded scenario, a built-in name, a ``.sumocfg`` or a scenario folder.
        interval: counting interval, s.
        seed: SUMO's seed for the run.
        out: optional CSV to write (format of :mod:`twin_traffic.counts`).
    """
    if interval <= 0:
        raise ScenarioError(f"--interval {interval:g}: give a positive number of seconds")
    loaded = _as_scenario(scenario)
    detectors = scenario_detectors(loaded)
    if not any(d.kind == "e1" for d in detectors):
        raise ScenarioError(f"{loaded.net_file}: the scenario has no induction loops to count")
    result = measure(loaded, detectors, interval, seed)
    counts = [
        Count(
            d.id, begin, min(begin + interval, loaded.end), result.detectors.get((d.id, begin), 0)
        )
        for begin in _interval_starts(loaded, interval)
        for d in detectors
        if d.kind == "e1"
    ]
    if out is not None:
        write_counts(counts, out)
    return counts


def _as_scenario(scenario: Scenario | str | Path) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    text = str(scenario)
    if Path(text).is_dir():
        return load_scenario(find_config(text))
    return load_scenario(text)


def _interval_starts(scenario: Scenario, interval: float) -> list[float]:
    count = math.ceil((scenario.end - scenario.begin) / interval - 1e-9)
    return [scenario.begin + i * interval for i in range(count)]


def _interval_values(
    path: Path, tag: str, attributes: Sequence[str]
) -> dict[tuple[str, float], float]:
    values: dict[tuple[str, float], float] = {}
    for _, element in ET.iterparse(path):
        if element.tag == tag and element.get("id") is not None:
            begin = float(element.get("begin", "0"))
            total = sum(float(element.get(a, "0")) for a in attributes)
            values[(element.get("id", ""), begin)] = total
    return values


def _edge_values(path: Path) -> dict[tuple[str, float], float]:
    values: dict[tuple[str, float], float] = {}
    for _, interval in ET.iterparse(path):
        if interval.tag != "interval":
            continue
        begin = float(interval.get("begin", "0"))
        for edge in interval.iter("edge"):
            total = float(edge.get("entered", "0")) + float(edge.get("departed", "0"))
            values[(edge.get("id", ""), begin)] = total
        interval.clear()
    return values
