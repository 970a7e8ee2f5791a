"""Every controller on the real networks and the multi-signal built-ins, against fixed time.

For each network and controller: mean delay (s/trip) ± 95% confidence interval (Student t)
over the seeds, the ratio to the fixed-time plan on the same seeds, and mean teleports
and never-inserted vehicles per run (how gridlock shows). The issue's targets are
checked and printed under the table: no controller more than 5% worse than fixed time,
the max-pressure family at or below 0.70× fixed time where fixed time is not itself
gridlocked, and the best controller at or below 0.55×.

    python benchmarks/real_networks.py                               # 5 seeds, full window
    python benchmarks/real_networks.py --seeds 0 1 --end 1800 --networks pasubio monaco

Networks: ``pasubio`` and ``monaco`` from ``../shared/realnets`` (``--realnets``), and the
built-ins with more than one signal. Controllers that need a file (``plan``, ``tuned``,
``policy``) are left out. The table goes to ``--out`` (markdown) and stdout; progress to
stderr.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from twin_traffic.controllers import CONTROLLERS
from twin_traffic.evaluate import RunSpec
from twin_traffic.executor import run_specs
from twin_traffic.metrics import summarize_seeds
from twin_traffic.network import load_network
from twin_traffic.scenario import builtin_scenarios, load_scenario

NEEDS_A_FILE = {"plan", "tuned", "policy"}
MAX_PRESSURE_FAMILY = ("max-pressure", "efficient-max-pressure", "advanced-max-pressure")
REAL = {"pasubio": "pasubio/pasubio.sumocfg", "monaco": "monaco/monaco.sumocfg"}
GRIDLOCKED_NOT_INSERTED = 0.25  # share of vehicles never inserted that marks a gridlock


def networks(realnets: Path) -> dict[str, str]:
    """Network name -> scenario: the real networks, then the multi-signal built-ins."""
    found = {name: str(realnets / path) for name, path in REAL.items()}
    for name in builtin_scenarios():
        if len(load_network(load_scenario(name)).signal_ids) > 1:
            found[name] = name
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--realnets", type=Path, default=Path("../shared/realnets"))
    parser.add_argument("--networks", nargs="+", default=None, help="default: all")
    parser.add_argument(
        "--controllers", nargs="+", default=[c for c in CONTROLLERS if c not in NEEDS_A_FILE]
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--end", type=float, default=None, help="end time override, s")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/real_networks.md"))
    args = parser.parse_args()
    every = networks(args.realnets)
    chosen = args.networks or list(every)
    unknown = [name for name in chosen if name not in every]
    if unknown:
        parser.error(f"unknown network(s) {', '.join(unknown)}; choose from {', '.join(every)}")
    if "fixed" not in args.controllers:
        args.controllers.insert(0, "fixed")

    specs = [
        RunSpec(every[net], name, seed=seed, end=args.end)
        for net in chosen
        for name in args.controllers
        for seed in args.seeds
    ]
    started = time.perf_counter()
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    failures: list[str] = []
    names = {scenario: net for net, scenario in every.items()}
    for done, outcome in enumerate(run_specs(specs, workers=args.workers), start=1):
        spec = outcome.spec
        if outcome.result is None:
            failures.append(f"{spec.label}: {outcome.error}")
        else:
            runs.setdefault((names[spec.scenario], spec.controller), []).append(
                outcome.result.metrics
            )
        _log(f"[{done}/{len(specs)}] {spec.label} ({time.perf_counter() - started:.0f} s)")
    table = markdown(args, chosen, runs, failures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table, encoding="utf-8")
    sys.stdout.write(table)
    _log(f"written to {args.out} in {time.perf_counter() - started:.0f} s")


def markdown(
    args: argparse.Namespace,
    chosen: list[str],
    runs: dict[tuple[str, str], list[dict[str, float]]],
    failures: list[str],
) -> str:
    """The table and the targets' verdicts."""
    window = f"until t={args.end:g} s" if args.end else "full window"
    lines = [
        f"Delay (s/trip), mean ± 95% CI over seeds {', '.join(map(str, args.seeds))} "
        f"({window}); teleports and never-inserted vehicles are means per run.",
        "",
        "| network | controller | delay | × fixed | teleports | never inserted |",
        "|---|---|---:|---:|---:|---:|",
    ]
    misses: list[str] = []
    for net in chosen:
        fixed = summarize_seeds([m["delay"] for m in runs.get((net, "fixed"), [])])
        fixed_jammed = _jammed(runs.get((net, "fixed"), []))
        ratios: dict[str, float] = {}
        for name in args.controllers:
            metrics = runs.get((net, name))
            if not metrics:
                continue
            delay = summarize_seeds([m["delay"] for m in metrics])
            spread = f" ± {delay.half_width:.1f}" if delay.n > 1 else ""
            ratio = delay.mean / fixed.mean if fixed.mean > 0 else math.nan
            ratios[name] = ratio
            teleports = sum(m["teleports"] for m in metrics) / len(metrics)
            missing = sum(m["not_inserted"] for m in metrics) / len(metrics)
            lines.append(f"| {net} | {name} | {delay.mean:.1f}{spread} | {ratio:.2f} | "
                         f"{teleports:.0f} | {missing:.0f} |")  # fmt: skip
            if name != "fixed" and ratio > 1.05:
                misses.append(f"{net}: {name} is {ratio:.2f}× fixed time (target ≤ 1.05)")
            if _jammed(metrics) and not fixed_jammed:
                misses.append(f"{net}: {name} gridlocks where fixed time does not")
            if name in MAX_PRESSURE_FAMILY and not fixed_jammed and ratio > 0.70:
                misses.append(f"{net}: {name} is {ratio:.2f}× fixed time (target ≤ 0.70)")
        best = min((r for n, r in ratios.items() if n != "fixed"), default=math.nan)
        if not fixed_jammed and best > 0.55:
            misses.append(f"{net}: the best controller is {best:.2f}× fixed (target ≤ 0.55)")
    lines.append("")
    lines.extend(f"- target missed: {miss}" for miss in misses)
    if not misses:
        lines.append("- every target met")
    lines.extend(f"- failed: {failure}" for failure in failures)
    return "\n".join(lines) + "\n"


def _jammed(metrics: list[dict[str, float]]) -> bool:
    """Gridlocked: a quarter of the vehicles never entered (teleports hide jams)."""
    return any(
        m["not_inserted"] >= GRIDLOCKED_NOT_INSERTED * max(m["vehicles"], 1) for m in metrics
    )


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
