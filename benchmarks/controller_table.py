"""Every registered controller on every built-in scenario: delay on held-out seeds.

For each scenario, ``tuned`` is first tuned on the training seeds (``--budget`` plans);
then every controller runs on the held-out seeds and the table shows mean delay ± 95%
confidence interval (Student t) and the change against the fixed-time plan. Controllers
that cannot run with default parameters (``plan`` needs a file, a learned policy needs a
model) are listed as skipped. Controllers registered later are included by name.

    python benchmarks/controller_table.py --workers 2                  # everything
    python benchmarks/controller_table.py --scenarios single --budget 10 --end 900

The table goes to ``--out`` (markdown) and stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from twin_traffic.controllers import CONTROLLERS, make_controller
from twin_traffic.errors import ControllerError
from twin_traffic.evaluate import RunSpec
from twin_traffic.executor import run_specs
from twin_traffic.metrics import summarize_seeds
from twin_traffic.scenario import builtin_scenarios
from twin_traffic.seeds import seed_text
from twin_traffic.tuning import tune, write_tuned_plan

NEEDS_A_FILE = {"plan"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", nargs="+", default=list(builtin_scenarios()))
    parser.add_argument("--controllers", nargs="+", default=list(CONTROLLERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[100, 101, 102, 103, 104])
    parser.add_argument("--train-seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=60, help="plans tried when tuning")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--end", type=float, default=None, help="end time override, s")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/controller_table.md"))
    args = parser.parse_args()
    if set(args.seeds) & set(args.train_seeds):
        parser.error("--seeds (held-out) and --train-seeds must not overlap")
    if "fixed" not in args.controllers:
        args.controllers.insert(0, "fixed")

    started = time.perf_counter()
    plans_dir = args.out.with_suffix("").parent / f"{args.out.stem}-plans"
    params: dict[tuple[str, str], dict[str, object]] = {}
    skipped: dict[str, str] = {}
    for scenario in args.scenarios:
        for name in args.controllers:
            if name in NEEDS_A_FILE:
                skipped[name] = "needs a plan file"
            elif name == "tuned":
                clock = time.perf_counter()
                result = tune(
                    scenario,
                    budget=args.budget,
                    seeds=args.train_seeds,
                    workers=args.workers,
                    end=args.end,
                    # The table's quick tune: two starts, chosen on the training seeds
                    # (tune_quality measures the full one).
                    confirm_seeds=(),
                    served_flows=None,
                )
                plan = write_tuned_plan(result, plans_dir / f"{scenario}.add.xml", scenario)
                params[(scenario, name)] = {"plan": str(plan.resolve())}
                _log(f"{scenario}: tuned {result.evaluations} plans in "
                     f"{time.perf_counter() - clock:.0f} s")  # fmt: skip
            else:
                try:
                    make_controller(name, {})
                except ControllerError as error:
                    skipped[name] = str(error)
                    continue
                params[(scenario, name)] = {}

    specs = [
        RunSpec(scenario, name, values, seed=seed, end=args.end, emissions=False)
        for (scenario, name), values in params.items()
        for seed in args.seeds
    ]
    clock = time.perf_counter()
    delays: dict[tuple[str, str], list[float]] = {key: [] for key in params}
    failures = []
    for outcome in run_specs(specs, workers=args.workers):
        key = (outcome.spec.scenario, outcome.spec.controller)
        if outcome.result is None:
            failures.append(outcome.error)
            continue
        delays[key].append(outcome.result.metrics["delay"])
    _log(f"{len(specs)} evaluation runs in {time.perf_counter() - clock:.0f} s")

    table = _markdown(args, delays, skipped, failures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table, encoding="utf-8")
    sys.stdout.write(table)
    _log(f"written to {args.out} in {time.perf_counter() - started:.0f} s in all")


def _markdown(
    args: argparse.Namespace,
    delays: dict[tuple[str, str], list[float]],
    skipped: dict[str, str],
    failures: list[str | None],
) -> str:
    window = f"until t={args.end:g} s" if args.end else "full window"
    lines = [
        f"Delay (s/trip), mean ± 95% CI over held-out seeds {_seeds(args.seeds)} ({window}); "
        f"`tuned` tuned on seeds {_seeds(args.train_seeds)} with a budget of {args.budget} "
        "plans from two starts (the scenario's plan and Webster's), without confirmation.",
        "",
        "| scenario | controller | delay | vs fixed |",
        "|---|---|---:|---:|",
    ]
    for scenario in args.scenarios:
        fixed = summarize_seeds(delays.get((scenario, "fixed"), []))
        for name in args.controllers:
            values = delays.get((scenario, name))
            if not values:
                continue
            summary = summarize_seeds(values)
            spread = f" ± {summary.half_width:.2f}" if summary.n > 1 else ""
            change = "–" if name == "fixed" else f"{summary.mean / fixed.mean - 1:+.1%}"
            lines.append(f"| {scenario} | {name} | {summary.mean:.2f}{spread} | {change} |")
    for name, reason in skipped.items():
        lines.append(f"\nSkipped `{name}`: {reason}.")
    for error in failures:
        lines.append(f"\nFailed: {error}")
    return "\n".join(lines) + "\n"


def _seeds(seeds: list[int]) -> str:
    return seed_text(seeds, dash="–", separator=", ")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
