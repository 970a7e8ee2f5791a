#!/usr/bin/env python3
"""Rebuild the built-in SUMO scenarios of twin-traffic.

Every scenario is generated from SUMO's own tools so that it can be audited
and regenerated bit-for-bit:

* networks come from ``netconvert`` (plain XML nodes/edges/connections and,
  where the phase structure matters, a hand-written ``tlLogic`` file) or from
  ``netgenerate --grid``;
* demand is a set of ``<flow>`` elements on pre-computed ``<route>`` edge lists
  (SUMO does no routing at run time) with Poisson arrivals
  (``period="exp(rate)"``), so the traffic depends on ``sumo --seed``;
* the one-hour demand follows a peaked time profile (:data:`PROFILE`).

Usage::

    python networks/build.py                    # rebuild all built-in scenarios
    python networks/build.py single mixed       # rebuild some
    python networks/build.py grid --rows 4 --cols 4 --out DIR   # any N x M grid

Each scenario ``<base>`` produces ``<base>.net.xml``, ``<base>.rou.xml``,
``<base>-high.rou.xml``, ``<base>.sumocfg`` and ``<base>-high.sumocfg``.
The output is byte-identical between runs: no randomness is used at build
time and the volatile "generated on" header of SUMO outputs is stripped.
"""

from __future__ import annotations

import argparse
import itertools
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import sumolib

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------
# Parameters: everything that shapes a scenario lives here.
# ---------------------------------------------------------------------------

#: Demand multipliers for consecutive 5-minute intervals of the simulated hour:
#: rises from 60 % to a 120 % peak at 30-40 min, then decays (mean 0.92).
PROFILE: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9, 1.05, 1.15, 1.2, 1.15, 1.05, 0.95, 0.8, 0.7)
INTERVAL_S = 300
HORIZON_S = INTERVAL_S * len(PROFILE)  # 3600 s

#: Urban speed limit (50 km/h) used on every edge.
SPEED = 13.89


@dataclass(frozen=True)
class SingleRecipe:
    """One 4-arm intersection with dedicated left lanes and protected lefts."""

    arm_length: float = 300.0
    lanes_in: int = 3  # right+through, through, left
    lanes_out: int = 2
    ns_rate: float = 850.0  # veh/h per approach, north and south arms
    ew_rate: float = 620.0  # veh/h per approach, east and west arms
    left_share: float = 0.15
    right_share: float = 0.15
    high_factor: float = 1.5


@dataclass(frozen=True)
class ArterialRecipe:
    """A 5-signal corridor: heavy 2-lane main street, light 1-lane side streets."""

    spacings: tuple[float, ...] = (300.0, 350.0, 250.0, 400.0)
    end_length: float = 300.0  # main street beyond the first/last signal
    side_length: float = 200.0
    main_lanes: int = 2
    side_lanes: int = 1
    main_through_rate: float = 600.0  # veh/h end-to-end, each direction
    main_turn_rate: float = 25.0  # veh/h from each main entry to each side exit
    side_rate: float = 110.0  # veh/h per side-street approach
    side_through_share: float = 0.4  # rest split evenly left/right
    high_factor: float = 1.5
    main_green: int = 52  # s; with 2 x 3 s yellow gives an 84 s cycle
    side_green: int = 26


@dataclass(frozen=True)
class GridRecipe:
    """An N x M signalised grid with fringe feeder roads (netgenerate)."""

    rows: int = 3
    cols: int = 3
    block: float = 200.0
    attach_length: float = 200.0
    lanes: int = 2
    # Nominal veh/h entering per fringe road, by direction of travel.
    rate_we: float = 700.0
    rate_ew: float = 350.0
    rate_ns: float = 600.0
    rate_sn: float = 330.0
    turn_share: float = 0.3  # spread over all single-turn (L-shaped) routes
    high_factor: float = 1.5
    cycle: int = 90

    @property
    def base(self) -> str:
        return f"grid{self.rows}x{self.cols}"


@dataclass(frozen=True)
class MixedRecipe:
    """Heterogeneous corridor: 2-phase 4-arm, 4-phase T, 3-phase 4-arm signals."""

    spacing: float = 300.0
    end_length: float = 300.0
    side_length: float = 250.0
    main_through_rate: float = 540.0  # veh/h end-to-end, each direction
    side_rate: float = 140.0  # veh/h per side approach (T arm and J1 arms)
    j3_side_rate: float = 220.0  # veh/h per side approach at J3
    side_left_share: float = 0.2
    side_right_share: float = 0.2
    # veh/h from each main-street end into each side street of J1 / J2 / J3.
    j1_turn_rate: float = 25.0
    j2_turn_rate: float = 60.0
    j3_turn_rate: float = 55.0
    high_factor: float = 1.5


@dataclass(frozen=True)
class Scenarios:
    """The built-in scenarios; edit values here, then rerun this script."""

    single: SingleRecipe = field(default_factory=SingleRecipe)
    arterial: ArterialRecipe = field(default_factory=ArterialRecipe)
    grid3x3: GridRecipe = field(default_factory=GridRecipe)
    mixed: MixedRecipe = field(default_factory=MixedRecipe)


RECIPES = Scenarios()

# ---------------------------------------------------------------------------
# Small data model for hand-written networks.
# ---------------------------------------------------------------------------

#: Compass order of junction arms; used to classify turns (right-hand traffic).
COMPASS = ("N", "E", "S", "W")


@dataclass
class PlainNet:
    """Plain-XML network description fed to netconvert."""

    nodes: dict[str, tuple[float, float, str]] = field(default_factory=dict)
    edges: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    connections: list[tuple[str, str, int, int]] = field(default_factory=list)
    tl_links: list[tuple[str, str, int, int, str, int]] = field(default_factory=list)
    tl_logics: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def node(self, nid: str, x: float, y: float, kind: str = "priority") -> None:
        self.nodes[nid] = (x, y, kind)

    def road(self, a: str, b: str, lanes_ab: int, lanes_ba: int) -> None:
        """Add a two-way road as two one-way edges named ``a_b`` and ``b_a``."""
        self.edges[f"{a}_{b}"] = (a, b, lanes_ab)
        self.edges[f"{b}_{a}"] = (b, a, lanes_ba)


@dataclass(frozen=True)
class Approach:
    """Lane use of one approach: lane 0 is the rightmost; r/t/l = right/through/left."""

    arm: str
    lanes: tuple[str, ...]


def signalise(
    net: PlainNet,
    junction: str,
    arms: dict[str, str],
    approaches: Sequence[Approach],
    phases: Sequence[tuple[int, dict[str, str]]],
) -> None:
    """Add explicit connections and a hand-written static programme to a junction.

    ``arms`` maps compass letters to the neighbour node of each arm.  Links get
    link indices in approach order, lane order, movement order; ``phases``
    give a duration and a map from state character to a space separated list
    of movements (e.g. ``{"G": "Nt Nr St Sr"}``); unlisted links are red.
    """
    x, y, _ = net.nodes[junction]
    net.nodes[junction] = (x, y, "traffic_light")
    index: dict[str, list[int]] = {}
    for appr in approaches:
        i = COMPASS.index(appr.arm)
        targets = {
            "t": COMPASS[(i + 2) % 4],
            "l": COMPASS[(i + 1) % 4],
            "r": COMPASS[(i - 1) % 4],
        }
        from_edge = f"{arms[appr.arm]}_{junction}"
        through_lanes = [k for k, use in enumerate(appr.lanes) if "t" in use]
        for lane, use in enumerate(appr.lanes):
            for move in "rtl":  # right before through before left
                if move not in use:
                    continue
                to_edge = f"{junction}_{arms[targets[move]]}"
                n_out = net.edges[to_edge][2]
                if move == "r":
                    to_lane = 0
                elif move == "l":
                    to_lane = n_out - 1
                else:
                    to_lane = min(through_lanes.index(lane), n_out - 1)
                to_lanes = [to_lane]
                if move == "t" and lane == through_lanes[-1]:
                    # Fan the last through lane out onto any extra (turn bay) lanes.
                    to_lanes = list(range(to_lane, n_out))
                for to_lane in to_lanes:
                    link = len(net.tl_links)
                    net.connections.append((from_edge, to_edge, lane, to_lane))
                    net.tl_links.append((from_edge, to_edge, lane, to_lane, junction, link))
                    index.setdefault(appr.arm + move, []).append(link)
    first = min(i for links in index.values() for i in links)
    n_links = len(net.tl_links) - first
    program: list[tuple[int, str]] = []
    for duration, signals in phases:
        state = ["r"] * n_links
        for char, moves in signals.items():
            for move in moves.split():
                for link in index[move]:
                    state[link - first] = char
        program.append((duration, "".join(state)))
    # Link indices must start at 0 per traffic light.
    net.tl_links[first:] = [(*t[:5], t[5] - first) for t in net.tl_links[first:]]
    net.tl_logics[junction] = program


# ---------------------------------------------------------------------------
# Tool wrappers and writers.
# ---------------------------------------------------------------------------

_HEADER = re.compile(rb"<!-- generated on .*?-->\n\n?", re.DOTALL)
BANNER = "<!-- Generated by networks/build.py; do not edit by hand. -->\n"


def run(cmd: Sequence[str]) -> None:
    """Run a SUMO tool, failing loudly (warnings are shown, not hidden).

    The tool is the packaged SUMO's, so the recipe works from any Python that has
    eclipse-sumo installed, with or without its environment activated.
    """
    import sumo

    binary = Path(sumo.SUMO_HOME) / "bin" / cmd[0]
    subprocess.run([str(binary), *cmd[1:]], check=True)


def strip_header(path: Path) -> None:
    """Replace SUMO's timestamped config-dump comment by a fixed banner."""
    data = _HEADER.sub(BANNER.encode(), path.read_bytes(), count=1)
    path.write_bytes(data)


def write_plain(net: PlainNet, tmp: Path) -> list[str]:
    """Write plain XML inputs and return the matching netconvert arguments."""
    nod = ["<nodes>"]
    for nid, (x, y, kind) in net.nodes.items():
        nod.append(f'    <node id="{nid}" x="{x:.2f}" y="{y:.2f}" type="{kind}"/>')
    edg = ["<edges>"]
    for eid, (a, b, lanes) in net.edges.items():
        edg.append(
            f'    <edge id="{eid}" from="{a}" to="{b}" numLanes="{lanes}" '
            f'speed="{SPEED}" priority="1"/>'
        )
    files = {"nod": [*nod, "</nodes>"], "edg": [*edg, "</edges>"]}
    args = [f"--node-files={tmp / 'net.nod.xml'}", f"--edge-files={tmp / 'net.edg.xml'}"]
    if net.connections:
        con = ["<connections>"]
        for a, b, fl, tl in net.connections:
            con.append(f'    <connection from="{a}" to="{b}" fromLane="{fl}" toLane="{tl}"/>')
        files["con"] = [*con, "</connections>"]
        args.append(f"--connection-files={tmp / 'net.con.xml'}")
    if net.tl_logics:
        tll = ["<tlLogics>"]
        for tid, program in net.tl_logics.items():
            tll.append(f'    <tlLogic id="{tid}" type="static" programID="0" offset="0">')
            for duration, state in program:
                tll.append(f'        <phase duration="{duration}" state="{state}"/>')
            tll.append("    </tlLogic>")
        for a, b, fl, tl, tid, link in net.tl_links:
            tll.append(
                f'    <connection from="{a}" to="{b}" fromLane="{fl}" toLane="{tl}" '
                f'tl="{tid}" linkIndex="{link}"/>'
            )
        files["tll"] = [*tll, "</tlLogics>"]
        args.append(f"--tllogic-files={tmp / 'net.tll.xml'}")
    for ext, lines in files.items():
        (tmp / f"net.{ext}.xml").write_text("\n".join(lines) + "\n")
    return args


def netconvert(net: PlainNet, out: Path, extra: Iterable[str] = ()) -> None:
    """Build ``out`` from a :class:`PlainNet` with netconvert."""
    with tempfile.TemporaryDirectory() as tmp:
        args = write_plain(net, Path(tmp))
        run(
            [
                "netconvert",
                *args,
                "--no-turnarounds",  # U-turns only add conflicts nobody uses
                "--tls.default-type=static",
                *extra,
                f"--output-file={out}",
            ]
        )
    strip_header(out)


def retime(net_file: Path, main_edges: set[str], main_green: int, side_green: int) -> None:
    """Re-split netconvert's equal green times in favour of the main street.

    netconvert only offers one ``--tls.green.time`` for all phases, so a
    second pass loads the generated net together with a tlLogic file that
    keeps each programme's states but sets green durations: phases giving
    green to a main-street link get ``main_green``, other greens ``side_green``.
    """
    net = sumolib.net.readNet(str(net_file), withPrograms=True)
    tll = ["<tlLogics>"]
    for tls in net.getTrafficLights():
        main_links = {
            idx
            for in_lane, _, idx in tls.getConnections()
            if in_lane.getEdge().getID() in main_edges
        }
        for pid, program in sorted(tls.getPrograms().items()):
            tll.append(
                f'    <tlLogic id="{tls.getID()}" type="static" programID="{pid}" offset="0">'
            )
            for phase in program.getPhases():
                duration = int(phase.duration)
                if "G" in phase.state or "g" in phase.state:
                    is_main = any(phase.state[i] in "Gg" for i in main_links)
                    duration = main_green if is_main else side_green
                tll.append(f'        <phase duration="{duration}" state="{phase.state}"/>')
            tll.append("    </tlLogic>")
    tll.append("</tlLogics>")
    with tempfile.TemporaryDirectory() as tmp:
        tll_file, out = Path(tmp) / "retime.tll.xml", Path(tmp) / "net.net.xml"
        tll_file.write_text("\n".join(tll) + "\n")
        run(
            [
                "netconvert",
                f"--sumo-net-file={net_file}",
                f"--tllogic-files={tll_file}",
                f"--output-file={out}",
            ]
        )
        out.replace(net_file)
    strip_header(net_file)


@dataclass(frozen=True)
class Flow:
    """Nominal demand (veh/h at profile factor 1.0) on a node-sequence route."""

    nodes: tuple[str, ...]
    rate: float


def node_path_edges(net: sumolib.net.Net, nodes: Sequence[str]) -> list[str]:
    """Translate a node sequence into the edge IDs connecting consecutive nodes."""
    edges = []
    for a, b in itertools.pairwise(nodes):
        (edge,) = [e for e in net.getNode(a).getOutgoing() if e.getToNode().getID() == b]
        edges.append(edge.getID())
    return edges


def write_routes(net_file: Path, flows: Sequence[Flow], scale: float, out: Path) -> None:
    """Write one route file: a route per OD pair, one Poisson flow per interval."""
    net = sumolib.net.readNet(str(net_file))
    routes: list[tuple[str, list[str]]] = []
    for flow in flows:
        edges = node_path_edges(net, flow.nodes)
        routes.append((f"{flow.nodes[0]}_{flow.nodes[-1]}", edges))
    ids = [rid for rid, _ in routes]
    assert len(set(ids)) == len(ids), "route IDs must be unique"
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        BANNER.rstrip(),
        f"<!-- Poisson flows, demand scale {scale:g}, 5-min profile "
        f"{' '.join(f'{p:g}' for p in PROFILE)}; veh/h totals in README.md -->",
        "<routes>",
        '    <vType id="car" vClass="passenger"/>',
    ]
    for rid, edges in routes:
        lines.append(f"    <route id={quoteattr(rid)} edges={quoteattr(' '.join(edges))}/>")
    for k, factor in enumerate(PROFILE):
        begin, end = k * INTERVAL_S, (k + 1) * INTERVAL_S
        for (rid, _), flow in zip(routes, flows, strict=True):
            per_s = flow.rate * scale * factor / 3600.0
            if per_s <= 0:
                continue
            # exp(r): exponentially distributed headways with rate r veh/s,
            # drawn from SUMO's RNG, hence different per --seed.
            lines.append(
                f'    <flow id="{rid}.{k}" type="car" route="{rid}" begin="{begin}" '
                f'end="{end}" period="exp({per_s:.6f})" departLane="best" '
                'departPos="base" departSpeed="max"/>'
            )
    lines.append("</routes>")
    out.write_text("\n".join(lines) + "\n")


def write_config(out_dir: Path, name: str, base: str, routes: str) -> None:
    """Write a minimal sumocfg (relative paths; seed and outputs left to the caller)."""
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
{BANNER}<configuration>
    <input>
        <net-file value="{base}.net.xml"/>
        <route-files value="{routes}"/>
    </input>
    <time>
        <begin value="0"/>
        <end value="{HORIZON_S}"/>
    </time>
</configuration>
"""
    (out_dir / f"{name}.sumocfg").write_text(text)


def write_demand(out_dir: Path, base: str, flows: Sequence[Flow], high_factor: float) -> None:
    """Write base and ``-high`` route files and their two sumocfgs."""
    net_file = out_dir / f"{base}.net.xml"
    for suffix, scale in (("", 1.0), ("-high", high_factor)):
        routes = f"{base}{suffix}.rou.xml"
        write_routes(net_file, flows, scale, out_dir / routes)
        write_config(out_dir, f"{base}{suffix}", base, routes)


# ---------------------------------------------------------------------------
# Scenario recipes.
# ---------------------------------------------------------------------------


def turning_flows(
    junction: str, arms: dict[str, str], arm: str, rate: float, left: float, right: float
) -> list[Flow]:
    """Split an approach's ``rate`` into right/through/left flows across a junction."""
    i = COMPASS.index(arm)
    out = []
    for share, target in (
        (right, COMPASS[(i - 1) % 4]),
        (1.0 - left - right, COMPASS[(i + 2) % 4]),
        (left, COMPASS[(i + 1) % 4]),
    ):
        if share > 0 and target in arms:
            out.append(Flow((arms[arm], junction, arms[target]), rate * share))
    return out


def build_single(r: SingleRecipe, out_dir: Path) -> None:
    """One 4-arm junction, 3-lane approaches, 8-phase plan with protected lefts."""
    net = PlainNet()
    net.node("C", 0.0, 0.0)
    arms = {"N": "N", "E": "E", "S": "S", "W": "W"}
    offsets = {"N": (0, 1), "E": (1, 0), "S": (0, -1), "W": (-1, 0)}
    for arm, (dx, dy) in offsets.items():
        net.node(arm, dx * r.arm_length, dy * r.arm_length)
        net.road(arm, "C", r.lanes_in, r.lanes_out)
    lanes = ("rt",) + ("t",) * (r.lanes_in - 2) + ("l",)
    # Leading protected lefts, then throughs; lefts never run permissively.
    signalise(
        net,
        "C",
        arms,
        [Approach(a, lanes) for a in COMPASS],
        [
            (12, {"G": "Nl Sl"}),
            (3, {"y": "Nl Sl"}),
            (30, {"G": "Nr Nt Sr St"}),
            (4, {"y": "Nr Nt Sr St"}),
            (10, {"G": "El Wl"}),
            (3, {"y": "El Wl"}),
            (24, {"G": "Er Et Wr Wt"}),
            (4, {"y": "Er Et Wr Wt"}),
        ],
    )
    netconvert(net, out_dir / "single.net.xml")
    flows: list[Flow] = []
    for arm in COMPASS:
        rate = r.ns_rate if arm in "NS" else r.ew_rate
        flows += turning_flows("C", arms, arm, rate, r.left_share, r.right_share)
    write_demand(out_dir, "single", flows, r.high_factor)


def build_arterial(r: ArterialRecipe, out_dir: Path) -> None:
    """Five signals on a 2-lane corridor; netconvert's default 2-phase plans."""
    net = PlainNet()
    xs = [0.0]
    for gap in r.spacings:
        xs.append(xs[-1] + gap)
    signals = [f"A{i}" for i in range(len(xs))]
    net.node("W", -r.end_length, 0.0)
    net.node("E", xs[-1] + r.end_length, 0.0)
    for sig, x in zip(signals, xs, strict=True):
        net.node(sig, x, 0.0, "traffic_light")
        net.node(f"{sig}N", x, r.side_length)
        net.node(f"{sig}S", x, -r.side_length)
        net.road(f"{sig}N", sig, r.side_lanes, r.side_lanes)
        net.road(f"{sig}S", sig, r.side_lanes, r.side_lanes)
    chain = ["W", *signals, "E"]
    for a, b in itertools.pairwise(chain):
        net.road(a, b, r.main_lanes, r.main_lanes)
    net_file = out_dir / "arterial.net.xml"
    netconvert(net, net_file)
    main_edges = {f"{a}_{b}" for a, b in itertools.pairwise(chain)}
    main_edges |= {f"{b}_{a}" for a, b in itertools.pairwise(chain)}
    retime(net_file, main_edges, r.main_green, r.side_green)

    flows = [
        Flow(tuple(chain), r.main_through_rate),
        Flow(tuple(reversed(chain)), r.main_through_rate),
    ]
    for k, sig in enumerate(signals):
        east, west = chain[k + 2 :], chain[: k + 1][::-1]
        for side in ("N", "S"):
            # Main-street traffic turning off into this side street.
            flows.append(Flow((*chain[: k + 2], f"{sig}{side}"), r.main_turn_rate))
            flows.append(Flow((*chain[k + 1 :][::-1], f"{sig}{side}"), r.main_turn_rate))
            # Side-street traffic: across, or joining the main street either way.
            other = "S" if side == "N" else "N"
            turn = (1.0 - r.side_through_share) / 2
            flows.append(
                Flow((f"{sig}{side}", sig, f"{sig}{other}"), r.side_rate * r.side_through_share)
            )
            flows.append(Flow((f"{sig}{side}", sig, *east), r.side_rate * turn))
            flows.append(Flow((f"{sig}{side}", sig, *west), r.side_rate * turn))
    write_demand(out_dir, "arterial", flows, r.high_factor)


def build_grid(r: GridRecipe, out_dir: Path) -> None:
    """``rows`` x ``cols`` grid via netgenerate; straight and L-shaped routes."""
    net_file = out_dir / f"{r.base}.net.xml"
    inner = [f"{chr(ord('A') + c)}{row}" for c in range(r.cols) for row in range(r.rows)]
    if r.cols > 26:
        raise ValueError("netgenerate names grid columns A..Z; use at most 26 columns")
    run(
        [
            "netgenerate",
            "--grid",
            f"--grid.x-number={r.cols}",
            f"--grid.y-number={r.rows}",
            f"--grid.length={r.block}",
            f"--grid.attach-length={r.attach_length}",
            f"--default.lanenumber={r.lanes}",
            f"--default.speed={SPEED}",
            # Only inner nodes get signals: -j traffic_light would also try
            # (and fail, with warnings) to signalise the dead-end fringe nodes.
            f"--tls.set={','.join(inner)}",
            "--tls.default-type=static",
            f"--tls.cycle.time={r.cycle}",
            "--no-turnarounds",
            f"--output-file={net_file}",
        ]
    )
    strip_header(net_file)

    # Address nodes by grid position rather than by netgenerate's naming.
    net = sumolib.net.readNet(str(net_file))
    coords = {n.getID(): n.getCoord() for n in net.getNodes()}
    xs = sorted({round(x) for x, _ in coords.values()})
    ys = sorted({round(y) for _, y in coords.values()})
    at = {(xs.index(round(x)), ys.index(round(y))): nid for nid, (x, y) in coords.items()}
    # at[(i, j)]: i = 0 west fringe .. cols+1 east fringe; j = 0 south .. rows+1 north.

    def line(cells: list[tuple[int, int]]) -> tuple[str, ...]:
        return tuple(at[c] for c in cells)

    flows: list[Flow] = []
    streams = []  # (entry cells up to the far fringe, rate)
    for j in range(1, r.rows + 1):
        streams.append(([(i, j) for i in range(0, r.cols + 2)], r.rate_we))
        streams.append(([(i, j) for i in range(r.cols + 1, -1, -1)], r.rate_ew))
    for i in range(1, r.cols + 1):
        streams.append(([(i, j) for j in range(r.rows + 1, -1, -1)], r.rate_ns))
        streams.append(([(i, j) for j in range(0, r.rows + 2)], r.rate_sn))
    for cells, rate in streams:
        flows.append(Flow(line(cells), rate * (1.0 - r.turn_share)))
        inner_cells = cells[1:-1]
        turns = []
        for turn_at in inner_cells:
            i, j = turn_at
            horizontal = cells[0][1] == cells[1][1]
            if horizontal:
                legs = [
                    [(i, jj) for jj in range(j, r.rows + 2)],
                    [(i, jj) for jj in range(j, -1, -1)],
                ]
            else:
                legs = [
                    [(ii, j) for ii in range(i, r.cols + 2)],
                    [(ii, j) for ii in range(i, -1, -1)],
                ]
            head = cells[: cells.index(turn_at)]
            turns += [head + leg for leg in legs]
        for route in turns:
            flows.append(Flow(line(route), rate * r.turn_share / len(turns)))
    write_demand(out_dir, r.base, flows, r.high_factor)


def build_mixed(r: MixedRecipe, out_dir: Path) -> None:
    """Corridor with heterogeneous hand-written programmes.

    * J1, 4-arm, 2 green phases, yellow then 2 s all-red between greens,
      permissive lefts;
    * J2, T-junction (side arm south), 4 green phases: an eastbound leading
      green that gains the westbound movements without a yellow (no link
      loses green), a yellow for eastbound only, a lagging protected
      westbound left, a side-street phase, all-red clearances;
    * J3, 4-arm, 3 green phases: protected main-street lefts (dedicated
      lanes), main through, side streets with permissive lefts.
    """
    net = PlainNet()
    s, e = r.spacing, r.end_length
    net.node("W", -e, 0.0)
    net.node("J1", 0.0, 0.0)
    net.node("J2", s, 0.0)
    net.node("J3", 2 * s, 0.0)
    net.node("E", 2 * s + e, 0.0)
    for j, x, sides in (("J1", 0.0, "NS"), ("J2", s, "S"), ("J3", 2 * s, "NS")):
        for side in sides:
            net.node(f"{j}{side}", x, r.side_length if side == "N" else -r.side_length)
    # Main street: 2 lanes, widened to 3 where a dedicated left lane is needed.
    net.road("W", "J1", 2, 2)
    net.road("J1", "J2", 2, 2)
    net.road("J2", "J3", 3, 3)  # WB left bay into the T; EB left bay at J3
    net.road("J3", "E", 2, 3)
    net.road("J1N", "J1", 1, 1)
    net.road("J1S", "J1", 1, 1)
    net.road("J2S", "J2", 2, 1)
    net.road("J3N", "J3", 2, 1)
    net.road("J3S", "J3", 2, 1)

    arms1 = {"N": "J1N", "E": "J2", "S": "J1S", "W": "W"}
    signalise(
        net,
        "J1",
        arms1,
        [
            Approach("N", ("rtl",)),
            Approach("E", ("rt", "tl")),
            Approach("S", ("rtl",)),
            Approach("W", ("rt", "tl")),
        ],
        [
            (34, {"G": "Er Et Wr Wt", "g": "El Wl"}),
            (4, {"y": "Er Et El Wr Wt Wl"}),
            (2, {}),  # all-red clearance
            (20, {"G": "Nr Nt Sr St", "g": "Nl Sl"}),
            (4, {"y": "Nr Nt Nl Sr St Sl"}),
            (2, {}),
        ],
    )
    arms2 = {"E": "J3", "S": "J2S", "W": "J1"}
    signalise(
        net,
        "J2",
        arms2,
        [Approach("E", ("t", "t", "l")), Approach("S", ("r", "l")), Approach("W", ("rt", "t"))],
        [
            (10, {"G": "Wr Wt"}),  # eastbound leading green
            (24, {"G": "Wr Wt Et", "g": "El"}),  # westbound joins: nobody loses green
            (3, {"y": "Wr Wt", "G": "Et", "g": "El"}),
            (9, {"G": "Et El"}),  # lagging protected westbound left (g -> G)
            (4, {"y": "Et El"}),
            (2, {}),  # all-red clearance
            (18, {"G": "Sr Sl"}),
            (3, {"y": "Sr Sl"}),
            (2, {}),
        ],
    )
    arms3 = {"N": "J3N", "E": "E", "S": "J3S", "W": "J2"}
    signalise(
        net,
        "J3",
        arms3,
        [
            Approach("N", ("rt", "l")),
            Approach("E", ("rt", "t", "l")),
            Approach("S", ("rt", "l")),
            Approach("W", ("rt", "t", "l")),
        ],
        [
            (10, {"G": "El Wl"}),  # protected main-street lefts
            (3, {"y": "El Wl"}),
            (32, {"G": "Er Et Wr Wt"}),
            (4, {"y": "Er Et Wr Wt"}),
            (22, {"G": "Nr Nt Sr St", "g": "Nl Sl"}),  # side streets, permissive lefts
            (4, {"y": "Nr Nt Nl Sr St Sl"}),
        ],
    )
    netconvert(net, out_dir / "mixed.net.xml")

    main = ("W", "J1", "J2", "J3", "E")

    def to_fringe(flows: list[Flow]) -> list[Flow]:
        """Continue routes that turn onto the main street to its far end."""
        out = []
        for f in flows:
            nodes = f.nodes
            if nodes[-1] in main[1:-1]:
                tail = main if main.index(nodes[-1]) > main.index(nodes[-2]) else main[::-1]
                nodes = nodes + tail[tail.index(nodes[-1]) + 1 :]
            out.append(Flow(nodes, f.rate))
        return out

    flows = [Flow(main, r.main_through_rate), Flow(main[::-1], r.main_through_rate)]
    q, left, right = r.side_rate, r.side_left_share, r.side_right_share
    west, east = main[:2], main[::-1][:2]  # main-street entry legs
    # J1 side streets, and main-street traffic turning into them.
    for arm in "NS":
        flows += to_fringe(turning_flows("J1", arms1, arm, q, left, right))
        flows += [
            Flow((*west, f"J1{arm}"), r.j1_turn_rate),
            Flow((*main[::-1][:4], f"J1{arm}"), r.j1_turn_rate),
        ]
    # T-junction: side arm joins either way; main street turns into it.
    flows += [Flow(("J2S", "J2", "J1", "W"), q * 0.5), Flow(("J2S", "J2", "J3", "E"), q * 0.5)]
    flows += [
        Flow(("W", "J1", "J2", "J2S"), r.j2_turn_rate),
        Flow(("E", "J3", "J2", "J2S"), r.j2_turn_rate),
    ]
    # J3 side streets, and main-street traffic turning into them.
    for arm in "NS":
        flows += to_fringe(turning_flows("J3", arms3, arm, r.j3_side_rate, left, right))
        flows += [
            Flow((*main[:4], f"J3{arm}"), r.j3_turn_rate),
            Flow((*east, f"J3{arm}"), r.j3_turn_rate),
        ]
    write_demand(out_dir, "mixed", flows, r.high_factor)


# ---------------------------------------------------------------------------
# Command line.
# ---------------------------------------------------------------------------

BUILDERS = {
    "single": lambda out: build_single(RECIPES.single, out),
    "arterial": lambda out: build_arterial(RECIPES.arterial, out),
    "grid3x3": lambda out: build_grid(RECIPES.grid3x3, out),
    "mixed": lambda out: build_mixed(RECIPES.mixed, out),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"scenarios to build: {', '.join(BUILDERS)} or 'grid' (default: all)",
    )
    parser.add_argument("--rows", type=int, help="grid rows (with NAME 'grid')")
    parser.add_argument("--cols", type=int, help="grid columns (with NAME 'grid')")
    parser.add_argument("--out", type=Path, help="output folder (default: networks/<base>)")
    args = parser.parse_args(argv)

    names = args.names or list(BUILDERS)
    unknown = [n for n in names if n not in BUILDERS and n != "grid"]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    if (args.rows or args.cols) and "grid" not in names:
        parser.error("--rows/--cols only apply to 'grid'")
    for name in names:
        if name == "grid":
            d = RECIPES.grid3x3
            recipe = GridRecipe(
                **{**d.__dict__, "rows": args.rows or d.rows, "cols": args.cols or d.cols}
            )
            out = args.out or HERE / recipe.base
            out.mkdir(parents=True, exist_ok=True)
            build_grid(recipe, out)
        else:
            out = args.out or HERE / name
            out.mkdir(parents=True, exist_ok=True)
            BUILDERS[name](out)
        print(f"built {name} -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
