"""A ready-to-run scenario from an OpenStreetMap extract.

``netconvert`` turns the extract into a car network whose signals come from OSM's
``highway=traffic_signals`` tags, one controller per intersection; ``randomTrips.py``
(routed by ``duarouter``) gives it a seeded starting demand; a ``.sumocfg`` ties them
together. The demand is a placeholder until :mod:`twin_traffic.calibrate` fits it to
counts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from twin_traffic.errors import ScenarioError
from twin_traffic.files import current_umask
from twin_traffic.scenario import Scenario, load_scenario
from twin_traffic.sumo_tools import binary, run_tool, sumo_home, tool, write_sumocfg

# OSM highway values that carry cars (https://wiki.openstreetmap.org/wiki/Key:highway).
CAR_HIGHWAYS = frozenset(
    {
        "motorway", "trunk", "primary", "secondary", "tertiary", "unclassified",
        "residential", "living_street", "service", "road",
        "motorway_link", "trunk_link", "primary_link", "secondary_link", "tertiary_link",
    }
)  # fmt: skip

# netconvert options for a signal-control twin, each checked against netconvert 1.28.
NETCONVERT_OPTIONS: tuple[str, ...] = (
    # Cars only: footways, cycleways and rail would add edges no vehicle of the demand uses.
    "--keep-edges.by-vclass", "passenger",
    "--remove-edges.isolated",
    # Signals where OSM tags them; tags on the approaches (a common mapping style) are
    # moved to the intersection they guard.
    "--tls.guess-signals",
    # Close nodes of one intersection (dual carriageways, staggered arms) become one
    # junction, and its signals one controller.
    "--junctions.join",
    "--tls.join",
    # A "signal" controlling a single through road with no conflict is no intersection.
    "--tls.discard-simple",
    "--tls.default-type", "static",
    # Infer what extracts rarely spell out: on/off ramps, roundabouts, turn lanes from
    # OSM's turn:lanes arrows.
    "--ramps.guess",
    "--roundabouts.guess",
    "--osm.turn-lanes",
    # Nodes that only shape a road become geometry: fewer, longer edges, faster SUMO.
    "--geometry.remove",
    # U-turns only where a road ends; elsewhere they add conflicts nobody drives.
    "--no-turnarounds.except-deadend",
    "--junctions.corner-detail", "5",
    "--output.street-names",
)  # fmt: skip


@dataclass(frozen=True)
class OsmScenario:
    """The files of a scenario built from OSM, and the validated scenario itself."""

    config: Path
    net_file: Path
    route_file: Path
    scenario: Scenario
    vehicles: int


def check_osm(osm_file: Path) -> None:
    """Check that an OSM extract has roads for cars and tagged traffic signals.

    Raises:
        ScenarioError: naming the file and what is missing.
    """
    ways = signals = 0
    root_tag = None
    try:
        for event, elem in ET.iterparse(osm_file, events=("start", "end")):
            if event == "start":
                root_tag = root_tag or elem.tag
                continue
            tags = {t.get("k"): t.get("v") for t in elem.iter("tag")}
            if elem.tag == "way" and tags.get("highway") in CAR_HIGHWAYS:
                ways += 1
            elif elem.tag == "node" and tags.get("highway") == "traffic_signals":
                signals += 1
            if elem.tag in ("node", "way", "relation"):
                elem.clear()
    except ET.ParseError as error:
        line, column = error.position
        raise ScenarioError(
            f"{osm_file}: not valid XML (line {line}, column {column}); export the area "
            "again in OSM's XML format (.osm)"
        ) from None
    except OSError as error:
        raise ScenarioError(f"{osm_file}: cannot read the OSM file ({error.strerror})") from None
    if root_tag != "osm":
        raise ScenarioError(
            f"{osm_file}: not an OpenStreetMap extract (root element <{root_tag}>, expected "
            "<osm>); export the area in OSM's XML format (.osm)"
        )
    if not ways:
        raise ScenarioError(
            f"{osm_file}: no roads for cars (no <way> tagged highway=primary, secondary, "
            "residential, ...); export an area that contains streets"
        )
    if not signals:
        raise ScenarioError(
            f"{osm_file}: no traffic signals (no <node> tagged highway=traffic_signals), so "
            "there is nothing to control; export an area with signalised intersections"
        )


def build_from_osm(
    osm_file: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    seed: int = 0,
    end: float = 3600.0,
    period: float = 2.5,
    fringe_factor: float = 10.0,
    force: bool = False,
) -> OsmScenario:
    """Build a scenario folder from an OSM extract.

    The files are built in a hidden folder beside ``out_dir`` and moved into place only
    when every step succeeded, so a failure leaves nothing behind and an existing folder
    untouched.

    Args:
        osm_file: an OpenStreetMap extract in OSM's XML format.
        out_dir: folder for ``NAME.net.xml``, ``NAME.rou.xml`` and ``NAME.sumocfg``.
        name: base name of the files (default: the OSM file's stem).
        seed: seed of the random demand.
        end: end of the simulated window, s (it begins at 0).
        period: mean seconds between two vehicle departures (2.5 s is 1440 veh/h).
        fringe_factor: how much likelier a trip starts and ends at the network's edge than
            inside it; through traffic dominates an extract of a town centre.
        force: replace ``out_dir`` when it exists and is not empty; only a scenario
            folder (one holding a ``.sumocfg``) that does not hold the current folder.

    Raises:
        ScenarioError: for an extract without roads or signals, that SUMO cannot convert,
            or a non-empty ``out_dir`` without ``force``.
    """
    osm_path = Path(osm_file)
    if not osm_path.is_file():
        raise ScenarioError(f"{osm_path}: OSM file not found; check the path (or its spelling)")
    if end <= 0 or period <= 0:
        raise ScenarioError(
            f"{osm_path}: end and period (--end, --period) must be positive seconds"
        )
    check_osm(osm_path)
    base = name or osm_path.name.split(".")[0]
    target = Path(out_dir)
    if target.exists() and not target.is_dir():
        raise ScenarioError(f"{target}: --out is a file, not a folder; choose a folder")
    if target.is_dir() and any(target.iterdir()):
        if not force:
            raise ScenarioError(
                f"{target}: --out is not empty; choose a new folder or pass --force to replace it"
            )
        cwd = Path.cwd().resolve()
        if target.resolve() == cwd or target.resolve() in cwd.parents:
            raise ScenarioError(f"{target}: --out holds the current folder; choose another")
        if not any(target.glob("*.sumocfg")):
            raise ScenarioError(
                f"{target}: --force replaces a scenario folder, and this one holds no "
                ".sumocfg; choose a new folder"
            )
    with _staging(target) as folder:
        vehicles = _build(osm_path, folder, base, seed, end, period, fringe_factor)
    config = target / f"{base}.sumocfg"
    return OsmScenario(
        config, target / f"{base}.net.xml", target / f"{base}.rou.xml",
        load_scenario(config), vehicles,
    )  # fmt: skip


@contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A hidden folder beside ``target``, moved over it on success and removed on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield staging
        staging.chmod(0o777 & ~current_umask())
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            try:
                os.replace(target, old / target.name)
                os.replace(staging, target)
            finally:
                if (old / target.name).exists() and not target.exists():
                    os.replace(old / target.name, target)  # put the original back
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _build(
    osm_path: Path,
    folder: Path,
    base: str,
    seed: int,
    end: float,
    period: float,
    fringe_factor: float,
) -> int:
    """netconvert, randomTrips and the .sumocfg into ``folder``; the number of vehicles."""
    net_file = folder / f"{base}.net.xml"
    route_file = folder / f"{base}.rou.xml"
    run_tool(
        [
            binary("netconvert"),
            "--osm-files", osm_path.resolve(),
            "--type-files", sumo_home() / "data" / "typemap" / "osmNetconvert.typ.xml",
            *NETCONVERT_OPTIONS,
            "--output-file", net_file.resolve(),
        ],
        f"netconvert on {osm_path}",
    )  # fmt: skip
    _require_signals(net_file, osm_path)
    trips = folder / f"{base}.trips.xml"
    run_tool(
        [
            tool("randomTrips.py"),
            "--net-file", net_file.resolve(),
            "--output-trip-file", trips.resolve(),
            "--route-file", route_file.resolve(),
            "--validate",  # route with duarouter; drops trips with no path
            "--seed", str(seed),
            "--begin", "0",
            "--end", f"{end:g}",
            "--period", f"{period:g}",
            "--fringe-factor", f"{fringe_factor:g}",
            "--vclass", "passenger",
            "--remove-loops",
            "--prefix", "rt",
            "--trip-attributes", 'departLane="best" departSpeed="max"',
        ],
        f"randomTrips.py on {net_file}",
        cwd=folder,
    )  # fmt: skip
    trips.unlink(missing_ok=True)
    vehicles = sum(1 for _, e in ET.iterparse(route_file) if e.tag == "vehicle")
    if not vehicles:
        raise ScenarioError(
            f"{osm_path}: no route connects the network's roads; export a larger area "
            "around the signals"
        )
    write_sumocfg(folder / f"{base}.sumocfg", net_file.name, [route_file.name], begin=0.0, end=end)
    return vehicles


def _require_signals(net_file: Path, osm_path: Path) -> None:
    root_has_signal = any(e.tag == "tlLogic" for _, e in ET.iterparse(net_file))
    if not root_has_signal:
        raise ScenarioError(
            f"{osm_path}: its highway=traffic_signals nodes are not on intersections of car "
            "roads, so the network has no signals; export an area with signalised "
            "intersections"
        )
