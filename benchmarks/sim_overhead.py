"""How much does twin-traffic add on top of SUMO itself?

For each built-in scenario, one hour under the fixed-time plan, measured in one run:

* ``bare``: the plain ``sumo`` binary on the scenario and seed, writing nothing;
* ``outputs``: the same binary writing the outputs the metrics are computed from
  (tripinfo with unfinished and undeparted trips, statistics, the emissions device);
* ``ours``: the simulation part of ``twin-traffic evaluate --controller fixed`` through
  libsumo: SUMO's start-up and run with those outputs, queue sampling and gridlock watch
  (reading the outputs back afterwards is shown apart);
* ``ours-noem``: the same with ``--no-emissions``.

It prints ``ours / bare`` (target <= 1.10), ``ours / outputs`` (what twin-traffic itself
adds) and ``ours-noem / bare``. The variants run ``--repeats`` times, interleaved so all
see the same machine load, and each keeps its best time. Python's own start-up (the
CLI's import time) is reported separately.

    python benchmarks/sim_overhead.py [--repeats 5] [--scenarios single grid3x3 ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.scenario import builtin_scenarios, load_scenario
from twin_traffic.sim import OutputFiles, Simulation


def sumo_seconds(name: str, seed: int, outputs: bool) -> float:
    """Wall time of the plain sumo binary, with or without the metrics' outputs."""
    with tempfile.TemporaryDirectory() as scratch:
        files = OutputFiles(Path(scratch)) if outputs else None
        command = Simulation(load_scenario(name), seed, files).command()
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - started


def ours_seconds(name: str, seed: int, emissions: bool) -> tuple[float, float]:
    """(SUMO start + simulation, reading outputs back) of one fixed-time run."""
    timings = run_episode(RunSpec(name, seed=seed, emissions=emissions)).timings
    return timings["sumo_start"] + timings["simulate"], timings["collect"]


def cli_startup_seconds(repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        command = [sys.executable, "-m", "twin_traffic.cli", "--help"]
        subprocess.run(command, check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenarios", nargs="*", default=list(builtin_scenarios()))
    args = parser.parse_args()

    header = ("scenario", "bare", "outputs", "ours", "ours-noem", "ours/bare", "ours/outputs",
              "noem/bare", "read")  # fmt: skip
    print("{:<14}{:>8}{:>9}{:>8}{:>10}{:>11}{:>14}{:>11}{:>7}".format(*header), flush=True)
    worst = {"ours/bare": 0.0, "ours/outputs": 0.0, "noem/bare": 0.0}
    for name in args.scenarios:
        best = dict.fromkeys(("bare", "outputs", "ours", "noem", "read"), float("inf"))
        for _ in range(args.repeats):
            best["bare"] = min(best["bare"], sumo_seconds(name, args.seed, outputs=False))
            best["outputs"] = min(best["outputs"], sumo_seconds(name, args.seed, outputs=True))
            run, read = ours_seconds(name, args.seed, emissions=True)
            best["ours"], best["read"] = min(best["ours"], run), min(best["read"], read)
            best["noem"] = min(best["noem"], ours_seconds(name, args.seed, emissions=False)[0])
        ratios = {
            "ours/bare": best["ours"] / best["bare"],
            "ours/outputs": best["ours"] / best["outputs"],
            "noem/bare": best["noem"] / best["bare"],
        }
        worst = {key: max(worst[key], value) for key, value in ratios.items()}
        print(
            f"{name:<14}{best['bare']:>7.2f}s{best['outputs']:>8.2f}s{best['ours']:>7.2f}s"
            f"{best['noem']:>9.2f}s{ratios['ours/bare']:>11.2f}{ratios['ours/outputs']:>14.2f}"
            f"{ratios['noem/bare']:>11.2f}{best['read']:>6.2f}s",
            flush=True,
        )
    print("worst: " + ", ".join(f"{key} {value:.2f}" for key, value in worst.items()))
    print("target: ours/bare <= 1.10")
    print(f"CLI start-up (twin-traffic --help): {cli_startup_seconds(args.repeats):.2f} s")


if __name__ == "__main__":
    main()
