"""A run's SUMO command line for a scenario, with the scenario's own outputs redirected.

A user's ``.sumocfg`` may declare outputs of its own (``tripinfo-output``, ``summary-output``,
``log``, ...), and its additional files may give detectors and mean-data an output
``file=``. SUMO resolves those relative to the declaring file, so a run would write into
the scenario's folder, and two runs of one scenario would write the same files. Here every
such output goes to a folder of the run instead:

- options of the ``.sumocfg`` are overridden on the command line (command-line values take
  precedence over a configuration file's);
- additional files that declare outputs are loaded as copies, written to the run's folder,
  whose output attributes point into that folder; files without outputs load in place.

This module is the one place that builds a scenario's part of a SUMO command line:
:mod:`twin_traffic.sim` and the modules that run the ``sumo`` binary go through
:func:`scenario_args`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from twin_traffic.errors import ScenarioError
from twin_traffic.scenario import Scenario

OUTPUTS_DIR = "scenario-outputs"
"""Sub-folder of a run's folder that receives the scenario's own outputs."""
INPUTS_DIR = "scenario-inputs"
"""Sub-folder of a run's folder that holds the redirected copies of additional files."""

# SUMO options that name a file SUMO writes (SUMO 1.28, `sumo --save-template`: the FILE
# options of the output and report sections, and the devices' outputs).
OUTPUT_OPTIONS = frozenset({
    "netstate-dump", "emission-output", "battery-output", "elechybrid-output",
    "chargingstations-output", "overheadwiresegments-output", "substations-output",
    "fcd-output", "person-fcd-output", "full-output", "queue-output", "vtk-output",
    "amitran-output", "summary-output", "person-summary-output", "tripinfo-output",
    "personinfo-output", "vehroute-output", "personroute-output", "link-output",
    "railsignal-block-output", "railsignal-vehicle-output", "bt-output",
    "lanechange-output", "stop-output", "collision-output", "edgedata-output",
    "lanedata-output", "statistic-output", "deadlock-output", "log", "message-log",
    "error-log", "device.rerouting.output", "device.taxi.dispatch-algorithm.output",
    "device.taxi.idle-algorithm.output",
})  # fmt: skip
# Short names and synonyms SUMO accepts for some of them, so a caller's own option is found.
_SYNONYMS = {"tripinfo": "tripinfo-output", "summary": "summary-output", "l": "log"}
# Options that rename every output (SUMO prepends/appends them to each file name).
_RENAMING_OPTIONS = ("output-prefix", "output-suffix")
# Elements of additional files and the attribute naming the file they write.
OUTPUT_ATTRIBUTES = {
    "e1Detector": "file", "inductionLoop": "file", "instantInductionLoop": "file",
    "e2Detector": "file", "laneAreaDetector": "file", "e3Detector": "file",
    "entryExitDetector": "file", "edgeData": "file", "laneData": "file",
    "edgeRelations": "file", "tazRelations": "file", "routeProbe": "file",
    "vTypeProbe": "file", "calibrator": "output", "timedEvent": "dest",
}  # fmt: skip
_NO_FILE = frozenset({"", "nul", "/dev/null"})


def scenario_args(
    scenario: Scenario,
    extra_additional: Sequence[Path],
    directory: Path,
    given: Sequence[str] = (),
    omit_ids: Iterable[str] = (),
) -> list[str]:
    """SUMO arguments that load ``scenario`` with its own outputs written under ``directory``.

    Args:
        scenario: the scenario to load.
        extra_additional: the run's own additional files (loaded after the scenario's).
        directory: the run's folder; the scenario's outputs go to ``scenario-outputs/``
            in it and redirected additional files to ``scenario-inputs/``.
        given: the rest of the command line; an output option the caller sets itself is
            left to the caller (SUMO refuses an option given twice).
        omit_ids: ids of elements (detectors) to leave out of the scenario's additional
            files, because the caller loads its own version of them.
    """
    outputs = directory / OUTPUTS_DIR
    omit = frozenset(omit_ids)
    names: dict[Path, Path] = {}
    additional = [
        _redirected(path, directory / INPUTS_DIR, outputs, names, omit)
        for path in scenario.additional_files
    ]
    run = Scenario(**{**scenario.__dict__, "additional_files": tuple(additional)})
    args = run.sumo_args(extra_additional)
    if scenario.config_file is None:
        return args
    taken = _option_names(given)
    for option, value in declared_outputs(scenario.config_file).items():
        if option in taken:
            continue
        if option in _RENAMING_OPTIONS:
            args += [f"--{option}", ""]
        elif value.lower() not in _NO_FILE:
            target = _output_path(scenario.config_file.parent, value, outputs, names)
            args += [f"--{option}", str(target)]
    if names:
        outputs.mkdir(parents=True, exist_ok=True)
    return args


def declared_outputs(config: Path) -> dict[str, str]:
    """The output options a ``.sumocfg`` sets, with their values as written."""
    return dict(_declared_outputs(config, config.stat().st_mtime_ns))


@lru_cache(maxsize=64)
def _declared_outputs(config: Path, _mtime: int) -> tuple[tuple[str, str], ...]:
    root = ET.parse(config).getroot()
    found = []
    for element in root.iter():
        option = _SYNONYMS.get(element.tag, element.tag)
        if option in OUTPUT_OPTIONS or option in _RENAMING_OPTIONS:
            value = element.get("value", element.get("v", ""))
            if option in _RENAMING_OPTIONS and not value:
                continue
            found.append((option, value))
    return tuple(found)


def _redirected(
    path: Path, inputs: Path, outputs: Path, names: dict[Path, Path], omit: frozenset[str]
) -> Path:
    """``path`` itself when it declares no output (and holds nothing to omit), else a copy
    in ``inputs`` whose outputs point into ``outputs``."""
    if not _needs_copy(path, path.stat().st_mtime_ns, omit):
        return path
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError) as error:
        raise ScenarioError(f"{path}: cannot read the additional file ({error})") from None
    root = tree.getroot()
    for parent in root.iter():
        for element in list(parent):
            if element.get("id") in omit and element.tag in OUTPUT_ATTRIBUTES:
                parent.remove(element)
                continue
            attribute = OUTPUT_ATTRIBUTES.get(element.tag)
            value = element.get(attribute or "")
            if attribute and value is not None and value.lower() not in _NO_FILE:
                element.set(attribute, str(_output_path(path.parent, value, outputs, names)))
            href = element.get("href")
            if element.tag == "include" and href and not Path(href).is_absolute():
                element.set("href", str((path.parent / href).resolve()))
    inputs.mkdir(parents=True, exist_ok=True)
    copy = inputs / _unique_name(inputs, path.name)
    tree.write(copy, encoding="UTF-8", xml_declaration=True)
    return copy


@lru_cache(maxsize=128)
def _needs_copy(path: Path, _mtime: int, omit: frozenset[str]) -> bool:
    try:
        for _, element in ET.iterparse(path):
            attribute = OUTPUT_ATTRIBUTES.get(element.tag)
            if attribute is not None:
                value = element.get(attribute)
                if element.get("id") in omit:
                    return True
                if value is not None and value.lower() not in _NO_FILE:
                    return True
            if element.tag == "include":
                return True
    except (ET.ParseError, OSError) as error:
        raise ScenarioError(f"{path}: cannot read the additional file ({error})") from None
    return False


def _output_path(base: Path, value: str, outputs: Path, names: dict[Path, Path]) -> Path:
    """The run's file for an output declared as ``value`` relative to ``base``.

    One declared file maps to one file of the run (detectors that share an output file
    keep sharing it); different declared files never share one.
    """
    declared = (base / value).resolve()
    if declared not in names:
        taken = {p.name for p in names.values()}
        name = declared.name
        stem, dot, suffix = name.partition(".")
        number = 1
        while name in taken:
            number += 1
            name = f"{stem}-{number}{dot}{suffix}"
        names[declared] = outputs / name
    return names[declared]


def _unique_name(folder: Path, name: str) -> str:
    stem, dot, suffix = name.partition(".")
    candidate, number = name, 1
    while (folder / candidate).exists():
        number += 1
        candidate = f"{stem}-{number}{dot}{suffix}"
    return candidate


def _option_names(args: Sequence[str]) -> set[str]:
    names = set()
    for arg in args:
        if arg.startswith("-") and len(arg) > 1:
            name = arg.lstrip("-").split("=", 1)[0]
            names.add(_SYNONYMS.get(name, name))
    return names
