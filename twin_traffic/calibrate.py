"""Calibrate a scenario's demand to traffic counts, and report the fit with the GEH.

Counts per induction loop or edge and interval (:mod:`twin_traffic.counts`) become edge
counts (loops across every lane of an edge at one cross-section add up; a mid-block loop
counts what passes it) or, for stop-line loops, turn counts. A pool of candidate routes
(the scenario's own, ``randomTrips.py`` routes over the network, or those plus routes the
toolkit builds through every counted location) is fitted to the counts: by default with
the toolkit's linear programme over every loop count, refined with simulations of the
demand (:mod:`twin_traffic.route_fit`), or with SUMO's ``routeSampler.py`` on the edge
and turn counts. The calibrated scenario is written to a new folder, simulated once more
with its detectors, and each count is compared with what they saw: GEH =
sqrt(2 (M - C)^2 / (M + C)) on hourly flows, GEH < 5 being a fit.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

from twin_traffic.counts import GEH_OK, Count, geh, missing_counts, read_counts, rebin
from twin_traffic.errors import ScenarioError
from twin_traffic.files import current_umask
from twin_traffic.route_fit import RouteFit, fit_and_write, refine, start_fit
from twin_traffic.scenario import Scenario, load_scenario
from twin_traffic.sensors import SENSORS_FILE, Detector, detector_source, measure
from twin_traffic.sumo_tools import find_config, run_tool, tool

ACCEPTANCE_SHARE = 0.85
"""Share of counts that must have GEH < 5 for a calibration to be accepted."""
CANDIDATE_TRIPS = 4000
"""Random trips proposed as candidate routes (duplicates collapse into one route)."""
STOP_LINE_RANGE = 25.0
"""A loop this close to the end of its lane (m) sees vehicles on their turning lanes."""
CROSS_SECTION = 5.0
"""Loops of one edge less than this far apart (m) count one cross-section."""
COVER_ROUTES = 3
"""Origins and destinations per counted edge in the covering route pool."""
STARTS = ("cover", "random", "scenario")
"""Candidate route pools: see :func:`calibrate`."""
SAMPLERS = ("lp", "routesampler")
"""How routes are picked from the pool: see :func:`calibrate`."""
SAMPLER_OPTIONS: tuple[str, ...] = ("--optimize", "full", "--minimize-vehicles", "0.5")
"""routeSampler's solver: a linear programme over all candidates that prefers routes
passing several counted locations (fewer vehicles for the same counts) to greedy sampling,
which on a real district's loops inserts more vehicles than its roads carry."""
FEEDBACK_ROUNDS = 4
"""Fits of ``--sampler lp`` again with the loop passes its demand's simulation measured."""
VEHICLE_ATTRIBUTES = 'departLane="best" departSpeed="max"'
"""Departure attributes of the calibrated vehicles."""
_MAX_NAMED = 5
_NO_CAR_LANE = "its edge has no lane for cars: it counts the vehicles the scenario keeps"
_VCLASS = "passenger"


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
    """The outcome of :func:`calibrate`: the new scenario, its demand and its fit.

    ``missing`` lists (location, begin, end) absent from the counts; ``unused`` the counts
    that could not become a target, with the reason; ``uncovered`` the counted locations
    no candidate route passes (left to the other counts).
    """

    config: Path
    route_file: Path
    vehicles: int
    fits: tuple[Fit, ...]
    report: Path
    plot: Path | None
    interval_plot: Path | None = None
    start: str = "cover"
    sampler: str = "lp"
    candidates: int = 0
    missing: tuple[tuple[str, float, float], ...] = ()
    unused: tuple[tuple[str, str], ...] = ()
    uncovered: tuple[str, ...] = ()

    @property
    def share_ok(self) -> float:
        """Share of counts with GEH < 5."""
        return sum(f.geh < GEH_OK for f in self.fits) / len(self.fits)

    @property
    def accepted(self) -> bool:
        """True when at least 85% of the counts have GEH < 5."""
        return self.share_ok >= ACCEPTANCE_SHARE

    def worst(self, n: int = 5) -> list[tuple[str, float]]:
        """The ``n`` locations with the highest mean GEH, with it."""
        by_location: dict[str, list[float]] = defaultdict(list)
        for fit in self.fits:
            by_location[fit.location].append(fit.geh)
        means = {loc: sum(v) / len(v) for loc, v in by_location.items()}
        return sorted(means.items(), key=lambda kv: -kv[1])[:n]

    def summary(self) -> dict[str, object]:
        """The fit as plain data (the CLI's ``--format json``)."""
        return {
            "config": str(self.config),
            "route_file": str(self.route_file),
            "vehicles": self.vehicles,
            "start": self.start,
            "sampler": self.sampler,
            "candidate_routes": self.candidates,
            "counts": len(self.fits),
            "share_geh_below_5": self.share_ok,
            "accepted": self.accepted,
            "worst_locations": [{"location": k, "mean_geh": v} for k, v in self.worst()],
            "missing": [list(m) for m in self.missing],
            "unused": [{"location": k, "reason": r} for k, r in self.unused],
            "uncovered": list(self.uncovered),
            "fits": [{**dataclasses.asdict(f), "geh": f.geh} for f in self.fits],
            "report": str(self.report),
            "plots": [str(p) for p in (self.plot, self.interval_plot) if p is not None],
        }


def calibrate(
    scenario_dir: str | Path,
    counts_file: str | Path,
    *,
    out: str | Path,
    interval: float | None = None,
    seed: int = 0,
    plot: bool = True,
    detectors_file: str | Path | None = None,
    start: str = "cover",
    vehicle_type: str | None = None,
    sampler: str = "lp",
    rounds: int = FEEDBACK_ROUNDS,
    extra_args: Sequence[str] = (),
    on_step: Callable[[str], None] | None = None,
) -> Calibration:
    """Fit a scenario's demand to counts and write the calibrated scenario to ``out``.

    ``out`` is a new folder (the original scenario is left untouched) holding the
    scenario's network and additional files, ``NAME.calibrated.rou.xml`` as its demand,
    its ``.sumocfg``, ``calibration.csv`` (the fit per count), ``calibration.png``
    (observed against simulated counts) and ``calibration-intervals.png`` (totals per
    interval). It appears only once complete.

    Args:
        scenario_dir: the scenario folder (one ``.sumocfg``) or its ``.sumocfg``.
        counts_file: counts, a CSV ``location,begin,end,count`` or SUMO detector output.
        out: the folder to write; must not exist yet (or be empty).
        interval: sum the counts into intervals of this many seconds first.
        seed: seed of the candidate routes, the sampling and the checking simulation.
        plot: write the figures.
        detectors_file: the loops the counts come from, when not the scenario's own.
        start: the candidate routes: ``cover`` (random trips plus routes through every
            counted location), ``random`` (``randomTrips.py`` over the network) or
            ``scenario`` (the scenario's own routes).
        vehicle_type: the ``vType`` (or ``vTypeDistribution``) of the calibrated vehicles,
            defined in the scenario's additional files: the city's fleet (SUMO's default
            car otherwise, whose longer gaps carry fewer vehicles through a signal).
        sampler: how vehicles are picked from the candidates: ``lp`` (the toolkit's linear
            programme over every loop × interval, with the lane each route takes past each
            loop; :mod:`twin_traffic.route_fit`) or ``routesampler`` (SUMO's
            ``routeSampler.py`` on the edge and turn counts the loops tell).
        rounds: with ``lp``, how many times to fit again with the lanes and intervals in
            which a simulation of the demand saw each route's vehicles pass the loops.
        extra_args: further SUMO options of the checking run.
        on_step: hears each step as it begins, in a few words (the steps that simulate
            take the time).

    Raises:
        ScenarioError: for unknown locations, counts outside the scenario's window, counts
            no route of the network can pass, or an ``out`` folder that is in use.
    """
    if start not in STARTS:
        raise ScenarioError(f"--start {start}: choose one of {', '.join(STARTS)}")
    if sampler not in SAMPLERS:
        raise ScenarioError(f"--sampler {sampler}: choose one of {', '.join(SAMPLERS)}")
    config = find_config(scenario_dir)
    scenario = load_scenario(config)
    target_dir = _new_folder(Path(out), config)
    source = Path(counts_file)
    counts = read_counts(source)
    if interval is not None:
        counts = rebin(counts, interval, source, start=scenario.begin)
    _check_window(counts, scenario, source)
    if vehicle_type is not None:
        _check_vehicle_type(vehicle_type, scenario, config)
    found, origin = detector_source(scenario, detectors_file)
    detectors = {d.id: d for d in found}
    edges = _net_edges(scenario.net_file)
    _check_locations(counts, detectors, edges, scenario, source, origin)
    missing = missing_counts(counts)
    targets, unused = _targets(counts, detectors, scenario.net_file, source)
    _check_kept_demand(unused, detectors, scenario, source)

    say = on_step or (lambda _: None)
    base = config.name.removesuffix(".sumocfg")
    staging = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.", dir=target_dir.parent))
    staging.chmod(0o777 & ~current_umask())  # a folder as mkdir makes it, not mkdtemp's 0700
    try:
        with tempfile.TemporaryDirectory(prefix="twin-traffic-calibrate-") as scratch:
            folder = Path(scratch)
            say(f"candidate routes ({start})")
            candidates = _candidate_routes(scenario, folder, seed, start, targets)
            pool = sum(1 for _, e in ET.iterparse(candidates) if e.tag == "route")
            uncovered = _uncovered(targets, candidates)
            if (uncovered and start == "cover") or (uncovered and not targets.without(uncovered)):
                raise _unreachable(source, uncovered, targets)
            targets = targets.without(uncovered)
            route_file = staging / f"{base}.calibrated.rou.xml"
            fit = None
            say(f"choosing vehicles among {pool:,} candidate routes ({sampler})")
            if sampler == "lp":
                fit = _fit_lp(
                    counts, list(_loops(detectors).values()), candidates, scenario, source
                )
                vehicles = fit_and_write(fit, route_file, seed, _attributes(vehicle_type))
            else:
                vehicles = _sample(
                    targets, candidates, folder, route_file, seed, source, vehicle_type
                )
        new_config = _write_scenario(config, scenario, staging, route_file)
        calibrated = load_scenario(new_config)
        if fit is not None and rounds > 0:
            loops = list(_loops(detectors).values())

            def measured(round_: int, share: float) -> None:
                say(f"round {round_}/{rounds} simulated: {share:.1%} of counts with GEH < 5"
                    + ("; fitting again" if round_ < rounds else ""))  # fmt: skip

            say(f"refining: {rounds + 1} simulations of the demand, each fitted again")
            vehicles = refine(
                fit, calibrated, loops, route_file, seed, _attributes(vehicle_type), rounds,
                extra_args, on_round=measured,
            )  # fmt: skip
        say("checking the calibrated scenario (one simulation)")
        fits = _fits(calibrated, counts, list(detectors.values()), seed, extra_args)
        report = _write_report(fits, staging / "calibration.csv")
        figure = plot_fit(fits, staging / "calibration.png") if plot else None
        per_interval = plot_intervals(fits, staging / "calibration-intervals.png") if plot else None
        if target_dir.exists():
            target_dir.rmdir()  # empty, checked above
        staging.rename(target_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    moved = [target_dir / p.name for p in (new_config, route_file, report)]
    return Calibration(
        config=moved[0],
        route_file=moved[1],
        vehicles=vehicles,
        fits=tuple(fits),
        report=moved[2],
        plot=target_dir / figure.name if figure else None,
        interval_plot=target_dir / per_interval.name if per_interval else None,
        start=start,
        sampler=sampler,
        candidates=pool,
        missing=tuple(missing),
        unused=tuple(unused),
        uncovered=tuple(uncovered),
    )


@dataclass(frozen=True)
class RoundTrip:
    """A calibration method checked on a scenario whose demand is known (see
    :func:`round_trip`): ``fits`` compare the recorded counts with an independent run."""

    calibration: Calibration
    fits: tuple[Fit, ...]

    @property
    def share_ok(self) -> float:
        """Share of loop × interval counts with GEH < 5 in the independent run."""
        return sum(f.geh < GEH_OK for f in self.fits) / len(self.fits)


def round_trip(
    scenario_dir: str | Path,
    work: str | Path,
    *,
    interval: float = 900.0,
    seeds: tuple[int, int, int] = (0, 1, 2),
    start: str = "cover",
    vehicle_type: str | None = None,
    sampler: str = "lp",
    rounds: int = FEEDBACK_ROUNDS,
    plot: bool = True,
) -> RoundTrip:
    """Record a scenario's loop counts under its own demand, calibrate a fresh demand to
    them, and count again on the calibrated scenario.

    ``seeds`` are those of the recording run, the calibration and the independent check;
    ``work`` (a new folder) receives ``counts.csv`` and the calibrated scenario
    (``calibrated/``). The scenario's own demand plays no part in the calibration.
    """
    from twin_traffic.counts import write_counts
    from twin_traffic.sensors import record_counts

    folder = Path(work)
    folder.mkdir(parents=True, exist_ok=False)
    observed = record_counts(scenario_dir, interval=interval, seed=seeds[0])
    counts = write_counts(observed, folder / "counts.csv")
    calibration = calibrate(
        scenario_dir, counts, out=folder / "calibrated", seed=seeds[1], start=start,
        vehicle_type=vehicle_type, sampler=sampler, rounds=rounds, plot=plot,
    )  # fmt: skip
    again = {
        (c.location, c.begin): c.count
        for c in record_counts(calibration.config, interval=interval, seed=seeds[2])
    }
    fits = tuple(
        Fit(c.location, c.begin, c.end, c.count, again.get((c.location, c.begin), 0.0))
        for c in observed
    )
    return RoundTrip(calibration, fits)


def _check_kept_demand(
    unused: Sequence[tuple[str, str]],
    detectors: dict[str, Detector],
    scenario: Scenario,
    source: Path,
) -> None:
    """Loops on edges without car lanes count the vehicles the calibration keeps (buses
    in the additional files); a loop that none of those pass can never be matched."""
    loops = sorted({loc for loc, why in unused if why == _NO_CAR_LANE})
    if not loops:
        return
    kept: set[str] = set()
    for path in scenario.additional_files:
        for _, element in ET.iterparse(path):
            if element.tag == "route":
                kept.update(element.get("edges", "").split())
    blocked = [loop for loop in loops if detectors[loop].edge not in kept]
    if blocked:
        edges = sorted({detectors[loop].edge for loop in blocked})
        raise ScenarioError(
            f"{source}: counts at {', '.join(blocked[:_MAX_NAMED])} cannot be matched: no route "
            f"through the network passes edge(s) {', '.join(edges[:_MAX_NAMED])} (no lane for "
            "cars, and no vehicle the scenario keeps passes it); check the location, or the "
            "network's connections there"
        )


def _new_folder(out: Path, config: Path) -> Path:
    target = out.resolve()
    if target == config.parent or config.parent in target.parents:
        raise ScenarioError(
            f"--out {out}: the calibrated scenario goes to a new folder, not into the "
            f"scenario's own ({config.parent}); name another folder"
        )
    if target.exists() and not target.is_dir():
        raise ScenarioError(f"--out {out}: a file; name a new folder")
    if target.exists() and any(target.iterdir()):
        raise ScenarioError(f"--out {out}: already exists and is not empty; name a new folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _check_vehicle_type(vehicle_type: str, scenario: Scenario, config: Path) -> None:
    import sumolib

    for path in scenario.additional_files:
        for element in sumolib.xml.parse(str(path), ["vType", "vTypeDistribution"]):
            if element.id == vehicle_type:
                return
    raise ScenarioError(
        f"--vehicle-type {vehicle_type}: no vType or vTypeDistribution of that id in the "
        f"additional files of {config.name} (the route files are replaced); define it in an "
        "additional file or leave the option out"
    )


def _sample(
    targets: Targets,
    candidates: Path,
    folder: Path,
    route_file: Path,
    seed: int,
    source: Path,
    vehicle_type: str | None = None,
) -> int:
    """Run routeSampler on the candidates; the number of vehicles it wrote."""
    inputs: list[str | Path] = []
    if targets.edges:
        inputs += ["--edgedata-files", _write_edge_data(targets, folder / "edges.dat.xml")]
    if targets.turns:
        inputs += ["--turn-files", _write_turn_data(targets, folder / "turns.dat.xml")]
    if not inputs:
        raise ScenarioError(
            f"{source}: no count can be matched (see the reasons reported); give counts "
            "that cover every lane of an edge, or edge counts"
        )
    kind = f'type="{vehicle_type}" ' if vehicle_type else ""
    run_tool(
        [
            tool("routeSampler.py"),
            "--route-files", candidates,
            *inputs,
            "--edgedata-attribute", "count",
            "--turn-attribute", "count",
            "--output-file", route_file,
            "--seed", str(seed),
            "--prefix", "cal",
            "--attributes", f"{kind}{VEHICLE_ATTRIBUTES}",
            *SAMPLER_OPTIONS,
        ],
        f"routeSampler.py on {source}",
    )  # fmt: skip
    vehicles = sum(1 for _, e in ET.iterparse(route_file) if e.tag == "vehicle")
    if not vehicles:
        raise ScenarioError(
            f"{source}: every count is 0, so the calibrated demand is empty; give the "
            "counts of the vehicles that passed"
        )
    return vehicles


def _fit_lp(
    counts: Sequence[Count],
    loops: Sequence[Detector],
    candidates: Path,
    scenario: Scenario,
    source: Path,
) -> RouteFit:
    """The toolkit's linear programme over the candidates for every count."""
    if not any(c.count > 0 for c in counts):
        raise ScenarioError(
            f"{source}: every count is 0, so the calibrated demand is empty; give the "
            "counts of the vehicles that passed"
        )
    return start_fit(counts, loops, candidates, scenario.net_file)


def _attributes(vehicle_type: str | None) -> dict[str, str]:
    """Attributes of every calibrated vehicle."""
    attributes = dict(item.split("=", 1) for item in VEHICLE_ATTRIBUTES.replace('"', "").split())
    if vehicle_type:
        attributes["type"] = vehicle_type
    return attributes


def _write_scenario(config: Path, scenario: Scenario, folder: Path, route_file: Path) -> Path:
    """The scenario's configuration in ``folder``, with copies of its network and
    additional files and ``route_file`` as its only demand; other inputs by absolute path."""
    tree = ET.parse(config)
    root = tree.getroot()
    copies: dict[str, Path] = {}
    for path in (scenario.net_file, *scenario.additional_files):
        if path.name in copies and copies[path.name] != path:
            raise ScenarioError(
                f"{config}: two input files are named {path.name}; rename one so the "
                "calibrated scenario can hold both"
            )
        copies[path.name] = path
        shutil.copy2(path, folder / path.name)
    inputs = root.find("input")
    if inputs is None:
        inputs = ET.SubElement(root, "input")
    for element in list(inputs):
        name = element.tag
        if name in ("net-file", "additional-files", "route-files"):
            inputs.remove(element)
        elif element.get("value"):
            values = [str(_absolute(config, v)) for v in element.get("value", "").split(",")]
            element.set("value", ",".join(values))
    ET.SubElement(inputs, "net-file", value=scenario.net_file.name)
    ET.SubElement(inputs, "route-files", value=route_file.name)
    if scenario.additional_files:
        names = ",".join(p.name for p in scenario.additional_files)
        ET.SubElement(inputs, "additional-files", value=names)
    target = folder / config.name
    ET.indent(root, space="    ")
    tree.write(target, encoding="UTF-8", xml_declaration=True)
    return target


def _absolute(config: Path, value: str) -> Path:
    path = Path(value.strip())
    return path if path.is_absolute() else (config.parent / path).resolve()


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
        title=f"Calibration: {share:.1%} of {len(fits)} counts with GEH < 5",
    )
    axes.set_aspect("equal")
    axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    return path


def plot_intervals(fits: Sequence[Fit], path: Path) -> Path:
    """Observed and simulated vehicles summed over the locations, per interval, with the
    share of counts under GEH 5 in each."""
    from matplotlib.figure import Figure

    intervals = sorted({(f.begin, f.end) for f in fits})
    observed = [sum(f.observed for f in fits if (f.begin, f.end) == i) for i in intervals]
    simulated = [sum(f.simulated for f in fits if (f.begin, f.end) == i) for i in intervals]
    share = [
        sum(f.geh < GEH_OK for f in fits if (f.begin, f.end) == i)
        / sum(1 for f in fits if (f.begin, f.end) == i)
        for i in intervals
    ]
    figure = Figure(figsize=(7.0, 4.0), dpi=120)
    axes = figure.add_subplot()
    xs = list(range(len(intervals)))
    width = 0.4
    axes.bar([x - width / 2 for x in xs], observed, width, label="observed", color="0.55")
    axes.bar([x + width / 2 for x in xs], simulated, width, label="simulated", color="tab:blue")
    for x, value in zip(xs, share, strict=True):
        top = max(observed[x], simulated[x])
        axes.annotate(f"{value:.0%}", (x, top), ha="center", va="bottom", fontsize="small")
    axes.set_xticks(xs, [f"{b:g}–{e:g}" for b, e in intervals], rotation=30, fontsize="small")
    axes.set(
        xlabel="interval (s, scenario clock)",
        ylabel="vehicles counted (all locations)",
        title="Counts per interval (labels: share with GEH < 5)",
    )
    axes.legend(loc="lower right", fontsize="small")
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
    origin: str,
) -> None:
    areas = sorted({c.location for c in counts if c.location in detectors} - set(_loops(detectors)))
    if areas:
        raise ScenarioError(
            f"{source}: '{areas[0]}' is a lane-area detector (E2); counts come from induction "
            "loops or edges, so use the loop on the same lane"
        )
    unknown = sorted({c.location for c in counts} - set(detectors) - edges)
    if unknown:
        named = ", ".join(f"'{u}'" for u in unknown[:_MAX_NAMED])
        more = f" and {len(unknown) - _MAX_NAMED} more" if len(unknown) > _MAX_NAMED else ""
        hint = (
            f"detectors are listed in {SENSORS_FILE}, written by 'twin-traffic scenario sensors'"
            if origin in (SENSORS_FILE, "the standard sensor layout")
            else "or give the detector file with --detectors"
        )
        raise ScenarioError(
            f"{source}: unknown location(s) {named}{more}: neither a detector of {origin} nor "
            f"an edge of {scenario.net_file.name}; fix the ids ({hint})"
        )


def _loops(detectors: dict[str, Detector]) -> dict[str, Detector]:
    return {i: d for i, d in detectors.items() if d.kind == "e1"}


@dataclass
class Targets:
    """What routeSampler matches, per interval: edge counts and turn counts, and the
    counted locations behind each edge."""

    edges: dict[tuple[float, float], dict[str, float]]
    turns: dict[tuple[float, float], dict[tuple[str, str], float]]
    locations: dict[str, set[str]] = dataclasses.field(default_factory=dict)

    def edges_needed(self) -> set[str]:
        """Edges that some route must pass for the counts to be matched."""
        needed = {e for table in self.edges.values() for e, n in table.items() if n > 0}
        for table in self.turns.values():
            needed.update(e for pair, n in table.items() if n > 0 for e in pair)
        return needed

    def without(self, locations: Sequence[str]) -> Targets:
        """These targets less the edges behind ``locations``."""
        drop = {e for e, names in self.locations.items() if names & set(locations)}
        edges = {k: {e: n for e, n in t.items() if e not in drop} for k, t in self.edges.items()}
        turns = {
            k: {pair: n for pair, n in t.items() if not set(pair) & drop}
            for k, t in self.turns.items()
        }
        return Targets(
            {k: t for k, t in edges.items() if t},
            {k: t for k, t in turns.items() if t},
            {e: names for e, names in self.locations.items() if e not in drop},
        )

    def __bool__(self) -> bool:
        return bool(self.edges or self.turns)


def _targets(
    counts: Sequence[Count], detectors: dict[str, Detector], net_file: Path, source: Path
) -> tuple[Targets, list[tuple[str, str]]]:
    """Turn the counts into edge and turn counts per interval, and list those that cannot.

    The loops of an edge at one position (a cross-section) add up to the edge's count when
    they cover every lane cars may use and are all counted in the interval; several such
    cross-sections of one edge give their mean. A mid-block loop counts what passes it; a
    cross-section at the stop line also tells the turns (a loop on a left-turn lane counts
    left-turners), so its lane counts are split into turn counts (see :func:`_turn_split`).
    Stop-line loops on some lanes only tell the turns their lanes serve (with a movement
    taken to spread evenly over its lanes); elsewhere, loops on some lanes only, or with a
    gap in the interval, cannot tell the edge's count: they are returned with the reason,
    and stay in the fit.
    """
    import sumolib

    net = sumolib.net.readNet(str(net_file), withInternal=False)
    loops = _loops(detectors)
    sections = _cross_sections(loops, net)
    edges: dict[tuple[float, float], dict[str, float]] = defaultdict(dict)
    locations: dict[str, set[str]] = defaultdict(set)
    by_loop: dict[tuple[float, float, str], dict[str, float]] = defaultdict(dict)
    for item in counts:
        if item.location in loops:
            edge = loops[item.location].edge
            if edge in edges[(item.begin, item.end)]:
                raise _twice(source, edge, item)
            by_loop[(item.begin, item.end, edge)][item.location] = item.count
        else:
            key = (item.begin, item.end, item.location)
            if key in by_loop or item.location in edges[(item.begin, item.end)]:
                raise _twice(source, item.location, item)
            edges[(item.begin, item.end)][item.location] = item.count
            locations[item.location].add(item.location)
    turns: dict[tuple[float, float], dict[tuple[str, str], float]] = defaultdict(dict)
    unused: list[tuple[str, str]] = []
    lanes = {lane for section in itertools.chain(*sections.values()) for lane in section.car_lanes}
    movements = _lane_movements(net, lanes)
    for (begin, end, edge), counted in sorted(by_loop.items()):
        total, split, used = _edge_target(
            sections[edge], counted, {i: loops[i].lane for i in counted}, movements
        )
        for loop in sorted(set(counted) - used):
            unused.append((loop, _why_unused(loop, sections[edge], counted, begin, end)))
        locations[edge].update(used)
        if total is not None:
            edges[(begin, end)][edge] = total
        for pair, flow in (split or {}).items():
            turns[(begin, end)][pair] = flow
            locations[pair[1]].update(used)
    return (
        Targets({k: v for k, v in edges.items() if v}, dict(turns), dict(locations)),
        unused,
    )


def _edge_target(
    sections: Sequence[_Section],
    counted: dict[str, float],
    lane_of: dict[str, str],
    movements: dict[str, dict[str, bool]],
) -> tuple[float | None, dict[tuple[str, str], float] | None, set[str]]:
    """What one edge's loops tell in one interval: its total, or the turns off it at its
    stop line (``(edge, to)`` pairs), and the loops that tell it."""
    complete = [s for s in sections if s.covers_edge and set(s.loops) <= set(counted)]
    # Stop-line loops tell the turns, also on some lanes only: those their lanes serve.
    if complete:
        candidates = complete if len(complete) == 1 else []
    else:
        candidates = [s for s in sections if s.car_lanes and set(s.loops) <= set(counted)]
    for section in candidates:
        if section.at_stop_line:
            by_lane = {lane_of[loop]: counted[loop] for loop in section.loops}
            split = _turn_split(by_lane, movements, section.car_lanes)
            if split:
                return None, {(section.edge, to): n for to, n in split.items()}, set(section.loops)
    if not complete:
        return None, None, set()
    # Mid-block, or a lane model that cannot tell the movements: the edge's total.
    totals = [sum(counted[loop] for loop in section.loops) for section in complete]
    used = {loop for section in complete for loop in section.loops}
    return round(sum(totals) / len(totals)), None, used


@dataclass(frozen=True)
class _Section:
    """The loops of one edge at one position."""

    edge: str
    loops: tuple[str, ...]
    covers_edge: bool
    at_stop_line: bool
    lanes: tuple[str, ...]
    car_lanes: tuple[str, ...]


def _cross_sections(loops: dict[str, Detector], net: Any) -> dict[str, list[_Section]]:
    """Per edge, its loops grouped by position along the edge."""
    by_edge: dict[str, list[tuple[float, Detector]]] = defaultdict(list)
    for loop in loops.values():
        lane = net.getLane(loop.lane)
        length = float(lane.getLength())
        pos = loop.pos if loop.pos >= 0 else length + loop.pos  # negative: from the end
        by_edge[loop.edge].append((pos, loop))
    sections: dict[str, list[_Section]] = defaultdict(list)
    for edge, placed in by_edge.items():
        car_lanes = _through_lanes(net.getEdge(edge))
        groups: list[list[tuple[float, Detector]]] = []
        for pos, loop in sorted(placed, key=lambda item: item[0]):
            if groups and pos - groups[-1][-1][0] < CROSS_SECTION:
                groups[-1].append((pos, loop))
            else:
                groups.append([(pos, loop)])
        for group in groups:
            lanes = tuple(sorted({loop.lane for _, loop in group}))
            ends = [float(net.getLane(loop.lane).getLength()) - pos for pos, loop in group]
            sections[edge].append(
                _Section(
                    edge=edge,
                    loops=tuple(loop.id for _, loop in group),
                    covers_edge=bool(car_lanes) and set(car_lanes) <= set(lanes),
                    at_stop_line=max(ends) <= STOP_LINE_RANGE,
                    lanes=lanes,
                    car_lanes=car_lanes,
                )
            )
    return sections


def _through_lanes(edge: Any) -> tuple[str, ...]:
    """The lanes of ``edge`` that carry cars through it: those that allow cars, less dead
    lanes (no onward connection for cars where other lanes of the edge have one)."""
    return tuple(
        lane.getID() for lane in edge.getLanes() if lane.allows(_VCLASS) and not _dead(lane)
    )


def _dead(lane: Any) -> bool:
    """True for a lane from which no car can leave its edge while another lane can."""
    return not _leads_on(lane) and any(_leads_on(other) for other in lane.getEdge().getLanes())


def _leads_on(lane: Any) -> bool:
    """True when a car can drive on from ``lane`` (a turnaround at the network's edge
    does not count)."""
    return any(
        c.getToLane().allows(_VCLASS) and c.getDirection() != "t" for c in lane.getOutgoing()
    )


def _car_connections(lane: Any) -> list[Any]:
    """The connections of ``lane`` a car may take and drive on from."""
    return [
        c for c in lane.getOutgoing() if c.getToLane().allows(_VCLASS) and not _dead(c.getToLane())
    ]


def _why_unused(
    loop: str, sections: Sequence[_Section], counted: dict[str, float], begin: float, end: float
) -> str:
    section = next(s for s in sections if loop in s.loops)
    if not section.car_lanes:
        return _NO_CAR_LANE
    if not section.covers_edge:
        return (
            f"loops cover lane(s) {', '.join(section.lanes)} of {len(section.car_lanes)}, "
            "so the edge's count is unknown"
        )
    gaps = sorted(set(section.loops) - set(counted))
    return f"{', '.join(gaps)} not counted in [{begin:g}, {end:g}), so the edge's count is unknown"


def _twice(source: Path, edge: str, item: Count) -> ScenarioError:
    return ScenarioError(
        f"{source}: edge '{edge}' is counted twice in [{item.begin:g}, {item.end:g}), by its "
        "own id and by its loops; keep one of them"
    )


def _lane_movements(net: Any, lanes: set[str]) -> dict[str, dict[str, bool]]:
    """For each lane, the edges it leads to, each with whether the movement goes straight."""
    movements: dict[str, dict[str, bool]] = {}
    for lane_id in lanes:
        targets: dict[str, bool] = {}
        for connection in _car_connections(net.getLane(lane_id)):
            target = connection.getToLane().getEdge().getID()
            straight = connection.getDirection() == "s"
            targets[target] = targets.get(target, False) or straight
        movements[lane_id] = targets
    return movements


def _turn_split(
    by_lane: dict[str, float], movements: dict[str, dict[str, bool]], edge_lanes: Sequence[str]
) -> dict[str, float] | None:
    """Vehicles per movement (destination edge) from lane counts at an edge's stop line.

    A movement served by several lanes is taken to spread evenly over them, counted or
    not (``edge_lanes`` are all the edge's car lanes), so loops on some lanes tell the
    movements their lanes serve. When the lanes cannot tell every movement apart (a shared
    through-and-right lane beside a shared through-and-left lane), the counts are split
    with as little turning traffic as they allow: through traffic dominates the approaches
    a city counts. None when no counted lane leads anywhere.
    """
    import numpy as np
    from scipy.optimize import nnls

    lanes = sorted(by_lane)
    targets = sorted({t for lane in lanes for t in movements[lane]})
    if not targets:
        return None
    shares = np.zeros((len(lanes), len(targets)))
    for column, target in enumerate(targets):
        serving = sum(1 for lane in edge_lanes if target in movements.get(lane, {}))
        rows = [row for row, lane in enumerate(lanes) if target in movements[lane]]
        shares[rows, column] = 1.0 / serving
    observed = np.array([by_lane[lane] for lane in lanes])
    if np.linalg.matrix_rank(shares) < len(targets):
        # A small penalty on turning flows picks, among the splits that fit the lanes, the
        # one with the most through traffic (all flows alike where none goes straight).
        turning = [not any(movements[lane].get(t, False) for lane in lanes) for t in targets]
        penalty = np.diag([0.1 if turn else 0.01 for turn in turning])
        shares = np.vstack([shares, penalty])
        observed = np.concatenate([observed, np.zeros(len(targets))])
    flows, _ = nnls(shares, observed)
    # Whole vehicles that keep the movements' total.
    total = round(float(flows.sum()) if len(edge_lanes) > len(lanes) else sum(by_lane.values()))
    rounded = np.floor(flows)
    order = np.argsort(rounded - flows)
    rounded[order[: max(0, total - int(rounded.sum()))]] += 1
    return {target: float(n) for target, n in zip(targets, rounded, strict=True)}


def _candidate_routes(
    scenario: Scenario, folder: Path, seed: int, start: str, targets: Targets
) -> Path:
    """The candidate routes of a start (see :func:`calibrate`), written to ``folder``."""
    if start == "scenario":
        return _scenario_routes(scenario, folder / "candidates.rou.xml")
    import sumolib

    routes = _random_routes(scenario, folder, seed)
    net = sumolib.net.readNet(str(scenario.net_file), withInternal=False)
    _drop_turnarounds(routes, net)
    if start == "cover":
        _add_covering_routes(routes, net, targets)
    return routes


def _random_routes(scenario: Scenario, folder: Path, seed: int) -> Path:
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
            "--vclass", _VCLASS,
            "--remove-loops",
        ],
        f"randomTrips.py on {scenario.net_file}",
        cwd=folder,
    )  # fmt: skip
    return routes


def _drop_turnarounds(routes: Path, net: Any) -> None:
    """Remove the routes that turn around at a dead end (an edge into a junction whose only
    way on for cars is the edge back): randomTrips makes them where a trip starts into a
    dead end, and drives to its end and back. Such a route passes the loops of both
    directions, so a fit that spends few vehicles takes it for two counts at once: on the
    shipped town half the fitted vehicles drove into a dead end and back, against 11% of
    the routes of the demand the counts came from. A U-turn at a junction that has other
    ways on is a manoeuvre the network allows, and stays. ``net``: sumolib's network."""

    def dead_end_turn(edges: Sequence[str]) -> bool:
        for before, after in itertools.pairwise(edges):
            a, b = net.getEdge(before), net.getEdge(after)
            if a.getFromNode() is b.getToNode() and a.getToNode() is b.getFromNode():
                ways_on = [e for e in a.getToNode().getOutgoing() if e.allows(_VCLASS)]
                if all(e is b for e in ways_on):
                    return True
        return False

    tree = ET.parse(routes)
    root = tree.getroot()
    for vehicle in list(root):
        route = vehicle if vehicle.tag == "route" else vehicle.find("route")
        if route is not None and dead_end_turn(route.get("edges", "").split()):
            root.remove(vehicle)
    tree.write(routes, encoding="UTF-8", xml_declaration=True)


def _scenario_routes(scenario: Scenario, path: Path) -> Path:
    """The distinct routes of the scenario's own route files."""
    seen: dict[str, None] = {}
    for route_file in scenario.route_files:
        for _, element in ET.iterparse(route_file):
            if element.tag == "route" and element.get("edges"):
                seen.setdefault(" ".join(element.get("edges", "").split()))
            if element.tag in ("vehicle", "flow", "routes"):
                element.clear()
    routes = _car_routes(list(seen), scenario.net_file)
    if not routes:
        raise ScenarioError(
            f"{scenario.route_files[0] if scenario.route_files else scenario.config_file}: "
            "the scenario has no explicit car routes to start from; use --start cover or random"
        )
    _write_routes(routes, path)
    return path


def _car_routes(routes: Sequence[str], net_file: Path) -> list[str]:
    """The routes a car may drive: every edge open to cars, every turn connected for them
    (a scenario's routes may belong to buses or to vehicles that ignore permissions)."""
    import sumolib

    net = sumolib.net.readNet(str(net_file), withInternal=False)
    kept = []
    for route in routes:
        ids = route.split()
        if not all(net.hasEdge(e) and net.getEdge(e).allows(_VCLASS) for e in ids):
            continue
        edges = [net.getEdge(e) for e in ids]
        if all(b in a.getAllowedOutgoing(_VCLASS) for a, b in itertools.pairwise(edges)):
            kept.append(route)
    return kept


def _write_routes(routes: Sequence[str], path: Path) -> None:
    root = ET.Element("routes")
    for index, edges in enumerate(routes):
        ET.SubElement(root, "route", id=f"candidate{index}", edges=edges)
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)


def _add_covering_routes(routes: Path, net: Any, targets: Targets) -> None:
    """Add routes through every counted edge and turn that no candidate passes yet.

    Each runs from one of the nearest network entries upstream of the edge (or turn),
    through it, to one of the nearest exits downstream (:data:`COVER_ROUTES` of each, on
    car lanes). ``net``: sumolib's network.
    """
    tree = ET.parse(routes)
    root = tree.getroot()
    passed = [r.get("edges", "").split() for r in root.iter("route")]
    used = {e for edges in passed for e in edges}
    used_turns = {pair for edges in passed for pair in itertools.pairwise(edges)}
    cores = [[e] for e in sorted(targets.edges_needed() - used)]
    turns = {pair for table in targets.turns.values() for pair, n in table.items() if n > 0}
    cores += [list(pair) for pair in sorted(turns - used_turns)]
    if not cores:
        return
    added = 0
    for core in cores:
        if not all(net.hasEdge(e) and net.getEdge(e).allows(_VCLASS) for e in core):
            continue
        ups = _nearest_ends(net.getEdge(core[0]), upstream=True)
        downs = _nearest_ends(net.getEdge(core[-1]), upstream=False)
        for up in ups:
            for down in downs:
                ids = [e.getID() for e in reversed(up[1:])] + core + [e.getID() for e in down[1:]]
                if len(set(ids)) == len(ids):
                    ET.SubElement(root, "route", id=f"cover{added}", edges=" ".join(ids))
                    added += 1
    tree.write(routes, encoding="UTF-8", xml_declaration=True)


def _nearest_ends(edge: Any, upstream: bool) -> list[list[Any]]:
    """Paths (from ``edge``) to the nearest edges where car traffic enters (or leaves)
    the network, breadth first over car connections."""
    paths: list[list[Any]] = []
    frontier = [[edge]]
    seen = {edge.getID()}
    while frontier and len(paths) < COVER_ROUTES:
        next_frontier = []
        for path in frontier:
            last = path[-1]
            if upstream:
                steps = [e for e in last.getIncoming() if last in e.getAllowedOutgoing(_VCLASS)]
            else:
                steps = list(last.getAllowedOutgoing(_VCLASS))
            steps = [e for e in steps if e.allows(_VCLASS)]
            if not steps:
                paths.append(path)
                continue
            for step in sorted(steps, key=lambda e: e.getID()):
                if step.getID() not in seen:
                    seen.add(step.getID())
                    next_frontier.append([*path, step])
        frontier = next_frontier
    return paths[:COVER_ROUTES]


def _uncovered(targets: Targets, candidates: Path) -> list[str]:
    """Counted locations whose edges no candidate route passes."""
    used: set[str] = set()
    for _, element in ET.iterparse(candidates):
        if element.tag == "route":
            used.update(element.get("edges", "").split())
    blocked = targets.edges_needed() - used
    return sorted({name for edge in blocked for name in targets.locations.get(edge, {edge})})


def _unreachable(source: Path, uncovered: Sequence[str], targets: Targets) -> ScenarioError:
    blocked = sorted(e for e, names in targets.locations.items() if set(names) & set(uncovered))
    return ScenarioError(
        f"{source}: counts at {', '.join(uncovered[:_MAX_NAMED])} cannot be matched: no route "
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
    scenario: Scenario,
    counts: Sequence[Count],
    detectors: list[Detector],
    seed: int,
    extra_args: Sequence[str] = (),
) -> list[Fit]:
    """Simulate the calibrated scenario and read each count's location over its interval."""
    bounds = [round(t) for c in counts for t in (c.begin, c.end) if round(t) > 0]
    period = float(reduce(math.gcd, bounds))
    loop_ids = {d.id for d in detectors if d.kind == "e1"}
    need_edges = any(c.location not in loop_ids for c in counts)
    seen = measure(scenario, detectors, period, seed, edges=need_edges, extra_args=extra_args)
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
