"""Experiment sweeps: scenarios × controllers × seeds from a TOML file, run and stored.

A sweep file names the scenarios, the controllers (each with its parameters) and the
seeds; every combination is one run. Every controller runs on the same seeds, so the
comparison can pair runs seed by seed::

    name = "arterial-peak"
    scenarios = ["arterial", "arterial-high", "city/city.sumocfg"]
    seeds = "0-9"                    # or a list: [0, 1, 2]
    end = 1800                       # optional overrides of every scenario's window
    baseline = "fixed"               # optional; the first controller by default

    [[controllers]]
    name = "fixed"

    [[controllers]]
    name = "actuated"
    label = "actuated-short"         # optional; by default name[key=value,...]
    params = { min_green = 3, max_green = 30 }

The results folder gets one run folder per run (``SCENARIO/CONTROLLER/seedN``, written
atomically by :mod:`twin_traffic.store`), a copy of the sweep file (``sweep.toml``) and an
index (``index.json``) listing every run with its status (``ok``, ``failed`` with SUMO's
message, or ``pending``), rewritten atomically after each finished run. Running a sweep
again skips every run whose folder holds the same spec, so an interrupted sweep resumes
where it stopped; failed runs are tried again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NoReturn

from twin_traffic.errors import ScenarioError, TwinTrafficError
from twin_traffic.evaluate import RunSpec
from twin_traffic.executor import Outcome
from twin_traffic.protocol import RunProtocol, with_timings
from twin_traffic.store import (
    INDEX_FILE,
    DamagedFileError,
    folder_name,
    is_complete,
    json_safe,
    read_index,
    read_metrics,
    read_spec,
    remove_staging,
    write_file_atomic,
    write_json_atomic,
    write_run,
)

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

Engine = Literal["local", "ray"]
ENGINES: tuple[Engine, ...] = ("local", "ray")
SWEEP_COPY = "sweep.toml"
LOCK_FILE = ".lock"

_TOP_KEYS = {
    "name": "a folder-safe name for the results (runs/NAME)",
    "description": "free text",
    "scenarios": "built-in names, .sumocfg paths, or tables {source, routes, label}",
    "controllers": "[[controllers]] tables with name, optional params and label",
    "seeds": 'a list of seeds such as [0, 1, 2], or a range such as "0-9"',
    "begin": "start time override, s",
    "end": "end time override, s",
    "baseline": "the controller label the others are compared with",
    "emissions": "also measure CO2 and fuel (false by default: SUMO runs 30-50% slower)",
    "protocol": 'a benchmark preset, "resco" (no teleports, decisions every 10 s, 3 s yellow)',
    "time_to_teleport": "SUMO's time-to-teleport, s (-1: never)",
    "sumo_options": 'further SUMO options for every run, e.g. ["--max-depart-delay 600"]',
}
_SCENARIO_KEYS = ("source", "routes", "label")
_CONTROLLER_KEYS = ("name", "params", "label", "train")
# A policy controller with a [controllers.train] table is trained before it is evaluated.
# "envs" is the old name of "workers".
_TRAIN_KEYS = ("algo", "recipe", "timesteps", "seed", "workers", "envs")
AGENTS_DIR = "agents"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SweepError(TwinTrafficError):
    """A sweep file or a results folder that cannot be used."""


@dataclass(frozen=True)
class ScenarioEntry:
    """One scenario of a sweep: its label in results, and what to load."""

    label: str
    source: str
    routes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ControllerEntry:
    """One controller of a sweep: its label in results, registered name and parameters."""

    label: str
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: which scenario, controller and seed, and its :class:`RunSpec`."""

    scenario: str
    controller: str
    seed: int
    spec: RunSpec

    @property
    def key(self) -> str:
        """The run's name in the index and in messages: ``scenario/controller/seedN``."""
        return f"{self.scenario}/{self.controller}/seed{self.seed}"

    @property
    def folder(self) -> Path:
        """The run's folder below the results folder."""
        return Path(folder_name(self.scenario), folder_name(self.controller), f"seed{self.seed}")


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file."""

    path: Path
    name: str
    scenarios: tuple[ScenarioEntry, ...]
    controllers: tuple[ControllerEntry, ...]
    seeds: tuple[int, ...]
    baseline: str
    begin: float | None = None
    end: float | None = None
    emissions: bool = False
    description: str = ""
    protocol: RunProtocol = field(default_factory=RunProtocol)

    def training_key(self, scenario: ScenarioEntry, controller: ControllerEntry) -> str:
        """A digest of all an agent's training depends on: its ``train`` table, the text
        of its recipe file, the scenario, the window and the protocol. It names the
        agent's folder, so a change to any of them trains a new agent, and the runs that
        evaluate it run again."""
        settings = dict(controller.train or {})
        recipe = recipe_file(self.path.parent, settings)
        described = {
            "train": settings,
            "recipe": recipe.read_text() if recipe.is_file() else None,
            "scenario": str(scenario.source),
            "routes": [str(route) for route in scenario.routes],
            "begin": self.begin,
            "end": self.end,
            "protocol": self.protocol.name,
            "time_to_teleport": self.protocol.time_to_teleport,
            "sumo_options": list(self.protocol.sumo_options),
        }
        text = json.dumps(described, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def runs(self, out: Path | None = None) -> list[SweepRun]:
        """Every run, scenario by scenario, controller by controller, seed by seed.

        A controller trained by the sweep evaluates the model kept in ``out`` (see
        :func:`agent_folder`).
        """
        keys = {  # once per agent: a key reads its recipe file
            (scenario.label, controller.label): self.training_key(scenario, controller)
            for scenario in self.scenarios
            for controller in self.controllers
            if controller.train is not None
        }
        return [
            SweepRun(
                scenario.label,
                controller.label,
                seed,
                RunSpec(
                    scenario=scenario.source,
                    controller=controller.name,
                    params=_params(
                        controller,
                        scenario,
                        out,
                        self.protocol,
                        keys.get((scenario.label, controller.label), ""),
                    ),
                    seed=seed,
                    routes=scenario.routes,
                    begin=self.begin,
                    end=self.end,
                    emissions=self.emissions,
                    protocol=self.protocol.name,
                    time_to_teleport=self.protocol.time_to_teleport,
                    sumo_options=self.protocol.sumo_options,
                ),
            )
            for scenario in self.scenarios
            for controller in self.controllers
            for seed in self.seeds
        ]


def recipe_file(base: Path, settings: Mapping[str, Any]) -> Path:
    """The recipe of a ``train`` table: its ``recipe`` (relative to the sweep file's
    folder ``base``), else the shipped recipe of its ``algo``."""
    from twin_traffic.train import default_recipe

    if "recipe" in settings:
        return base / settings["recipe"]
    return default_recipe(settings.get("algo", "ppo"))


def agent_folder(out: Path, scenario: ScenarioEntry, controller: ControllerEntry, key: str) -> Path:
    """Where a sweep trains the agent of ``controller`` on ``scenario``: ``LABEL-KEY``, the
    key a digest of its training settings (see :meth:`Sweep.training_key`)."""
    name = f"{folder_name(controller.label)}-{key}"
    return out.resolve() / AGENTS_DIR / folder_name(scenario.label) / name


def _params(
    controller: ControllerEntry,
    scenario: ScenarioEntry,
    out: Path | None,
    protocol: RunProtocol | None = None,
    training_key: str = "",
) -> dict[str, Any]:
    from twin_traffic.controllers.parameters import parameters_of

    accepted = [p.name for p in parameters_of(controller.name) or ()]
    params = with_timings(controller.params, accepted, protocol or RunProtocol())
    if controller.train is None or out is None:
        return params
    model = agent_folder(out, scenario, controller, training_key) / "best.zip"
    return {**params, "model": str(model)}


# -- loading and validation ------------------------------------------------------------------


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file.

    Scenario paths are relative to the sweep file's folder. Every scenario is loaded and
    validated and every controller is built once, so a mistake stops the sweep before any
    run starts.

    Raises:
        SweepError: one line naming the file, the key at fault and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"{path}: sweep file not found; check the path (or its spelling)")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SweepError(f"{path}: not valid TOML ({error}); fix the syntax") from None
    fail = _failer(path)
    for key in data:
        if key not in _TOP_KEYS:
            known = ", ".join(_TOP_KEYS)
            fail(key, f"not a sweep setting; the settings are {known}")
    for key in ("scenarios", "controllers", "seeds"):
        if key not in data:
            fail(key, f"missing; add {key} = {_TOP_KEYS[key]}")

    name = data.get("name", path.name.split(".")[0])
    if not isinstance(name, str) or not _NAME.match(name):
        fail("name", "must be letters, digits, '.', '_' or '-' (it names the results folder)")
    description = data.get("description", "")
    if not isinstance(description, str):
        fail("description", "must be a string")
    begin = _time(data, "begin", fail)
    end = _time(data, "end", fail)
    if begin is not None and end is not None and end <= begin:
        fail("end", f"{end:g} s is not after begin = {begin:g} s; choose a later end")
    emissions = data.get("emissions", False)
    if not isinstance(emissions, bool):
        fail("emissions", "must be true or false")

    protocol = _protocol(data, fail)
    scenarios = _scenarios(data["scenarios"], path, begin, end, fail)
    controllers = _controllers(data["controllers"], fail, path.parent)
    seeds = _seeds(data["seeds"], fail)
    labels = [c.label for c in controllers]
    baseline = data.get("baseline", labels[0])
    if baseline not in labels:
        fail("baseline", f"'{baseline}' is none of the controllers ({', '.join(labels)})")
    return Sweep(
        path=path.resolve(),
        name=name,
        scenarios=scenarios,
        controllers=controllers,
        seeds=seeds,
        baseline=baseline,
        begin=begin,
        end=end,
        emissions=emissions,
        description=description,
        protocol=protocol,
    )


Fail = Callable[[str, str], NoReturn]


def _known_keys(
    table: dict[str, Any], allowed: tuple[str, ...], key: str, what: str, fail: Fail
) -> None:
    """Fail on the first key of ``table`` that ``what`` (at ``key``) does not take."""
    for extra in table:
        if extra not in allowed:
            fail(f"{key}.{extra}", f"unknown key; {what} takes {allowed}")


def _failer(path: Path) -> Fail:
    def fail(key: str, problem: str) -> NoReturn:
        raise SweepError(f"{path}: {key}: {problem}")

    return fail


def _time(data: Mapping[str, Any], key: str, fail: Fail) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        fail(key, f"{value!r} is not a time; write a number of seconds")
    if value < 0:
        fail(key, f"{value} is negative; times are seconds from 0")
    return float(value)


def _protocol(data: Mapping[str, Any], fail: Fail) -> RunProtocol:
    from twin_traffic.protocol import PRESETS, ProtocolError, make_protocol

    name = data.get("protocol")
    if name is not None and name not in PRESETS:
        fail("protocol", f"'{name}' is not a protocol; choose one of: {', '.join(PRESETS)}")
    teleport = data.get("time_to_teleport")
    if teleport is not None and (
        isinstance(teleport, bool) or not isinstance(teleport, (int, float))
    ):
        fail("time_to_teleport", "must be a number of seconds, or -1 for never")
    options = data.get("sumo_options", [])
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        fail("sumo_options", 'must be a list of strings, e.g. ["--max-depart-delay 600"]')
    try:
        return make_protocol(name, None if teleport is None else float(teleport), options)
    except ProtocolError as error:
        fail("sumo_options" if options else "time_to_teleport", str(error))


def _scenarios(
    value: Any, path: Path, begin: float | None, end: float | None, fail: Fail
) -> tuple[ScenarioEntry, ...]:
    from twin_traffic.scenario import builtin_scenarios, load_scenario

    if not isinstance(value, list) or not value:
        fail("scenarios", 'must be a non-empty list, e.g. scenarios = ["single", "mixed"]')
    builtin = builtin_scenarios()
    entries: list[ScenarioEntry] = []
    folders: dict[str, str] = {}
    for i, item in enumerate(value):
        key = f"scenarios[{i}]"
        table = {"source": item} if isinstance(item, str) else item
        if not isinstance(table, dict):
            fail(key, "must be a scenario name or path, or a table {source = ..., routes = [...]}")
        _known_keys(table, _SCENARIO_KEYS, key, "a scenario table", fail)
        source = table.get("source")
        if not isinstance(source, str) or not source:
            fail(f"{key}.source", "missing; give a built-in name or a .sumocfg/.net.xml path")
        routes = table.get("routes", [])
        if not isinstance(routes, list) or not all(isinstance(r, str) for r in routes):
            fail(f"{key}.routes", "must be a list of route file paths")
        resolved_routes = tuple(str((path.parent / r).resolve()) for r in routes)
        if source in builtin and not resolved_routes:
            resolved = source
        else:
            resolved = str((path.parent / source).resolve())
        try:
            load_scenario(resolved, routes=resolved_routes, begin=begin, end=end)
        except ScenarioError as error:
            if source not in builtin and not Path(resolved).suffix:
                names = ", ".join(builtin)
                fail(key, f"unknown scenario '{source}'; give a built-in name ({names}) or a path")
            fail(key, str(error))
        label = table.get("label", Path(source).name.split(".")[0])
        if not isinstance(label, str) or not label:
            fail(f"{key}.label", "must be a non-empty string")
        folder = folder_name(label)
        if folder in folders:
            fail(key, f"same label '{label}' as {folders[folder]}; give one of them a label")
        folders[folder] = key
        entries.append(ScenarioEntry(label, resolved, resolved_routes))
    return tuple(entries)


def _controllers(value: Any, fail: Fail, base: Path) -> tuple[ControllerEntry, ...]:
    from twin_traffic.controllers import CONTROLLERS, make_controller

    if not isinstance(value, list) or not value:
        fail("controllers", 'add at least one [[controllers]] table with name = "fixed"')
    entries: list[ControllerEntry] = []
    folders: dict[str, str] = {}
    for i, table in enumerate(value):
        key = f"controllers[{i}]"
        if not isinstance(table, dict):
            fail(key, 'must be a table: [[controllers]] name = "..."')
        _known_keys(table, _CONTROLLER_KEYS, key, "a controller table", fail)
        name = table.get("name")
        if not isinstance(name, str):
            fail(f"{key}.name", f"missing; choose one of: {', '.join(sorted(CONTROLLERS))}")
        if name not in CONTROLLERS:
            fail(
                f"{key}.name",
                f"unknown controller '{name}'; choose one of: {', '.join(sorted(CONTROLLERS))}",
            )
        params = table.get("params", {})
        if not isinstance(params, dict):
            fail(f"{key}.params", "must be a table, e.g. params = { min_green = 5 }")
        for param, item in params.items():
            if not isinstance(item, (str, int, float, bool)):
                fail(f"{key}.params.{param}", "must be a string, number or true/false")
        train = _train_table(table.get("train"), name, params, key, fail, base)
        try:
            if train is None:  # a trained controller's model does not exist yet
                make_controller(name, params)  # bad parameters fail here, not in every run
        except TwinTrafficError as error:
            fail(f"{key}.params", str(error))
        default = RunSpec("", controller=name, params=params).label.split("/")[1]
        label = table.get("label", default)
        if not isinstance(label, str) or not label:
            fail(f"{key}.label", "must be a non-empty string")
        folder = folder_name(label)
        if folder in folders:
            fail(key, f"same label '{label}' as {folders[folder]}; give one of them a label")
        folders[folder] = key
        entries.append(ControllerEntry(label, name, dict(params), train))
    return tuple(entries)


def _train_table(
    value: Any, name: str, params: Mapping[str, Any], key: str, fail: Fail, base: Path
) -> dict[str, Any] | None:
    """Check a ``[controllers.train]`` table (train the policy, then evaluate it), its
    recipe included, so that a mistake stops the sweep before any run."""
    from twin_traffic.agent import ALGORITHM_NAMES
    from twin_traffic.train import load_recipe

    if value is None:
        return None
    if name != "policy":
        fail(f"{key}.train", 'only a name = "policy" controller is trained by the sweep')
    if not isinstance(value, dict):
        fail(f"{key}.train", 'must be a table, e.g. train = { algo = "ppo", timesteps = 100000 }')
    _known_keys(value, _TRAIN_KEYS, f"{key}.train", "train", fail)
    if "model" in params:
        fail(f"{key}.params.model", "a trained controller's model comes from its training")
    for number, least in (("timesteps", 1), ("seed", 0), ("workers", 1), ("envs", 1)):
        item = value.get(number, least)
        if isinstance(item, bool) or not isinstance(item, int) or item < least:
            fail(f"{key}.train.{number}", f"must be a whole number >= {least}")
    algo = value.get("algo", "ppo")
    if algo not in ALGORITHM_NAMES:
        fail(f"{key}.train.algo", f"unknown algorithm {algo!r}; choose one of: "
             f"{', '.join(ALGORITHM_NAMES)}")  # fmt: skip
    recipe = value.get("recipe")
    if recipe is not None and not isinstance(recipe, str):
        fail(f"{key}.train.recipe", "must be the path of a recipe file, e.g. recipe = 'my.toml'")
    try:
        load_recipe(recipe_file(base, value))
    except TwinTrafficError as error:
        fail(f"{key}.train.recipe", str(error))
    return dict(value)


def _seeds(value: Any, fail: Fail) -> tuple[int, ...]:
    from twin_traffic.seeds import SeedError, check_seeds, parse_seeds

    try:
        if isinstance(value, str):
            return parse_seeds(value, "seeds")
        if not isinstance(value, list):
            fail("seeds", 'must be a list of seeds, e.g. [0, 1, 2], or a string "0-9"')
        return check_seeds(value, "seeds")
    except SeedError as error:
        fail(*str(error).split(": ", 1))


# -- running ---------------------------------------------------------------------------------

RunRecord = dict[str, Any]
"""One entry of the index: run, scenario, controller, seed, path, status, error, timings."""

StartCallback = Callable[[int, int], None]
"""Called once with (runs in the sweep, runs already finished by an earlier invocation)."""

RunCallback = Callable[[SweepRun, RunRecord], None]
"""Called after each run of this invocation with the run and its index entry."""


@dataclass
class SweepResult:
    """What a sweep invocation did; ``records`` is the index, in sweep order."""

    out: Path
    records: list[RunRecord]
    skipped: int
    seconds: float

    @property
    def failed(self) -> list[RunRecord]:
        """Index entries of runs that failed."""
        return [r for r in self.records if r["status"] == "failed"]

    @property
    def ok(self) -> list[RunRecord]:
        """Index entries of runs that finished."""
        return [r for r in self.records if r["status"] == "ok"]


def run_sweep(
    sweep: Sweep,
    out: Path,
    *,
    workers: int = 1,
    engine: Engine = "local",
    address: str | None = None,
    on_start: StartCallback | None = None,
    on_run: RunCallback | None = None,
    on_train: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every run of ``sweep`` not finished yet in ``out``, storing results as they come.

    Args:
        sweep: from :func:`load_sweep`.
        out: the results folder (created if needed).
        workers: runs in parallel (local engine; with Ray, the CPUs of a local instance).
        engine: ``local`` (a process pool) or ``ray`` (Ray tasks, ``pip install
            "twin-traffic[ray]"``).
        address: a Ray cluster address (``ray`` engine); a local instance without it.
        on_start: told the number of runs and how many are already done.
        on_run: told each run's index entry once it is stored (or failed, with its
            agent's training).
        on_train: told when an agent's training starts and ends, in words.

    Raises:
        SweepError: a results folder in use by another sweep, or a bad engine choice.
    """
    if engine not in ENGINES:
        raise SweepError(f"unknown engine '{engine}'; choose local or ray")
    if address is not None and engine != "ray":
        raise SweepError("--address names a Ray cluster; add --engine ray")
    started = time.perf_counter()
    out = Path(out)
    _check_results_folder(out, sweep)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _run_in(sweep, out, workers, engine, address, on_start, on_run, on_train, started)
    except BaseException:
        # A sweep that stopped before anything of its own was stored (workers that cannot
        # start, an interrupt) leaves no folder it made; a run's results or an agent's
        # training checkpoints are kept for the resume.
        if created and {p.name for p in out.iterdir()} <= {SWEEP_COPY, INDEX_FILE, LOCK_FILE}:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _run_in(
    sweep: Sweep,
    out: Path,
    workers: int,
    engine: Engine,
    address: str | None,
    on_start: StartCallback | None,
    on_run: RunCallback | None,
    on_train: Callable[[str], None] | None,
    started: float,
) -> SweepResult:
    with _exclusive(out):
        remove_staging(out)
        write_file_atomic(out / SWEEP_COPY, sweep.path.read_bytes())
        runs = sweep.runs(out)
        records = {run.key: _record(run) for run in runs}
        previous = _previous_errors(out)
        todo: list[SweepRun] = []
        for run in runs:
            folder = out / run.folder
            if _finished(folder, run.spec):
                records[run.key].update(status="ok", timings=read_metrics(folder)["timings"])
                continue
            if folder.exists():  # another spec's results (the sweep file changed)
                shutil.rmtree(folder)
            if run.key in previous:
                records[run.key]["previous_error"] = previous[run.key]
            todo.append(run)
        skipped = len(runs) - len(todo)
        _write_index(out, sweep, records)
        if on_start is not None:
            on_start(len(runs), skipped)
        todo = _train_agents(sweep, out, todo, records, on_train or (lambda _: None), on_run)
        specs = [run.spec for run in todo]
        try:
            for outcome in _execute(engine, specs, workers, address):
                run = todo[outcome.index]
                record = records[run.key]
                record.pop("previous_error", None)
                if outcome.result is not None:
                    write_run(out, outcome.result, run.folder)
                    record.update(status="ok", error=None, timings=outcome.result.timings)
                else:
                    record.update(status="failed", error=outcome.error)
                _write_index(out, sweep, records)
                if on_run is not None:
                    on_run(run, record)
        finally:
            # An interrupt between a run's folder and the index's update must not leave
            # the index behind the disk.
            for run in todo:
                record = records[run.key]
                if record["status"] == "pending" and _finished(out / run.folder, run.spec):
                    record.update(status="ok", timings=read_metrics(out / run.folder)["timings"])
            _write_index(out, sweep, records)
    return SweepResult(out, list(records.values()), skipped, time.perf_counter() - started)


def _check_results_folder(out: Path, sweep: Sweep) -> None:
    """Refuse a results folder that holds anything but this sweep's own results (which
    a new run of the sweep resumes): another sweep's, an evaluation's, other files."""
    if out.exists() and not out.is_dir():
        raise SweepError(f"{out} is a file; give a folder for the results")
    if not out.exists() or not [p for p in out.iterdir() if p.name != LOCK_FILE]:
        return
    try:
        index = read_index(out)
    except DamagedFileError:
        copy = out / SWEEP_COPY
        if copy.is_file() and copy.read_bytes() == sweep.path.read_bytes():
            return  # this sweep's own folder: its index is written again
        raise
    fix = "give a new or empty folder (or this sweep's own, to resume it)"
    if index is None or "sweep_file" not in index or not (out / SWEEP_COPY).is_file():
        raise SweepError(f"{out} already holds files that are not this sweep's results; {fix}")
    if index.get("sweep") != sweep.name:
        raise SweepError(
            f"{out} holds the results of the sweep '{index.get('sweep')}', not "
            f"'{sweep.name}'; {fix}"
        )
    written_by = index.get("sweep_path")
    if written_by is not None and written_by != str(sweep.path.resolve()):
        # Another file of the same name: its changes would read as edits of this one.
        raise SweepError(
            f"{out} holds the results of the sweep file {written_by}, not {sweep.path}; {fix}"
        )


def _train_agents(
    sweep: Sweep,
    out: Path,
    todo: list[SweepRun],
    records: dict[str, RunRecord],
    say: Callable[[str], None],
    on_run: RunCallback | None,
) -> list[SweepRun]:
    """Train the agents that pending runs evaluate (resuming an interrupted training);
    a failed training fails its runs. Returns the runs left to execute."""
    from twin_traffic.train import load_recipe, train

    failed: set[str] = set()
    for scenario in sweep.scenarios:
        for controller in sweep.controllers:
            if controller.train is None:
                continue
            keys = {
                r.key
                for r in todo
                if (r.scenario, r.controller) == (scenario.label, controller.label)
            }
            folder = agent_folder(
                out, scenario, controller, sweep.training_key(scenario, controller)
            )
            if not keys or (folder / "final.zip").exists():
                continue
            settings = controller.train
            checkpoints = folder / "checkpoints"
            interrupted = checkpoints.is_dir() and any(checkpoints.iterdir())
            what = f"{controller.label} on {scenario.label}"
            say(f"{'resuming the training' if interrupted else 'training'} of {what}")
            began = time.perf_counter()
            if not interrupted and folder.exists():
                # Stopped before its first checkpoint: nothing to resume, start it afresh
                # (training refuses a folder that already holds something).
                shutil.rmtree(folder)
            try:
                # Read again: the recipe may have changed since the sweep file loaded.
                recipe = load_recipe(recipe_file(sweep.path.parent, settings))
                changes: dict[str, Any] = {
                    "env": {**recipe.env, "begin": sweep.begin, "end": sweep.end}
                }
                if "timesteps" in settings:
                    changes["timesteps"] = settings["timesteps"]
                if "workers" in settings or "envs" in settings:
                    changes["simulations"] = settings.get("workers", settings.get("envs"))
                train(
                    scenario.source, replace(recipe, **changes), folder,
                    seed=settings.get("seed", 0), progress_bar=False, resume=interrupted,
                    scenario_options={
                        "routes": scenario.routes, "protocol": sweep.protocol.name,
                        "time_to_teleport": sweep.protocol.time_to_teleport,
                        "sumo_options": sweep.protocol.sumo_options,
                        **sweep.protocol.timings(),
                    },
                )  # fmt: skip
            except TwinTrafficError as error:
                say(f"training of {what} failed: {error}")
                for key in keys:
                    records[key].update(status="failed", error=f"training failed: {error}")
                failed |= keys
            else:
                say(f"trained {what} in {time.perf_counter() - began:.0f} s")
    if failed:
        _write_index(out, sweep, records)
        for run in todo:
            if run.key in failed and on_run is not None:
                on_run(run, records[run.key])
    return [run for run in todo if run.key not in failed]


def _execute(
    engine: Engine, specs: Sequence[RunSpec], workers: int, address: str | None
) -> Iterator[Outcome]:
    if not specs:
        return iter(())
    if engine == "ray":
        from twin_traffic.ray_engine import run_specs_ray

        return run_specs_ray(specs, workers=workers, address=address)
    from twin_traffic.executor import run_specs

    return run_specs(specs, workers=workers)


def _record(run: SweepRun) -> RunRecord:
    return {
        "run": run.key,
        "scenario": run.scenario,
        "controller": run.controller,
        "controller_name": run.spec.controller,
        "params": dict(run.spec.params),
        "seed": run.seed,
        "path": run.folder.as_posix(),
        "status": "pending",
        "error": None,
        "timings": None,
    }


def _finished(folder: Path, spec: RunSpec) -> bool:
    """A complete run folder written from exactly this spec."""
    if not is_complete(folder):
        return False
    # Compared as specs, so a folder written before a field existed (its default) counts.
    expected = json.loads(json.dumps(json_safe(spec.to_dict())))
    try:
        stored = RunSpec.from_dict(read_spec(folder)).to_dict()
        read_metrics(folder)
    except (TypeError, DamagedFileError):  # a field this version does not know, a cut file
        return False  # run it again
    return json.loads(json.dumps(json_safe(stored))) == expected


def _previous_errors(out: Path) -> dict[str, str]:
    """What failed last time, kept in the index while those runs wait to be retried."""
    try:
        index = read_index(out)
    except (OSError, DamagedFileError):
        return {}
    if index is None:
        return {}
    return {r["run"]: r["error"] for r in index.get("runs", []) if r.get("status") == "failed"}


def _write_index(out: Path, sweep: Sweep, records: Mapping[str, RunRecord]) -> None:
    counts = {status: 0 for status in ("ok", "failed", "pending")}
    for record in records.values():
        counts[record["status"]] += 1
    write_json_atomic(
        out / INDEX_FILE,
        {
            "sweep": sweep.name,
            "sweep_file": SWEEP_COPY,
            "sweep_path": str(sweep.path.resolve()),
            "baseline": sweep.baseline,
            "scenarios": [s.label for s in sweep.scenarios],
            "controllers": [c.label for c in sweep.controllers],
            "seeds": list(sweep.seeds),
            "counts": counts,
            "runs": list(records.values()),
        },
    )


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` so two sweeps never write one results folder at once."""
    try:
        import fcntl
    except ModuleNotFoundError:  # pragma: no cover - Windows: no advisory locks
        yield
        return
    with open(out / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepError(
                f"{out}: another sweep is writing to this folder; wait for it to finish or "
                "choose another --out"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
