"""How much does twin-traffic add on top of SUMO itself?

For each built-in scenario, one hour under the fixed-time plan, measured in one run:

* ``bare``: the plain ``sumo`` binary on the scenario and seed, writing nothing;
* ``outputs``: the same binary writing the outputs the metrics are computed from
  (tripinfo with unfinished and undeparted trips, and statistics);
* ``libsumo``: libsumo running the same command with the same outputs in one
  ``simulationStep`` call, in a fresh process (SUMO's cost through the default backend,
  before anything twin-traffic does);
* ``ours``: the simulation part of ``twin-traffic evaluate --controller fixed``: SUMO's
  start-up and run through libsumo with those outputs, queue sampling and gridlock watch
  (reading the outputs back afterwards is shown apart);
* ``ours+em``: the same with ``--emissions`` (CO2 and fuel).

It prints ``ours / bare`` (target <= 1.10) and the factors it is made of:
``outputs / bare`` (what the metrics' outputs cost SUMO), ``libsumo / outputs`` (the
libsumo build against the binary) and ``ours / libsumo`` (what twin-traffic adds), and
``ours+em / ours``. The variants run ``--repeats`` times, interleaved so all see the same
machine load, and each keeps its best time. Python's own start-up (the CLI's import time)
is reported separately.

    python benchmarks/sim_overhead.py [--repeats 5] [--scenarios single grid3x3 ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.scenario import builtin_scenarios, load_scenario
from twin_traffic.sim import OutputFiles, Simulation

LIBSUMO_RUN = """
import json, sys, time
import libsumo
command, end = json.loads(sys.argv[1]), float(sys.argv[2])
started = time.perf_counter()
libsumo.start(command)
libsumo.simulationStep(end)
print(time.perf_counter() - started)
libsumo.close()
"""


def sumo_command(name: str, seed: int, directory: Path | None) -> list[str]:
    files = OutputFiles(directory) if directory is not None else None
    return Simulation(load_scenario(name), seed, files).command()


def sumo_seconds(name: str, seed: int, outputs: bool) -> float:
    """Wall time of the plain sumo binary, with or without the metrics' outputs."""
    with tempfile.TemporaryDirectory() as scratch:
        command = sumo_command(name, seed, Path(scratch) if outputs else None)
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - started


def libsumo_seconds(name: str, seed: int) -> float:
    """Start and run of the same command with the same outputs through libsumo."""
    with tempfile.TemporaryDirectory() as scratch:
        command = sumo_command(name, seed, Path(scratch))
        end = str(load_scenario(name).end)
        run = [sys.executable, "-c", LIBSUMO_RUN, json.dumps(command), end]
        result = subprocess.run(run, check=True, capture_output=True, text=True)
        return float(result.stdout.strip().splitlines()[-1])


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


RATIOS = {
    "ours/bare": ("ours", "bare"),
    "outputs/bare": ("outputs", "bare"),
    "libsumo/outputs": ("libsumo", "outputs"),
    "ours/libsumo": ("ours", "libsumo"),
    "ours+em/ours": ("ours+em", "ours"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenarios", nargs="*", default=list(builtin_scenarios()))
    args = parser.parse_args()

    times = ("bare", "outputs", "libsumo", "ours", "ours+em")
    print(f"{'scenario':<14}" + "".join(f"{t:>9}" for t in times)
          + "".join(f"{r:>16}" for r in RATIOS) + f"{'read':>7}", flush=True)  # fmt: skip
    worst = dict.fromkeys(RATIOS, 0.0)
    for name in args.scenarios:
        best = dict.fromkeys((*times, "read"), float("inf"))
        for _ in range(args.repeats):
            best["bare"] = min(best["bare"], sumo_seconds(name, args.seed, outputs=False))
            best["outputs"] = min(best["outputs"], sumo_seconds(name, args.seed, outputs=True))
            best["libsumo"] = min(best["libsumo"], libsumo_seconds(name, args.seed))
            run, read = ours_seconds(name, args.seed, emissions=False)
            best["ours"], best["read"] = min(best["ours"], run), min(best["read"], read)
            best["ours+em"] = min(best["ours+em"], ours_seconds(name, args.seed, True)[0])
        ratios = {key: best[top] / best[bottom] for key, (top, bottom) in RATIOS.items()}
        worst = {key: max(worst[key], value) for key, value in ratios.items()}
        print(f"{name:<14}" + "".join(f"{best[t]:>8.2f}s" for t in times)
              + "".join(f"{ratios[r]:>16.2f}" for r in RATIOS) + f"{best['read']:>6.2f}s",
              flush=True)  # fmt: skip
    print("worst: " + ", ".join(f"{key} {value:.2f}" for key, value in worst.items()))
    print("target: ours/bare <= 1.10")
    print(f"CLI start-up (twin-traffic --help): {cli_startup_seconds(args.repeats):.2f} s")


if __name__ == "__main__":
    main()
