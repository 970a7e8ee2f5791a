"""Train RL signal agents with stable-baselines3, judged on held-out seeds.

A recipe (TOML, see ``agents/``) gives the algorithm, its hyperparameters, the
environment (observations, reward, decision interval, safety timings, demand
randomisation) and the training schedule. Multi-signal networks train one shared policy:
every signal of every simulation is one slot of a :class:`SignalVecEnv`. During
training the policy is evaluated every ``eval_every`` steps on held-out seeds (never used
for training) by the same runner that scores every controller, in worker processes; the
best model is kept as ``best.zip``. A run folder holds::

    agent.json           algorithm, environment and recipe (read by the policy controller)
    baselines.json       fixed-time and max-pressure on the held-out seeds, with their runs
    evaluations.csv      held-out delay of the policy over training
    learning_curve.png   that curve against the baselines
    best.zip final.zip   the best and the last model
    checkpoints/         periodic checkpoints (--resume continues from the last)
    tb/                  TensorBoard logs
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.vec_env import VecMonitor

from twin_traffic.agent import algorithms, write_agent
from twin_traffic.envs import EnvConfig
from twin_traffic.errors import TwinTrafficError
from twin_traffic.evaluate import RunSpec
from twin_traffic.executor import run_specs
from twin_traffic.metrics import summarize_seeds
from twin_traffic.vec_env import SignalVecEnv

ALGORITHMS: dict[str, type[BaseAlgorithm]] = algorithms()
"""The algorithm table of :mod:`twin_traffic.agent`, by name."""
CLASSICAL = (
    "fixed",
    "actuated",
    "webster",
    "max-pressure",
    "efficient-max-pressure",
    "advanced-max-pressure",
    "greedy",
    "sotl",
)
"""The classical controllers every agent is measured against, on the validation seeds."""
TEACHER_BEST = "best"
"""The recipe's ``teacher`` that means: the best deciding classical controller here."""

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Recipe:
    """How to train an agent.

    Attributes:
        algo: ``ppo`` (MaskablePPO), ``a2c`` or ``dqn``.
        env: :class:`~twin_traffic.envs.EnvConfig` fields (observation, reward, timings,
            demand_scale, end …); the scenario comes from the command line.
        hyperparameters: keyword arguments of the algorithm.
        policy: ``policy_kwargs`` of the algorithm (e.g. ``net_arch``).
        timesteps: environment steps summed over all slots.
        simulations: SUMO runs in parallel.
        eval_every: steps between evaluations on held-out seeds.
        eval_seeds: the held-out seeds.
        checkpoint_every: steps between checkpoints.
        policies: ``shared`` (one policy for every signal) or ``independent`` (one network
            per signal, :mod:`twin_traffic.policies`; ``ppo`` only, and the agent then
            belongs to the network it was trained on).
        baselines: the classical controllers scored on the validation seeds, to compare
            with (``fixed`` always among them).
        teacher: a deciding classical controller to imitate before RL (behaviour
            cloning, :mod:`twin_traffic.imitation`; ``ppo`` only), ``best`` for the one
            with the least delay on the validation seeds, or ``""`` for none.
        imitation_steps: slot-steps recorded per round of cloning.
        imitation_epochs: passes over the recordings at each fit.
        imitation_rounds: rounds of cloning: the teacher drives the first, the cloned
            policy the others (DAgger).
        imitation_weight: weight of the cloning loss kept during PPO, after every
            rollout (0: none); it decays by ``imitation_decay`` per rollout.
        confirm_seeds: seeds that choose among the finalists at the end of training
            (empty: the model with the least delay on ``eval_seeds`` is kept). Kept on
            the validation seeds alone, the best of many evaluations is often the
            luckiest: its delay on new traffic is worse than its validation delay.
        finalists: models with the least validation delay kept for that choice; the one
            with the least mean delay over ``eval_seeds`` and ``confirm_seeds`` becomes
            ``best.zip``.
        deploy_interval: seconds between the trained agent's decisions when it runs as
            a controller (the validation runs, the comparison after training,
            ``evaluate``); ``None``: the env's ``decision_interval``. A protocol preset's
            decision interval overrides it. The agent learns at the env's interval, where
            each decision's effect shows within a short horizon, and may then decide
            more often: with fresh state at every second a green ends when its queue
            has gone, as the max-pressure family's decision every second does.
    """

    algo: str = "ppo"
    env: Mapping[str, Any] = field(default_factory=dict)
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    policy: Mapping[str, Any] = field(default_factory=dict)
    timesteps: int = 100_000
    simulations: int = 2
    eval_every: int = 20_000
    eval_seeds: tuple[int, ...] = (100, 101, 102)
    checkpoint_every: int = 20_000
    policies: str = "shared"
    baselines: tuple[str, ...] = CLASSICAL
    teacher: str = ""
    imitation_steps: int = 20_000
    imitation_epochs: int = 20
    imitation_rounds: int = 2
    imitation_weight: float = 0.0
    imitation_decay: float = 0.99
    confirm_seeds: tuple[int, ...] = ()
    finalists: int = 3
    deploy_interval: float | None = None


def recipes_dir() -> Path:
    """The folder of the shipped recipes (``agents/`` in the repository)."""
    import importlib.resources

    try:
        return Path(str(importlib.resources.files("twin_traffic.agents")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "agents"


def default_recipe(algo: str) -> Path:
    """The shipped recipe of an algorithm."""
    if algo not in ALGORITHMS:
        raise TwinTrafficError(
            f"unknown algorithm '{algo}'; choose one of: {', '.join(ALGORITHMS)}"
        )
    return recipes_dir() / f"{algo}-shared.toml"


def load_recipe(path: Path) -> Recipe:
    """Read and check a recipe file; errors name the file and the key.

    Every key and type is checked, the hyperparameters against the algorithm's own
    constructor and ``[policy]`` against its policy's, so a typo stops training before
    any simulation starts.
    """
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise TwinTrafficError(f"{path}: recipe not found; see agents/ for examples") from None
    except tomllib.TOMLDecodeError as error:
        raise TwinTrafficError(f"{path}: not valid TOML ({error})") from None
    known = {f.name for f in fields(Recipe)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TwinTrafficError(f"{path}: unknown key '{unknown[0]}'; recipes take {sorted(known)}")
    if isinstance(data.get("baselines"), list):
        data["baselines"] = tuple(data["baselines"])
    from twin_traffic.seeds import SeedError, check_seeds

    for key in ("eval_seeds", "confirm_seeds"):
        if key not in data:
            continue
        if key == "confirm_seeds" and data[key] == []:  # no confirmation
            data[key] = ()
            continue
        try:
            data[key] = check_seeds(data[key], key)
        except SeedError as error:
            raise TwinTrafficError(f"{path}: {error}") from None
    recipe = Recipe(**data)
    check_recipe(recipe, str(path))
    return recipe


_ENV_FIXED = ("scenario", "backend", "gui", "routes", "time_to_teleport", "sumo_options")


def check_recipe(recipe: Recipe, source: str) -> None:
    """Check every field of a recipe; TwinTrafficError names ``source``, the key and the fix."""
    from twin_traffic.features import check_feature_names

    def fail(key: str, problem: str) -> None:
        raise TwinTrafficError(f"{source}: {key}: {problem}")

    if recipe.algo not in ALGORITHMS:
        raise TwinTrafficError(
            f"{source}: algo must be one of {', '.join(ALGORITHMS)} (not '{recipe.algo}')"
        )
    for key in ("timesteps", "simulations", "eval_every", "checkpoint_every", "imitation_steps",
                "imitation_epochs", "imitation_rounds", "finalists"):  # fmt: skip
        value = getattr(recipe, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail(key, f"{value!r} is not a whole number >= 1")
    for key in ("env", "hyperparameters", "policy"):
        if not isinstance(getattr(recipe, key), Mapping):
            fail(key, f"must be a table: [{key}]")
    env_fields = {f.name: f.default for f in fields(EnvConfig) if f.name not in _ENV_FIXED}
    for key, value in recipe.env.items():
        if key not in env_fields:
            fail(f"env.{key}", f"unknown key; [env] takes {', '.join(sorted(env_fields))}")
        if value is not None and key not in ("demand_scale", "begin", "end"):
            _check_type(f"{source}: env.{key}", value, env_fields[key])
    try:
        config = env_config("grid3x3", recipe)
        check_feature_names(config.observation, config.reward)
        config.timing  # noqa: B018  (validates the timings)
    except TwinTrafficError as error:
        fail("env", str(error))
    except (TypeError, ValueError) as error:
        fail("env", f"{error}; see the [env] keys in agents/ppo-shared.toml")
    check_policies(recipe.policies, recipe.algo, source)
    check_teacher(recipe.teacher, recipe.algo, source)
    for key, low, high in (("imitation_weight", 0.0, math.inf), ("imitation_decay", 0.0, 1.0)):
        value = getattr(recipe, key)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not low <= value <= high
        ):
            fail(key, f"{value!r} must be a number from {low:g} to {high:g}")
    shared = sorted(set(recipe.confirm_seeds) & set(recipe.eval_seeds))
    if shared:
        fail("confirm_seeds", f"seed {shared[0]} is a validation seed too; choose new seeds")
    interval = recipe.deploy_interval
    if interval is not None and (
        isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0
    ):
        fail("deploy_interval", f"{interval!r} must be a number of seconds > 0")
    wrong = [name for name in recipe.baselines if name not in CLASSICAL]
    if wrong or "fixed" not in recipe.baselines:
        fail("baselines", f"choose among {', '.join(CLASSICAL)}, fixed included")
    algorithm = ALGORITHMS[recipe.algo]
    _check_keywords(algorithm, recipe.hyperparameters, f"{source}: [hyperparameters]",
                    reserved=("policy", "env", "seed", "device", "tensorboard_log",
                              "policy_kwargs", "verbose"))  # fmt: skip
    # Independent policies pass their keywords on to the same MlpPolicy.
    policy_class = algorithm.policy_aliases.get("MlpPolicy")
    if policy_class is not None:
        _check_keywords(policy_class, recipe.policy, f"{source}: [policy]",
                        reserved=("observation_space", "action_space", "lr_schedule",
                                  "signals"))  # fmt: skip


def _check_keywords(
    target: Callable[..., Any], given: Mapping[str, Any], where: str, reserved: Sequence[str]
) -> None:
    """Fail on a keyword ``target``'s constructor does not take, listing those it does."""
    import inspect

    parameters = inspect.signature(target).parameters
    accepted = [
        name
        for name, parameter in parameters.items()
        if name not in reserved and name != "self" and not name.startswith("_")
        and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL,
                                   inspect.Parameter.VAR_KEYWORD)
    ]  # fmt: skip
    for key in given:
        if key in reserved:
            raise TwinTrafficError(f"{where}: {key} is set by twin-traffic itself; remove it")
        if key not in accepted:
            raise TwinTrafficError(
                f"{where}: {getattr(target, '__name__', target)} takes no '{key}'; it takes: "
                f"{', '.join(accepted)}"
            )
        _check_type(f"{where}: {key}", given[key], parameters[key].default)


def _check_type(where: str, value: Any, default: Any) -> None:
    """A value of the same kind as a keyword's default (numbers, true/false); a callable
    (a learning-rate schedule from Python) is left to the algorithm."""
    if callable(value):
        return
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TwinTrafficError(f"{where} = {value!r} must be true or false")
    elif isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TwinTrafficError(f"{where} = {value!r} must be a number")
        if isinstance(default, int) and isinstance(value, float) and not value.is_integer():
            raise TwinTrafficError(f"{where} = {value!r} must be a whole number")


def check_policies(policies: str, algo: str, source: str) -> None:
    """Independent policies are built for MaskablePPO only."""
    if policies not in ("shared", "independent"):
        raise TwinTrafficError(f"{source}: policies must be shared or independent")
    if policies == "independent" and algo != "ppo":
        raise TwinTrafficError(f"{source}: independent policies need algo = ppo")


def check_teacher(teacher: str, algo: str, source: str) -> None:
    """A teacher is a deciding classical controller, and cloning fits MaskablePPO."""
    if not isinstance(teacher, str):
        raise TwinTrafficError(f'{source}: teacher must be a controller name or ""')
    if not teacher:
        return
    if algo != "ppo":
        raise TwinTrafficError(f'{source}: teacher needs algo = ppo (or teacher = "")')
    from twin_traffic.imitation import make_teacher

    if teacher == TEACHER_BEST:
        return
    try:
        make_teacher(teacher, EnvConfig())
    except TwinTrafficError as error:
        raise TwinTrafficError(f"{source}: {error}") from None


@dataclass
class TrainResult:
    """What a training run produced."""

    folder: Path
    best_model: Path
    evaluations: list[dict[str, Any]]
    baselines: dict[str, list[float]]
    teacher: str | None = None
    selection: list[dict[str, Any]] = field(default_factory=list)
    """The finalists' scores when the recipe confirms its choice (``selection.csv``)."""


PhaseProgress = Callable[[str, int, int], None]
"""Called with ``(phase, done, total)`` as the phases around PPO advance: ``scoring``
(simulations of the classical controllers on the validation seeds), ``imitating``
(slot-steps recorded over every round of cloning) and ``confirming`` (simulations of the
finalists on the confirmation seeds)."""

Counter = Callable[[int, int], None]  # (done, total) of one phase


def _counter(on_phase: PhaseProgress | None, phase: str) -> Counter | None:
    if on_phase is None:
        return None
    return lambda done, total: on_phase(phase, done, total)


def env_config(scenario: str, recipe: Recipe, **scenario_options: Any) -> EnvConfig:
    """The training environment of a recipe on a scenario; ``scenario_options`` are the
    :class:`EnvConfig` fields of the command line (routes, begin, end, the protocol)."""
    values = {**recipe.env, **scenario_options}
    for key in ("observation", "signals"):
        if key in values and values[key] is not None:
            values[key] = tuple(values[key])
    if isinstance(values.get("demand_scale"), list):
        values["demand_scale"] = tuple(values["demand_scale"])
    for key in ("routes", "sumo_options"):
        values[key] = tuple(values.get(key, ()))
    return EnvConfig(scenario=scenario, **values)


def train(
    scenario: str,
    recipe: Recipe,
    folder: Path,
    seed: int = 0,
    resume: bool = False,
    progress_bar: bool = True,
    on_evaluation: Callable[[int, float], None] | None = None,
    time_limit: float | None = None,
    scenario_options: Mapping[str, Any] | None = None,
    on_phase: PhaseProgress | None = None,
) -> TrainResult:
    """Train an agent on ``scenario`` into ``folder`` (see the module docstring).

    ``time_limit`` (seconds of wall time) ends training early, with a last evaluation.
    ``on_phase`` follows the phases before and after PPO (see :data:`PhaseProgress`);
    ``progress_bar`` shows PPO's own.
    ``scenario_options`` are :class:`EnvConfig` fields that describe the scenario and its
    protocol (``routes``, ``begin``, ``end``, ``protocol``, ``time_to_teleport``,
    ``sumo_options``, and the preset's ``decision_interval`` and ``yellow``); they
    override the recipe's ``[env]``.

    Raises:
        TwinTrafficError: a bad scenario or recipe, or ``--resume`` with nothing to resume.
    """
    import torch

    from twin_traffic.scenario import load_scenario

    # Everything is checked before the run folder exists or a simulation starts.
    check_recipe(recipe, "recipe")
    config = env_config(scenario, recipe, **dict(scenario_options or {}))
    load_scenario(scenario, routes=config.routes, begin=config.begin, end=config.end)
    check_run_folder(folder, resume)
    env_description = {**asdict(config), "scenario": scenario}
    if resume:
        check_same_run(folder, recipe.algo, env_description)
    torch.set_num_threads(1)  # simulations run in their own processes beside it
    folder.mkdir(parents=True, exist_ok=True)
    checkpoints = folder / "checkpoints"
    latest = resume_point(folder) if resume else None
    if resume and latest is None:
        _forget_attempt(folder)
    check_policies(recipe.policies, recipe.algo, "recipe")
    independent = recipe.policies == "independent"
    baselines = baselines_of(folder, config, recipe.eval_seeds, recipe.simulations,
                             recipe.baselines, _counter(on_phase, "scoring"))  # fmt: skip
    cloning = bool(recipe.teacher) and not (resume and latest is not None)
    teacher = resolve_teacher(recipe.teacher, baselines) if cloning else None
    vec = SignalVecEnv(config, recipe.simulations, seed, identify=independent, teacher=teacher)
    description = {
        "algo": recipe.algo,
        "scenario": scenario,
        "seed": seed,
        "env": env_description,
        "deploy_interval": deploy_interval(recipe, config, scenario_options or {}),
        "recipe": asdict(recipe),
        "independent": independent,
        "signals": vec.signal_ids,
        "teacher": teacher,
    }
    write_agent(folder, description)
    env = VecMonitor(vec)
    algorithm = ALGORITHMS[recipe.algo]
    policy: Any = "MlpPolicy"
    policy_kwargs = dict(recipe.policy)
    if independent:
        from twin_traffic.policies import IndependentMaskablePolicy

        policy, policy_kwargs["signals"] = IndependentMaskablePolicy, vec.signals
    try:
        if resume and latest is not None:
            model = algorithm.load(str(latest), env=env, device="cpu")
        else:
            model = algorithm(
                policy,
                env,
                seed=seed,
                device="cpu",
                tensorboard_log=str(folder / "tb"),
                policy_kwargs=policy_kwargs,
                verbose=0,
                **dict(recipe.hyperparameters),
            )
        demonstrations = None
        if teacher is not None:
            demonstrations = imitate(model, vec, teacher, recipe, folder, seed,
                                     _counter(on_phase, "imitating"))  # fmt: skip
        evaluator = HeldOutEvaluation(folder, config, recipe, on_evaluation)
        checkpoint = CheckpointCallback(
            save_freq=max(recipe.checkpoint_every // env.num_envs, 1),
            save_path=str(checkpoints),
            name_prefix="model",
        )
        # On resume, --timesteps stays the run's total: train only what is missing.
        remaining = (
            max(recipe.timesteps - int(model.num_timesteps), 0) if resume else recipe.timesteps
        )
        callbacks: list[BaseCallback] = [checkpoint, evaluator]
        if demonstrations is not None and recipe.imitation_weight > 0:
            from twin_traffic.imitation import keep_imitating

            callbacks.append(keep_imitating(demonstrations, recipe.imitation_weight,
                                            recipe.imitation_decay, seed=seed))  # fmt: skip
        if time_limit is not None:
            callbacks.append(WallClockLimit(time_limit))
        model.learn(
            total_timesteps=remaining,
            callback=callbacks,
            progress_bar=progress_bar,
            reset_num_timesteps=not resume,
            tb_log_name="run",
        )
        model.save(str(folder / "final.zip"))
        if evaluator.last != model.num_timesteps:  # not scored at this very step already
            evaluator.evaluate(model, int(model.num_timesteps))
    finally:
        env.close()
    selection = confirm_finalists(folder, config, recipe, _counter(on_phase, "confirming"))
    evaluations = read_evaluations(folder)
    plot_learning_curve(folder, evaluations, baselines, selection)
    return TrainResult(folder, folder / "best.zip", evaluations, baselines, teacher, selection)


def deploy_interval(
    recipe: Recipe, config: EnvConfig, scenario_options: Mapping[str, Any]
) -> float:
    """Seconds between the trained agent's decisions as a controller: a protocol
    preset's decision interval, else the recipe's ``deploy_interval``, else the env's."""
    if "decision_interval" in scenario_options:
        return float(scenario_options["decision_interval"])
    if recipe.deploy_interval is not None:
        return float(recipe.deploy_interval)
    return float(config.decision_interval)


def resolve_teacher(teacher: str, baselines: Mapping[str, Sequence[float]]) -> str:
    """The controller to imitate: ``teacher``, or for ``best`` the deciding classical
    controller with the least delay on the validation seeds."""
    if teacher != TEACHER_BEST:
        return teacher
    from twin_traffic.imitation import teachers

    deciding = {name: delays for name, delays in baselines.items() if name in teachers()}
    if not deciding:
        raise TwinTrafficError("teacher = best: no deciding classical controller ran here")
    return best_classical(deciding)


def imitate(
    model: Any,
    vec: SignalVecEnv,
    teacher: str,
    recipe: Recipe,
    folder: Path,
    seed: int,
    progress: Counter | None = None,
) -> Any:
    """Clone ``teacher`` (the env's) into ``model`` before RL; write ``imitation.json``.

    The first round records the teacher driving; each further round lets the cloned
    policy drive while the teacher labels its states (DAgger), and the policy is fitted
    again to everything recorded. The last tenth of the last round is held out of the
    fit: the share of its states in which the policy chooses as the teacher did is the
    cloning's agreement (in the file). Returns every recording, joined. ``progress``
    hears the slot-steps recorded over all rounds.
    """
    from twin_traffic.imitation import agreement, clone, demonstrate, joined, policy_driver, split

    gamma = float(recipe.hyperparameters.get("gamma", model.gamma))
    started = time.monotonic()
    recorded: list[Any] = []
    rounds: list[dict[str, float | None]] = []
    share = 0.0
    total = recipe.imitation_rounds * recipe.imitation_steps
    for round_ in range(recipe.imitation_rounds):
        driver = policy_driver(model) if round_ > 0 else None
        before = round_ * recipe.imitation_steps
        recorded_so_far = (
            None if progress is None
            else lambda done, before=before: progress(before + done, total)
        )  # fmt: skip
        recording = demonstrate(vec, recipe.imitation_steps, gamma, seed=seed + round_,
                                driver=driver, progress=recorded_so_far)  # fmt: skip
        fit, held_out = split(recording, 0.1)
        # Before the fit, how often the policy agreed where it drove itself.
        own = agreement(model, recording) if round_ > 0 else None
        recorded.append(fit)
        loss = clone(model, joined(recorded), epochs=recipe.imitation_epochs, seed=seed)
        share = agreement(model, held_out)
        rounds.append({"round": round_, "agreement_while_driving": own, "loss": loss,
                       "held_out_agreement": share})  # fmt: skip
    record = {
        "teacher": teacher, "steps_per_round": recipe.imitation_steps,
        "epochs": recipe.imitation_epochs, "rounds": rounds, "held_out_agreement": share,
        "seconds": time.monotonic() - started,
    }  # fmt: skip
    (folder / "imitation.json").write_text(json.dumps(record, indent=2) + "\n")
    return joined(recorded)


def check_run_folder(folder: Path, resume: bool) -> None:
    """A new run needs an empty (or new) folder; ``resume`` one with a model to continue
    (see :func:`resume_point`), or one stopped before its first (see
    :func:`started_only`).

    Results of two runs never mix: without ``resume`` a folder that holds anything is
    refused, so its evaluations, best model and baselines stay as they are.
    """
    if folder.exists() and not folder.is_dir():
        raise TwinTrafficError(f"{folder}: not a folder; choose another --out")
    if resume:
        if resume_point(folder) is None and not started_only(folder):
            raise TwinTrafficError(
                f"{folder}: no checkpoint to resume from; train without --resume"
            )
    elif folder.is_dir() and any(folder.iterdir()):
        raise TwinTrafficError(
            f"{folder}: already holds a run; pass --resume to continue it, or choose another "
            "--out (or leave --out out for a new run folder)"
        )


def resume_point(folder: Path) -> Path | None:
    """The model ``--resume`` continues from: the last checkpoint, or the last model of a
    run that ended before its first checkpoint (a short run given more ``--timesteps``)."""
    latest = _latest_checkpoint(folder / "checkpoints")
    if latest is None and (folder / "final.zip").is_file():
        return folder / "final.zip"
    return latest


def started_only(folder: Path) -> bool:
    """True for the folder of a run stopped before it kept any model to continue from
    (while it scored the classical controllers, cloned its teacher, or trained towards
    its first checkpoint): ``--resume`` starts it again, its classical controllers'
    scores kept."""
    from twin_traffic.agent import AGENT_FILE

    return (folder / AGENT_FILE).is_file() and resume_point(folder) is None


def _forget_attempt(folder: Path) -> None:
    """Before a run starts again: remove what its stopped attempt scored, so that its
    evaluations and finalists never mix with the new attempt's."""
    for name in ("evaluations.csv", "selection.csv", "best.zip", "learning_curve.png"):
        (folder / name).unlink(missing_ok=True)
    for finalist in folder.glob("finalist_*.zip"):
        finalist.unlink()


def check_same_run(folder: Path, algo: str, env: Mapping[str, Any]) -> None:
    """``--resume`` continues the run that is in ``folder``: the same algorithm on the
    same scenario, window, protocol and environment, or it is refused with what differs."""
    from twin_traffic.agent import read_agent
    from twin_traffic.errors import ControllerError

    try:
        stored = read_agent(folder)
    except ControllerError as error:
        raise TwinTrafficError(f"--resume: {error}") from None
    if stored["algo"] != algo:
        raise TwinTrafficError(
            f"{folder}: --resume: the run trained {stored['algo']}, not {algo}; "
            "resume it with the same --algo, or train a new run"
        )
    given = _as_json(dict(env))
    for key, value in stored["env"].items():
        if key != "backend" and given.get(key) != value:
            raise TwinTrafficError(
                f"{folder}: --resume: the run was trained with {key} = {value!r}, not "
                f"{given.get(key)!r}; resume it with the same scenario and options, or train "
                "a new run"
            )


def new_run_folder(root: Path, scenario: str, algo: str, seed: int) -> Path:
    """Create and return a fresh run folder ``root/SCENARIO__ALGO__SEED__TIMESTAMP``.

    Named as CleanRL names its runs; the folder is created here, so two runs started in
    the same second still get distinct folders (the later one a ``-2``, ``-3`` … suffix).
    """
    stem = f"{_slug(scenario)}__{algo}__{seed}__{time.strftime('%Y%m%d-%H%M%S')}"
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        folder = root / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise TwinTrafficError(f"{root}: too many runs named {stem}; choose an --out")


def _slug(name: str) -> str:
    """A scenario name as a folder-name part (letters, digits, ``-``, ``_``, ``.``)."""
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.")
    return slug or "scenario"


class WallClockLimit(BaseCallback):
    """Stops training once ``seconds`` of wall time have passed."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.deadline = time.monotonic() + seconds

    def _on_step(self) -> bool:
        return time.monotonic() < self.deadline


class HeldOutEvaluation(BaseCallback):
    """Every ``eval_every`` steps: score the current policy on the held-out seeds with the
    evaluation runner (worker processes), log the delay and keep the best model."""

    def __init__(
        self,
        folder: Path,
        config: EnvConfig,
        recipe: Recipe,
        on_evaluation: Callable[[int, float], None] | None = None,
    ) -> None:
        super().__init__()
        self.folder = folder
        self.config = config
        self.recipe = recipe
        self.on_evaluation = on_evaluation
        previous = read_evaluations(folder)
        self.best = min((row["delay"] for row in previous), default=math.inf)
        self.last = int(previous[-1]["timesteps"]) if previous else 0

    def _on_training_start(self) -> None:
        if not read_evaluations(self.folder):  # the untrained policy: where the curve starts
            self.evaluate(self.model, 0)

    def _on_step(self) -> bool:
        if self.num_timesteps - self.last >= self.recipe.eval_every:
            self.evaluate(self.model, self.num_timesteps)
        return True

    def evaluate(self, model: BaseAlgorithm, timesteps: int) -> float:
        """Score ``model`` now; returns its mean delay on the held-out seeds."""
        self.last = timesteps
        candidate = self.folder / "candidate.zip"
        model.save(str(candidate))
        delays = evaluate_policy(
            candidate, self.config, self.recipe.eval_seeds, self.recipe.simulations
        )
        mean = summarize_seeds(delays).mean
        with (self.folder / "evaluations.csv").open("a", newline="") as handle:
            writer = csv.writer(handle)
            if handle.tell() == 0:
                writer.writerow(
                    ["timesteps", "delay", *(f"seed{s}" for s in self.recipe.eval_seeds)]
                )
            writer.writerow([timesteps, f"{mean:.4f}", *(f"{d:.4f}" for d in delays)])
        if mean < self.best:
            self.best = mean
            shutil.copyfile(candidate, self.folder / "best.zip")
        if self.recipe.confirm_seeds:
            keep_finalist(self.folder, candidate, timesteps, self.recipe.finalists)
        candidate.unlink()
        if self.logger is not None:
            self.logger.record("eval/delay", mean)
        if self.on_evaluation is not None:
            self.on_evaluation(timesteps, mean)
        return mean


def finalist_path(folder: Path, timesteps: int) -> Path:
    """Where a finalist model is kept: in the run folder, beside ``agent.json``, so it
    loads as any of the run's models does."""
    return folder / f"finalist_{timesteps}.zip"


def keep_finalist(folder: Path, candidate: Path, timesteps: int, places: int) -> None:
    """Keep ``candidate`` as a finalist while it is among the ``places`` models of least
    validation delay kept so far (evaluations.csv holds its score already)."""
    shutil.copyfile(candidate, finalist_path(folder, timesteps))
    for dropped in sorted(read_finalists(folder), key=lambda f: f["validation"])[places:]:
        finalist_path(folder, dropped["timesteps"]).unlink()


def read_finalists(folder: Path) -> list[dict[str, Any]]:
    """The finalists on disk: timesteps, validation delay and its per-seed delays."""
    scores = {int(row["timesteps"]): row for row in read_evaluations(folder)}
    found = []
    for path in folder.glob("finalist_*.zip"):
        steps_text = path.stem.removeprefix("finalist_")
        # A file whose evaluation never got written (or not named by training) is no finalist.
        if steps_text.isdigit() and int(steps_text) in scores:
            steps = int(steps_text)
            row = scores[steps]
            found.append({"timesteps": steps, "validation": row["delay"], "seeds": row["seeds"]})
    return sorted(found, key=lambda f: f["timesteps"])


def confirm_finalists(
    folder: Path, config: EnvConfig, recipe: Recipe, progress: Counter | None = None
) -> list[dict[str, Any]]:
    """Score every finalist on the confirmation seeds and make the one with the least mean
    delay over the validation and confirmation seeds ``best.zip``; the scores, in
    ``selection.csv``, are returned (empty when the recipe confirms nothing).

    Every finalist meets the same confirmation traffic, so the choice compares models,
    not luck of the draw.
    """
    finalists = read_finalists(folder)
    if not recipe.confirm_seeds or not finalists:
        return []
    # Every finalist's runs in one batch: the workers never wait for a finalist's last run.
    paths = [finalist_path(folder, finalist["timesteps"]) for finalist in finalists]
    confirmations = evaluate_policies(
        paths, config, recipe.confirm_seeds, recipe.simulations, progress
    )
    rows = []
    for finalist, confirmation in zip(finalists, confirmations, strict=True):
        delays = [*finalist["seeds"], *confirmation]
        rows.append({
            "timesteps": finalist["timesteps"], "validation": finalist["validation"],
            "confirmation": summarize_seeds(confirmation).mean,
            "combined": summarize_seeds(delays).mean,
        })  # fmt: skip
    chosen = chosen_finalist(rows)
    shutil.copyfile(finalist_path(folder, chosen["timesteps"]), folder / "best.zip")
    with (folder / "selection.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timesteps", "validation", "confirmation", "combined", "chosen"])
        for row in rows:
            scores = [f"{row[key]:.4f}" for key in ("validation", "confirmation", "combined")]
            writer.writerow([row["timesteps"], *scores, int(row is chosen)])
    return rows


def chosen_finalist(selection: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The finalist kept as ``best.zip``: the least mean delay over both seed sets."""
    return min(selection, key=lambda row: row["combined"])


def evaluate_policy(
    model: Path, config: EnvConfig, seeds: Sequence[int], workers: int = 1
) -> list[float]:
    """Mean delay of a saved policy on each seed, through the evaluation runner."""
    return evaluate_policies([model], config, seeds, workers)[0]


def evaluate_policies(
    models: Sequence[Path],
    config: EnvConfig,
    seeds: Sequence[int],
    workers: int = 1,
    progress: Counter | None = None,
) -> list[list[float]]:
    """Mean delay of each saved policy on each seed, all runs in one batch; ``progress``
    hears the runs done."""
    specs = [
        RunSpec(config.scenario, controller="policy", params={"model": str(model)}, seed=s,
                emissions=False, **scenario_fields(config))
        for model in models
        for s in seeds
    ]  # fmt: skip
    outcomes = _outcomes(specs, workers, progress)
    delays = [_delay(outcome) for outcome in outcomes]
    return [delays[i : i + len(seeds)] for i in range(0, len(delays), len(seeds))]


def _outcomes(specs: list[RunSpec], workers: int, progress: Counter | None) -> list[Any]:
    """Every spec's outcome, in spec order; ``progress`` hears each one that ends."""
    outcomes = []
    if progress is not None:
        progress(0, len(specs))
    for done, outcome in enumerate(run_specs(specs, workers), start=1):
        outcomes.append(outcome)
        if progress is not None:
            progress(done, len(specs))
    return sorted(outcomes, key=lambda o: o.index)


def scenario_fields(config: EnvConfig) -> dict[str, Any]:
    """The :class:`RunSpec` fields that describe the env's scenario and protocol."""
    return {
        "routes": config.routes, "begin": config.begin, "end": config.end,
        "protocol": config.protocol, "time_to_teleport": config.time_to_teleport,
        "sumo_options": config.sumo_options,
    }  # fmt: skip


def protocol_params(controller: str, protocol: str | None) -> dict[str, Any]:
    """A baseline controller's parameters under a protocol preset (its timings)."""
    from twin_traffic.controllers.parameters import parameters_of
    from twin_traffic.protocol import RunProtocol, with_timings

    accepted = [p.name for p in parameters_of(controller) or ()]
    return with_timings({}, accepted, RunProtocol(protocol))


def baselines_of(
    folder: Path,
    config: EnvConfig,
    seeds: Sequence[int],
    workers: int,
    controllers: Sequence[str] = CLASSICAL,
    progress: Counter | None = None,
) -> dict[str, list[float]]:
    """Delay of every classical controller on the validation seeds, kept in
    ``baselines.json``.

    The file records the runs it was measured with (scenario, window, protocol and options,
    controllers and seeds); it is reused only when they are all the same, e.g. on
    ``--resume`` of the same run, and measured again otherwise.
    """
    path = folder / "baselines.json"
    specs = [
        RunSpec(config.scenario, controller=name, seed=s, emissions=False,
                params=protocol_params(name, config.protocol), **scenario_fields(config))
        for name in controllers
        for s in seeds
    ]  # fmt: skip
    runs = [_as_json(asdict(spec)) for spec in specs]
    if path.exists():
        try:
            stored: Any = json.loads(path.read_text())
        except json.JSONDecodeError:
            stored = None
        if isinstance(stored, dict) and stored.get("runs") == runs:
            return dict(stored["delay"])
    outcomes = _outcomes(specs, workers, progress)
    delays: dict[str, list[float]] = {}
    failed: dict[str, str] = {}
    for name in controllers:
        of_name = [o for o in outcomes if o.spec.controller == name]
        broken = [o for o in of_name if o.result is None]
        if broken:  # a controller that cannot run here is no baseline; say why
            failed[name] = str(broken[0].error)
        else:
            delays[name] = [_delay(o) for o in of_name]
    if "fixed" not in delays:
        raise TwinTrafficError(f"fixed-time failed on the validation seeds: {failed['fixed']}")
    record = {
        "scenario": config.scenario,
        "begin": config.begin,
        "end": config.end,
        "protocol": config.protocol,
        "seeds": list(seeds),
        "delay": delays,
        "failed": failed,
        "runs": runs,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return delays


def best_classical(baselines: Mapping[str, Sequence[float]]) -> str:
    """The classical controller with the least mean delay (fixed-time included)."""
    return min(baselines, key=lambda name: float(np.mean(baselines[name])))


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(value, default=list))


def _delay(outcome: Any) -> float:
    if outcome.result is None:
        raise TwinTrafficError(f"evaluation failed: {outcome.error}")
    return float(outcome.result.metrics["delay"])


def read_evaluations(folder: Path) -> list[dict[str, Any]]:
    """The rows of ``evaluations.csv`` (timesteps, delay, and ``seeds``: the delay on each
    validation seed), oldest first."""
    path = folder / "evaluations.csv"
    if not path.exists():
        return []
    with path.open() as handle:
        return [
            {
                "timesteps": float(row["timesteps"]),
                "delay": float(row["delay"]),
                "seeds": [float(v) for k, v in row.items() if k.startswith("seed")],
            }
            for row in csv.DictReader(handle)
        ]


def plot_learning_curve(
    folder: Path,
    evaluations: list[dict[str, Any]],
    baselines: Mapping[str, list[float]],
    selection: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Validation delay against timesteps, with the baselines as horizontal lines and,
    when finalists were confirmed, the model kept marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    if evaluations:
        axes.plot([row["timesteps"] for row in evaluations], [row["delay"] for row in evaluations],
                  marker="o", label="agent")  # fmt: skip
    if selection:
        kept = chosen_finalist(selection)
        axes.plot([kept["timesteps"]], [kept["validation"]], marker="*", markersize=16,
                  linestyle="none", color="tab:red", label="kept (confirmed)")  # fmt: skip
    shown = dict.fromkeys(["fixed", best_classical(baselines)]) if baselines else {}
    for name, style in zip(shown, ("--", ":"), strict=False):
        mean = float(np.mean(baselines[name]))
        label = name if name == "fixed" else f"{name} (best classical)"
        axes.axhline(mean, linestyle=style, color="grey", label=label)
    delays = [row["delay"] for row in evaluations] + [float(np.mean(baselines[n])) for n in shown]
    if delays and max(delays) > 5 * min(delays):  # an untrained policy can gridlock
        axes.set_yscale("log")
    axes.set_xlabel("timesteps")
    axes.set_ylabel("mean delay on the validation seeds (s/trip)")
    axes.legend()
    axes.grid(alpha=0.3)
    path = folder / "learning_curve.png"
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _latest_checkpoint(directory: Path) -> Path | None:
    if not directory.is_dir():
        return None
    checkpoints = sorted(directory.glob("model_*_steps.zip"), key=_steps)
    return checkpoints[-1] if checkpoints else None


def _steps(path: Path) -> int:
    return int(path.stem.split("_")[1])
