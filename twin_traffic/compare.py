"""Compare the controllers of a finished sweep: estimates, changes and paired tests.

For every scenario × controller each metric is summarised over seeds (mean and 95%
Student-t interval, :func:`twin_traffic.metrics.summarize_runs`). Every other controller
is set against the baseline: the relative change of the means, and a paired test over the
seeds both ran (each seed is the same demand for every controller, so pairing removes the
demand's own variation):

- the paired t-test always (from two pairs on);
- the Wilcoxon signed-rank test too once there are at least
  :data:`WILCOXON_MIN_PAIRS` pairs; with fewer, its smallest possible p-value is above
  0.05 and it could never speak.

A difference is called significant when every test that ran gives p < ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from twin_traffic.errors import TwinTrafficError
from twin_traffic.metrics import HIGHER_IS_BETTER, METRICS, Summary, run_warnings, summarize_runs
from twin_traffic.report import (
    add_value_column,
    change_shown,
    column_header,
    controller_header,
    flag_cell,
    new_table,
    relative_change,
)
from twin_traffic.store import INDEX_FILE, read_index, read_metrics

if TYPE_CHECKING:
    from rich.table import Table

WILCOXON_MIN_PAIRS = 6
"""Pairs needed before the Wilcoxon test runs (with 5, its exact p-value is >= 0.0625)."""

DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison of one metric, controller against baseline, over common seeds.

    Attributes:
        n: seeds with a value under both controllers.
        mean_difference: mean of (controller - baseline) over those seeds.
        t_pvalue: two-sided p-value of the paired t-test (NaN with fewer than 2 pairs).
        wilcoxon_pvalue: two-sided p-value of the Wilcoxon signed-rank test, or ``None``
            with fewer than :data:`WILCOXON_MIN_PAIRS` pairs.
        significant: every test that ran gives p < alpha.
    """

    n: int
    mean_difference: float
    t_pvalue: float
    wilcoxon_pvalue: float | None
    significant: bool

    @property
    def tests(self) -> str:
        """Which tests decided: ``paired t``, ``paired t + Wilcoxon`` or ``none``."""
        if math.isnan(self.t_pvalue):
            return "none"
        return "paired t" if self.wilcoxon_pvalue is None else "paired t + Wilcoxon"


def paired_test(
    baseline: Mapping[int, float], other: Mapping[int, float], alpha: float = DEFAULT_ALPHA
) -> PairedTest:
    """Paired tests of ``other`` against ``baseline``, both given as seed -> value."""
    seeds = sorted(
        seed
        for seed in set(baseline) & set(other)
        if not (math.isnan(baseline[seed]) or math.isnan(other[seed]))
    )
    differences = np.array([other[s] - baseline[s] for s in seeds], dtype=float)
    n = len(differences)
    if n < 2:
        mean = float(differences.mean()) if n else math.nan
        return PairedTest(n, mean, math.nan, None, False)
    mean = float(differences.mean())
    if not differences.any():
        # Identical under both controllers (e.g. the vehicles scheduled): no difference.
        t_p = 1.0
        wilcoxon_p: float | None = 1.0 if n >= WILCOXON_MIN_PAIRS else None
    else:
        if np.all(differences == differences[0]):
            t_p = 0.0  # the same non-zero shift on every seed: no spread to test against
        else:
            t_p = float(stats.ttest_1samp(differences, 0.0).pvalue)
        wilcoxon_p = None
        if n >= WILCOXON_MIN_PAIRS:
            wilcoxon_p = float(stats.wilcoxon(differences).pvalue)
    significant = t_p < alpha and (wilcoxon_p is None or wilcoxon_p < alpha)
    return PairedTest(n, mean, t_p, wilcoxon_p, significant)


@dataclass
class ScenarioComparison:
    """Every controller of one scenario, against the baseline.

    Attributes:
        scenario: the scenario's label.
        controllers: the labels with at least one finished run, in sweep order.
        per_seed: controller -> seed -> metrics of that run.
        folders: controller -> seed -> the run's folder.
        summaries: controller -> metric -> mean and 95% interval over seeds.
        changes: controller -> metric -> change of the mean against the baseline, %.
        tests: controller -> metric -> paired test against the baseline.
    """

    scenario: str
    controllers: list[str]
    per_seed: dict[str, dict[int, dict[str, float]]]
    folders: dict[str, dict[int, Path]]
    summaries: dict[str, dict[str, Summary]] = field(default_factory=dict)
    changes: dict[str, dict[str, float]] = field(default_factory=dict)
    tests: dict[str, dict[str, PairedTest]] = field(default_factory=dict)

    def measured(self, metric: str) -> bool:
        """Whether any run measured ``metric`` (emissions only when switched on)."""
        return not all(math.isnan(self.summaries[name][metric].mean) for name in self.controllers)


@dataclass
class SweepComparison:
    """A whole sweep's comparison; ``failures`` lists the runs that failed, ``warnings``
    the finished runs that gridlocked or left many vehicles out (``run``, ``warning``)."""

    name: str
    root: Path
    baseline: str
    alpha: float
    seeds: list[int]
    scenarios: list[ScenarioComparison]
    failures: list[dict[str, Any]]
    pending: list[str]
    warnings: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready document of every figure (NaN as ``None`` once through json_safe)."""
        return {
            "sweep": self.name,
            "baseline": self.baseline,
            "alpha": self.alpha,
            "seeds": self.seeds,
            "units": METRICS,
            "scenarios": {
                s.scenario: {
                    name: {
                        metric: _metric_json(s, name, metric, summary)
                        for metric, summary in s.summaries[name].items()
                    }
                    for name in s.controllers
                }
                for s in self.scenarios
            },
            "failures": self.failures,
            "pending": self.pending,
            "warnings": self.warnings,
        }


def _metric_json(
    scenario: ScenarioComparison, name: str, metric: str, summary: Summary
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "per_seed": {str(seed): m[metric] for seed, m in scenario.per_seed[name].items()},
        "mean": summary.mean,
        "std": summary.std,
        "ci95_low": summary.ci_low,
        "ci95_high": summary.ci_high,
        "n": summary.n,
    }
    if name in scenario.tests:
        test = scenario.tests[name][metric]
        entry.update(
            change_pct=scenario.changes[name][metric],
            paired={
                "n": test.n,
                "mean_difference": test.mean_difference,
                "t_pvalue": test.t_pvalue,
                "wilcoxon_pvalue": test.wilcoxon_pvalue,
                "tests": test.tests,
                "significant": test.significant,
            },
        )
    return entry


def compare_sweep(
    root: Path, baseline: str | None = None, alpha: float = DEFAULT_ALPHA
) -> SweepComparison:
    """Read a sweep's results folder and compare its controllers scenario by scenario.

    Args:
        root: the folder ``twin-traffic sweep`` wrote (with ``index.json``).
        baseline: a controller label; the sweep file's baseline by default.
        alpha: the significance level of the paired tests.

    Raises:
        TwinTrafficError: not a sweep folder, no finished run, or an unknown baseline.
    """
    root = Path(root)
    index = read_index(root)
    if index is None:
        raise TwinTrafficError(
            f"{root}: not a results folder (no {INDEX_FILE}); give the --out of "
            "`twin-traffic evaluate` or `twin-traffic sweep`"
        )
    controllers: list[str] = index["controllers"]
    chosen = baseline or index.get("baseline") or controllers[0]
    if chosen not in controllers:
        raise TwinTrafficError(
            f"{root}: --baseline '{chosen}' is none of the sweep's controllers "
            f"({', '.join(controllers)})"
        )
    runs = index["runs"]
    scenarios = []
    warnings: list[dict[str, str]] = []
    for scenario in index["scenarios"]:
        per_seed: dict[str, dict[int, dict[str, float]]] = {}
        folders: dict[str, dict[int, Path]] = {}
        for run in runs:
            if run["scenario"] != scenario or run["status"] != "ok":
                continue
            folder = root / run["path"]
            stored = read_metrics(folder)
            metrics = stored["metrics"]
            values = {m: math.nan if metrics.get(m) is None else metrics[m] for m in METRICS}
            warnings += [
                {"run": run["run"], "warning": text}
                for text in run_warnings(values, stored.get("gridlock_at"))
            ]
            per_seed.setdefault(run["controller"], {})[run["seed"]] = values
            folders.setdefault(run["controller"], {})[run["seed"]] = folder
        present = [c for c in controllers if c in per_seed]
        if present:
            scenarios.append(_compare(scenario, present, per_seed, folders, chosen, alpha))
    if not scenarios:
        raise TwinTrafficError(
            f"{root}: no finished run to compare; run the sweep (again) to finish its runs"
        )
    return SweepComparison(
        name=index["sweep"],
        root=root,
        baseline=chosen,
        alpha=alpha,
        seeds=list(index["seeds"]),
        scenarios=scenarios,
        failures=[{"run": r["run"], "error": r["error"]} for r in runs if r["status"] == "failed"],
        pending=[r["run"] for r in runs if r["status"] == "pending"],
        warnings=warnings,
    )


def _compare(
    scenario: str,
    controllers: Sequence[str],
    per_seed: dict[str, dict[int, dict[str, float]]],
    folders: dict[str, dict[int, Path]],
    baseline: str,
    alpha: float,
) -> ScenarioComparison:
    result = ScenarioComparison(scenario, list(controllers), per_seed, folders)
    for name in controllers:
        result.summaries[name] = summarize_runs([per_seed[name][s] for s in sorted(per_seed[name])])
    if baseline not in per_seed:
        return result
    base = per_seed[baseline]
    for name in controllers:
        if name == baseline:
            continue
        # Over the seeds both ran, as the paired test: where some runs are pending or
        # failed, means over different seeds would compare different traffic.
        common = sorted(set(base) & set(per_seed[name]))
        result.changes[name] = {
            metric: relative_change(
                _mean([per_seed[name][s][metric] for s in common]),
                _mean([base[s][metric] for s in common]),
            )
            for metric in METRICS
        }
        result.tests[name] = {
            metric: paired_test(
                {s: v[metric] for s, v in base.items()},
                {s: v[metric] for s, v in per_seed[name].items()},
                alpha,
            )
            for metric in METRICS
        }
    return result


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def scenario_table(scenario: ScenarioComparison, baseline: str, alpha: float) -> Table:
    """A terminal table: mean ± 95% CI per controller, then each change against the
    baseline with its paired-test p-value; significant changes in bold."""
    table = new_table(f"{scenario.scenario}: mean ± 95% CI")
    for name in scenario.controllers:
        add_value_column(table, column_header(name))
    others = [name for name in scenario.controllers if name in scenario.tests]
    for name in others:
        add_value_column(table, controller_header(name, baseline))
    for metric, unit in METRICS.items():
        if not scenario.measured(metric):
            continue  # not measured in these runs (emissions switched off), as evaluate shows
        row = [metric, unit]
        row += [
            flag_cell(metric, scenario.summaries[name][metric]) for name in scenario.controllers
        ]
        for name in others:
            change = scenario.changes[name][metric]
            test = scenario.tests[name][metric]
            row.append(_change_text(metric, change, test) if change_shown(metric) else "–")
        table.add_row(*row)
    table.caption = (
        f"p: paired t-test (t) over seeds, Wilcoxon (W) from {WILCOXON_MIN_PAIRS} pairs; "
        f"*: significant at {alpha:g}"
    )
    return table


def _change_text(metric: str, change: float, test: PairedTest) -> str:
    if math.isnan(change):
        return "–"
    better = change > 0 if metric in HIGHER_IS_BETTER else change < 0
    colour = "default" if change == 0 else "green" if better else "red"
    style = f"bold {colour}" if test.significant else colour
    p = "" if math.isnan(test.t_pvalue) else f" t={_p(test.t_pvalue)}"
    if test.wilcoxon_pvalue is not None:
        p += f" W={_p(test.wilcoxon_pvalue)}"
    mark = " *" if test.significant else ""
    return f"[{style}]{change:+.1f}%{mark}[/{style}]{p}"


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"
