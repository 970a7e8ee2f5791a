"""SUMO's command-line tools and ``.sumocfg`` files, for the modules that build a twin.

SUMO's binaries (``netconvert``, ``duarouter``, ``sumo``) and its Python tools
(``randomTrips.py``, ``routeSampler.py``) run as subprocesses: the binaries from the
``eclipse-sumo`` package, the tools with this interpreter. Nothing here needs
``SUMO_HOME``. A failing tool becomes a :class:`TwinTrafficError` that quotes the tool's
own last error line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from twin_traffic.errors import ScenarioError, TwinTrafficError
from twin_traffic.scenario import SUMOCFG_SUFFIX


def sumo_home() -> Path:
    """The packaged SUMO installation (``eclipse-sumo``)."""
    import sumo

    return Path(sumo.SUMO_HOME)


def binary(name: str) -> Path:
    """Path of a SUMO binary such as ``netconvert``, ``duarouter`` or ``sumo``."""
    path = sumo_home() / "bin" / name
    if not path.exists():
        raise TwinTrafficError(f"{path}: SUMO binary not found; reinstall eclipse-sumo")
    return path


def tool(relative: str) -> Path:
    """Path of one of SUMO's Python tools, e.g. ``randomTrips.py``."""
    path = sumo_home() / "tools" / relative
    if not path.exists():
        raise TwinTrafficError(f"{path}: SUMO tool not found; reinstall eclipse-sumo")
    return path


def run_tool(command: Sequence[str | Path], what: str, cwd: Path | None = None) -> str:
    """Run a SUMO binary or tool; return its stdout or raise naming what failed.

    A ``.py`` first element runs with this interpreter, so the tools import the same
    ``sumolib`` as the toolkit.
    """
    args = [str(part) for part in command]
    if args[0].endswith(".py"):
        args.insert(0, sys.executable)
    # The tools locate duarouter & co. through SUMO_HOME: point it at the packaged SUMO
    # for the child only, so a different SUMO the user may have installed is not mixed in.
    env = {**os.environ, "SUMO_HOME": str(sumo_home()), "LC_ALL": "C"}
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        lines = [ln.strip() for ln in (result.stderr + result.stdout).splitlines() if ln.strip()]
        # SUMO's binaries say "Error: ..." then "Quitting (on error)."; Python tools end
        # with the exception's message.
        errors = [ln for ln in lines if ln.startswith("Error")]
        errors = errors or [ln for ln in lines if "error" in ln.lower() and "Quitting" not in ln]
        reason = errors[0] if errors else (lines[-1] if lines else "no output")
        raise TwinTrafficError(f"{what} failed: {reason}")
    return result.stdout


def find_config(path: str | Path) -> Path:
    """The ``.sumocfg`` of a scenario folder (or the file itself when given one)."""
    target = Path(path)
    if target.is_file() and target.name.endswith(SUMOCFG_SUFFIX):
        return target.resolve()
    if not target.is_dir():
        raise ScenarioError(
            f"{target}: no such scenario folder or .sumocfg; build one with "
            "'twin-traffic scenario from-osm FILE.osm --out DIR'"
        )
    configs = sorted(target.glob(f"*{SUMOCFG_SUFFIX}"))
    if len(configs) != 1:
        found = ", ".join(p.name for p in configs) or "none"
        raise ScenarioError(
            f"{target}: expected one .sumocfg in the folder, found {found}; "
            "name the .sumocfg file instead of the folder"
        )
    return configs[0].resolve()


def write_sumocfg(
    path: Path,
    net_file: str,
    route_files: Sequence[str],
    additional_files: Sequence[str] = (),
    begin: float = 0.0,
    end: float = 3600.0,
) -> Path:
    """Write a minimal SUMO configuration; file names are relative to ``path``'s folder."""
    root = ET.Element("configuration")
    inputs = ET.SubElement(root, "input")
    ET.SubElement(inputs, "net-file", value=net_file)
    ET.SubElement(inputs, "route-files", value=",".join(route_files))
    if additional_files:
        ET.SubElement(inputs, "additional-files", value=",".join(additional_files))
    window = ET.SubElement(root, "time")
    ET.SubElement(window, "begin", value=f"{begin:g}")
    ET.SubElement(window, "end", value=f"{end:g}")
    _write(root, path)
    return path


def set_config_files(config: Path, option: str, files: Sequence[str]) -> None:
    """Set an input option (``route-files``, ``additional-files``) of a ``.sumocfg``.

    Other entries, and any comments SUMO would ignore, are left as they are; an empty
    ``files`` removes the option.
    """
    tree = ET.parse(config, parser=ET.XMLParser(target=ET.TreeBuilder(insert_comments=True)))
    root = tree.getroot()
    inputs = root.find("input")
    if inputs is None:
        inputs = ET.SubElement(root, "input")
    element = inputs.find(option)
    if not files:
        if element is not None:
            inputs.remove(element)
    else:
        if element is None:
            element = ET.SubElement(inputs, option)
        element.attrib.pop("v", None)
        element.set("value", ",".join(files))
    _write(root, config)


def config_files(config: Path, option: str) -> list[str]:
    """The file names listed under an input option of a ``.sumocfg``, as written."""
    element = ET.parse(config).getroot().find(f"input/{option}")
    if element is None:
        return []
    value = element.get("value", element.get("v", ""))
    return [item for item in value.replace(",", " ").split() if item]


def _write(root: ET.Element, path: Path) -> None:
    ET.indent(root, space="    ")
    tmp = path.with_name(path.name + ".tmp")
    ET.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=True)
    with tmp.open("a") as handle:
        handle.write("\n")
    tmp.replace(path)
