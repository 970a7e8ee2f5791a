"""``twin-traffic compare``: a finished sweep's controllers, tested against a baseline."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from twin_traffic.cli.app import app, err, out
from twin_traffic.cli.common import OutputFormat, check_output_file, check_plot_folder


@app.command()
def compare(
    runs: Annotated[
        Path,
        typer.Argument(help="A results folder of `sweep` or `evaluate --out`, e.g. runs/quick."),
    ],
    baseline: Annotated[
        str | None,
        typer.Option(help="Controller label to compare against; the sweep's baseline by default."),
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="Write one self-contained HTML report here.")
    ] = None,
    plots: Annotated[
        Path | None, typer.Option(help="Folder for the PNG plots; RUNS/plots by default.")
    ] = None,
    alpha: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Significance level of the paired tests.")
    ] = 0.05,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="table, or json on stdout for scripts.")
    ] = OutputFormat.table,
) -> None:
    """Per scenario × controller of a sweep or an `evaluate --out` folder: mean ± 95% CI
    of every metric, the change against the baseline and a paired test over seeds (paired
    t-test; Wilcoxon too from 6 seeds).

    Writes the plots (delay with CIs, queue length over time, travel-time distribution)
    as PNG files, and with --html one page holding the tables and the plots.
    """
    from twin_traffic.compare import compare_sweep, scenario_table
    from twin_traffic.plots import render_plots, write_plots
    from twin_traffic.store import json_safe, write_file_atomic

    comparison = compare_sweep(runs, baseline=baseline, alpha=alpha)
    if html is not None:
        check_output_file(html, "--html")
    if plots is not None:
        check_plot_folder(plots)
    if output_format is OutputFormat.json:
        sys.stdout.write(json.dumps(json_safe(comparison.to_json()), indent=2) + "\n")
    else:
        for scenario in comparison.scenarios:
            out.print(scenario_table(scenario, comparison.baseline, comparison.alpha))
    for failure in comparison.failures:
        err.print(
            f"[red]failed run:[/red] {escape(failure['run'])}: {escape(failure['error'] or '')}"
        )
    for warning in comparison.warnings:
        err.print(
            f"[yellow]warning:[/yellow] {escape(warning['run'])}: {escape(warning['warning'])}",
            highlight=False,
        )
    if comparison.pending:
        err.print(
            f"{len(comparison.pending)} run(s) not finished; run the sweep again to complete them",
            highlight=False,
        )
    images = render_plots(comparison)
    try:
        written = write_plots(images, plots if plots is not None else runs / "plots")
    except OSError as error:
        if plots is not None:
            raise
        # The results folder may be read-only (shared, archived): the tables stand alone.
        err.print(
            f"[yellow]warning:[/yellow] plots not written ({escape(str(error.strerror))} in "
            f"{escape(str(runs))}); give --plots FOLDER",
            highlight=False,
        )
    else:
        err.print(f"plots: {', '.join(escape(str(p)) for p in written)}", highlight=False)
    if html is not None:
        from twin_traffic.html_report import render_html

        write_file_atomic(html, render_html(comparison, images))
        err.print(f"report: {escape(str(html))}", highlight=False)
