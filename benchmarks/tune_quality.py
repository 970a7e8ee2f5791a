"""Tuned plans against the scenario's own plan and Webster's, on held-out seeds.

For each scenario and optimiser, ``twin-traffic tune`` runs with its defaults (three
starts, the third timed for the flows advanced max-pressure serves; the starts and three
finalists confirmed on as many seeds again) and a budget of ``--budget`` plans; then the
fixed-time plan, Webster's plan and each tuned plan run on held-out seeds never used in
tuning. The table gives mean delay ± 95% CI, the change against fixed and Webster, and
the worst held-out seed's change (the target: every seed at least 15% better than fixed
and 5% better than Webster). ``pasubio`` and ``monaco`` are the real networks of
``shared/realnets`` (found beside the project).

    python benchmarks/tune_quality.py                                   # the full benchmark
    python benchmarks/tune_quality.py --scenarios pasubio arterial --budget 30 --end 1200

The table goes to ``--out`` (markdown) and stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from twin_traffic.evaluate import RunSpec
from twin_traffic.executor import run_specs
from twin_traffic.metrics import summarize_seeds
from twin_traffic.seeds import seed_text, seeds_after
from twin_traffic.tuning import (
    OPTIMIZERS,
    SERVED_FLOWS,
    ConfirmProgress,
    TuneProgress,
    tune,
    write_tuned_plan,
)

BUDGET = 100
REAL = {"pasubio": "pasubio/pasubio.sumocfg", "monaco": "monaco/monaco.sumocfg"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scenarios", nargs="+", default=["pasubio", "monaco", "arterial", "grid3x3"]
    )
    parser.add_argument("--optimizers", nargs="+", default=["local"], choices=OPTIMIZERS)
    parser.add_argument("--budget", type=int, default=BUDGET, help="plans per tune")
    parser.add_argument("--seeds", nargs="+", type=int, default=[100, 101, 102, 103, 104])
    parser.add_argument("--train-seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--confirm-seeds",
        nargs="+",
        default=None,
        help="seeds the finalists confirm on (default: as many as the training seeds, the "
        "next ones; none: choose on the training seeds alone)",
    )
    parser.add_argument(
        "--served-flows",
        default=SERVED_FLOWS,
        help="the third start: Webster for this controller's flows (none: two starts)",
    )
    parser.add_argument("--optimizer-seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--end", type=float, default=None, help="end time override, s")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/tune_quality.md"))
    args = parser.parse_args()
    if args.confirm_seeds is None:
        args.confirm_seeds = seeds_after(args.train_seeds, len(args.train_seeds), args.seeds)
    elif args.confirm_seeds == ["none"]:
        args.confirm_seeds = []
    elif not all(seed.isdigit() for seed in args.confirm_seeds):
        parser.error("--confirm-seeds: give whole numbers, or none")
    else:
        args.confirm_seeds = [int(seed) for seed in args.confirm_seeds]
    if args.served_flows == "none":
        args.served_flows = None
    if set(args.seeds) & set(args.train_seeds + args.confirm_seeds):
        parser.error("--seeds (held-out) must not overlap --train-seeds or --confirm-seeds")

    started = time.perf_counter()
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tune-quality-") as scratch:
        for name in args.scenarios:
            scenario = _scenario(name)
            specs = [_spec(scenario, "fixed", {}, s, args.end) for s in args.seeds]
            specs += [_spec(scenario, "webster", {}, s, args.end) for s in args.seeds]
            labels = [spec.controller for spec in specs]
            tunes: dict[str, str] = {}
            for optimizer in args.optimizers:
                clock = time.perf_counter()
                result = tune(
                    scenario,
                    budget=args.budget,
                    seeds=args.train_seeds,
                    workers=args.workers,
                    optimizer=optimizer,
                    optimizer_seed=args.optimizer_seed,
                    end=args.end,
                    progress=_progress(f"{name} {optimizer}", clock),
                    confirm_progress=_confirm_progress(f"{name} {optimizer}", clock),
                    confirm_seeds=args.confirm_seeds,
                    served_flows=args.served_flows,
                )
                plan = write_tuned_plan(result, Path(scratch) / f"{name}-{optimizer}.add.xml", name)
                tunes[optimizer] = (
                    f"{result.evaluations} plans, {result.simulations} simulations, "
                    f"{time.perf_counter() - clock:.0f} s; tuning seeds {result.baseline:.2f} → "
                    f"{result.delay:.2f}"
                )
                _log(f"{name} {optimizer}: {tunes[optimizer]}")
                specs += [
                    _spec(scenario, "tuned", {"plan": str(plan)}, s, args.end) for s in args.seeds
                ]
                labels += [optimizer] * len(args.seeds)
            delays: dict[str, dict[int, float]] = {}
            for outcome in run_specs(specs, workers=args.workers):
                if outcome.result is None:
                    raise SystemExit(f"{name}: {outcome.error}")
                label = labels[outcome.index]
                delays.setdefault(label, {})[outcome.spec.seed] = outcome.result.metrics["delay"]
            rows += _rows(name, delays, args.seeds, args.optimizers, tunes)
            _log(f"{name} done ({time.perf_counter() - started:.0f} s so far)")

    table = _markdown(args, rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table, encoding="utf-8")
    sys.stdout.write(table)
    _log(f"written to {args.out} in {time.perf_counter() - started:.0f} s in all")


def _scenario(name: str) -> str:
    if name not in REAL:
        return name
    root = Path(__file__).resolve().parents[1]
    for parent in root.parents:
        path = parent / "shared" / "realnets" / REAL[name]
        if path.is_file():
            return str(path)
    raise SystemExit(f"{name}: shared/realnets/{REAL[name]} is not beside the project")


def _spec(
    scenario: str, controller: str, params: dict[str, object], seed: int, end: float | None
) -> RunSpec:
    return RunSpec(scenario, controller, params, seed=seed, end=end, emissions=False)


def _rows(
    name: str,
    delays: dict[str, dict[int, float]],
    seeds: list[int],
    optimizers: list[str],
    tunes: dict[str, str],
) -> list[str]:
    fixed = [delays["fixed"][s] for s in seeds]
    webster = [delays["webster"][s] for s in seeds]
    rows = []
    for label in ["fixed", "webster", *optimizers]:
        values = [delays[label][s] for s in seeds]
        summary = summarize_seeds(values)
        vs_fixed = summary.mean / _mean(fixed) - 1
        vs_webster = summary.mean / _mean(webster) - 1
        worst_fixed = max(v / f - 1 for v, f in zip(values, fixed, strict=True))
        worst_webster = max(v / w - 1 for v, w in zip(values, webster, strict=True))
        controller = "tuned (" + label + ")" if label in optimizers else label
        note = tunes.get(label, "")
        rows.append(
            f"| {name} | {controller} | {summary.mean:.2f} ± {summary.half_width:.2f} | "
            f"{vs_fixed:+.1%} | {vs_webster:+.1%} | {worst_fixed:+.1%} / {worst_webster:+.1%} "
            f"| {note} |"
        )
    return rows


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _markdown(args: argparse.Namespace, rows: list[str]) -> str:
    window = f"until t={args.end:g} s" if args.end else "full window"
    extras = ""
    if args.confirm_seeds:
        extras += f"; the starts and 3 finalists confirmed on seeds {_seeds(args.confirm_seeds)}"
    if args.served_flows:
        extras += f"; a third start timed for the flows {args.served_flows} serves"
    header = [
        f"Delay (s/trip), mean ± 95% CI over held-out seeds {_seeds(args.seeds)} ({window}); "
        f"tuned on seeds {_seeds(args.train_seeds)} with a budget of {args.budget} plans"
        f"{extras}.",
        "",
        "| scenario | plan | delay | vs fixed | vs Webster | worst seed vs fixed / Webster "
        "| tuning |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    return "\n".join(header + rows) + "\n"


def _seeds(seeds: list[int]) -> str:
    return seed_text(seeds, dash="–", separator=", ")


def _progress(label: str, clock: float) -> TuneProgress:
    """A tune's progress, one line on stderr per batch of plans."""

    def report(done: int, budget: int, best: float, _held_out: float | None) -> None:
        elapsed = time.perf_counter() - clock
        _log(f"{label}: {done}/{budget} plans, best {best:.2f} s/trip ({elapsed:.0f} s)")

    return report


def _confirm_progress(label: str, clock: float) -> ConfirmProgress:
    """The confirmation's progress: a line at its start and at its end."""

    def report(done: int, total: int) -> None:
        if done in (0, total):
            elapsed = time.perf_counter() - clock
            _log(f"{label}: confirming, {done}/{total} simulations ({elapsed:.0f} s)")

    return report


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
