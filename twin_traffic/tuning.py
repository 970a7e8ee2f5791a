"""Black-box tuning of fixed-time plans over simulated episodes.

The search space is :class:`~twin_traffic.plan_space.PlanSpace`: per coordination group
a cycle, per signal the splits of its tunable greens and an offset, the programme's own
transitions kept. The scenario's plan is a point of it.

Simulations are noisy and few, so the search is built for a small noisy budget:

* **Common random numbers.** Every candidate runs on the same training seeds, so two
  plans are compared on the same traffic, not on different draws of it.
* **Racing.** A candidate first runs on the first third of the seeds; only when it is
  within ``race_margin`` of the incumbent on those same seeds does it run on the rest
  (successive halving with two rungs). A candidate dropped there is scored by its ratio
  to the incumbent on the seeds both ran, times the incumbent's score.
* **An objective that does not reward luck**: ``mean + k * standard error`` of the delay
  over the training seeds; a plan that is good on average but erratic is penalised.
* **Never worse than the start**: the scenario's own plan and Webster's plan are the
  first candidates, and the result is the best-scoring plan whose mean delay on the
  training seeds is no higher than the better of those two. ``served_flows`` adds a
  third (by default): Webster's plan timed for the flows a deciding controller serves
  (advanced max-pressure), a better start where the scenario's own plans gridlock and
  pass less than the demand.
* **Finalists confirmed** (``confirm_seeds``, by default as many again as the training
  seeds): the best plans of the search and the starting plans also run on more seeds,
  and the choice is made over all of them; the best of many scores on a few seeds is
  often the luckiest (the winner's curse).

Two optimisers: ``local`` (the default), a (1+λ) evolution strategy from the incumbent —
λ = 4 Gaussian perturbations of a few coordinates, the step grown on success and shrunk
on failure (Rechenberg's 1/5-th rule, in the box scaled to [0, 1]); and ``de``, SciPy's
differential evolution with the starting plans in its first population. Both are
deterministic for a given ``optimizer_seed``.

Every simulation is appended to a *study* file (JSON lines) as it finishes. Simulations
are pure functions of plan and seed, so a resumed tune replays the same optimiser from
the start with those results looked up instead of simulated: it ends with the same plan
as an uninterrupted tune, and only the missing simulations are run.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import differential_evolution
from scipy.stats import qmc

from twin_traffic.errors import TwinTrafficError
from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.network import Network, load_network
from twin_traffic.plan_space import PROGRAM_ID, PlanSpace
from twin_traffic.plans import Programme, plan_xml, read_plan, write_plan
from twin_traffic.scenario import Scenario, load_scenario
from twin_traffic.seeds import seeds_after

if TYPE_CHECKING:
    from twin_traffic.executor import WorkerPool
    from twin_traffic.protocol import RunProtocol

MIN_BUDGET = 5
OPTIMIZERS = ("local", "de")
STUDY_VERSION = 1
LOCAL_BATCH = 4
LOCAL_STEP = 0.15  # first step of the local search, as a fraction of each coordinate's range
LOCAL_REDRAWS = 20  # draws of a step before a plan already tried is accepted again
SERVED_FLOWS = "advanced-max-pressure"  # the default deciding controller of the third start

TuneProgress = Callable[[int, int, float, float | None], None]
"""Called with (plans evaluated, budget, best mean training delay, its held-out delay)."""
ConfirmProgress = Callable[[int, int], None]
"""Called with (confirmation simulations done, their number) as each one ends."""


@dataclass
class Candidate:
    """A plan and what its simulations said.

    Attributes:
        key: hash of the plan's XML, its identity in the cache and the study.
        programmes: the plan.
        delays: delay (s/trip) per training seed simulated.
        score: the objective (lower is better); ``inf`` until scored.
        complete: it ran on every training seed.
    """

    key: str
    programmes: list[Programme]
    delays: dict[int, float] = field(default_factory=dict)
    score: float = math.inf
    complete: bool = False

    @property
    def mean(self) -> float:
        """Mean delay over the seeds it ran on."""
        return float(np.mean(list(self.delays.values())))


@dataclass
class TuneResult:
    """The outcome of :func:`tune`.

    Attributes:
        programmes: the best plan found.
        delay: its mean delay over the tuning seeds (the training seeds, and the
            confirmation seeds when there are any), s/trip.
        score: its objective, ``mean + k * standard error``, s/trip.
        per_seed: its delay on each tuning seed, s/trip.
        baseline: the scenario's own plan's mean delay on the tuning seeds, s/trip.
        webster: Webster's plan's mean delay on the tuning seeds, s/trip.
        evaluations: candidate plans evaluated (the budget spent).
        simulations: episodes simulated by this call (results from a study are reused).
        history: best score after each evaluation.
        optimizer: the optimiser's name.
        objective: the objective in words.
        space: the coordination groups and cycle bounds.
        held_out: the best plan's delay on the progress held-out seeds, if any were given.
        study_simulations: episodes the search rests on, this call's and those a resumed
            study had recorded.
    """

    programmes: list[Programme]
    delay: float
    score: float
    per_seed: dict[int, float]
    baseline: float
    webster: float
    evaluations: int
    simulations: int
    history: list[float] = field(default_factory=list)
    optimizer: str = "local"
    objective: str = ""
    space: str = ""
    held_out: float | None = None
    study_simulations: int = 0


def population_size(budget: int) -> int:
    """Members of the differential-evolution population for a budget of plans."""
    return max(MIN_BUDGET, min(budget, round(1.5 * math.sqrt(budget))))


def objective_score(delays: Sequence[float], k: float) -> float:
    """``mean + k * standard error`` of the delays (the mean alone for one seed)."""
    values = np.asarray(delays, dtype=float)
    if len(values) < 2:
        return float(values.mean())
    return float(values.mean() + k * values.std(ddof=1) / math.sqrt(len(values)))


def race_rungs(seeds: Sequence[int]) -> list[list[int]]:
    """The seeds of each racing rung: the first third (at least one), then all."""
    first = max(1, round(len(seeds) / 3))
    rungs = [list(seeds[:first])]
    if first < len(seeds):
        rungs.append(list(seeds))
    return rungs


class Study:
    """Simulation results of a tune on disk: one JSON line per simulation.

    The first line names what the results depend on (scenario, routes, window); a study
    is only resumed for the same.
    """

    def __init__(self, path: Path, identity: dict[str, Any], resume: bool) -> None:
        self.path = path
        self.results: dict[str, dict[int, float]] = {}
        if path.exists() and not resume:
            raise TwinTrafficError(
                f"{path}: a study is already there; pass --resume to continue it or choose "
                "another --study"
            )
        if resume:
            if not path.is_file():
                raise TwinTrafficError(f"--resume: no study at {path}; run without --resume")
            self._load(identity)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            header = {"study": STUDY_VERSION, **identity}
            path.write_text(json.dumps(header, sort_keys=True) + "\n", encoding="utf-8")

    def _load(self, identity: dict[str, Any]) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            header = {}
        if header.get("study") != STUDY_VERSION:
            raise TwinTrafficError(f"{self.path}: not a twin-traffic tuning study")
        recorded = {key: header.get(key) for key in identity}
        if recorded != json.loads(json.dumps(identity)):
            differ = ", ".join(k for k in identity if recorded[k] != identity[k])
            raise TwinTrafficError(
                f"{self.path}: the study was made with another {differ}; resume it with the "
                "same scenario options or choose another --study"
            )
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of an interrupted tune may be cut short
            self.results.setdefault(record["plan"], {})[int(record["seed"])] = record["delay"]

    def record(self, key: str, seed: int, delay: float) -> None:
        """Append one simulation's result and flush it, so an interrupt loses none."""
        self.results.setdefault(key, {})[seed] = delay
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps({"plan": key, "seed": seed, "delay": delay}) + "\n")
            stream.flush()


class Evaluator:
    """Runs candidate plans on seeds (cached, racing, in parallel) and scores them."""

    def __init__(
        self,
        template: RunSpec,
        seeds: list[int],
        directory: Path,
        workers: int,
        k: float,
        race_margin: float,
        study: Study | None,
        holdout: list[int],
    ) -> None:
        self.template = template
        self.seeds = seeds
        self.directory = directory
        self.workers = workers
        self.k = k
        self.race_margin = race_margin
        self.study = study
        self.holdout = holdout
        self.results: dict[str, dict[int, float]] = dict(study.results) if study else {}
        self.simulations = 0
        self.candidates: list[Candidate] = []
        self.best: Candidate | None = None
        self.history: list[float] = []
        self.held_out: dict[str, float] = {}
        # Started at the first batch that needs it and kept for the others.
        self._pool: WorkerPool | None = None

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def evaluate(self, plans: Sequence[list[Programme]]) -> list[Candidate]:
        """Evaluate a batch of plans (racing against the incumbent at the batch's start)."""
        batch = [Candidate(_key(plan), plan) for plan in plans]
        incumbent = self.best
        alive = list(batch)
        rungs = race_rungs(self.seeds) if incumbent is not None else [self.seeds]
        for rung, seeds in enumerate(rungs):
            self._run([(c.key, c.programmes, s) for c in alive for s in seeds])
            for candidate in alive:
                candidate.delays = {s: self.results[candidate.key][s] for s in seeds}
            if rung == len(rungs) - 1 or incumbent is None:
                break
            reference = float(np.mean([incumbent.delays[s] for s in seeds]))
            survivors = []
            for candidate in alive:
                if candidate.mean <= reference * (1 + self.race_margin):
                    survivors.append(candidate)
                else:
                    # Its full score estimated by the ratio on common seeds.
                    candidate.score = incumbent.score * candidate.mean / reference
            alive = survivors
        for candidate in alive:
            candidate.complete = True
            candidate.score = objective_score([candidate.delays[s] for s in self.seeds], self.k)
        for candidate in batch:
            self.candidates.append(candidate)
            if candidate.complete and (self.best is None or candidate.score < self.best.score):
                self.best = candidate
            self.history.append(self.best.score if self.best else math.inf)
        if self.holdout and self.best is not None and self.best.key not in self.held_out:
            self._run([(self.best.key, self.best.programmes, s) for s in self.holdout])
            self.held_out[self.best.key] = float(
                np.mean([self.results[self.best.key][s] for s in self.holdout])
            )
        return batch

    def confirm(
        self, keys: Sequence[str], seeds: Sequence[int], progress: ConfirmProgress | None = None
    ) -> list[Candidate]:
        """Run the plans of ``keys`` on ``seeds`` too and score them over the training
        seeds and these: the candidates of those plans, rescored."""
        plans = {c.key: c.programmes for c in self.candidates}
        self._run([(key, plans[key], seed) for key in keys for seed in seeds], progress)
        every = [*self.seeds, *seeds]
        wanted = set(keys)
        confirmed = [c for c in self.candidates if c.key in wanted]
        for candidate in confirmed:
            candidate.delays = {s: self.results[candidate.key][s] for s in every}
            candidate.score = objective_score(list(candidate.delays.values()), self.k)
        return confirmed

    def _run(
        self, jobs: list[tuple[str, list[Programme], int]], progress: ConfirmProgress | None = None
    ) -> None:
        """Simulate the (plan, seed) pairs not yet known (``progress`` after each one)."""
        todo = [
            (key, plan, seed) for key, plan, seed in jobs if seed not in self.results.get(key, {})
        ]
        todo = list({(key, seed): (key, plan, seed) for key, plan, seed in todo}.values())
        specs = []
        for key, plan, seed in todo:
            path = self.directory / f"candidate-{key}.add.xml"
            if not path.exists():
                write_plan(plan, path)
            specs.append(_with(self.template, params={"file": str(path)}, seed=seed))
        if not specs:
            return
        if progress is not None:
            progress(0, len(specs))
        for done, (index, delay) in enumerate(self._simulate(specs), start=1):
            key, _, seed = todo[index]
            self.results.setdefault(key, {})[seed] = delay
            self.simulations += 1
            if self.study is not None:
                self.study.record(key, seed, delay)
            if progress is not None:
                progress(done, len(specs))

    def _simulate(self, specs: list[RunSpec]) -> Iterator[tuple[int, float]]:
        """(index, delay) of each spec as its simulation ends."""
        if self.workers <= 1 or len(specs) == 1:
            for index, spec in enumerate(specs):
                yield index, float(run_episode(spec).metrics["delay"])
            return
        from twin_traffic.executor import WorkerPool

        if self._pool is None:
            self._pool = WorkerPool(self.workers)
        for outcome in self._pool.run(specs):
            if outcome.result is None:
                raise TwinTrafficError(f"tuning stopped: {outcome.error}")
            yield outcome.index, float(outcome.result.metrics["delay"])


def tune(
    scenario: str,
    *,
    budget: int,
    seeds: Sequence[int],
    workers: int = 1,
    min_cycle: float = 30.0,
    max_cycle: float = 150.0,
    min_green: float = 5.0,
    optimizer: str = "local",
    optimizer_seed: int = 0,
    groups: str | Sequence[Sequence[str]] = "auto",
    k: float = 1.0,
    race_margin: float = 0.05,
    routes: tuple[str, ...] = (),
    begin: float | None = None,
    end: float | None = None,
    study: Path | None = None,
    resume: bool = False,
    holdout_seeds: Sequence[int] = (),
    progress: TuneProgress | None = None,
    protocol: RunProtocol | None = None,
    confirm_seeds: Sequence[int] | None = None,
    finalists: int = 3,
    served_flows: str | None = SERVED_FLOWS,
    confirm_progress: ConfirmProgress | None = None,
) -> TuneResult:
    """Optimise the cycles, splits and offsets of a scenario's fixed-time plans.

    Args:
        scenario: a built-in name, ``.sumocfg`` or ``.net.xml`` (with ``routes``).
        budget: candidate plans to evaluate, the starting plans included; at least 5.
        seeds: training seeds (every candidate runs on the same ones).
        workers: simulations run in parallel.
        min_cycle: shortest cycle, s.
        max_cycle: longest cycle, s.
        min_green: shortest tunable green, s.
        optimizer: ``local`` or ``de``.
        optimizer_seed: the optimiser's seed; with the same inputs it gives the same plan.
        groups: coordination groups (see :class:`~twin_traffic.plan_space.PlanSpace`).
        k: weight of the standard error in the objective ``mean + k * SE``.
        race_margin: a candidate runs on every seed only when it is within this fraction
            of the incumbent on the first rung's seeds.
        routes: route files, with a ``.net.xml`` scenario.
        begin: start time override, s.
        end: end time override, s.
        study: a JSON-lines file that records every simulation; None for none.
        resume: continue the study at ``study``.
        holdout_seeds: seeds the best plan so far is also run on, for the progress display
            only (never used to choose).
        progress: called after each batch of plans.
        protocol: the benchmark protocol of every simulation (see
            :mod:`twin_traffic.protocol`).
        confirm_seeds: more seeds the ``finalists`` best plans and the starting plans
            run on once the search ends; the result is chosen over the training and
            these seeds. None: as many as the training seeds, the next ones (see
            :func:`~twin_traffic.seeds.seeds_after`); empty: on the training seeds alone.
        finalists: how many of the search's best plans are confirmed.
        served_flows: a deciding controller whose served flows time a third starting
            plan (Webster's); None for the two starts.
        confirm_progress: called as each confirmation simulation ends.

    Raises:
        TwinTrafficError: a bad scenario, budget or study, or a simulation that failed.
    """
    if budget < MIN_BUDGET:
        raise TwinTrafficError(f"--budget {budget}: tuning needs at least {MIN_BUDGET} plans")
    if not seeds:
        raise TwinTrafficError("tuning needs at least one training seed (--seeds 0 1 2)")
    if optimizer not in OPTIMIZERS:
        raise TwinTrafficError(f"--optimizer {optimizer}: choose one of {', '.join(OPTIMIZERS)}")
    if served_flows is not None:
        from twin_traffic.controllers.webster import FLOW_CONTROLLERS

        if served_flows not in FLOW_CONTROLLERS[1:]:
            raise TwinTrafficError(
                f"--served-flows {served_flows}: choose a deciding controller, one of "
                + ", ".join(FLOW_CONTROLLERS[1:])
            )
    seed_list = list(dict.fromkeys(int(s) for s in seeds))
    if confirm_seeds is None:
        confirm_seeds = seeds_after(seed_list, len(seed_list), avoid=holdout_seeds)
    confirm = [s for s in dict.fromkeys(int(s) for s in confirm_seeds) if s not in seed_list]
    if confirm and finalists < 1:
        raise TwinTrafficError(f"--finalists {finalists}: confirm at least one plan")
    holdout = [int(s) for s in holdout_seeds if int(s) not in seed_list + confirm]
    loaded = load_scenario(scenario, routes=routes, begin=begin, end=end)
    network = load_network(loaded)
    own = current_programmes(loaded, network)
    webster = _webster_programmes(network, min_cycle, max_cycle, min_green)
    served = (
        [_webster_programmes(network, min_cycle, max_cycle, min_green, served_flows)]
        if served_flows
        else []
    )

    def plan_space(starts: Sequence[Mapping[str, Programme]] = ()) -> PlanSpace:
        return PlanSpace(network, own, groups, min_cycle, max_cycle, min_green, loaded.begin,
                         starts=starts)  # fmt: skip

    space = plan_space()
    source = scenario if loaded.builtin else str(Path(scenario).resolve())
    template = RunSpec(
        scenario=source,
        controller="plan",
        routes=tuple(str(Path(r).resolve()) for r in routes),
        begin=begin,
        end=end,
        emissions=False,  # CO2 is not the objective; the device costs ~20% of SUMO's time
        protocol=protocol.name if protocol else None,
        time_to_teleport=protocol.time_to_teleport if protocol else None,
        sumo_options=protocol.sumo_options if protocol else (),
    )
    identity = {
        "scenario": source,
        "routes": list(template.routes),
        "begin": loaded.begin,
        "end": loaded.end,
        "protocol": template.protocol,
        "time_to_teleport": template.time_to_teleport,
        "sumo_options": list(template.sumo_options),
    }
    record = Study(study, identity, resume) if study is not None else None

    with (
        tempfile.TemporaryDirectory(prefix="twin-traffic-tune-") as scratch,
        closing(
            Evaluator(template, seed_list, Path(scratch), workers, k, race_margin, record, holdout)
        ) as evaluator,
    ):

        def report() -> None:
            if progress is not None and evaluator.best is not None:
                best = evaluator.best
                progress(
                    len(evaluator.candidates),
                    budget,
                    best.mean,
                    evaluator.held_out.get(best.key),
                )

        own_plan = space.decode(space.encode(own))
        starts = evaluator.evaluate([own_plan, webster, *served])
        report()
        best_webster = min((s for s in starts[1:] if s.complete), key=lambda s: s.score,
                           default=None)  # fmt: skip
        if best_webster is not None and best_webster.score < starts[0].score:
            # The search moves from the best start: a space that holds that Webster plan
            # (its cycles as groups too) when it beats the scenario's own.
            space = plan_space([{p.tls_id: p for p in best_webster.programmes}])
        start_vectors = [space.encode({p.tls_id: p for p in s.programmes}) for s in starts]
        search = _local_search if optimizer == "local" else _differential_evolution
        search(space, evaluator, start_vectors, budget, optimizer_seed, report)
        pool = evaluator.candidates
        if confirm:
            start_keys = list(dict.fromkeys(c.key for c in starts))
            ranked = sorted((c for c in pool if c.complete), key=lambda c: c.score)
            best_keys = [k for k in dict.fromkeys(c.key for c in ranked) if k not in start_keys]
            pool = evaluator.confirm(
                [*start_keys, *best_keys[:finalists]], confirm, confirm_progress
            )

    start_mean = min(s.mean for s in starts)
    eligible = [c for c in pool if c.complete and c.mean <= start_mean]
    objective = f"mean + {k:g} SE of delay over seeds {' '.join(map(str, seed_list))}"
    if confirm:
        objective += f"; the starts and {finalists} finalists also over seeds " + " ".join(
            map(str, confirm)
        )
    chosen = min(eligible, key=lambda c: c.score)
    programmes = [
        Programme(p.tls_id, PROGRAM_ID, p.phases, p.offset, p.type, p.params)
        for p in chosen.programmes
    ]
    return TuneResult(
        programmes=programmes,
        delay=chosen.mean,
        score=chosen.score,
        per_seed=dict(chosen.delays),
        baseline=starts[0].mean,
        webster=starts[1].mean,
        evaluations=len(evaluator.candidates),
        simulations=evaluator.simulations,
        study_simulations=sum(len(by_seed) for by_seed in evaluator.results.values()),
        history=evaluator.history,
        optimizer=optimizer,
        objective=objective,
        space=space.describe(),
        held_out=evaluator.held_out.get(chosen.key),
    )


def _local_search(
    space: PlanSpace,
    evaluator: Evaluator,
    starts: list[np.ndarray],
    budget: int,
    seed: int,
    report: Callable[[], None],
) -> None:
    """(1+λ) evolution strategy from the incumbent, in the box scaled to [0, 1]."""
    rng = np.random.default_rng(seed)
    lows, highs = (np.array(side) for side in zip(*space.bounds, strict=True))
    width = np.where(highs > lows, highs - lows, 1.0)
    complete = [i for i, c in enumerate(evaluator.candidates[: len(starts)]) if c.complete]
    first = min(complete, key=lambda i: evaluator.candidates[i].score)
    centre = (np.clip(starts[first], lows, highs) - lows) / width
    centre_score = evaluator.candidates[first].score
    sigma = LOCAL_STEP
    # A step that rounds back to a plan already tried would spend a plan of the budget on
    # nothing; such a step is drawn again, wider, until it gives a new plan.
    tried = {candidate.key for candidate in evaluator.candidates}
    while len(evaluator.candidates) < budget:
        count = min(LOCAL_BATCH, budget - len(evaluator.candidates))
        # A few coordinates at a time: a plan near the incumbent, not a random one.
        share = min(1.0, 3.0 / space.dimension)
        points, plans = [], []
        for _ in range(count):
            for attempt in range(LOCAL_REDRAWS):
                mask = rng.random(space.dimension) < share
                mask[rng.integers(space.dimension)] = True
                spread = min(0.5, sigma * 1.5**attempt)
                step = np.where(mask, rng.normal(0.0, spread, space.dimension), 0.0)
                point = np.clip(centre + step, 0.0, 1.0)
                plan = space.decode(lows + point * width)
                key = _key(plan)
                if key not in tried:
                    break
            tried.add(key)
            points.append(point)
            plans.append(plan)
        batch = evaluator.evaluate(plans)
        report()
        scores = [c.score if c.complete else math.inf for c in batch]
        best = int(np.argmin(scores))
        if scores[best] < centre_score:
            centre, centre_score = points[best], scores[best]
            sigma = min(0.5, sigma * 1.5)
        else:
            sigma = max(0.02, sigma * 0.8)


def _differential_evolution(
    space: PlanSpace,
    evaluator: Evaluator,
    starts: list[np.ndarray],
    budget: int,
    seed: int,
    report: Callable[[], None],
) -> None:
    """SciPy's differential evolution, the starting plans in its first population."""
    left = budget - len(evaluator.candidates)
    population = population_size(max(left, MIN_BUDGET))
    generations = left // population - 1
    lows, highs = (np.array(side) for side in zip(*space.bounds, strict=True))
    sampler = qmc.LatinHypercube(d=space.dimension, seed=seed)
    init = qmc.scale(sampler.random(population), lows, np.maximum(highs, lows + 1e-9))
    for i, vector in enumerate(starts[:population]):
        init[i] = np.clip(vector, lows, highs)

    def objective(xs: np.ndarray) -> np.ndarray:
        xs = xs.reshape(len(xs), -1)
        batch = evaluator.evaluate([space.decode(xs[:, j]) for j in range(xs.shape[1])])
        report()
        return np.array([c.score for c in batch])

    if generations > 0:
        differential_evolution(
            objective,
            space.bounds,
            init=init,
            maxiter=generations,
            polish=False,  # a gradient method cannot polish a step function
            seed=seed,
            tol=0,  # spend the whole budget: no early stop on a flat population
            vectorized=True,
            updating="deferred",
        )
    elif left > 0:
        objective(init[:left].T)


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
    network: Network,
    min_cycle: float,
    max_cycle: float,
    min_green: float,
    flow_controller: str = "fixed",
) -> list[Programme]:
    """Webster's plan (flows measured on seed 0 under ``flow_controller``), exactly as the
    ``webster`` controller runs it."""
    from twin_traffic.controllers.webster import WebsterController

    controller = WebsterController(min_cycle=min_cycle, max_cycle=max_cycle, min_green=min_green,
                                   flow_controller=flow_controller)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="twin-traffic-webster-") as scratch:
        return controller.plan(network, Path(scratch))


def write_tuned_plan(
    result: TuneResult, path: Path, scenario: str, seeds: Sequence[int] | None = None
) -> Path:
    """Write the tuned plan with a comment saying how it was found (its delay on
    ``seeds``, by default every seed it was chosen on)."""
    seeds = list(result.per_seed) if seeds is None else seeds
    cycles = sorted({p.cycle for p in result.programmes})
    held = f", held-out {result.held_out:.2f}" if result.held_out is not None else ""
    comment = (
        f"twin-traffic tune {Path(scenario).name}: optimiser {result.optimizer}, budget "
        f"{result.evaluations} plans "
        f"({max(result.simulations, result.study_simulations)} simulations), objective "
        f"{result.objective}; groups {result.space}; cycles "
        f"{' '.join(f'{c:g}' for c in cycles)} s; result: mean delay {result.delay:.2f} "
        f"s/trip on seeds {' '.join(map(str, seeds))}{held} (own plan {result.baseline:.2f}, "
        f"Webster {result.webster:.2f})"
    )
    return write_plan(result.programmes, path, comment=comment)


def _key(plan: list[Programme]) -> str:
    return hashlib.sha1(plan_xml(plan).encode()).hexdigest()[:20]


def _with(spec: RunSpec, **changes: object) -> RunSpec:
    return RunSpec.from_dict({**spec.to_dict(), **changes})
