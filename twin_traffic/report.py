"""Comparison tables of controllers across seeds (terminal and JSON)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from twin_traffic.metrics import HIGHER_IS_BETTER, METRICS, Summary


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
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("unit")
    names = list(summaries)
    for name in names:
        table.add_column(name, justify="right")
    others = [n for n in names if baseline is not None and n != baseline]
    for name in others:
        table.add_column(f"{name} vs {baseline}", justify="right")
    for metric, unit in METRICS.items():
        if all(math.isnan(summaries[name][metric].mean) for name in names):
            continue  # not measured in these runs (e.g. emissions switched off)
        row = [metric, unit]
        row += [format_estimate(summaries[name][metric]) for name in names]
        for name in others:
            assert baseline is not None
            change = relative_change(summaries[name][metric].mean, summaries[baseline][metric].mean)
            row.append(_colour_change(metric, change))
        table.add_row(*row)
    return table


def comparison_json(
    summaries: Mapping[str, Mapping[str, Summary]],
    per_seed: Mapping[str, Sequence[Mapping[str, float]]],
) -> dict[str, Any]:
    """Per controller: per-seed values and mean/std/CI of every metric."""
    return {
        name: {
            metric: {
                "per_seed": [run[metric] for run in per_seed[name]],
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
