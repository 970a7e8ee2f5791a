"""``twin-traffic tune``: optimise a fixed-time plan and report it on held-out seeds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

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
    WorkersOption,
    check_output_file,
    protocol_from,
    route_paths,
    seeds_option,
)
from twin_traffic.cli.progress import run_with_status
from twin_traffic.errors import TwinTrafficError
from twin_traffic.seeds import seed_text, seeds_after

if TYPE_CHECKING:
    from collections.abc import Callable

    from twin_traffic.executor import Outcome
    from twin_traffic.tuning import ConfirmProgress, TuneProgress, TuneResult

PROGRESS_HOLDOUT = 2  # held-out seeds the best plan so far runs on, for the display


@app.command()
def tune(
    scenario: ScenarioArg,
    budget: Annotated[
        int, typer.Option(min=5, help="Candidate plans to evaluate (each on every seed).")
    ] = 60,
    seeds: Annotated[
        list[str] | None, typer.Option(help="Training seeds: 0-2, 0,1,2 or 0 1 2 (default 0-2).")
    ] = None,
    holdout_seeds: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Seeds the plan is reported on, never tuned on (default {HOLDOUT_SEEDS}; "
            "none: report on the training seeds alone)."
        ),
    ] = None,
    confirm_seeds: Annotated[
        list[str] | None,
        typer.Option(
            help="Seeds the starting plans and the best finalists also run on before the "
            "choice, made over training and these seeds (default: as many as the training "
            "seeds, the next ones; none: choose on the training seeds alone)."
        ),
    ] = None,
    finalists: Annotated[
        int, typer.Option(min=1, help="Best plans of the search confirmed on --confirm-seeds.")
    ] = 3,
    served_flows: Annotated[
        str | None,
        typer.Option(
            help="Also start from Webster's plan timed for the flows this deciding controller "
            "serves, for networks whose own plans gridlock (default advanced-max-pressure; "
            "none: two starts only)."
        ),
    ] = None,
    out_file: Annotated[
        Path, typer.Option("--out", help="Where to write the plan (a SUMO additional file).")
    ] = Path("plan.add.xml"),
    workers: WorkersOption = 1,
    min_cycle: Annotated[float, typer.Option(help="Shortest cycle, s.")] = 30.0,
    max_cycle: Annotated[float, typer.Option(help="Longest cycle, s.")] = 150.0,
    min_green: Annotated[float, typer.Option(help="Shortest green of any phase, s.")] = 5.0,
    optimizer: Annotated[
        str, typer.Option(help="local (evolution strategy from the incumbent) or de.")
    ] = "local",
    optimizer_seed: Annotated[int, typer.Option(help="Seed of the optimiser.")] = 0,
    groups: Annotated[
        str,
        typer.Option(
            help="Signals that share a cycle: auto (those whose own plans do, and "
            "Webster's when the search starts from it), each, one, or 'A,B;C,D'."
        ),
    ] = "auto",
    se_weight: Annotated[
        float, typer.Option(help="k in the objective mean + k * standard error.")
    ] = 1.0,
    study: Annotated[
        Path | None,
        typer.Option(help="Where every simulation is recorded (default: beside --out)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the study of an interrupted tune.")
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Replace --out when it exists (a --resume always may).")
    ] = False,
    routes: RoutesOption = None,
    begin: BeginOption = None,
    end: EndOption = None,
    protocol: ProtocolOption = None,
    time_to_teleport: TeleportOption = None,
    sumo_option: SumoOption = None,
) -> None:
    """Tune cycles, green splits and offsets of the fixed-time plans by simulation.

    The search starts from the scenario's own plan, Webster's, and Webster's for the
    flows adaptive control serves, runs every candidate on the same training seeds (the
    full set only for promising ones) and minimises mean + k * standard error of the
    delay; the starts and the best finalists are confirmed on more seeds before the
    choice. The best is written as a <tlLogic> file that plain
    `sumo -a PLAN` loads, and compared with the fixed-time plan on training and held-out
    seeds (delay, s/trip, mean ± 95% CI). Every simulation is kept in a study file, so an
    interrupted tune continues with --resume.
    """
    from twin_traffic.evaluate import RunSpec
    from twin_traffic.network import load_network
    from twin_traffic.plan_space import parse_groups
    from twin_traffic.scenario import load_scenario
    from twin_traffic.tuning import SERVED_FLOWS, write_tuned_plan
    from twin_traffic.tuning import tune as run_tuning

    train = seeds_option(seeds, "0-2")
    held_out = (
        []
        if holdout_seeds == ["none"]
        else seeds_option(holdout_seeds, HOLDOUT_SEEDS, "--holdout-seeds")
    )
    if confirm_seeds == ["none"]:
        confirm: list[int] = []
    elif confirm_seeds:
        confirm = seeds_option(confirm_seeds, "", "--confirm-seeds")
    else:
        confirm = seeds_after(train, len(train), avoid=held_out)
    flows = None if served_flows == "none" else served_flows or SERVED_FLOWS
    if not 0 < min_cycle <= max_cycle:
        raise TwinTrafficError(
            f"--min-cycle {min_cycle:g}, --max-cycle {max_cycle:g}: the shortest cycle must be "
            "positive and no longer than the longest"
        )
    run_protocol = protocol_from(protocol, time_to_teleport, sumo_option)
    overlap = sorted(set(train + confirm) & set(held_out))
    if overlap:
        raise TwinTrafficError(
            f"seeds {', '.join(map(str, overlap))} are both tuning and held-out seeds; "
            "choose --holdout-seeds the tuning never sees"
        )
    route_names = route_paths(routes)
    loaded = load_scenario(scenario, routes=route_names, begin=begin, end=end)
    source = scenario if loaded.builtin else str(Path(scenario).resolve())
    signal_ids = load_network(loaded).signal_ids
    check_output_file(out_file)
    study_file = (
        study or out_file.with_name(out_file.name.split(".")[0] + ".study.jsonl")
    ).resolve()
    check_output_file(study_file, "--study")
    # An existing study is refused (or resumed) by the tune itself, with its own fix.
    if out_file.exists() and not (force or resume or study_file.exists()):
        raise TwinTrafficError(
            f"{out_file}: already exists (another tune's plan?); choose another --out, or "
            "add --force to replace it"
        )
    started = time.perf_counter()
    result = _tune_with_progress(
        lambda progress, confirm_progress: run_tuning(
            source,
            budget=budget,
            seeds=train,
            workers=workers,
            min_cycle=min_cycle,
            max_cycle=max_cycle,
            min_green=min_green,
            optimizer=optimizer,
            optimizer_seed=optimizer_seed,
            groups=parse_groups(groups, signal_ids),
            k=se_weight,
            routes=route_names,
            begin=begin,
            end=end,
            study=study_file,
            resume=resume,
            holdout_seeds=held_out[:PROGRESS_HOLDOUT],
            progress=progress,
            protocol=run_protocol,
            confirm_seeds=confirm,
            finalists=finalists,
            served_flows=flows,
            confirm_progress=confirm_progress,
        ),
        loaded.name,
        study_file,
    )
    plan = write_tuned_plan(result, out_file.resolve(), loaded.name)
    err.print(
        f"tuned {result.evaluations} plans ({result.simulations} simulations) in "
        f"{time.perf_counter() - started:.0f} s; plan written to {escape(str(out_file))}",
        highlight=False,
    )

    def spec(controller: str, seed: int) -> RunSpec:
        return RunSpec(
            scenario=source,
            controller=controller,
            params={"plan": str(plan)} if controller == "tuned" else {},
            seed=seed,
            routes=route_names,
            begin=begin,
            end=end,
            emissions=False,
            protocol=run_protocol.name,
            time_to_teleport=run_protocol.time_to_teleport,
            sumo_options=run_protocol.sumo_options,
        )

    specs = [spec("fixed", s) for s in [*train, *held_out]] + [spec("tuned", s) for s in held_out]
    outcomes = run_with_status(specs, workers, description="tuned plan vs fixed time")
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise TwinTrafficError(failed[0].error or "a comparison run failed")
    tuned_train = [result.per_seed[s] for s in train]
    out.print(_comparison(loaded.name, outcomes, train, held_out, tuned_train))


def _tune_with_progress(
    job: Callable[[TuneProgress, ConfirmProgress], TuneResult], name: str, study: Path
) -> TuneResult:
    from twin_traffic.cli.progress import counting_progress

    progress = counting_progress()
    task = progress.add_task(f"tuning {escape(name)}", total=None, what="plans")
    confirming = progress.add_task("confirming finalists", total=None, what="simulations",
                                   visible=False)  # fmt: skip
    lines = {"plans": _ProgressLines(), "confirmation": _ProgressLines()}

    def update(done: int, total: int, best: float, held_out: float | None) -> None:
        text = f"{best:.2f} s/trip"
        if held_out is not None:
            text += f" (held-out {held_out:.2f})"
        progress.update(task, completed=done, total=total, what=f"plans · best {text}")
        if lines["plans"].due(done, total):
            err.print(
                f"tuning: {done}/{total} plans, best delay {text}, ETA "
                f"{lines['plans'].eta(done, total):.0f} s",
                highlight=False,
            )

    def update_confirmation(done: int, total: int) -> None:
        if done == 0:
            lines["confirmation"] = _ProgressLines()  # its ETA counts from its own start
        progress.update(confirming, completed=done, total=total, visible=True)
        if lines["confirmation"].due(done, total):
            err.print(
                f"confirming finalists: {done}/{total} simulations, ETA "
                f"{lines['confirmation'].eta(done, total):.0f} s",
                highlight=False,
            )

    try:
        with progress:
            return job(update, update_confirmation)
    except KeyboardInterrupt:
        err.print(
            f"tuning interrupted; its simulations are kept in {escape(str(study))}: run the "
            "same command with --resume to continue",
            highlight=False,
        )
        raise typer.Exit(130) from None


class _ProgressLines:
    """Progress as lines where there is no terminal for a bar: one every tenth of the
    work, with an ETA from the time since this phase began."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.reported = 0

    def due(self, done: int, total: int) -> bool:
        """Whether to print a line now (and remember that it was printed)."""
        if err.is_terminal or done <= self.reported:
            return False
        if done >= total or done >= self.reported + total / 10:
            self.reported = done
            return True
        return False

    def eta(self, done: int, total: int) -> float:
        """Seconds left at the pace so far."""
        return (time.perf_counter() - self.started) / done * (total - done) if done else 0.0


def _comparison(
    name: str,
    outcomes: list[Outcome],
    train: list[int],
    held_out: list[int],
    tuned_train: list[float],
) -> Table:
    from twin_traffic.metrics import summarize_seeds

    def delays(controller: str, seeds: list[int]) -> list[float]:
        found = {
            o.spec.seed: o.result.metrics["delay"]
            for o in outcomes
            if o.result is not None and o.spec.controller == controller
        }
        return [found[s] for s in seeds]

    def cell(values: list[float]) -> str:
        summary = summarize_seeds(values)
        if summary.n < 2:
            return f"{summary.mean:.2f}"
        return f"{summary.mean:.2f} ± {summary.half_width:.2f}"

    table = Table(title=f"{name}: delay (s/trip), mean ± 95% CI over seeds", title_justify="left")
    for column in ("seeds", "fixed", "tuned", "change"):
        table.add_column(column, justify="left" if column == "seeds" else "right")
    rows = (
        ("training " + seed_text(train), delays("fixed", train), tuned_train),
        ("held-out " + seed_text(held_out), delays("fixed", held_out), delays("tuned", held_out)),
    )
    for label, fixed, tuned in rows:
        if not fixed:  # --holdout-seeds none
            continue
        change = (sum(tuned) / len(tuned)) / (sum(fixed) / len(fixed)) - 1
        table.add_row(label, cell(fixed), cell(tuned), f"{change:+.1%}")
    return table
