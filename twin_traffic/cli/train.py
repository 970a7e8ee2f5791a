"""``twin-traffic train``: train an RL agent and compare it with classical control."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from twin_traffic.cli.app import app, err, out
from twin_traffic.cli.common import (
    HOLDOUT_SEEDS,
    BeginOption,
    EndOption,
    ProtocolOption,
    RoutesOption,
    ScenarioArg,
    SumoOption,
    TeleportOption,
    protocol_from,
    route_paths,
    seeds_option,
)
from twin_traffic.cli.progress import PhaseDisplay, run_with_status
from twin_traffic.errors import TwinTrafficError


@app.command()
def train(
    scenario: ScenarioArg,
    algo: Annotated[str, typer.Option(help="ppo (MaskablePPO), a2c or dqn.")] = "ppo",
    recipe: Annotated[
        Path | None, typer.Option(help="Recipe TOML (default: agents/ALGO-shared.toml).")
    ] = None,
    timesteps: Annotated[int | None, typer.Option(min=1, help="Steps over all slots.")] = None,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed of the policy and of training episodes.")
    ] = 0,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "--envs", min=1, help="Simulations run in parallel (--envs: its old name)."
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Run folder, new or empty (default: a new runs/SCENARIO__ALGO__SEED__TIME).",
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint.")] = False,
    independent: Annotated[
        bool, typer.Option(help="One policy network per signal instead of a shared one (ppo).")
    ] = False,
    routes: RoutesOption = None,
    begin: BeginOption = None,
    end: EndOption = None,
    protocol: ProtocolOption = None,
    time_to_teleport: TeleportOption = None,
    sumo_option: SumoOption = None,
    eval_seeds: Annotated[
        list[str] | None,
        typer.Option(
            help="Validation seeds that pick the best model during training "
            "(default: the recipe's, 100-102)."
        ),
    ] = None,
    eval_every: Annotated[int | None, typer.Option(min=1, help="Steps between evaluations.")] = (
        None
    ),
    confirm_seeds: Annotated[
        list[str] | None,
        typer.Option(
            help="Seeds that choose among the models of least validation delay at the end "
            "of training (default: the recipe's, 103-105)."
        ),
    ] = None,
    holdout_seeds: Annotated[
        list[str] | None,
        typer.Option(
            "--holdout-seeds",
            "--compare-seeds",
            help=f"Held-out seeds of the final comparison (default {HOLDOUT_SEEDS}; "
            "--compare-seeds: its old name).",
        ),
    ] = None,
) -> None:
    """Train a shared signal policy, keep the best on validation seeds, then compare it with
    fixed-time and the best classical controller on held-out seeds never used in training.

    With the recipe's teacher (the default recipe: the deciding classical controller with
    the least delay on the validation seeds) the policy first imitates that controller's
    decisions, then PPO improves on them."""
    from twin_traffic.scenario import load_scenario
    from twin_traffic.train import (
        best_classical,
        check_recipe,
        check_run_folder,
        chosen_finalist,
        default_recipe,
        load_recipe,
        new_run_folder,
        resume_point,
    )
    from twin_traffic.train import train as run_training

    # Everything is checked before the run folder exists or a simulation starts.
    base = load_recipe(recipe or default_recipe(algo))
    run_protocol = protocol_from(protocol, time_to_teleport, sumo_option)
    route_names = route_paths(routes)
    loaded = load_scenario(scenario, routes=route_names, begin=begin, end=end)
    source = scenario if loaded.builtin else str(Path(scenario).resolve())
    final_seeds = seeds_option(holdout_seeds, HOLDOUT_SEEDS, "--holdout-seeds")
    overrides: dict[str, Any] = {}
    if timesteps is not None:
        overrides["timesteps"] = timesteps
    if workers is not None:
        overrides["simulations"] = workers
    if eval_seeds:
        overrides["eval_seeds"] = tuple(seeds_option(eval_seeds, "", "--eval-seeds"))
    if eval_every is not None:
        overrides["eval_every"] = eval_every
    if confirm_seeds:
        overrides["confirm_seeds"] = tuple(seeds_option(confirm_seeds, "", "--confirm-seeds"))
    if independent:
        overrides["policies"] = "independent"
    chosen = replace(base, **overrides)
    check_recipe(chosen, "the command line")
    chose_model = sorted(set(chosen.eval_seeds + chosen.confirm_seeds) & set(final_seeds))
    if chose_model:
        raise TwinTrafficError(
            f"seeds {', '.join(map(str, chose_model))} would both choose the model and judge "
            "it; choose --holdout-seeds the validation and confirmation seeds do not use"
        )
    options: dict[str, Any] = {
        "routes": route_names,
        "protocol": run_protocol.name,
        "time_to_teleport": run_protocol.time_to_teleport,
        "sumo_options": run_protocol.sumo_options,
        **run_protocol.timings(),
    }
    if begin is not None:
        options["begin"] = begin
    if end is not None:
        options["end"] = end

    if out_dir is None:
        if resume:
            raise TwinTrafficError("--resume: give the --out folder of the run to continue")
        out_dir = new_run_folder(Path("runs"), loaded.name, chosen.algo, seed)
    else:
        check_run_folder(out_dir, resume)
    err.print(f"run folder: {out_dir}", highlight=False)

    def report(steps: int, delay: float) -> None:
        err.print(f"validation delay at {steps:,} steps: {delay:.1f} s/trip", highlight=False)

    if not (out_dir / "baselines.json").exists():
        seeds = ", ".join(map(str, chosen.eval_seeds))
        count = len(chosen.baselines) * len(chosen.eval_seeds)
        err.print(
            f"scoring {len(chosen.baselines)} classical controllers on validation seeds "
            f"{seeds} first ({count} simulations, once per run folder), then training "
            f"{chosen.timesteps:,} steps",
            highlight=False,
        )
    if chosen.teacher and not resume:
        who = (
            "the best deciding classical controller"
            if chosen.teacher == "best"
            else (chosen.teacher)
        )
        err.print(
            f"imitating {who} ({chosen.imitation_rounds} rounds of "
            f"{chosen.imitation_steps:,} steps) before PPO",
            highlight=False,
        )
    phases = PhaseDisplay({
        "scoring": ("scoring classical controllers", "simulations"),
        "imitating": ("imitating the teacher", "steps"),
        "confirming": ("confirming finalists", "simulations"),
    })  # fmt: skip
    try:
        result = run_training(
            source, chosen, out_dir, seed=seed, resume=resume,
            progress_bar=err.is_terminal, on_evaluation=report, scenario_options=options,
            on_phase=phases,
        )  # fmt: skip
    except KeyboardInterrupt:
        where = (
            f"continue from {resume_point(out_dir)}"
            if resume_point(out_dir) is not None
            else "start it again (the classical controllers' scores are kept)"
        )
        err.print(f"interrupted; run the same command with --resume to {where}", highlight=False)
        raise typer.Exit(130) from None
    finally:
        phases.close()
    if result.selection:
        chosen_row = chosen_finalist(result.selection)
        err.print(
            f"chosen among {len(result.selection)} finalists on validation and confirmation "
            f"seeds: the model at {chosen_row['timesteps']:,} steps, "
            f"{chosen_row['combined']:.1f} s/trip (selection.csv)",
            highlight=False,
        )
    err.print(f"best model: {result.best_model}; learning curve: {out_dir / 'learning_curve.png'}")
    classical = [best_classical(result.baselines)]
    if result.teacher and result.teacher not in classical:
        classical.append(result.teacher)
    _compare(loaded.name, source, result.best_model, options, final_seeds, chosen.simulations,
             classical)  # fmt: skip


def _compare(
    name: str,
    scenario: str,
    model: Path,
    options: dict[str, Any],
    seeds: list[int],
    workers: int,
    classical: list[str],
) -> None:
    """Agent vs fixed-time and ``classical`` (the best on the validation seeds first) on
    held-out seeds, as a table; says so when the agent loses to the best of them."""
    from twin_traffic.evaluate import RunSpec
    from twin_traffic.metrics import summarize_runs
    from twin_traffic.report import comparison_table
    from twin_traffic.train import protocol_params

    controllers: dict[str, dict[str, Any]] = {"fixed": {}}
    for controller in classical:
        controllers[controller] = protocol_params(controller, options["protocol"])
    controllers["agent"] = {"model": str(model)}
    specs = [
        RunSpec(scenario, controller="policy" if label == "agent" else label, params=params,
                seed=s, emissions=False, routes=options["routes"], begin=options.get("begin"),
                end=options.get("end"), protocol=options["protocol"],
                time_to_teleport=options["time_to_teleport"],
                sumo_options=options["sumo_options"])
        for label, params in controllers.items()
        for s in seeds
    ]  # fmt: skip
    outcomes = run_with_status(specs, workers=workers, description="agent vs classical control")
    failures = [o.error for o in outcomes if not o.ok]
    if failures:
        err.print(f"[red]error:[/red] {failures[0]}")
        raise typer.Exit(1)
    per_controller = {}
    for i, label in enumerate(controllers):
        runs = outcomes[i * len(seeds) : (i + 1) * len(seeds)]
        per_controller[label] = summarize_runs([o.result.metrics for o in runs if o.result])
    title = f"{name}: agent on held-out seeds {', '.join(map(str, seeds))}, mean ± 95% CI"
    out.print(comparison_table(title, per_controller, baseline="fixed"))
    best = classical[0]
    agent_delay, best_delay = (
        per_controller["agent"]["delay"].mean,
        per_controller[best]["delay"].mean,
    )
    if agent_delay > best_delay:
        err.print(
            f"[yellow]the agent is worse than {best}, the best classical controller on the "
            f"validation seeds: {agent_delay:.1f} against {best_delay:.1f} s/trip on the "
            "held-out seeds[/yellow]",
            highlight=False,
        )
