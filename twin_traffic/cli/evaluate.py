"""``twin-traffic evaluate``: controllers × seeds on one scenario, compared."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from twin_traffic.cli.app import app, err, out
from twin_traffic.cli.common import (
    BackendChoice,
    BeginOption,
    EndOption,
    OutputFormat,
    ProtocolOption,
    RoutesOption,
    ScenarioArg,
    SumoOption,
    TeleportOption,
    WorkersOption,
    check_output_folder,
    checked_controllers,
    controller_params,
    protocol_from,
    route_paths,
    seeds_option,
)
from twin_traffic.cli.progress import run_with_status

if TYPE_CHECKING:
    from twin_traffic.executor import Outcome


def _controller_help() -> str:
    """The controllers and their parameters with defaults, for ``evaluate --help``."""
    from twin_traffic.controllers.parameters import PARAMETERS, summary

    lines = ["Controllers and their --param keys (defaults):"]
    lines += [f"{name}: {summary(name)}" for name in PARAMETERS]
    return "\n\n".join(lines)


@app.command(epilog=_controller_help())
def evaluate(
    scenario: ScenarioArg,
    controller: Annotated[
        list[str] | None,
        typer.Option("--controller", "-c", help="Controller name; repeat to compare several."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="Controller parameter KEY=VALUE (or CONTROLLER.KEY=VALUE with several); "
            "the keys are listed below.",
        ),
    ] = None,
    seeds: Annotated[
        list[str] | None, typer.Option(help="SUMO seeds: 0-4, 0,1,2 or 0 1 2 (default 0).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write one results folder per run here.")
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="table, or json on stdout for scripts.")
    ] = OutputFormat.table,
    gui: Annotated[bool, typer.Option(help="Watch the runs in sumo-gui.")] = False,
    backend: Annotated[BackendChoice, typer.Option(help="Simulation backend.")] = (
        BackendChoice.libsumo
    ),
    routes: RoutesOption = None,
    begin: BeginOption = None,
    end: EndOption = None,
    protocol: ProtocolOption = None,
    time_to_teleport: TeleportOption = None,
    sumo_option: SumoOption = None,
    workers: WorkersOption = 1,
    emissions: Annotated[
        bool,
        typer.Option(help="Also measure CO2 and fuel (SUMO runs 30-50% slower with them)."),
    ] = False,
) -> None:
    """Run controllers on a scenario over seeds and compare their congestion metrics.

    Metrics (mean ± 95% CI over seeds): delay, travel_time, waiting_time, stops,
    throughput, vehicles, unfinished, not_inserted, queue_mean, queue_max, teleports, and
    with --emissions co2_kg, fuel_kg. See the README for their definitions.
    """
    from twin_traffic.evaluate import RunSpec
    from twin_traffic.network import load_network
    from twin_traffic.scenario import load_scenario

    # Everything is checked before the first run starts: seeds, controllers and their
    # parameters, the protocol, the scenario.
    controllers = list(dict.fromkeys(controller or ["fixed"]))
    if gui:
        from twin_traffic.sim import check_display

        check_display()
    seed_list = seeds_option(seeds, "0")
    run_protocol = protocol_from(protocol, time_to_teleport, sumo_option)
    parsed = controller_params(param or [], controllers)
    route_names = route_paths(routes)
    loaded = load_scenario(scenario, routes=route_names, begin=begin, end=end)
    params = checked_controllers(parsed, run_protocol, load_network(loaded))
    if out_dir is not None:
        check_output_folder(out_dir)
    specs = [
        RunSpec(
            scenario=scenario if loaded.builtin else str(Path(scenario).resolve()),
            controller=name,
            params=params[name],
            seed=seed,
            routes=route_names,
            begin=begin,
            end=end,
            backend=backend.value,
            gui=gui,
            emissions=emissions,
            protocol=run_protocol.name,
            time_to_teleport=run_protocol.time_to_teleport,
            sumo_options=run_protocol.sumo_options,
        )
        for name in controllers
        for seed in seed_list
    ]
    try:
        outcomes = run_with_status(specs, workers, description=f"evaluating {loaded.name}")
    except KeyboardInterrupt:
        err.print("interrupted; no results written", highlight=False)
        raise typer.Exit(130) from None
    failures = [o for o in outcomes if not o.ok]
    for failure in failures:
        err.print(f"[red]error:[/red] {escape(failure.error or '')}", highlight=False)
    for label, warning in _warnings(outcomes):
        err.print(f"[yellow]warning:[/yellow] {escape(label)}: {escape(warning)}", highlight=False)
    if out_dir is not None:
        _write_results(out_dir, loaded.name, controllers, seed_list, outcomes)
        err.print(
            f"results written to {out_dir}; compare them with `twin-traffic compare {out_dir}`",
            highlight=False,
        )
    _print_comparison(loaded.name, controllers, seed_list, outcomes, output_format)
    if failures:
        raise typer.Exit(1)


def _warnings(outcomes: list[Outcome]) -> list[tuple[str, str]]:
    """(run label, warning) for every gridlock, heavy teleporting or never-inserted share."""
    from twin_traffic.metrics import run_warnings

    return [
        (o.spec.label, warning)
        for o in outcomes
        if o.result is not None
        for warning in run_warnings(o.result.metrics, o.result.gridlock_at)
    ]


def _write_results(
    root: Path, name: str, controllers: list[str], seeds: list[int], outcomes: list[Outcome]
) -> None:
    """One folder per finished run, and the index ``twin-traffic compare`` reads."""
    from twin_traffic.store import run_folder, write_results_index, write_run

    records = []
    for outcome in outcomes:
        folder = run_folder(root, outcome.spec)
        if outcome.result is not None:
            write_run(root, outcome.result)
        records.append(
            {
                "run": outcome.spec.label,
                "scenario": name,
                "controller": outcome.spec.controller,
                "controller_name": outcome.spec.controller,
                "params": dict(outcome.spec.params),
                "seed": outcome.spec.seed,
                "path": folder.relative_to(root).as_posix(),
                "status": "ok" if outcome.ok else "failed",
                "error": outcome.error,
            }
        )
    title = f"evaluate {name}"
    write_results_index(root, title, controllers[0], [name], controllers, seeds, records)


def _print_comparison(
    name: str,
    controllers: list[str],
    seeds: list[int],
    outcomes: list[Outcome],
    output_format: OutputFormat,
) -> None:
    from twin_traffic.metrics import METRICS, summarize_runs
    from twin_traffic.report import comparison_json, comparison_table
    from twin_traffic.store import json_safe

    per_seed = {
        c: {o.spec.seed: o.result.metrics for o in outcomes if o.result and o.spec.controller == c}
        for c in controllers
    }
    per_seed = {c: runs for c, runs in per_seed.items() if runs}
    summaries = {c: summarize_runs(list(runs.values())) for c, runs in per_seed.items()}
    if output_format is OutputFormat.json:
        document = {
            "scenario": name,
            "seeds": seeds,
            "units": METRICS,
            "controllers": comparison_json(summaries, per_seed),
            "failures": [{"run": o.spec.label, "error": o.error} for o in outcomes if not o.ok],
            "warnings": [{"run": run, "warning": text} for run, text in _warnings(outcomes)],
        }
        sys.stdout.write(json.dumps(json_safe(document), indent=2) + "\n")
        return
    if not summaries:
        return
    baseline = controllers[0] if controllers[0] in summaries else None
    title = f"{name}: {len(seeds)} seed(s), mean ± 95% CI"
    out.print(comparison_table(title, summaries, baseline if len(summaries) > 1 else None))
