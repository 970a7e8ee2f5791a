"""Calibrate a scenario's demand to traffic counts, and report the fit with the GEH.

Counts per induction loop or edge and interval (:mod:`twin_traffic.counts`) become edge
counts; ``randomTrips.py`` routed by ``duarouter`` proposes candidate routes over the
network; SUMO's ``routeSampler.py`` picks routes and departure times that reproduce the
counts. The calibrated routes replace the scenario's demand in its ``.sumocfg``, the
scenario is simulated once more with its sensors, and each count is compared with what
the sensors saw: GEH = sqrt(2 (M - C)^2 / (M + C)) on hourly flows, GEH < 5 being a fit.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

from twin_traffic.counts import GEH_OK, Count, geh, read_counts, rebin
from twin_traffic.errors import ScenarioError
from twin_traffic.scenario import Scenario, load_scenario
from twin_traffic.sensors import SENSORS_FILE, Detector, measure, scenario_detectors
from twin_traffic.sumo_tools import find_config, run_tool, set_config_files, tool

ACCEPTANCE_SHARE = 0.85
"""Share of counts that must have GEH < 5 for a calibration to be accepted."""
CANDIDATE_TRIPS = 4000
"""Random trips proposed as candidate routes (duplicates collapse into one route)."""
_MAX_NAMED = 5


@dataclass(frozen=True)
class Fit:
    """One count compared with the calibrated simulation (``simulated``, same interval)."""

    location: str
    begin: float
    end: float
    observed: float
    simulated: float

    @property
    def geh(self) -> float:
        """GEH of the hourly flows."""
        scale = 3600.0 / (self.end - self.begin)
        return geh(self.simulated * scale, self.observed * scale)


@dataclass(frozen=True)
class Calibration:
    """The outcome of :func:`calibrate`: the new demand and its fit to every count."""

    config: Path
    route_file: Path
    vehicles: int
    fits: tuple[Fit, ...]
    report: Path
    plot: Path | None

    @property
    def share_ok(self) -> float:
        """Share of counts with GEH < 5."""
        return sum(f.geh < GEH_OK for f in self.fits) / len(self.fits)

    @property
    def accepted(self) -> bool:
        """True when at least 85% of the counts have GEH < 5."""
        return self.share_ok >= ACCEPTANCE_SHARE


def calibrate(
    scenario_dir: str | Path,
    counts_file: str | Path,
    *,
    interval: float | None = None,
    seed: int = 0,
    plot: bool = True,
) -> Calibration:
    """Fit a scenario's demand to counts and write it into the scenario folder.

    Writes ``NAME.calibrated.rou.xml`` and makes it the ``.sumocfg``'s route file (the
    previous demand stays on disk), ``calibration.csv`` (the fit per count) and
    ``calibration.png`` (observed against simulated counts).

    Args:
        scenario_dir: the scenario folder (one ``.sumocfg``) or its ``.sumocfg``.
        counts_file: counts CSV, ``location,begin,end,count``.
        interval: sum the counts into intervals of this many seconds first.
        seed: seed of the candidate routes, the sampling and the checking simulation.
        plot: write ``calibration.png``.

    Raises:
        ScenarioError: for unknown locations, counts outside the scenario's window, or
            counts no route of the network can pass.
    """
    config = find_config(scenario_dir)
    scenario = load_scenario(config)
    source = Path(counts_file)
    counts = read_counts(source)
    if interval is not None:
        counts = rebin(counts, interval, source)
    _check_window(counts, scenario, source)
    detectors = {d.id: d for d in scenario_detectors(scenario)}
    edges = _net_edges(scenario.net_file)
    _check_locations(counts, detectors, edges, scenario, source)
    targets = _targets(counts, detectors, scenario.net_file, source)

    base = config.name.removesuffix(".sumocfg")
    route_file = config.parent / f"{base}.calibrated.rou.xml"
    with tempfile.TemporaryDirectory(prefix="twin-traffic-calibrate-") as scratch:
        folder = Path(scratch)
        candidates = _candidate_routes(scenario, folder, seed)
        _check_reachable(targets, candidates, counts, detectors, source)
        inputs: list[str | Path] = []
        if targets.edges:
            inputs += ["--edgedata-files", _write_edge_data(targets, folder / "edges.dat.xml")]
        if targets.turns:
            inputs += ["--turn-files", _write_turn_data(targets, folder / "turns.dat.xml")]
        sampled = folder / "calibrated.rou.xml"
        run_tool(
            [
                tool("routeSampler.py"),
                "--route-files", candidates,
                *inputs,
                "--edgedata-attribute", "count",
                "--turn-attribute", "count",
                "--output-file", sampled,
                "--seed", str(seed),
                "--prefix", "cal",
                "--attributes", 'departLane="best" departSpeed="max"',
            ],
            f"routeSampler.py on {source}",
        )  # fmt: skip
        vehicles = sum(1 for _, e in ET.iterparse(sampled) if e.tag == "vehicle")
        if not vehicles:
            raise ScenarioError(
                f"{source}: every count is 0, so the calibrated demand is empty; give the "
                "counts of the vehicles that passed"
            )
        shutil.move(sampled, route_file)
    set_config_files(config, "route-files", [route_file.name])
    calibrated = load_scenario(config)
    fits = _fits(calibrated, counts, list(detectors.values()), seed)
    report = _write_report(fits, config.parent / "calibration.csv")
    figure = plot_fit(fits, config.parent / "calibration.png") if plot else None
    return Calibration(config, route_file, vehicles, tuple(fits), report, figure)


def plot_fit(fits: Sequence[Fit], path: Path) -> Path:
    """Scatter observed against simulated hourly flows, with the GEH = 5 band."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend is ever selected

    figure = Figure(figsize=(5.5, 5.0), dpi=120)
    axes = figure.add_subplot()
    scale = [3600.0 / (f.end - f.begin) for f in fits]
    observed = [f.observed * s for f, s in zip(fits, scale, strict=True)]
    simulated = [f.simulated * s for f, s in zip(fits, scale, strict=True)]
    top = max([*observed, *simulated, 1.0]) * 1.08
    line = [top * i / 100 for i in range(101)]
    axes.plot(line, line, color="0.3", linewidth=1, label="simulated = observed")
    # Flows M with GEH(M, C) = 5: M = C + 12.5 ± sqrt(50 C + 156.25).
    for sign in (1, -1):
        band = [max(0.0, c + 12.5 + sign * math.sqrt(50 * c + 156.25)) for c in line]
        label = "GEH = 5" if sign > 0 else None
        axes.plot(line, band, color="0.6", linestyle="--", linewidth=1, label=label)
    ok = [f.geh < GEH_OK for f in fits]
    for flag, colour, label in ((True, "tab:green", "GEH < 5"), (False, "tab:red", "GEH ≥ 5")):
        xs = [o for o, k in zip(observed, ok, strict=True) if k is flag]
        ys = [s for s, k in zip(simulated, ok, strict=True) if k is flag]
        if xs:
            axes.scatter(xs, ys, s=18, color=colour, label=f"{label} ({len(xs)})")
    share = sum(ok) / len(ok)
    axes.set(
        xlim=(0, top),
        ylim=(0, top),
        xlabel="observed flow (veh/h)",
        ylabel="simulated flow (veh/h)",
        title=f"Calibration: {share:.0%} of {len(fits)} counts with GEH < 5",
    )
    axes.set_aspect("equal")
    axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    return path


def _check_window(counts: Sequence[Count], scenario: Scenario, source: Path) -> None:
    for item in counts:
        if item.begin < scenario.begin or item.end > scenario.end + 1e-6:
            raise ScenarioError(
                f"{source}: '{item.location}' is counted in [{item.begin:g}, {item.end:g}) "
                f"s, outside the scenario's window [{scenario.begin:g}, {scenario.end:g}); "
                "drop those rows or widen the window (<begin>/<end> in the .sumocfg)"
            )


def _net_edges(net_file: Path) -> set[str]:
    edges = set()
    for _, element in ET.iterparse(net_file):
        if element.tag == "edge" and element.get("function") != "internal":
            edges.add(element.get("id", ""))
        element.clear()
    return edges


def _check_locations(
    counts: Sequence[Count],
    detectors: dict[str, Detector],
    edges: set[str],
    scenario: Scenario,
    source: Path,
) -> None:
    areas = sorted({c.location for c in counts if c.location in detectors} - set(_loops(detectors)))
    if areas:
        raise ScenarioError(
            f"{source}: '{areas[0]}' is a lane-area detector (E2); counts come from induction "
            "loops (e1_...) or edges, so use the loop on the same lane"
        )
    unknown = sorted({c.location for c in counts} - set(detectors) - edges)
    if unknown:
        named = ", ".join(f"'{u}'" for u in unknown[:_MAX_NAMED])
        more = f" and {len(unknown) - _MAX_NAMED} more" if len(unknown) > _MAX_NAMED else ""
        has_sensors = any(p.name == SENSORS_FILE for p in scenario.additional_files)
        where = SENSORS_FILE if has_sensors else "the standard sensor layout"
        raise ScenarioError(
            f"{source}: unknown location(s) {named}{more}: neither a detector of {where} nor "
            f"an edge of {scenario.net_file.name}; fix the ids (detectors are listed in "
            f"{SENSORS_FILE}, written by 'twin-traffic scenario sensors')"
        )


def _loops(detectors: dict[str, Detector]) -> dict[str, Detector]:
    return {i: d for i, d in detectors.items() if d.kind == "e1"}


@dataclass
class Targets:
    """What routeSampler matches, per interval: edge counts and turn counts."""

    edges: dict[tuple[float, float], dict[str, float]]
    turns: dict[tuple[float, float], dict[tuple[str, str], float]]

    def edges_needed(self) -> set[str]:
        """Edges that some route must pass for the counts to be matched."""
        needed = {e for table in self.edges.values() for e, n in table.items() if n > 0}
        for table in self.turns.values():
            needed.update(e for pair, n in table.items() if n > 0 for e in pair)
        return needed


def _targets(
    counts: Sequence[Count], detectors: dict[str, Detector], net_file: Path, source: Path
) -> Targets:
    """Turn the counts into edge and turn counts per interval.

    Loops on one edge add up to the edge's count; an edge's count is only known when every
    loop on it is counted in that interval. Stop-line loops also tell the turns: a loop on a
    left-turn lane counts left-turners, so the lane counts of an edge are split into turn
    counts (see :func:`_turn_split`) and routeSampler matches those.
    """
    loops = _loops(detectors)
    loops_of_edge: dict[str, set[str]] = defaultdict(set)
    for loop in loops.values():
        loops_of_edge[loop.edge].add(loop.id)
    edges: dict[tuple[float, float], dict[str, float]] = defaultdict(dict)
    lane_counts: dict[tuple[float, float, str], dict[str, float]] = defaultdict(dict)
    for item in counts:
        edge = loops[item.location].edge if item.location in loops else item.location
        key = (item.begin, item.end, edge)
        if item.location in loops:
            if edge in edges[(item.begin, item.end)]:
                raise _twice(source, edge, item)
            lane_counts[key][loops[item.location].lane] = item.count
        else:
            if key in lane_counts or edge in edges[(item.begin, item.end)]:
                raise _twice(source, edge, item)
            edges[(item.begin, item.end)][edge] = item.count
    turns: dict[tuple[float, float], dict[tuple[str, str], float]] = defaultdict(dict)
    movements = _lane_movements(net_file, {d.lane for d in loops.values()})
    for (begin, end, edge), by_lane in sorted(lane_counts.items()):
        given = {f"e1_{lane}" for lane in by_lane}
        missing = sorted(loops_of_edge[edge] - given)
        if missing:
            raise ScenarioError(
                f"{source}: edge '{edge}' has loops {', '.join(sorted(loops_of_edge[edge]))} "
                f"but [{begin:g}, {end:g}) counts only {', '.join(sorted(given))}; add "
                f"{', '.join(missing)} or give one count for edge '{edge}'"
            )
        split = _turn_split(by_lane, movements)
        if split is None:  # a dead end: the loops only tell the edge's total
            edges[(begin, end)][edge] = sum(by_lane.values())
        else:
            for to_edge, flow in split.items():
                turns[(begin, end)][(edge, to_edge)] = flow
    return Targets(dict(edges), dict(turns))


def _twice(source: Path, edge: str, item: Count) -> ScenarioError:
    return ScenarioError(
        f"{source}: edge '{edge}' is counted twice in [{item.begin:g}, {item.end:g}), by its "
        "own id and by its loops; keep one of them"
    )


def _lane_movements(net_file: Path, lanes: set[str]) -> dict[str, dict[str, bool]]:
    """For each lane, the edges it leads to, each with whether the movement goes straight."""
    import sumolib

    net = sumolib.net.readNet(str(net_file), withInternal=False)
    movements: dict[str, dict[str, bool]] = {}
    for lane_id in lanes:
        targets: dict[str, bool] = {}
        for connection in net.getLane(lane_id).getOutgoing():
            target = connection.getToLane().getEdge().getID()
            straight = connection.getDirection() == "s"
            targets[target] = targets.get(target, False) or straight
        movements[lane_id] = targets
    return movements


def _turn_split(
    by_lane: dict[str, float], movements: dict[str, dict[str, bool]]
) -> dict[str, float] | None:
    """Vehicles per movement (destination edge) from one edge's lane counts.

    A movement served by several lanes is taken to spread evenly over them. When the lanes
    cannot tell every movement apart (a shared through-and-right lane beside a shared
    through-and-left lane), the counts are split with as little turning traffic as they
    allow: through traffic dominates the approaches a city counts. None when no lane of the
    edge leads anywhere.
    """
    import numpy as np
    from scipy.optimize import nnls

    lanes = sorted(by_lane)
    targets = sorted({t for lane in lanes for t in movements[lane]})
    if not targets:
        return None
    shares = np.zeros((len(lanes), len(targets)))
    for column, target in enumerate(targets):
        serving = [row for row, lane in enumerate(lanes) if target in movements[lane]]
        shares[serving, column] = 1.0 / len(serving)
    observed = np.array([by_lane[lane] for lane in lanes])
    if np.linalg.matrix_rank(shares) < len(targets):
        # A small penalty on turning flows picks, among the splits that fit the lanes, the
        # one with the most through traffic (all flows alike where none goes straight).
        turning = [not any(movements[lane].get(t, False) for lane in lanes) for t in targets]
        penalty = np.diag([0.1 if turn else 0.01 for turn in turning])
        shares = np.vstack([shares, penalty])
        observed = np.concatenate([observed, np.zeros(len(targets))])
    flows, _ = nnls(shares, observed)
    # Whole vehicles that keep the edge's total.
    total = round(sum(by_lane.values()))
    rounded = np.floor(flows)
    order = np.argsort(rounded - flows)
    rounded[order[: max(0, total - int(rounded.sum()))]] += 1
    return {target: float(n) for target, n in zip(targets, rounded, strict=True)}


def _candidate_routes(scenario: Scenario, folder: Path, seed: int) -> Path:
    """Routes between random origins and destinations, through duarouter."""
    routes = folder / "candidates.rou.xml"
    run_tool(
        [
            tool("randomTrips.py"),
            "--net-file", scenario.net_file,
            "--output-trip-file", folder / "candidates.trips.xml",
            "--route-file", routes,
            "--validate",
            "--seed", str(seed),
            "--begin", "0",
            "--end", str(CANDIDATE_TRIPS),
            "--period", "1",
            # Mostly boundary-to-boundary trips, the shape of traffic through a district,
            # with enough inner origins and destinations for counts that need them.
            "--fringe-factor", "5",
            "--vclass", "passenger",
            "--remove-loops",
        ],
        f"randomTrips.py on {scenario.net_file}",
        cwd=folder,
    )  # fmt: skip
    return routes


def _check_reachable(
    targets: Targets,
    candidates: Path,
    counts: Sequence[Count],
    detectors: dict[str, Detector],
    source: Path,
) -> None:
    used: set[str] = set()
    for _, element in ET.iterparse(candidates):
        if element.tag == "route":
            used.update(element.get("edges", "").split())
    blocked = sorted(targets.edges_needed() - used)
    if blocked:
        loops = _loops(detectors)
        names = sorted(
            {
                c.location
                for c in counts
                if (loops[c.location].edge if c.location in loops else c.location) in blocked
            }
        )
        raise ScenarioError(
            f"{source}: counts at {', '.join(names[:_MAX_NAMED])} cannot be matched: no route "
            f"through the network passes edge(s) {', '.join(blocked[:_MAX_NAMED])}; check the "
            "location, or the network's connections there"
        )


def _write_edge_data(targets: Targets, path: Path) -> Path:
    root = ET.Element("data")
    for index, ((begin, end), edges) in enumerate(sorted(targets.edges.items())):
        interval = ET.SubElement(
            root, "interval", id=f"edges{index}", begin=f"{begin:g}", end=f"{end:g}"
        )
        for edge, total in sorted(edges.items()):
            ET.SubElement(interval, "edge", id=edge, count=f"{total:g}")
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)
    return path


def _write_turn_data(targets: Targets, path: Path) -> Path:
    root = ET.Element("data")
    for index, ((begin, end), turns) in enumerate(sorted(targets.turns.items())):
        interval = ET.SubElement(
            root, "interval", id=f"turns{index}", begin=f"{begin:g}", end=f"{end:g}"
        )
        for (from_edge, to_edge), total in sorted(turns.items()):
            ET.SubElement(
                interval,
                "edgeRelation",
                attrib={"from": from_edge, "to": to_edge},
                count=f"{total:g}",
            )
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)
    return path


def _fits(
    scenario: Scenario, counts: Sequence[Count], detectors: list[Detector], seed: int
) -> list[Fit]:
    """Simulate the calibrated scenario and read each count's location over its interval."""
    bounds = [round(t) for c in counts for t in (c.begin, c.end) if round(t) > 0]
    period = float(reduce(math.gcd, bounds))
    loop_ids = {d.id for d in detectors if d.kind == "e1"}
    need_edges = any(c.location not in loop_ids for c in counts)
    seen = measure(scenario, detectors, period, seed, edges=need_edges)
    fits = []
    for item in counts:
        table = seen.detectors if item.location in loop_ids else seen.edges
        starts = range(round(item.begin), round(item.end), round(period))
        simulated = sum(table.get((item.location, float(t)), 0.0) for t in starts)
        fits.append(Fit(item.location, item.begin, item.end, item.count, simulated))
    return sorted(fits, key=lambda f: (f.location, f.begin))


def _write_report(fits: Sequence[Fit], path: Path) -> Path:
    lines = ["location,begin,end,observed,simulated,geh"]
    lines += [
        f"{f.location},{f.begin:g},{f.end:g},{f.observed:g},{f.simulated:g},{f.geh:.2f}"
        for f in fits
    ]
    path.write_text("\n".join(lines) + "\n")
    return path
