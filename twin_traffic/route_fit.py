"""Fit a demand to loop counts with a linear programme over candidate routes.

Every counted location × interval is a row and every candidate route × departure interval
a column. A route's entry in a loop's row is the share of its vehicles that pass that
loop: the loop's lane among those the route can be on there (:func:`route_shares`). Just
past a junction a vehicle is on a lane its connection from the previous edge reaches;
further on it is on a lane that leads to its next edge and, across a next edge too short
to change lanes on, on along its route (:func:`onward_lanes`). An edge count (a location that is
an edge) is passed by every route through the edge. The programme minimises the
deviations weighted by 1/sqrt(count), the GEH's scale, plus a small cost per vehicle (so
routes that pass several counted locations are preferred, as with routeSampler's
``--minimize-vehicles``).

SUMO's vehicles do not keep to that lane model everywhere (a shared lane that queues
behind turners is avoided; congestion delays a vehicle into the next interval), so the
fit can be repeated with what a simulation of the fitted demand saw: each route's share
of each loop, and the interval it reached it in, measured per vehicle that reached its
destination (:func:`observed_shares`), blended with the model for routes with few
vehicles; :func:`refine` keeps the demand whose simulation fit the most counts.
"""

from __future__ import annotations

import math
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin_traffic.counts import Count
from twin_traffic.errors import TwinTrafficError
from twin_traffic.scenario import Scenario
from twin_traffic.sensors import Detector

ENTRY_RANGE = 25.0
"""A loop this close to the start of its lane (m) sees the lane a vehicle arrived on."""
SHORT_EDGE = 60.0
"""An edge shorter than this (m) is driven on the lane it was entered on."""
VEHICLE_COST = 0.01
"""Cost of one vehicle against a deviation of one vehicle at a count of 1 (0.1 at 100)."""
PRIOR_VEHICLES = 2.0
"""Weight of the lane model, in vehicles, against a route's measured shares."""
_VCLASS = "passenger"

Shares = dict[tuple[str, int], float]
"""Vehicles of one route passing a location per vehicle, by (location, intervals later)."""


@dataclass(frozen=True)
class Problem:
    """The rows of the programme: counted locations, intervals and counts."""

    intervals: tuple[tuple[float, float], ...]
    rows: tuple[tuple[str, int], ...]
    """(location, interval index) per row."""
    counts: tuple[float, ...]

    @classmethod
    def from_counts(cls, counts: Sequence[Count]) -> Problem:
        """One row per count; intervals in time order."""
        intervals = tuple(sorted({(c.begin, c.end) for c in counts}))
        index = {span: k for k, span in enumerate(intervals)}
        ordered = sorted(counts, key=lambda c: (c.begin, c.location))
        return cls(
            intervals,
            tuple((c.location, index[(c.begin, c.end)]) for c in ordered),
            tuple(float(c.count) for c in ordered),
        )


def route_shares(
    route: Sequence[str],
    loops: Sequence[Detector],
    net: Any,
    edge_counts: frozenset[str] | set[str] = frozenset(),
) -> Shares:
    """The share of a route's vehicles that pass each loop (and counted edge), in the
    interval they depart in, from the lanes the route can be on at each loop.

    At a loop within :data:`ENTRY_RANGE` of its lane's start: the lanes the connection
    from the previous edge reaches, narrowed to those the vehicle continues from when any
    is. Elsewhere: the lanes it continues from (:func:`onward_lanes`). A vehicle is taken
    to be on each of those lanes alike.
    """
    by_edge: dict[str, list[Detector]] = defaultdict(list)
    for loop in loops:
        by_edge[loop.edge].append(loop)
    edges = [net.getEdge(e) for e in route]
    shares: Shares = {}
    for i, edge_id in enumerate(route):
        if edge_id in edge_counts:
            shares[(edge_id, 0)] = 1.0
        if edge_id not in by_edge:
            continue
        onward = onward_lanes(edges, i)
        reached = _lanes_from(edges[i - 1], edges[i]) if i > 0 else onward
        for loop in by_edge[edge_id]:
            length = float(net.getLane(loop.lane).getLength())
            pos = loop.pos if loop.pos >= 0 else length + loop.pos
            lanes = onward
            if pos < min(ENTRY_RANGE, length / 2):
                lanes = (reached & onward) or reached or onward
            if loop.lane in lanes:
                shares[(loop.id, 0)] = 1.0 / len(lanes)
    return shares


def onward_lanes(edges: Sequence[Any], i: int) -> set[str]:
    """The car lanes of ``edges[i]`` a vehicle of this route drives on towards the next
    edge: those connected to it and, across next edges shorter than :data:`SHORT_EDGE`
    (too short to change lanes on), to the lanes that lead on along the route. The whole
    edge's car lanes on the route's last edge."""
    if i + 1 >= len(edges):
        return _car_lanes(edges[i])
    needed = onward_lanes(edges, i + 1) if edges[i + 1].getLength() < SHORT_EDGE else None
    connections = edges[i].getOutgoing().get(edges[i + 1], [])
    lanes = {
        c.getFromLane().getID()
        for c in connections
        if c.getFromLane().allows(_VCLASS) and (needed is None or c.getToLane().getID() in needed)
    }
    if not lanes:  # the next edge's lanes are not all reachable: any lane to it
        lanes = {c.getFromLane().getID() for c in connections if c.getFromLane().allows(_VCLASS)}
    return lanes or _car_lanes(edges[i])


def _car_lanes(edge: Any) -> set[str]:
    return {lane.getID() for lane in edge.getLanes() if lane.allows(_VCLASS)}


def _lanes_from(before: Any, edge: Any) -> set[str]:
    """The car lanes of ``edge`` the connections from ``before`` reach."""
    return {
        c.getToLane().getID()
        for c in before.getOutgoing().get(edge, [])
        if c.getToLane().allows(_VCLASS) and c.getFromLane().allows(_VCLASS)
    }


def blend(model: Shares, measured: Shares | None, vehicles: int) -> Shares:
    """A route's shares: the measured ones of its ``vehicles`` simulated vehicles, with
    the lane model counted as :data:`PRIOR_VEHICLES` more."""
    if not measured or vehicles == 0:
        return model
    total = vehicles + PRIOR_VEHICLES
    keys = set(model) | set(measured)
    return {
        key: (measured.get(key, 0.0) * vehicles + model.get(key, 0.0) * PRIOR_VEHICLES) / total
        for key in keys
    }


def solve(
    problem: Problem, shares: Sequence[Shares], vehicle_cost: float = VEHICLE_COST
) -> list[list[float]]:
    """Vehicles per route (outer) and departure interval (inner) that best fit the counts.

    Minimises sum |deviation| / sqrt(max(count, 1)) over the rows plus ``vehicle_cost``
    per vehicle, with SciPy's HiGHS. A route's vehicles reach a location in the interval
    they depart in or, per its shares, later ones.
    """
    import numpy as np
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix, hstack, identity

    n_k = len(problem.intervals)
    row_of = {row: r for r, row in enumerate(problem.rows)}
    data: list[float] = []
    rows: list[int] = []
    cols: list[int] = []
    for route, table in enumerate(shares):
        for (location, later), share in table.items():
            for k in range(n_k):
                r = row_of.get((location, k + later))
                if r is not None and share > 0:
                    rows.append(r)
                    cols.append(route * n_k + k)
                    data.append(share)
    n_rows, n_x = len(problem.rows), len(shares) * n_k
    passes = coo_matrix((data, (rows, cols)), shape=(n_rows, n_x)).tocsr()
    eye = identity(n_rows, format="csr")
    # counts = passes x + under - over, with under, over >= 0 the deviations.
    equality = hstack([passes, eye, -eye], format="csr")
    weights = 1.0 / np.sqrt(np.maximum(np.array(problem.counts), 1.0))
    cost = np.concatenate([np.full(n_x, vehicle_cost), weights, weights])
    result = linprog(
        cost, A_eq=equality, b_eq=np.array(problem.counts), bounds=(0, None), method="highs"
    )
    if result.status != 0:
        raise TwinTrafficError(f"route fit: HiGHS found no solution ({result.message})")
    flows = result.x[:n_x].reshape(len(shares), n_k)
    return [[float(v) for v in row] for row in flows]


def whole_vehicles(flows: Sequence[Sequence[float]]) -> list[list[int]]:
    """Round the flows of each interval to whole vehicles keeping the interval's total
    (largest remainders first)."""
    n_k = len(flows[0]) if flows else 0
    rounded = [[math.floor(v + 1e-9) for v in row] for row in flows]
    for k in range(n_k):
        total = round(sum(row[k] for row in flows))
        short = total - sum(row[k] for row in rounded)
        order = sorted(range(len(flows)), key=lambda r: -(flows[r][k] - rounded[r][k]))
        for r in order[: max(0, short)]:
            rounded[r][k] += 1
    return rounded


def write_demand(
    routes: Sequence[Sequence[str]],
    vehicles: Sequence[Sequence[int]],
    intervals: Sequence[tuple[float, float]],
    path: Path,
    seed: int,
    attributes: Mapping[str, str],
) -> dict[str, int]:
    """Write the vehicles as a SUMO route file; their ids, with the route of each.

    Departures are spread evenly over each interval, the routes in random order
    (``seed``): bunched departures would jam the entries the counts say flow.
    """
    import random

    rng = random.Random(seed)
    root = ET.Element("routes")
    used = sorted({r for r, row in enumerate(vehicles) if any(row)})
    for r in used:
        ET.SubElement(root, "route", id=f"route{r}", edges=" ".join(routes[r]))
    route_of: dict[str, int] = {}
    for k, (begin, end) in enumerate(intervals):
        order = [r for r in used for _ in range(vehicles[r][k])]
        rng.shuffle(order)
        gap = (end - begin) / len(order) if order else 0.0
        for j, r in enumerate(order):
            name = f"cal{len(route_of)}"
            depart = begin + (j + rng.random()) * gap
            ET.SubElement(
                root,
                "vehicle",
                {"id": name, "depart": f"{depart:.2f}", "route": f"route{r}"} | dict(attributes),
            )
            route_of[name] = r
    ET.indent(root, space="    ")
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)
    return route_of


def observed_shares(
    passes: Sequence[tuple[str, str, float]],
    route_of: Mapping[str, int],
    departs: Mapping[str, float],
    intervals: Sequence[tuple[float, float]],
    arrived: set[str] | None = None,
) -> tuple[dict[int, Shares], dict[int, int]]:
    """Per route, the measured share of its vehicles at each loop by intervals after
    departure, and its number of vehicles, from per-vehicle loop passes
    ``(loop, vehicle, time)``.

    Only the ``arrived`` vehicles count (when given): one still held in a queue at the
    end tells where the demand jammed, not where the route's vehicles drive; counted, it
    would have the programme send more vehicles into the queue.
    """
    if arrived is not None:
        route_of = {name: r for name, r in route_of.items() if name in arrived}
    vehicles: dict[int, int] = defaultdict(int)
    for name in route_of:
        vehicles[route_of[name]] += 1
    hits: dict[int, dict[tuple[str, int], float]] = defaultdict(lambda: defaultdict(float))
    for loop, name, time in passes:
        if name not in route_of:
            continue
        later = _interval(time, intervals) - _interval(departs[name], intervals)
        if later >= 0:
            hits[route_of[name]][(loop, later)] += 1.0
    shares = {
        route: {key: n / vehicles[route] for key, n in table.items()}
        for route, table in hits.items()
    }
    return shares, dict(vehicles)


def _interval(time: float, intervals: Sequence[tuple[float, float]]) -> int:
    for k, (begin, end) in enumerate(intervals):
        if begin <= time < end:
            return k
    return len(intervals) if time >= intervals[-1][1] else -1


@dataclass
class RouteFit:
    """A fit in progress: the candidate routes, their lane-model shares, the rows, and
    the last demand written (vehicle ids with their route and departure)."""

    routes: list[list[str]]
    model: list[Shares]
    problem: Problem
    route_of: dict[str, int]
    departs: dict[str, float]

    @property
    def vehicles(self) -> int:
        """Vehicles in the last demand written."""
        return len(self.route_of)


def start_fit(
    counts: Sequence[Count], loops: Sequence[Detector], candidates: Path, net_file: Path
) -> RouteFit:
    """The programme for ``counts`` (at ``loops`` or edges) over the candidate routes."""
    import sumolib

    net = sumolib.net.readNet(str(net_file), withInternal=False)
    routes = [
        element.get("edges", "").split()
        for _, element in ET.iterparse(candidates)
        if element.tag == "route"
    ]
    loop_ids = {loop.id for loop in loops}
    edge_counts = {c.location for c in counts if c.location not in loop_ids}
    model = [route_shares(route, loops, net, edge_counts) for route in routes]
    return RouteFit(routes, model, Problem.from_counts(counts), {}, {})


def fit_and_write(
    fit: RouteFit,
    path: Path,
    seed: int,
    attributes: Mapping[str, str],
    measured: tuple[dict[int, Shares], dict[int, int]] | None = None,
) -> int:
    """Solve the programme (with ``measured`` shares when given) and write the demand to
    ``path``; the number of vehicles."""
    shares = fit.model
    if measured is not None:
        seen, vehicles = measured
        shares = [
            blend(model, seen.get(r, {}), vehicles.get(r, 0)) for r, model in enumerate(fit.model)
        ]
    flows = whole_vehicles(solve(fit.problem, shares))
    fit.route_of = write_demand(fit.routes, flows, fit.problem.intervals, path, seed, attributes)
    fit.departs = {
        element.get("id", ""): float(element.get("depart", "0"))
        for _, element in ET.iterparse(path)
        if element.tag == "vehicle"
    }
    return fit.vehicles


def simulate_passes(
    scenario: Scenario, loops: Sequence[Detector], seed: int, extra_args: Sequence[str] = ()
) -> tuple[list[tuple[str, str, float]], set[str]]:
    """Run the scenario once: each vehicle passing a loop (loop, vehicle, time), and the
    vehicles that reached their destination."""
    from twin_traffic.redirect import scenario_args
    from twin_traffic.sumo_tools import binary, run_tool

    with tempfile.TemporaryDirectory(prefix="twin-traffic-route-fit-") as scratch:
        folder = Path(scratch)
        output = folder / "passes.xml"
        root = ET.Element("additional")
        for loop in loops:
            ET.SubElement(
                root,
                "instantInductionLoop",
                id=loop.id,
                lane=loop.lane,
                pos=f"{loop.pos:g}",
                file=str(output),
            )
        extra = folder / "passes.add.xml"
        ET.ElementTree(root).write(extra, encoding="UTF-8", xml_declaration=True)
        trips = folder / "tripinfos.xml"
        options = [
            "--seed", str(seed),
            "--no-step-log", "--no-warnings", "--duration-log.disable",
            "--tripinfo-output", str(trips),
            *extra_args,
        ]  # fmt: skip
        run_tool(
            [
                binary("sumo"),
                *scenario_args(scenario, [extra], folder, options, {d.id for d in loops}),
                *options,
            ],
            f"SUMO run of the fitted demand of {scenario.config_file or scenario.net_file}",
        )
        passes = []
        for _, element in ET.iterparse(output):
            if element.tag == "instantOut" and element.get("state") == "enter":
                passes.append(
                    (element.get("id", ""), element.get("vehID", ""), float(element.get("time", 0)))
                )
            element.clear()
        arrived = {
            element.get("id", "") for _, element in ET.iterparse(trips) if element.tag == "tripinfo"
        }
    return passes, arrived


def pass_counts(
    passes: Sequence[tuple[str, str, float]], intervals: Sequence[tuple[float, float]]
) -> dict[tuple[str, int], float]:
    """Vehicles per (loop, interval index) in a list of passes."""
    counted: dict[tuple[str, int], float] = defaultdict(float)
    for loop, _, time in passes:
        k = _interval(time, intervals)
        if 0 <= k < len(intervals):
            counted[(loop, k)] += 1.0
    return counted


def refine(
    fit: RouteFit,
    scenario: Scenario,
    loops: Sequence[Detector],
    path: Path,
    seed: int,
    attributes: Mapping[str, str],
    rounds: int,
    extra_args: Sequence[str] = (),
    on_round: Callable[[int, float], None] | None = None,
) -> int:
    """Fit again ``rounds`` times with the shares a simulation of the last demand
    measured, and keep the demand whose simulation fit the most counts (GEH < 5); its
    vehicles. ``on_round`` hears each simulated round and its share of counts that fit.

    ``scenario`` runs the demand in ``path``. Each round uses the last simulation's shares
    only: lane use and delays depend on the demand, so older rounds describe another
    traffic (pooling them fitted as well on Pasubio, within a simulation's noise).
    """
    from twin_traffic.counts import GEH_OK, geh

    best: tuple[float, bytes] | None = None
    for round_ in range(rounds + 1):
        passes, arrived = simulate_passes(scenario, loops, seed, extra_args)
        counted = pass_counts(passes, fit.problem.intervals)
        fitting = 0
        for (location, k), count in zip(fit.problem.rows, fit.problem.counts, strict=True):
            scale = 3600.0 / (fit.problem.intervals[k][1] - fit.problem.intervals[k][0])
            fitting += geh(counted.get((location, k), 0.0) * scale, count * scale) < GEH_OK
        share = fitting / len(fit.problem.rows)
        if on_round is not None:
            on_round(round_, share)
        if best is None or share > best[0]:
            best = (share, path.read_bytes())
        if round_ == rounds:
            break
        measured = observed_shares(
            passes, fit.route_of, fit.departs, fit.problem.intervals, arrived
        )
        fit_and_write(fit, path, seed, attributes, measured)
    assert best is not None
    path.write_bytes(best[1])
    return sum(1 for _, e in ET.iterparse(path) if e.tag == "vehicle")
