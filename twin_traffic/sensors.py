"""Virtual sensors: the detectors a city has at its signals, and the counts they give.

Every lane entering a signalised junction gets an induction loop (SUMO's E1) just before
the stop line, which counts vehicles as a city's loops do, and a lane-area detector (E2)
over the last metres of the approach, which sees queues and occupancy. They are written to
``sensors.add.xml`` in the scenario's folder and listed in its ``.sumocfg``. There they
write nothing (``file="NUL"``): ordinary runs stay free of stray output files, and
:func:`record_counts` runs the scenario with the same detectors writing to a scratch folder.

A city's own loops, defined in the scenario's additional files (``e1Detector`` or
``inductionLoop``) or in a detector file, take precedence: counts are keyed by their ids and
taken at their positions, mid-block or at the stop line.
"""

from __future__ import annotations

import math
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from twin_traffic.counts import Count, write_counts
from twin_traffic.errors import ScenarioError
from twin_traffic.redirect import scenario_args
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
LOOP_TAGS = ("e1Detector", "inductionLoop")
AREA_TAGS = ("e2Detector", "laneAreaDetector")


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


def read_detectors(path: str | Path) -> list[Detector]:
    """The induction loops and lane-area detectors of an additional file, in file order.

    Both SUMO spellings are read (``e1Detector``/``inductionLoop``,
    ``e2Detector``/``laneAreaDetector``); commented-out detectors are not detectors.
    """
    import sumolib

    source = Path(path)
    detectors = []
    try:
        for element in sumolib.xml.parse(str(source), [*LOOP_TAGS, *AREA_TAGS]):
            lane, pos = (
                element.getAttributeSecure("lane", ""),
                element.getAttributeSecure("pos", "0"),
            )
            try:
                position = float(pos)
                length = float(element.getAttributeSecure("length", "0"))
            except ValueError:
                raise ScenarioError(
                    f"{source}: detector '{element.id}' has pos=\"{pos}\", not a number of "
                    "metres; fix the position"
                ) from None
            kind: Literal["e1", "e2"] = "e1" if element.name in LOOP_TAGS else "e2"
            detectors.append(Detector(element.id, kind, lane, position, length))
    except (ET.ParseError, OSError) as error:
        raise ScenarioError(
            f"{source}: cannot read the detectors ({error}); fix the file"
        ) from None
    return detectors


def add_sensors(scenario_dir: str | Path) -> tuple[Path, list[Detector]]:
    """Place the sensors of a scenario folder and list them in its ``.sumocfg``.

    Args:
        scenario_dir: the folder holding one ``.sumocfg``, or the ``.sumocfg`` itself.

    Returns:
        the ``sensors.add.xml`` written and its detectors.
    """
    config = find_config(scenario_dir)
    # Placing sensors runs nothing: a configuration without an end time is fine here.
    scenario = load_scenario(config, end=math.inf)
    detectors = sensor_layout(scenario.net_file)
    if not detectors:
        raise ScenarioError(f"{scenario.net_file}: no lane enters a signal; nothing to detect")
    path = write_detectors(detectors, config.parent / SENSORS_FILE)
    listed = config_files(config, "additional-files")
    if not any(Path(name).name == SENSORS_FILE for name in listed):
        set_config_files(config, "additional-files", [*listed, SENSORS_FILE])
    load_scenario(config, end=math.inf)  # the updated configuration still loads
    return path, detectors


def scenario_detectors(
    scenario: Scenario, detectors_file: str | Path | None = None
) -> list[Detector]:
    """The detectors counts are taken at; see :func:`detector_source`."""
    return detector_source(scenario, detectors_file)[0]


def detector_source(
    scenario: Scenario, detectors_file: str | Path | None = None
) -> tuple[list[Detector], str]:
    """The detectors of a scenario and where they come from, in this order of preference:

    a detector file given by the user; the induction loops the scenario's own additional
    files define (a city's loops, under their own ids and positions); the toolkit's
    ``sensors.add.xml``; the standard stop-line layout.

    Raises:
        ScenarioError: when a given detector file has no induction loop, or a loop lies
            on a lane the network does not have.
    """
    if detectors_file is not None:
        path = Path(detectors_file)
        if not path.is_file():
            raise ScenarioError(f"{path}: detector file not found; check --detectors")
        detectors = read_detectors(path)
        if not any(d.kind == "e1" for d in detectors):
            raise ScenarioError(
                f"{path}: no induction loop (<e1Detector> or <inductionLoop>) in the file; "
                "give the file that defines the counting loops"
            )
        _check_lanes(detectors, scenario, path)
        return detectors, path.name
    own = [
        (path, d)
        for path in scenario.additional_files
        if path.name != SENSORS_FILE
        for d in read_detectors(path)
        if d.kind == "e1"
    ]
    if own:
        files = ", ".join(dict.fromkeys(path.name for path, _ in own))
        return [d for _, d in own], files
    for path in scenario.additional_files:
        if path.name == SENSORS_FILE:
            return read_detectors(path), SENSORS_FILE
    return sensor_layout(scenario.net_file), "the standard sensor layout"


def check_detector_lanes(scenario: Scenario) -> None:
    """Refuse a scenario whose additional files put a detector on a lane its network
    does not have (SUMO would refuse to load it, with a list of errors)."""
    found = [(path, read_detectors(path)) for path in scenario.additional_files]
    if any(detectors for _, detectors in found):
        net = _read_net(scenario)  # once for every file
        for path, detectors in found:
            _check_lanes(detectors, scenario, path, net)


def _read_net(scenario: Scenario) -> Any:
    import sumolib

    return sumolib.net.readNet(str(scenario.net_file), withInternal=False)


def _check_lanes(
    detectors: Sequence[Detector], scenario: Scenario, source: Path, net: Any = None
) -> None:
    net = net if net is not None else _read_net(scenario)
    for detector in detectors:
        if not net.hasEdge(detector.edge) or detector.lane not in {
            lane.getID() for lane in net.getEdge(detector.edge).getLanes()
        }:
            raise ScenarioError(
                f"{source}: detector '{detector.id}' is on lane '{detector.lane}', which is "
                f"not in {scenario.net_file.name}; fix its lane"
            )


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
    extra_args: Sequence[str] = (),
) -> Measurement:
    """Run the scenario with SUMO and count at the induction loops (and edges) per period.

    The detectors are loaded writing to a scratch folder (the scenario's own definitions of
    them left out), as are any outputs the scenario declares; ``extra_args`` are further
    SUMO options.
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
        options = [
            "--seed", str(seed),
            "--no-step-log", "--no-warnings", "--duration-log.disable",
            *extra_args,
        ]  # fmt: skip
        # The loops are loaded again with this run's period and output, so the scenario's
        # own definitions of them are left out.
        scenario_part = scenario_args(
            scenario, [extra], folder, options, omit_ids={d.id for d in loops}
        )
        run_tool(
            [binary("sumo"), *scenario_part, *options],
            f"SUMO counting run of {scenario.config_file or scenario.net_file}",
        )
        loop_counts = _interval_values(loop_out, "interval", ("nVehContrib",)) if loops else {}
        edge_counts = _edge_values(edge_out) if edges else {}
    return Measurement(period, loop_counts, edge_counts)


def record_counts(
    scenario: Scenario | str | Path,
    interval: float = DEFAULT_INTERVAL,
    seed: int = 0,
    out: str | Path | None = None,
    detectors_file: str | Path | None = None,
    extra_args: Sequence[str] = (),
    begin: float | None = None,
    end: float | None = None,
) -> list[Count]:
    """The counts a city would have: vehicles per induction loop and interval.

    The loops are the scenario's own (see :func:`detector_source`), under their own ids;
    intervals run from the scenario's begin, in its clock.

    Args:
        scenario: a loaded scenario, a built-in name, a ``.sumocfg`` or a scenario folder.
        interval: counting interval, s.
        seed: SUMO's seed for the run.
        out: optional CSV to write (format of :mod:`twin_traffic.counts`).
        detectors_file: an additional file with the loops to count at instead.
        extra_args: further SUMO options of the counting run.
        begin, end: the window, s, where it is not the scenario's own (a name or path).
    """
    if interval <= 0:
        raise ScenarioError(f"--interval {interval:g}: give a positive number of seconds")
    loaded = _as_scenario(scenario, begin, end)
    detectors = scenario_detectors(loaded, detectors_file)
    if not any(d.kind == "e1" for d in detectors):
        raise ScenarioError(f"{loaded.net_file}: the scenario has no induction loops to count")
    result = measure(loaded, detectors, interval, seed, extra_args=extra_args)
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


def _as_scenario(
    scenario: Scenario | str | Path, begin: float | None = None, end: float | None = None
) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    text = str(scenario)
    if Path(text).is_dir():
        return load_scenario(find_config(text), begin=begin, end=end)
    return load_scenario(text, begin=begin, end=end)


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
