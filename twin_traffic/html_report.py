"""A sweep comparison as one self-contained HTML page: tables and embedded PNG plots.

The page has no scripts and no external resources (images are base64 ``data:`` URLs), so
it can be mailed or archived as a single file and opened anywhere.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping

from twin_traffic.compare import PairedTest, ScenarioComparison, SweepComparison
from twin_traffic.metrics import HIGHER_IS_BETTER, METRICS, RUN_COUNTS, Summary
from twin_traffic.plots import PLOTS
from twin_traffic.report import change_shown, format_metric

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 2em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td.metric, th.metric { text-align: left; }
.better { color: #0a7a2a; } .worse { color: #b3261e; }
.significant { font-weight: bold; }
figure { margin: 1em 0 2em; } img { max-width: 100%; border: 1px solid #eee; }
.failure { color: #b3261e; font-family: monospace; }
.warning { color: #8a5300; } td.flagged { color: #b3261e; font-weight: bold; }
"""


def render_html(comparison: SweepComparison, plots: Mapping[str, bytes]) -> str:
    """The report page: one table per scenario, the plots, and any failed runs."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Sweep {_e(comparison.name)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Sweep {_e(comparison.name)}</h1>",
        "<p>"
        + _e(
            f"Seeds {_seed_text(comparison.seeds)}; mean ± 95% Student-t confidence interval "
            f"over seeds; changes against the baseline '{comparison.baseline}' with a paired "
            f"t-test over seeds (and the Wilcoxon signed-rank test from 6 pairs on); "
            f"significant (bold, *) when every test gives p < {comparison.alpha:g}."
        )
        + "</p>",
    ]
    for scenario in comparison.scenarios:
        parts.append(f"<h2>{_e(scenario.scenario)}</h2>")
        parts.append(_table(scenario, comparison.baseline))
    parts.append("<h2>Plots</h2>")
    for name, png in plots.items():
        encoded = base64.b64encode(png).decode("ascii")
        title = PLOTS.get(name, name)
        parts.append(
            f'<figure><img alt="{_e(title)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{_e(title)}</figcaption></figure>"
        )
    if comparison.warnings:
        parts.append('<h2 class="warning">Warnings</h2><ul>')
        for warning in comparison.warnings:
            parts.append(f'<li class="warning">{_e(warning["run"])}: {_e(warning["warning"])}</li>')
        parts.append("</ul>")
    if comparison.failures or comparison.pending:
        parts.append("<h2>Runs without results</h2><ul>")
        for failure in comparison.failures:
            parts.append(
                f'<li class="failure">failed {_e(failure["run"])}: {_e(failure["error"] or "")}'
                "</li>"
            )
        for run in comparison.pending:
            parts.append(f"<li>not run yet: {_e(run)}</li>")
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _table(scenario: ScenarioComparison, baseline: str) -> str:
    others = [name for name in scenario.controllers if name in scenario.tests]
    head = ['<th class="metric">metric</th>', "<th>unit</th>"]
    head += [f"<th>{_e(name)}</th>" for name in scenario.controllers]
    for name in others:
        head += [f"<th>{_e(name)} vs {_e(baseline)}</th>", f"<th>p ({_e(name)})</th>"]
    rows = [f"<tr>{''.join(head)}</tr>"]
    for metric, unit in METRICS.items():
        if not scenario.measured(metric):
            continue  # as the terminal table: emissions only when switched on
        cells = [f'<td class="metric">{_e(metric)}</td>', f"<td>{_e(unit)}</td>"]
        cells += [
            _value_cell(metric, scenario.summaries[name][metric]) for name in scenario.controllers
        ]
        for name in others:
            test = scenario.tests[name][metric]
            if not change_shown(metric):
                cells += ["<td>–</td>", "<td>–</td>"]
                continue
            cells.append(_change_cell(metric, scenario.changes[name][metric], test))
            cells.append(f"<td>{_e(_p_text(test))}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="comparison">{"".join(rows)}</table>'


def _value_cell(metric: str, summary: Summary) -> str:
    flagged = metric in RUN_COUNTS and summary.n > 0 and summary.mean > 0
    attribute = ' class="flagged"' if flagged else ""
    return f"<td{attribute}>{_e(format_metric(metric, summary))}</td>"


def _change_cell(metric: str, change: float, test: PairedTest) -> str:
    if math.isnan(change):
        return "<td>–</td>"
    better = change > 0 if metric in HIGHER_IS_BETTER else change < 0
    classes = ["better" if better else "worse"] if change != 0 else []
    if test.significant:
        classes.append("significant")
    mark = " *" if test.significant else ""
    return f'<td class="{" ".join(classes)}">{change:+.1f}%{mark}</td>'


def _p_text(test: PairedTest) -> str:
    if math.isnan(test.t_pvalue):
        return f"– (n={test.n})"
    text = f"t {_p(test.t_pvalue)}"
    if test.wilcoxon_pvalue is not None:
        text += f", W {_p(test.wilcoxon_pvalue)}"
    return f"{text} (n={test.n})"


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _seed_text(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds))


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)
