"""Comparison tables of controllers across seeds (terminal and JSON)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rich.markup import escape
from rich.table import Table

from twin_traffic.metrics import HIGHER_IS_BETTER, METRICS, RUN_COUNTS, Summary


def format_metric(metric: str, summary: Summary) -> str:
    """A table cell: ``k/n`` runs for a per-run flag (gridlock), else the estimate."""
    if metric in RUN_COUNTS:
        return "–" if summary.n == 0 else f"{round(summary.mean * summary.n)}/{summary.n}"
    return format_estimate(summary)


def change_shown(metric: str) -> bool:
    """Whether a change against the baseline means something for ``metric``."""
    return metric not in RUN_COUNTS


def column_header(name: str) -> str:
    """A controller's column header, broken after its hyphens when long (``max-`` /
    ``pressure``), so that several controllers fit 80 columns without a cut word; rich
    markup escaped (``actuated[min_green=3]`` would otherwise lose its brackets)."""
    return escape(name.replace("-", "-\n") if len(name) > 8 else name)


def controller_header(name: str, baseline: str) -> str:
    """The header of a change column: the controller's header, then ``vs BASELINE``."""
    return f"{column_header(name)}\nvs {escape(baseline)}"


def format_estimate(summary: Summary) -> str:
    """``mean ± half-width`` with sensible precision (no interval with one seed)."""
    if math.isnan(summary.mean):
        return "–"
    digits = 0 if abs(summary.mean) >= 100 else 1 if abs(summary.mean) >= 10 else 2
    text = f"{summary.mean:,.{digits}f}"
    if summary.n > 1 and not math.isnan(summary.half_width):
        text += f" ± {summary.half_width:,.{digits}f}"
    return text


def relative_change(value: float, baseline: float) -> float:
    """Change of ``value`` against ``baseline`` in percent (NaN when undefined)."""
    if math.isnan(value) or math.isnan(baseline) or baseline == 0:
        return math.nan
    return 100.0 * (value - baseline) / abs(baseline)


def comparison_table(
    title: str, summaries: Mapping[str, Mapping[str, Summary]], baseline: str | None = None
) -> Table:
    """One row per metric, one column per controller (mean ± 95% CI), and the change of
    every other controller against ``baseline`` in green (better) or red (worse)."""
    table = new_table(title)
    names = list(summaries)
    for name in names:
        add_value_column(table, column_header(name))
    others = [n for n in names if baseline is not None and n != baseline]
    for name in others:
        assert baseline is not None
        add_value_column(table, controller_header(name, baseline))
    for metric, unit in METRICS.items():
        if all(math.isnan(summaries[name][metric].mean) for name in names):
            continue  # not measured in these runs (e.g. emissions switched off)
        row = [metric, unit]
        row += [flag_cell(metric, summaries[name][metric]) for name in names]
        for name in others:
            assert baseline is not None
            change = relative_change(summaries[name][metric].mean, summaries[baseline][metric].mean)
            row.append(_colour_change(metric, change) if change_shown(metric) else "–")
        table.add_row(*row)
    return table


def new_table(title: str) -> Table:
    """A comparison table with its metric and unit columns, readable in 80 columns."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric", no_wrap=True)
    table.add_column("unit", overflow="fold", style="dim")
    return table


def add_value_column(table: Table, header: str) -> None:
    """A right-aligned column whose long header and values fold rather than being cut."""
    table.add_column(header, justify="right", overflow="fold")


def flag_cell(metric: str, summary: Summary) -> str:
    """:func:`format_metric`, in bold red when some run gridlocked."""
    text = format_metric(metric, summary)
    if metric in RUN_COUNTS and summary.n and summary.mean > 0:
        return f"[bold red]{text}[/bold red]"
    return text


def comparison_json(
    summaries: Mapping[str, Mapping[str, Summary]],
    per_seed: Mapping[str, Mapping[int, Mapping[str, float]]],
) -> dict[str, Any]:
    """Per controller: every metric's values by seed (``"seed": value``, only the seeds
    whose run finished) and their mean/std/CI."""
    return {
        name: {
            metric: {
                "per_seed": {str(seed): run[metric] for seed, run in per_seed[name].items()},
                "mean": summary.mean,
                "std": summary.std,
                "ci95_low": summary.ci_low,
                "ci95_high": summary.ci_high,
                "n": summary.n,
            }
            for metric, summary in summaries[name].items()
        }
        for name in summaries
    }


def _colour_change(metric: str, change: float) -> str:
    if math.isnan(change):
        return "–"
    better = change > 0 if metric in HIGHER_IS_BETTER else change < 0
    colour = "green" if better else "red" if abs(change) >= 0.05 else "default"
    return f"[{colour}]{change:+.1f}%[/{colour}]"
