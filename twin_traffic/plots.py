"""Plots of a sweep comparison as PNG images (matplotlib's Agg renderer, no display).

- ``delay``: mean delay per controller and scenario with its 95% confidence interval;
- ``queues``: halting vehicles on the signals' approaches over time (mean over signals
  and seeds), one panel per scenario;
- ``travel_time``: the distribution of arrived trips' travel times (an empirical CDF
  pooled over seeds), one panel per scenario.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through
``pyplot``, so no GUI backend or global state is involved.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from twin_traffic.compare import ScenarioComparison, SweepComparison
from twin_traffic.metrics import METRICS
from twin_traffic.store import read_queues, read_trips, write_file_atomic

PLOTS = {
    "delay": "Mean delay per trip with 95% CI",
    "queues": "Queue length over time",
    "travel_time": "Travel-time distribution",
}
"""Plot names (file stems) and their titles."""

_DPI = 110


def render_plots(comparison: SweepComparison) -> dict[str, bytes]:
    """Every plot of :data:`PLOTS` as PNG bytes."""
    return {
        "delay": _png(metric_figure(comparison, "delay")),
        "queues": _png(queue_figure(comparison)),
        "travel_time": _png(travel_time_figure(comparison)),
    }


def write_plots(plots: dict[str, bytes], directory: Path) -> list[Path]:
    """Write rendered plots as ``NAME.png`` into ``directory``; return the paths."""
    paths = []
    for name, png in plots.items():
        path = directory / f"{name}.png"
        write_file_atomic(path, png)
        paths.append(path)
    return paths


def metric_figure(comparison: SweepComparison, metric: str = "delay") -> Figure:
    """Grouped bars: one group per scenario, one bar per controller, 95% CI whiskers."""
    scenarios = comparison.scenarios
    controllers = _controllers(scenarios)
    figure = Figure(figsize=(max(5.0, 1.2 + 1.1 * len(scenarios) * len(controllers) ** 0.5), 4.2))
    axes = figure.subplots()
    width = 0.8 / max(1, len(controllers))
    positions = np.arange(len(scenarios))
    for i, name in enumerate(controllers):
        means, errors = [], []
        for scenario in scenarios:
            summary = scenario.summaries.get(name, {}).get(metric)
            means.append(summary.mean if summary else math.nan)
            half = summary.half_width if summary else math.nan
            errors.append(0.0 if math.isnan(half) else half)
        axes.bar(
            positions + (i - (len(controllers) - 1) / 2) * width,
            means,
            width,
            yerr=errors,
            capsize=3,
            label=name,
        )
    axes.set_xticks(positions, [s.scenario for s in scenarios])
    axes.set_ylabel(f"{metric} ({METRICS.get(metric, '')})")
    axes.set_title(f"{metric}: mean over seeds, 95% CI")
    # Below the axes: inside, the legend would hide the bars of some scenario.
    axes.legend(
        fontsize="small",
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        ncol=min(4, max(1, len(controllers))),
        frameon=False,
    )
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def queue_figure(comparison: SweepComparison) -> Figure:
    """Queue per signal over time, mean over signals and seeds, per controller."""
    figure, panels = _panels(comparison.scenarios)
    for axes, scenario in zip(panels, comparison.scenarios, strict=True):
        for name in scenario.controllers:
            series = _mean_queue(scenario, name)
            axes.plot(series.index / 60.0, series.to_numpy(), label=name, linewidth=1.2)
        axes.set_title(scenario.scenario)
        axes.set_xlabel("time (min)")
        axes.set_ylabel("halting vehicles per signal")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def travel_time_figure(comparison: SweepComparison) -> Figure:
    """Empirical CDF of arrived trips' travel times, pooled over seeds, per controller."""
    figure, panels = _panels(comparison.scenarios)
    for axes, scenario in zip(panels, comparison.scenarios, strict=True):
        for name in scenario.controllers:
            durations = np.sort(
                np.concatenate(
                    [
                        _arrived_durations(folder)
                        for folder in scenario.folders.get(name, {}).values()
                    ]
                    or [np.zeros(0)]
                )
            )
            if durations.size:
                share = np.arange(1, durations.size + 1) / durations.size
                axes.step(durations, share, where="post", label=name, linewidth=1.2)
        axes.set_title(scenario.scenario)
        axes.set_xlabel("travel time (s)")
        axes.set_ylabel("share of arrived trips")
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:  # no trip arrived: no line, no legend
            axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def _controllers(scenarios: list[ScenarioComparison]) -> list[str]:
    return list(dict.fromkeys(name for s in scenarios for name in s.controllers))


def _panels(scenarios: list[ScenarioComparison]) -> tuple[Figure, list[Axes]]:
    columns = min(3, len(scenarios))
    rows = math.ceil(len(scenarios) / columns)
    figure = Figure(figsize=(4.4 * columns, 3.4 * rows))
    grid = figure.subplots(rows, columns, squeeze=False)
    panels = list(grid.ravel())
    for extra in panels[len(scenarios) :]:
        extra.set_visible(False)
    return figure, panels[: len(scenarios)]


def _mean_queue(scenario: ScenarioComparison, controller: str) -> pd.Series:
    runs = []
    for folder in scenario.folders.get(controller, {}).values():
        table = read_queues(folder).set_index("time")
        runs.append(table.mean(axis=1))
    if not runs:
        return pd.Series(dtype=float)
    return pd.concat(runs, axis=1).mean(axis=1)


def _arrived_durations(folder: Path) -> np.ndarray:
    trips = read_trips(folder)
    return trips.loc[trips["arrived"], "duration"].to_numpy(dtype=float)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()
