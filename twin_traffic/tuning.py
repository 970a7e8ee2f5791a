"""Black-box tuning of a fixed-time plan over simulated episodes.

The decision vector holds one shared cycle length, then per signal one weight per green
phase (normalised into the green time left after minimum greens and the programme's
yellow and all-red time) and, with two or more signals, an offset as a fraction of the
cycle. A shared cycle is what makes offsets mean something: coordination of signals
only exists when they repeat with the same period.

The optimiser is SciPy's differential evolution: derivative-free, happy with the noisy,
piecewise-constant objective that whole-second plans give, and its population is
evaluated one generation at a time, so every candidate × training seed of a generation
runs in parallel worker processes. The first two members of the initial population are
the scenario's own plan and Webster's plan, so the tuned plan is never worse than either
on the training seeds (when the signals share one cycle); the others come from a Latin
hypercube. With a budget of ``N`` plans the population has
``P = max(5, round(1.5 sqrt(N)))`` members and runs ``N // P - 1`` generations after the
first; polishing (L-BFGS-B on a step function) is off.

The objective is the mean ``delay`` over the training seeds; the result is reported on
held-out seeds by the caller, where the tuned plan has not been fitted to the noise.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import differential_evolution
from scipy.stats import qmc

from twin_traffic.errors import TwinTrafficError
from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.network import Network, TrafficLight, load_network
from twin_traffic.plans import (
    Programme,
    green_slots,
    lost_time,
    plan_xml,
    read_plan,
    round_to_total,
    with_greens,
    write_plan,
)
from twin_traffic.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    from twin_traffic.protocol import RunProtocol

PROGRAM_ID = "twin-traffic-tuned"
MIN_BUDGET = 5

TuneProgress = Callable[[int, int, float], None]
"""Called with (plans evaluated, budget, best mean training delay so far) after each plan."""


class PlanSpace:
    """Maps decision vectors in a box to whole-second fixed-time plans, and back.

    Layout: ``[cycle, (green weights of signal 1), ..., (offset fractions per signal)]``.
    Offsets are left out with a single signal, where they change nothing.
    """

    def __init__(
        self,
        network: Network,
        min_cycle: float = 30.0,
        max_cycle: float = 150.0,
        min_green: float = 5.0,
    ) -> None:
        self.lights: list[TrafficLight] = list(network.traffic_lights.values())
        self.min_green = float(min_green)
        for light in self.lights:
            if not green_slots(light.phases):
                raise TwinTrafficError(
                    f"signal '{light.id}' has no green phase to time; give its programme a "
                    "phase with G or g"
                )
        # Every signal must fit its transitions and minimum greens into the shared cycle.
        needed = max(
            lost_time(light.phases) + len(green_slots(light.phases)) * self.min_green
            for light in self.lights
        )
        self.min_cycle = float(max(min_cycle, math.ceil(needed)))
        self.max_cycle = float(max_cycle)
        if self.min_cycle > self.max_cycle:
            raise TwinTrafficError(
                f"the signals need a cycle of at least {self.min_cycle:g} s for their "
                f"transitions and minimum greens; raise max_cycle above {self.max_cycle:g} s "
                "or lower min_green"
            )
        self.offsets = len(self.lights) > 1
        self.green_counts = [len(green_slots(light.phases)) for light in self.lights]

    @property
    def dimension(self) -> int:
        """Length of a decision vector."""
        return 1 + sum(self.green_counts) + (len(self.lights) if self.offsets else 0)

    @property
    def bounds(self) -> list[tuple[float, float]]:
        """Box bounds of each coordinate."""
        greens = [(0.0, 1.0)] * sum(self.green_counts)
        offsets = [(0.0, 1.0)] * (len(self.lights) if self.offsets else 0)
        return [(self.min_cycle, self.max_cycle), *greens, *offsets]

    def decode(self, x: Sequence[float] | np.ndarray) -> list[Programme]:
        """The plan a decision vector stands for (whole seconds, deterministic)."""
        cycle = round(float(x[0]))
        position = 1
        programmes = []
        offset_at = 1 + sum(self.green_counts)
        for k, (light, count) in enumerate(zip(self.lights, self.green_counts, strict=True)):
            weights = np.clip(np.asarray(x[position : position + count], dtype=float), 0, 1)
            position += count
            shares = weights / weights.sum() if weights.sum() > 0 else np.full(count, 1 / count)
            spare = max(0, round(cycle - lost_time(light.phases) - count * self.min_green))
            extra = round_to_total(list(shares * spare), spare)
            greens = [self.min_green + e for e in extra]
            offset = 0
            if self.offsets:
                offset = round(float(np.clip(x[offset_at + k], 0, 1)) * cycle) % cycle
            programmes.append(with_greens(light, greens, PROGRAM_ID, offset=offset))
        return programmes

    def encode(self, programmes: dict[str, Programme]) -> np.ndarray:
        """A decision vector for given programmes of the same signals (clipped to the box)."""
        # Signals of different cycles share the commonest one (the longer on a tie).
        cycles = [programmes[light.id].cycle for light in self.lights]
        common = max(cycles, key=lambda c: (cycles.count(c), c))
        cycle = float(np.clip(common, *self.bounds[0]))
        vector = [cycle]
        offsets = []
        for light, count in zip(self.lights, self.green_counts, strict=True):
            programme = programmes[light.id]
            greens = np.array([programme.phases[i].duration for i in green_slots(light.phases)])
            extra = np.maximum(greens - self.min_green, 0)
            vector += list(extra / extra.max() if extra.max() > 0 else np.ones(count))
            offsets.append((programme.offset % programme.cycle) / programme.cycle)
        if self.offsets:
            vector += offsets
        return np.array(vector, dtype=float)


@dataclass
class TuneResult:
    """The outcome of :func:`tune`.

    Attributes:
        programmes: the best plan found.
        delay: its mean delay over the training seeds, s/trip.
        per_seed: its delay on each training seed, s/trip.
        baseline: the scenario's own plan's mean delay on the training seeds (it is the
            first candidate), s/trip.
        evaluations: candidate plans evaluated (the optimiser's count).
        simulations: episodes actually simulated (repeated plans are looked up).
        history: best mean training delay after each evaluation.
    """

    programmes: list[Programme]
    delay: float
    per_seed: dict[int, float]
    baseline: float
    evaluations: int
    simulations: int
    history: list[float] = field(default_factory=list)


def population_size(budget: int) -> int:
    """Members of the differential-evolution population for a budget of plans."""
    return max(MIN_BUDGET, min(budget, round(1.5 * math.sqrt(budget))))


def tune(
    scenario: str,
    *,
    budget: int,
    seeds: Sequence[int],
    workers: int = 1,
    min_cycle: float = 30.0,
    max_cycle: float = 150.0,
    min_green: float = 5.0,
    optimizer_seed: int = 0,
    routes: tuple[str, ...] = (),
    begin: float | None = None,
    end: float | None = None,
    progress: TuneProgress | None = None,
    protocol: RunProtocol | None = None,
) -> TuneResult:
    """Optimise the cycle, splits and offsets of a scenario's fixed-time plans.

    Args:
        scenario: a built-in name, ``.sumocfg`` or ``.net.xml`` (with ``routes``).
        budget: candidate plans to evaluate (each on every training seed); at least 5.
        seeds: training seeds.
        workers: simulations run in parallel.
        min_cycle: shortest cycle, s.
        max_cycle: longest cycle, s.
        min_green: shortest green of any phase, s.
        optimizer_seed: seed of differential evolution; with the same inputs it gives the
            same plan.
        routes: route files, with a ``.net.xml`` scenario.
        begin: start time override, s.
        end: end time override, s.
        progress: called after each evaluated plan.
        protocol: the benchmark protocol of every simulation (see
            :mod:`twin_traffic.protocol`).

    Raises:
        TwinTrafficError: a bad scenario or budget, or a simulation that failed.
    """
    if budget < MIN_BUDGET:
        raise TwinTrafficError(f"--budget {budget}: tuning needs at least {MIN_BUDGET} plans")
    if not seeds:
        raise TwinTrafficError("tuning needs at least one training seed (--seeds 0 1 2)")
    loaded = load_scenario(scenario, routes=routes, begin=begin, end=end)
    network = load_network(loaded)
    space = PlanSpace(network, min_cycle, max_cycle, min_green)
    population = population_size(budget)
    generations = budget // population - 1
    sampler = qmc.LatinHypercube(d=space.dimension, seed=optimizer_seed)
    lows, highs = (np.array(side) for side in zip(*space.bounds, strict=True))
    init = qmc.scale(sampler.random(population), lows, highs)
    init[0] = space.encode(current_programmes(loaded, network))
    init[1] = space.encode(_webster_programmes(network, min_cycle, max_cycle, min_green))

    seed_list = list(dict.fromkeys(int(s) for s in seeds))
    total = population * (generations + 1)
    template = RunSpec(
        scenario=scenario if loaded.builtin else str(Path(scenario).resolve()),
        controller="plan",
        routes=tuple(str(Path(r).resolve()) for r in routes),
        begin=begin,
        end=end,
        emissions=False,  # CO2 is not the objective; the device costs ~20% of SUMO's time
        protocol=protocol.name if protocol else None,
        time_to_teleport=protocol.time_to_teleport if protocol else None,
        sumo_options=protocol.sumo_options if protocol else (),
    )
    cache: dict[str, dict[int, float]] = {}
    history: list[float] = []
    best: list[tuple[float, list[Programme]]] = []

    with tempfile.TemporaryDirectory(prefix="twin-traffic-tune-") as scratch:
        directory = Path(scratch)

        def objective(xs: np.ndarray) -> np.ndarray:
            # One column per candidate: a whole generation runs as one parallel batch.
            candidates = [space.decode(xs[:, j]) for j in range(xs.shape[1])]
            keys = [plan_xml(plan) for plan in candidates]
            pending = {key: plan for key, plan in zip(keys, candidates, strict=True)}
            fresh = {key: plan for key, plan in pending.items() if key not in cache}
            # Plans met before (whole seconds make repeats common) cost no simulation.
            evaluated = [key for key in keys if key in cache]

            def finished(key: str) -> None:
                evaluated.append(key)
                if progress is not None:
                    done = min(len(history) + len(evaluated), total)
                    cost = min(float(np.mean(list(cache[k].values()))) for k in evaluated)
                    progress(done, total, min([cost, *(history[-1:])]))

            _simulate(fresh, seed_list, directory, cache, workers, template, finished)
            costs = np.array([float(np.mean([cache[k][s] for s in seed_list])) for k in keys])
            for cost, plan in zip(costs, candidates, strict=True):
                if not best or cost < best[0][0]:
                    best[:] = [(float(cost), plan)]
                history.append(best[0][0])
            if progress is not None:
                progress(len(history), total, best[0][0])
            return costs

        if generations > 0:
            differential_evolution(
                _columns(objective),
                space.bounds,
                init=init,
                maxiter=generations,
                polish=False,  # a gradient method cannot polish a step function
                seed=optimizer_seed,
                tol=0,  # spend the whole budget: no early stop on a flat population
                vectorized=True,
                updating="deferred",
            )
        else:
            objective(init.T)
    baseline_key = plan_xml(space.decode(init[0]))
    cost, programmes = best[0]
    key = plan_xml(programmes)
    return TuneResult(
        programmes=programmes,
        delay=cost,
        per_seed={s: cache[key][s] for s in seed_list},
        baseline=float(np.mean([cache[baseline_key][s] for s in seed_list])),
        evaluations=len(history),
        simulations=len(cache) * len(seed_list),
        history=history,
    )


def current_programmes(scenario: Scenario, network: Network) -> dict[str, Programme]:
    """The programmes SUMO runs without a controller, with their offsets."""
    offsets: dict[str, float] = {}
    for source in (scenario.net_file, *scenario.additional_files):
        try:
            offsets |= {tls: p.offset for tls, p in read_plan(source).items()}
        except TwinTrafficError:
            continue  # a file without <tlLogic> changes no programme
    return {
        light.id: Programme(
            light.id, light.program_id, light.phases, offset=offsets.get(light.id, 0.0)
        )
        for light in network.traffic_lights.values()
    }


def _webster_programmes(
    network: Network, min_cycle: float, max_cycle: float, min_green: float
) -> dict[str, Programme]:
    """Webster's plan (flows measured on seed 0): a strong start for the search."""
    from twin_traffic.controllers.webster import WebsterController

    controller = WebsterController(min_cycle=min_cycle, max_cycle=max_cycle, min_green=min_green)
    with tempfile.TemporaryDirectory(prefix="twin-traffic-webster-") as scratch:
        return {p.tls_id: p for p in controller.plan(network, Path(scratch))}


def write_tuned_plan(result: TuneResult, path: Path, scenario: str, seeds: Sequence[int]) -> Path:
    """Write the tuned plan with a comment naming where it comes from."""
    cycle = result.programmes[0].cycle
    comment = (
        f"twin-traffic tune {Path(scenario).name}: cycle {cycle:g} s, mean delay "
        f"{result.delay:.2f} s/trip on seeds {' '.join(map(str, seeds))} "
        f"(own plan: {result.baseline:.2f})"
    )
    return write_plan(result.programmes, path, comment=comment)


def _columns(
    function: Callable[[np.ndarray], np.ndarray],
) -> Callable[[np.ndarray], np.ndarray]:
    """SciPy's vectorised call passes shape (D, S); a single vector comes as (D,)."""

    def call(xs: np.ndarray) -> np.ndarray:
        return function(xs.reshape(len(xs), -1))

    return call


def _simulate(
    plans: dict[str, list[Programme]],
    seeds: list[int],
    directory: Path,
    cache: dict[str, dict[int, float]],
    workers: int,
    template: RunSpec,
    finished: Callable[[str], None],
) -> None:
    """Simulate new plans on every seed into ``cache``; ``finished(key)`` per complete plan."""
    specs: list[RunSpec] = []
    owners: list[str] = []
    delays: dict[str, dict[int, float]] = {key: {} for key in plans}
    for key, plan in plans.items():
        name = hashlib.sha1(key.encode()).hexdigest()[:16]
        path = write_plan(plan, directory / f"candidate-{name}.add.xml")
        for seed in seeds:
            specs.append(_with(template, params={"file": str(path)}, seed=seed))
            owners.append(key)

    def record(key: str, seed: int, delay: float) -> None:
        delays[key][seed] = delay
        if len(delays[key]) == len(seeds):
            cache[key] = delays[key]
            finished(key)

    if workers <= 1 or len(specs) == 1:
        for spec, key in zip(specs, owners, strict=True):
            record(key, spec.seed, run_episode(spec).metrics["delay"])
        return
    from twin_traffic.executor import run_specs

    for outcome in run_specs(specs, workers=workers):
        if outcome.result is None:
            raise TwinTrafficError(f"tuning stopped: {outcome.error}")
        record(owners[outcome.index], outcome.spec.seed, outcome.result.metrics["delay"])


def _with(spec: RunSpec, **changes: object) -> RunSpec:
    return RunSpec.from_dict({**spec.to_dict(), **changes})
