"""Scenarios: the SUMO files of a digital twin, loaded and validated before any simulation.

A scenario comes from a built-in name (``grid3x3``), a ``.sumocfg`` anywhere on disk, or a
``.net.xml`` with its ``.rou.xml`` files. Loading resolves every path and checks what would
otherwise surface as an obscure SUMO failure minutes later: the files exist and parse, the
network has traffic lights, the time window is sane and the routes only use known edges.
"""

from __future__ import annotations

import importlib.resources
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from twin_traffic.errors import ScenarioError

SUMOCFG_SUFFIX = ".sumocfg"
NET_SUFFIX = ".net.xml"


@dataclass(frozen=True)
class Scenario:
    """A validated SUMO scenario with resolved paths and a time window in seconds."""

    name: str
    net_file: Path
    route_files: tuple[Path, ...]
    additional_files: tuple[Path, ...] = ()
    begin: float = 0.0
    end: float = 3600.0
    config_file: Path | None = None
    builtin: bool = False
    traffic_lights: tuple[str, ...] = field(default=(), compare=False)

    @property
    def source_label(self) -> str:
        """How messages name the scenario: a built-in by its name, others by their file."""
        if self.builtin:
            return f"built-in scenario '{self.name}'"
        return str(self.config_file or self.net_file)

    @property
    def duration(self) -> float:
        """Length of the simulated window in seconds."""
        return self.end - self.begin

    def sumo_args(self, extra_additional: Sequence[Path] = ()) -> list[str]:
        """SUMO command-line arguments that load this scenario and its time window.

        A scenario from a ``.sumocfg`` is loaded with ``-c`` so the user's own processing
        options (step length, teleport time, ...) hold; the window is always explicit.
        ``extra_additional`` files (a controller's programmes) load after the scenario's own,
        so their signal programmes are the ones SUMO runs.
        """
        if self.config_file is not None:
            args = ["-c", str(self.config_file)]
        else:
            args = ["-n", str(self.net_file), "-r", ",".join(map(str, self.route_files))]
        additional = [*self.additional_files, *extra_additional]
        if additional:
            args += ["--additional-files", ",".join(map(str, additional))]
        return [*args, "--begin", _fmt(self.begin), "--end", _fmt(self.end)]


def builtin_dir() -> Path:
    """Folder holding the built-in scenarios (``networks/`` in the repository).

    Installed, they are the package ``twin_traffic.networks``; in a source checkout that is
    imported without installing, they are the repository's ``networks/`` folder.
    """
    try:
        return Path(str(importlib.resources.files("twin_traffic.networks")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "networks"


def builtin_scenarios() -> dict[str, Path]:
    """Built-in scenario names mapped to their ``.sumocfg`` files, sorted by name."""
    configs = {
        p.name.removesuffix(SUMOCFG_SUFFIX): p for p in builtin_dir().glob(f"*/*{SUMOCFG_SUFFIX}")
    }
    return dict(sorted(configs.items()))


def load_scenario(
    source: str | Path,
    *,
    routes: Sequence[str | Path] = (),
    begin: float | None = None,
    end: float | None = None,
) -> Scenario:
    """Load and validate a scenario.

    Args:
        source: a built-in name, a ``.sumocfg`` path, or a ``.net.xml`` path (then ``routes``
            names the route files).
        routes: route files, only with a ``.net.xml`` source.
        begin: start time in seconds, overriding the configuration's.
        end: end time in seconds, overriding the configuration's.

    Raises:
        ScenarioError: with one line naming the file at fault and the fix.
    """
    text = str(source)
    known = builtin_scenarios()
    if text in known:
        scenario = _from_sumocfg(known[text], begin, end, builtin=True)
        if routes:
            raise ScenarioError(
                f"{text}: route files (--routes) go with a .net.xml; the built-in scenario has its "
                f"own demand (give its network, {scenario.net_file}, with routes for another)"
            )
    elif Path(text).is_dir():  # a scenario folder stands for its one configuration
        configs = sorted(Path(text).glob(f"*{SUMOCFG_SUFFIX}"))
        if len(configs) != 1:
            raise ScenarioError(
                f"{text}: a folder; give one of its .sumocfg files "
                f"({', '.join(path.name for path in configs)})"
                if configs else f"{text}: a folder with no .sumocfg in it; give a .sumocfg file"
            )  # fmt: skip
        return load_scenario(configs[0], routes=routes, begin=begin, end=end)
    elif text.endswith(SUMOCFG_SUFFIX):
        if routes:
            raise ScenarioError(
                f"{text}: --routes goes with a .net.xml; the .sumocfg names its own"
            )
        scenario = _from_sumocfg(_existing(Path(text), "scenario configuration"), begin, end)
    elif text.endswith(NET_SUFFIX):
        scenario = _from_net(Path(text), routes, begin, end)
    else:
        names = ", ".join(known) or "none installed"
        raise ScenarioError(
            f"unknown scenario '{text}': give a built-in name ({names}), "
            "a .sumocfg file, or a .net.xml file with --routes"
        )
    return scenario


def _from_sumocfg(
    config: Path, begin: float | None, end: float | None, builtin: bool = False
) -> Scenario:
    config = config.resolve()
    root = _parse_xml(config, "scenario configuration")
    options = {elem.tag: elem.get("value", elem.get("v", "")) for elem in root.iter()}
    net_value = options.get("net-file", "")
    if not net_value:
        raise ScenarioError(f"{config}: no <net-file value=...> entry; add the network it runs")
    net_file = _existing(_relative(config, net_value), f"network named in {config.name}")
    route_files = tuple(
        _existing(_relative(config, item), f"route file named in {config.name}")
        for item in _split(options.get("route-files", ""))
    )
    additional_files = tuple(
        _existing(_relative(config, item), f"additional file named in {config.name}")
        for item in _split(options.get("additional-files", ""))
    )
    window_begin = begin if begin is not None else _time(options.get("begin"), config, "begin")
    window_end = end if end is not None else _time(options.get("end"), config, "end")
    return _validated(
        Scenario(
            name=config.name.removesuffix(SUMOCFG_SUFFIX),
            net_file=net_file,
            route_files=route_files,
            additional_files=additional_files,
            begin=0.0 if window_begin is None else window_begin,
            end=_require_end(window_end, config),
            config_file=config,
            builtin=builtin,
        )
    )


def _from_net(
    net: Path, routes: Sequence[str | Path], begin: float | None, end: float | None
) -> Scenario:
    net_file = _existing(net, "network").resolve()
    if not routes:
        raise ScenarioError(
            f"{net_file}: a network alone has no traffic; add --routes FILE.rou.xml"
        )
    route_files = tuple(_existing(Path(r), "route file").resolve() for r in routes)
    return _validated(
        Scenario(
            name=net_file.name.removesuffix(NET_SUFFIX),
            net_file=net_file,
            route_files=route_files,
            begin=0.0 if begin is None else begin,
            end=_require_end(end, net_file),
        )
    )


def _validated(scenario: Scenario) -> Scenario:
    if scenario.begin < 0 or scenario.end <= scenario.begin:
        raise ScenarioError(
            f"{scenario.source_label}: time window "
            f"begin={_fmt(scenario.begin)} s, end={_fmt(scenario.end)} s is empty; "
            "choose --end after --begin (both in seconds, begin >= 0)"
        )
    edges, lights = _net_summary(scenario.net_file)
    if not lights:
        raise ScenarioError(
            f"{scenario.net_file}: the network has no traffic lights, so there is nothing to "
            'control; mark junctions type="traffic_light" or rebuild with netconvert --tls.guess'
        )
    for route_file in scenario.route_files:
        _check_route_edges(route_file, edges, scenario.net_file)
    for additional in scenario.additional_files:
        _parse_xml(additional, "additional file")
    return Scenario(**{**scenario.__dict__, "traffic_lights": lights})


@lru_cache(maxsize=32)
def _net_summary(net_file: Path) -> tuple[frozenset[str], tuple[str, ...]]:
    """Edge ids and traffic-light ids of a network, read in one streaming pass."""
    edges: set[str] = set()
    lights: list[str] = []
    root_tag = None
    for event, elem in _iterparse(net_file, "network", events=("start", "end")):
        if event == "start":
            root_tag = root_tag or elem.tag
            continue
        if elem.tag == "edge" and elem.get("function") != "internal":
            edges.add(elem.get("id", ""))
        elif elem.tag == "tlLogic" and elem.get("id") not in lights:
            lights.append(elem.get("id", ""))
        if elem.tag != "net":
            elem.clear()
    if root_tag != "net":
        raise ScenarioError(
            f"{net_file}: not a SUMO network (root element <{root_tag}>, expected <net>); "
            "convert it with netconvert"
        )
    return frozenset(edges), tuple(lights)


_EDGE_LIST_ATTRIBUTES = {"route": ("edges",), "vehicle": ("from", "to", "via")}
_EDGE_LIST_ATTRIBUTES["trip"] = _EDGE_LIST_ATTRIBUTES["flow"] = _EDGE_LIST_ATTRIBUTES["vehicle"]


def _check_route_edges(route_file: Path, edges: frozenset[str], net_file: Path) -> None:
    for _, elem in _iterparse(route_file, "route file"):
        for attribute in _EDGE_LIST_ATTRIBUTES.get(elem.tag, ()):
            for edge in elem.get(attribute, "").split():
                if edge not in edges:
                    owner = elem.get("id", "")
                    raise ScenarioError(
                        f"{route_file}: <{elem.tag} id=\"{owner}\"> uses edge '{edge}', which is "
                        f"not in {net_file.name}; fix the route or rebuild the routes for this "
                        "network (duarouter)"
                    )
        if elem.tag in ("vehicle", "flow", "trip", "route"):
            elem.clear()


_DEMAND_TAGS = frozenset(
    {"vehicle", "trip", "flow", "person", "personFlow", "container", "containerFlow"}
)


def has_demand(scenario: Scenario) -> bool:
    """Whether the scenario declares any traffic: route files, or vehicles, trips or flows
    in its additional files (where SUMO takes them too)."""
    if scenario.route_files:
        return True
    for path in scenario.additional_files:
        for _, elem in _iterparse(path, "additional file"):
            if elem.tag in _DEMAND_TAGS:
                return True
            elem.clear()
    return False


def _iterparse(
    path: Path, kind: str, events: tuple[Literal["start", "end"], ...] = ("end",)
) -> Iterator[tuple[str, ET.Element]]:
    try:
        yield from ET.iterparse(path, events=events)
    except ET.ParseError as error:
        raise ScenarioError(_xml_message(path, kind, error)) from None
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read the {kind} ({error.strerror})") from None


def _parse_xml(path: Path, kind: str) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as error:
        raise ScenarioError(_xml_message(path, kind, error)) from None
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read the {kind} ({error.strerror})") from None


def _xml_message(path: Path, kind: str, error: ET.ParseError) -> str:
    line, column = error.position
    reason = str(error).split(":")[0]
    return (
        f"{path}: the {kind} is not valid XML ({reason} at line {line}, column {column}); "
        "fix the file or regenerate it with SUMO's tools"
    )


def _existing(path: Path, kind: str) -> Path:
    if not path.is_file():
        raise ScenarioError(f"{path}: {kind} not found; check the path (or its spelling)")
    return path


def _relative(config: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else (config.parent / path).resolve()


def _split(value: str) -> list[str]:
    return [item for item in value.replace(",", " ").split() if item]


def _time(value: str | None, source: Path, what: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise ScenarioError(
            f'{source}: <{what} value="{value}"> is not a time in seconds; write a number'
        ) from None


def _require_end(end: float | None, source: Path) -> float:
    if end is None:
        where = (
            "set <end value=...> in the sumocfg or pass --end SECONDS"
            if source.name.endswith(SUMOCFG_SUFFIX)
            else "pass --end SECONDS (a network and its routes carry no end time)"
        )
        raise ScenarioError(f"{source}: no end time, so a run would never stop; {where}")
    return end


def _fmt(seconds: float) -> str:
    return f"{seconds:g}"
