"""``twin-traffic train``: train an RL agent and compare it with classical control."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from twin_traffic.cli.app import app, err, out
from twin_traffic.cli.progress import run_with_status


@app.command()
def train(
    scenario: Annotated[str, typer.Argument(help="Built-in name, .sumocfg or .net.xml.")],
    algo: Annotated[str, typer.Option(help="ppo (MaskablePPO), a2c or dqn.")] = "ppo",
    recipe: Annotated[
        Path | None, typer.Option(help="Recipe TOML (default: agents/ALGO-shared.toml).")
    ] = None,
    timesteps: Annotated[int | None, typer.Option(help="Steps over all slots.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the policy and of training episodes.")] = 0,
    envs: Annotated[int | None, typer.Option(help="Simulations run in parallel.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("runs/agent"),
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint.")] = False,
    independent: Annotated[
        bool, typer.Option(help="One policy network per signal instead of a shared one (ppo).")
    ] = False,
    end: Annotated[float | None, typer.Option(help="Episode end time override, s.")] = None,
    eval_seeds: Annotated[
        list[int] | None, typer.Option(help="Held-out seeds, e.g. --eval-seeds 100 101 102.")
    ] = None,
    eval_every: Annotated[int | None, typer.Option(help="Steps between evaluations.")] = None,
    compare_seeds: Annotated[
        list[int] | None,
        typer.Option(help="Held-out seeds of the final comparison (default: 200-204)."),
    ] = None,
) -> None:
    """Train a shared signal policy, keep the best on held-out seeds, then compare it with
    fixed-time and max-pressure on seeds never used in training."""
    from twin_traffic.train import default_recipe, load_recipe
    from twin_traffic.train import train as run_training

    base = load_recipe(recipe or default_recipe(algo))
    overrides: dict[str, object] = {}
    if timesteps is not None:
        overrides["timesteps"] = timesteps
    if envs is not None:
        overrides["simulations"] = envs
    if eval_seeds:
        overrides["eval_seeds"] = tuple(eval_seeds)
    if eval_every is not None:
        overrides["eval_every"] = eval_every
    if end is not None:
        overrides["env"] = {**base.env, "end": end}
    if independent:
        overrides["policies"] = "independent"
    chosen = replace(base, **overrides)  # type: ignore[arg-type]

    def report(steps: int, delay: float) -> None:
        err.print(f"held-out delay at {steps:,} steps: {delay:.1f} s/trip", highlight=False)

    if not (out_dir / "baselines.json").exists():
        seeds = ", ".join(map(str, chosen.eval_seeds))
        err.print(
            f"scoring fixed-time and max-pressure on held-out seeds {seeds} first "
            f"({2 * len(chosen.eval_seeds)} simulations, once per run folder), then training "
            f"{chosen.timesteps:,} steps",
            highlight=False,
        )
    try:
        result = run_training(
            scenario, chosen, out_dir, seed=seed, resume=resume,
            progress_bar=err.is_terminal, on_evaluation=report,
        )  # fmt: skip
    except KeyboardInterrupt:
        err.print(
            f"interrupted; run the same command with --resume to continue from the last "
            f"checkpoint in {out_dir / 'checkpoints'}",
            highlight=False,
        )
        raise typer.Exit(130) from None
    err.print(f"best model: {result.best_model}; learning curve: {out_dir / 'learning_curve.png'}")
    _compare(
        scenario,
        result.best_model,
        chosen.env.get("end"),
        compare_seeds or [200, 201, 202, 203, 204],
    )


def _compare(scenario: str, model: Path, end: object, seeds: list[int]) -> None:
    """Agent vs fixed-time vs max-pressure on held-out seeds, as a table."""
    from twin_traffic.evaluate import RunSpec
    from twin_traffic.metrics import summarize_runs
    from twin_traffic.report import comparison_table

    window = float(end) if isinstance(end, (int, float)) else None
    controllers = {"fixed": {}, "max-pressure": {}, "agent": {"model": str(model)}}
    specs = [
        RunSpec(scenario, controller="policy" if name == "agent" else name, params=params,
                seed=s, end=window, emissions=False)
        for name, params in controllers.items()
        for s in seeds
    ]  # fmt: skip
    outcomes = run_with_status(specs, workers=2, description="agent vs classical control")
    failures = [o.error for o in outcomes if not o.ok]
    if failures:
        err.print(f"[red]error:[/red] {failures[0]}")
        raise typer.Exit(1)
    per_controller = {}
    for i, name in enumerate(controllers):
        runs = outcomes[i * len(seeds) : (i + 1) * len(seeds)]
        per_controller[name] = summarize_runs([o.result.metrics for o in runs if o.result])
    title = f"{Path(scenario).name}: agent on held-out seeds {seeds[0]}–{seeds[-1]}, mean ± 95% CI"
    out.print(comparison_table(title, per_controller, baseline="fixed"))
