"""Does a trained agent beat classical control on traffic it never saw?

For each scenario (default ``grid3x3`` and ``arterial``): train the shared PPO recipe
(``agents/ppo-shared.toml``) for at most ``--minutes`` of wall time, keep the best model
on the recipe's held-out evaluation seeds, then evaluate the agent, fixed-time and
max-pressure on ``--seeds`` (never used in training nor for choosing the best model) and
print mean delay ± 95% CI and the agent's change against both. Targets: at least 30%
less delay than fixed-time, and no worse than max-pressure.

It also prints training throughput (environment steps per second, summed over the
signal slots) with 1 and 2 parallel simulations, measured in the same run.

    python benchmarks/train_quality.py [--minutes 30] [--scenarios grid3x3 arterial]
        [--out runs/train-quality] [--throughput-seconds 60]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from twin_traffic.evaluate import RunSpec
from twin_traffic.executor import run_specs
from twin_traffic.metrics import summarize_seeds
from twin_traffic.train import default_recipe, load_recipe, train


def throughput(scenario: str, simulations: int, seconds: float) -> float:
    """Training steps per second (PPO learning included) with ``simulations`` SUMO runs."""
    import torch
    from stable_baselines3.common.vec_env import VecMonitor

    from twin_traffic.train import ALGORITHMS, env_config
    from twin_traffic.vec_env import SignalVecEnv

    torch.set_num_threads(1)
    recipe = load_recipe(default_recipe("ppo"))
    env = VecMonitor(SignalVecEnv(env_config(scenario, recipe), simulations, seed=0))
    model = ALGORITHMS["ppo"](
        "MlpPolicy", env, seed=0, device="cpu",
        policy_kwargs=dict(recipe.policy), **dict(recipe.hyperparameters),
    )  # fmt: skip
    model.learn(total_timesteps=env.num_envs * recipe.hyperparameters["n_steps"])  # warm up
    done = model.num_timesteps
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.learn(total_timesteps=env.num_envs * recipe.hyperparameters["n_steps"],
                    reset_num_timesteps=False)  # fmt: skip
    rate = (model.num_timesteps - done) / (time.perf_counter() - started)
    env.close()
    return rate


def compare(scenario: str, model: Path, seeds: list[int]) -> dict[str, list[float]]:
    """Delay per seed of the agent, fixed-time and max-pressure."""
    controllers = {"agent": ("policy", {"model": str(model)}), "fixed": ("fixed", {}),
                   "max-pressure": ("max-pressure", {})}  # fmt: skip
    specs = [
        RunSpec(scenario, controller=name, params=params, seed=seed, emissions=False)
        for name, params in controllers.values()
        for seed in seeds
    ]
    outcomes = sorted(run_specs(specs, workers=2), key=lambda o: o.index)
    delays: dict[str, list[float]] = {label: [] for label in controllers}
    labels = list(controllers)
    for outcome in outcomes:
        if outcome.result is None:
            raise RuntimeError(outcome.error)
        delays[labels[outcome.index // len(seeds)]].append(outcome.result.metrics["delay"])
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--scenarios", nargs="*", default=["grid3x3", "arterial"])
    parser.add_argument("--seeds", type=int, nargs="*", default=[200, 201, 202, 203, 204])
    parser.add_argument("--out", type=Path, default=Path("runs/train-quality"))
    parser.add_argument("--throughput-seconds", type=float, default=60.0, help="0 skips it")
    parser.add_argument("--skip-training", action="store_true", help="throughput only")
    args = parser.parse_args()

    for scenario in args.scenarios if not args.skip_training else ():
        folder = args.out / scenario
        started = time.perf_counter()

        def report(steps: int, delay: float, started: float = started) -> None:
            minutes = (time.perf_counter() - started) / 60
            print(
                f"  {minutes:5.1f} min  {steps:>9,} steps  held-out delay {delay:6.2f} s",
                flush=True,
            )

        print(f"{scenario}: training for at most {args.minutes:g} min", flush=True)
        result = train(scenario, load_recipe(default_recipe("ppo")), folder, progress_bar=False,
                       on_evaluation=report, time_limit=args.minutes * 60)  # fmt: skip
        minutes = (time.perf_counter() - started) / 60
        delays = compare(scenario, result.best_model, args.seeds)
        summary = {name: summarize_seeds(values) for name, values in delays.items()}
        print(f"{scenario}: trained {minutes:.1f} min; delay on seeds {args.seeds} (s/trip):")
        for name, stats in summary.items():
            print(f"  {name:<13} {stats.mean:7.2f} ± {stats.half_width:5.2f}")
        agent = summary["agent"].mean
        for baseline in ("fixed", "max-pressure"):
            change = 100 * (agent - summary[baseline].mean) / summary[baseline].mean
            print(f"  agent vs {baseline}: {change:+.1f}%")
        print(f"  learning curve: {folder / 'learning_curve.png'}", flush=True)

    scenario = args.scenarios[0]
    for simulations in (1, 2) if args.throughput_seconds > 0 else ():
        rate = throughput(scenario, simulations, args.throughput_seconds)
        print(f"throughput on {scenario}, {simulations} simulation(s): {rate:,.0f} steps/s")


if __name__ == "__main__":
    main()
