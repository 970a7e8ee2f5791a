"""Run one episode of a scenario under a controller and score it on SUMO's outputs.

A run is a pure function of its :class:`RunSpec`: scenario, controller, parameters and
seed. Everything SUMO writes goes to a scratch folder that is read back into a
:class:`RunResult` and removed.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin_traffic.control import SignalBank
from twin_traffic.controllers import Controller, make_controller
from twin_traffic.controllers.base import DecidingController, is_deciding
from twin_traffic.errors import TwinTrafficError
from twin_traffic.metrics import read_teleports, read_tripinfo, summarize_run
from twin_traffic.network import Network, load_network
from twin_traffic.protocol import sumo_option_tokens
from twin_traffic.scenario import Scenario, load_scenario
from twin_traffic.sim import (
    LAST_STEP_VEHICLE_HALTING_NUMBER,
    Backend,
    OutputFiles,
    SimConfig,
    Simulation,
)

ProgressCallback = Callable[[float, float], None]
"""Called with (simulated seconds done, seconds in the window) as a run advances."""

DEFAULT_GRIDLOCK_SECONDS = 300.0
_EPS = 1e-6


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's metrics.

    Attributes:
        scenario: a built-in name, a ``.sumocfg`` path, or a ``.net.xml`` path with ``routes``.
        controller: a controller name (see ``twin_traffic.controllers.CONTROLLERS``).
        params: the controller's parameters.
        seed: SUMO's random seed.
        routes: route files, with a ``.net.xml`` scenario.
        begin: start time override, s.
        end: end time override, s.
        backend: ``libsumo`` or ``traci``; it does not change the metrics.
        gui: watch the run in sumo-gui.
        gridlock_seconds: report a gridlock once every vehicle in the network has stood
            still for this long.
        sample_interval: seconds between samples of the queues (and gridlock checks).
        emissions: also measure CO2 and fuel (SUMO's emissions device, which makes SUMO
            itself 30-50% slower; off, they are NaN).
        protocol: the benchmark preset the run follows (``resco``), if any: its
            time-to-teleport applies unless ``time_to_teleport`` is given. Its controller
            timings (decision interval, yellow) are controller parameters: the CLI and
            sweeps put them in ``params``.
        time_to_teleport: SUMO's ``--time-to-teleport``, s (-1: never; ``None``: the
            scenario's own).
        sumo_options: further SUMO options (see :mod:`twin_traffic.protocol`).
    """

    scenario: str
    controller: str = "fixed"
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    routes: tuple[str, ...] = ()
    begin: float | None = None
    end: float | None = None
    backend: Backend = "libsumo"
    gui: bool = False
    gridlock_seconds: float = DEFAULT_GRIDLOCK_SECONDS
    sample_interval: float = 5.0
    emissions: bool = False
    protocol: str | None = None
    time_to_teleport: float | None = None
    sumo_options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Paths as the strings a spec's JSON holds; a lone route file or SUMO option is
        # that one, not its characters.
        object.__setattr__(self, "scenario", _path_text(self.scenario))
        object.__setattr__(self, "params", {k: _path_text(v) for k, v in self.params.items()})
        for key in ("routes", "sumo_options"):
            value = getattr(self, key)
            items = (value,) if isinstance(value, (str, os.PathLike)) else tuple(value)
            object.__setattr__(self, key, tuple(_path_text(item) for item in items))
        for name in ("begin", "end", "time_to_teleport", "gridlock_seconds", "sample_interval"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, Real)):
                raise TwinTrafficError(f"{name} must be a number of seconds, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, Integral):
            raise TwinTrafficError(f"seed must be a whole number, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        if self.backend not in ("libsumo", "traci"):
            raise TwinTrafficError(f"backend must be 'libsumo' or 'traci', got {self.backend!r}")
        object.__setattr__(self, "sumo_options", sumo_option_tokens(self.sumo_options))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the spec."""
        data = asdict(self)
        data["params"] = dict(self.params)
        data["routes"] = list(self.routes)
        data["sumo_options"] = list(self.sumo_options)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["routes"] = tuple(values.get("routes", ()))
        values["sumo_options"] = tuple(values.get("sumo_options", ()))
        return cls(**values)

    def sumo_args(self) -> tuple[str, ...]:
        """The SUMO options of the run's protocol (an unknown preset or a bad
        time-to-teleport raises ProtocolError)."""
        from twin_traffic.protocol import protocol_sumo_args

        return protocol_sumo_args(self.protocol, self.time_to_teleport, self.sumo_options)

    @property
    def label(self) -> str:
        """A short human-readable name: ``scenario/controller/seed``."""
        scenario = Path(self.scenario).name.split(".")[0]
        params = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        controller = f"{self.controller}[{params}]" if params else self.controller
        return f"{scenario}/{controller}/seed{self.seed}"


def _check_loaded(spec: RunSpec, scenario: Scenario) -> None:
    """Refuse a loaded scenario that is not the spec's (its metrics would be filed under
    the spec's name)."""
    source = (scenario.config_file or scenario.net_file).resolve()
    given = Path(spec.scenario).resolve()  # a file, or a folder standing for its .sumocfg
    same = (scenario.builtin and spec.scenario == scenario.name) or given in (
        source,
        source.parent,
    )
    window = all(
        given is None or given == loaded
        for given, loaded in ((spec.begin, scenario.begin), (spec.end, scenario.end))
    )
    if not same or not window:
        raise TwinTrafficError(
            f"run_episode: the scenario given ({scenario.source_label}, "
            f"{scenario.begin:g}-{scenario.end:g} s) is not the spec's ({spec.scenario}, "
            f"begin {spec.begin}, end {spec.end}); load the spec's or leave scenario out"
        )


def _path_text(value: Any) -> Any:
    """A path as its string; anything else as it is."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


@dataclass
class RunResult:
    """A finished run: its metrics and the tables they come from."""

    spec: RunSpec
    metrics: dict[str, float]
    trips: pd.DataFrame
    queues: pd.DataFrame
    gridlock_at: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


def run_episode(
    spec: RunSpec,
    progress: ProgressCallback | None = None,
    scenario: Scenario | None = None,
    probes: tuple[Path, ...] = (),
) -> RunResult:
    """Simulate ``spec`` from begin to end and compute its metrics.

    Args:
        spec: what to run.
        progress: optional callback, called about every simulated minute.
        scenario: the already loaded scenario of ``spec`` (saves validating it again).
        probes: additional files that measure something for the caller (e.g. a
            ``<laneData>`` definition), loaded with the run; the outputs they declare
            are the caller's to place and read.

    Raises:
        TwinTrafficError: for a bad scenario, an unknown controller or a SUMO failure.
    """
    started = time.perf_counter()
    if not spec.sample_interval > 0:
        raise TwinTrafficError(f"sample_interval must be > 0 seconds, got {spec.sample_interval!r}")
    if scenario is None:
        scenario = load_scenario(spec.scenario, routes=spec.routes, begin=spec.begin, end=spec.end)
    else:
        _check_loaded(spec, scenario)
    network = load_network(scenario)
    controller = make_controller(spec.controller, spec.params)
    check_fits(controller, network)
    timings = {"prepare": time.perf_counter() - started}
    with tempfile.TemporaryDirectory(prefix="twin-traffic-") as scratch:
        directory = Path(scratch)
        outputs = OutputFiles(directory, emissions=spec.emissions)
        additional = [*controller.additional_files(network, directory), *probes]
        config = SimConfig(backend=spec.backend, gui=spec.gui, extra_args=spec.sumo_args())
        sim = Simulation(scenario, spec.seed, outputs, config, additional_files=additional)
        clock = time.perf_counter()
        with sim:
            timings["sumo_start"] = time.perf_counter() - clock
            clock = time.perf_counter()
            sample_times, queues, gridlock_at = _drive(sim, network, controller, spec, progress)
            timings["simulate"] = time.perf_counter() - clock
            clock = time.perf_counter()
        trips = read_tripinfo(outputs.tripinfo)
        teleports = read_teleports(outputs.statistics)
    metrics = summarize_run(trips, queues, teleports, gridlock_at)
    timings["collect"] = time.perf_counter() - clock
    queue_table = pd.DataFrame(queues, columns=list(network.signal_ids))
    queue_table.insert(0, "time", sample_times)
    return RunResult(spec, metrics, trips, queue_table, gridlock_at, timings)


def check_fits(controller: Controller, network: Network) -> None:
    """Raise, before SUMO starts, when ``controller`` cannot run ``network``: the signals it
    would take over (see :meth:`~twin_traffic.network.Network.check_takeover`), and what
    the controller checks itself (a plan file's signals and links)."""
    if controller.name != "fixed":  # every other controller replaces the programmes
        taken = network.controlled_ids if is_deciding(controller) else network.signal_ids
        network.check_takeover(taken, controller.name)
    check = getattr(controller, "check", None)
    if check is not None:
        check(network)


class DecisionRunner:
    """The runner's side of a deciding controller: it owns the phase engines (a
    :class:`~twin_traffic.control.SignalBank` built with the controller's timing) and
    the lane reader, reads the state once per decision and requests the greens the
    controller chooses."""

    def __init__(self, controller: Controller, network: Network, sim: Simulation) -> None:
        assert isinstance(controller, DecidingController)
        self.controller = controller
        self.bank = SignalBank(network, network.controlled_ids, controller.timing,
                               sim.step_length)  # fmt: skip
        self.bank.start(sim)
        self.observer = controller.observer_for(network)
        self.observer.attach(sim)
        controller.start(network, self.bank.engines, self.observer)

    def decide(self, sim: Simulation) -> None:
        """Read the lanes and request each signal's chosen green."""
        snapshot = self.observer.read(sim.time)
        self.bank.request(self.controller.greens(snapshot, self.bank.engines, self.observer))


def _drive(
    sim: Simulation,
    network: Network,
    controller: Controller,
    spec: RunSpec,
    progress: ProgressCallback | None,
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Advance SUMO to the end; sample queues and watch for gridlock every sample interval.

    Between samples and decisions SUMO runs on its own (one ``simulationStep(until)``
    call), so a controller that SUMO runs costs almost nothing in Python.

    Returns:
        sample times, queues per signal at those times ``(samples, signals)``, and the
        time a gridlock began (``None`` without one).
    """
    lights = list(network.traffic_lights.values())
    lanes = list(dict.fromkeys(lane for light in lights for lane in light.incoming_lanes))
    signal_of_lane = np.array(
        [
            next(i for i, light in enumerate(lights) if lane in light.incoming_lanes)
            for lane in lanes
        ]
    )
    approach_halting = sim.lane_reader(lanes, [LAST_STEP_VEHICLE_HALTING_NUMBER])
    network_halting = sim.edge_reader(sim.all_edges(), [LAST_STEP_VEHICLE_HALTING_NUMBER])

    scenario = sim.scenario
    runner = DecisionRunner(controller, network, sim) if is_deciding(controller) else None
    interval = controller.decision_interval
    next_decision = scenario.begin if interval is not None else math.inf
    next_sample = scenario.begin + spec.sample_interval
    next_report = scenario.begin
    times: list[float] = []
    queues: list[np.ndarray] = []
    stuck_since: float | None = None
    gridlock_at: float | None = None
    while sim.running:
        if runner is not None and interval is not None and sim.time >= next_decision - _EPS:
            runner.decide(sim)
            next_decision += interval
        until = min(next_sample, next_decision, scenario.end)
        if runner is None:
            sim.step(until)  # SUMO runs the controller's programmes
        else:
            runner.bank.advance(sim, until)
        if sim.time < next_sample - _EPS:
            continue
        next_sample += spec.sample_interval
        times.append(sim.time)
        # bincount, not a matrix product: a BLAS call would wake threads that spin beside SUMO.
        halting = approach_halting.read()[:, 0]
        queues.append(np.bincount(signal_of_lane, weights=halting, minlength=len(lights)))
        vehicles = sim.vehicle_count()
        if vehicles and network_halting.read()[:, 0].sum() >= vehicles:
            stuck_since = sim.time if stuck_since is None else stuck_since
            if gridlock_at is None and sim.time - stuck_since >= spec.gridlock_seconds:
                gridlock_at = stuck_since
        else:
            stuck_since = None
        if progress is not None and sim.time >= next_report:
            progress(sim.time - scenario.begin, scenario.duration)
            next_report += 60.0
    if progress is not None:
        progress(scenario.duration, scenario.duration)
    queue_array = np.array(queues) if queues else np.zeros((0, len(lights)))
    return np.array(times), queue_array, gridlock_at
