"""How much does the environment cost on top of SUMO itself?

On the built-in ``grid3x3`` and a generated 16-signal 4×4 grid, one full episode (one
hour) with every signal controlled, decisions every 5 s, 3 s yellow, the default
observation (phase, density, queue) and reward (wait), random actions:

* ``bare``: libsumo stepping the same scenario and seed with no control, one
  ``simulationStep()`` per second (``bare-1call``: a single ``simulationStep(end)``, the
  floor of SUMO's own cost, shown for reference);
* ``ours-libsumo`` / ``ours-traci``: ``SignalParallelEnv`` episodes;

(SUMO's start-up, ``reset``, is left out of every variant's time)
* ``sumo-rl-libsumo`` / ``sumo-rl-traci``: the peer toolkit sumo-rl on the same network
  and route files with the same decision interval, yellow, min and max green — when it is
  installed in this environment (``pip install sumo-rl "pettingzoo<1.25"``).

Every variant runs in its own process (libsumo allows one simulation per process),
interleaved, ``--repeats`` times; each keeps its best wall time. The ratios divide by
``bare``. Targets: ours ≤ 1.25 with libsumo and ≤ 2.5 with TraCI; faster than sumo-rl with
libsumo and at least 10× faster with TraCI.

    python benchmarks/env_speed.py [--repeats 3] [--seconds 3600]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DECISION = 5.0
YELLOW = 3.0
MIN_GREEN = 5.0
MAX_GREEN = 60.0
REPO = Path(__file__).resolve().parents[1]


def run_variant(variant: str, config: str, seconds: float, seed: int) -> float:
    """Inside a worker process: one episode of ``variant``; its wall time."""
    from twin_traffic.scenario import load_scenario
    from twin_traffic.sim import SimConfig, Simulation

    scenario = load_scenario(config, end=seconds)
    if variant.startswith("bare"):
        sim = Simulation(scenario, seed, None, SimConfig(backend="libsumo")).start()
        started = time.perf_counter()
        if variant == "bare-1call":
            sim.step(scenario.end)
        else:
            while sim.running:
                sim.step()
        elapsed = time.perf_counter() - started
        sim.close()
        return elapsed
    if variant.startswith("ours"):
        import numpy as np

        from twin_traffic.envs import SignalParallelEnv

        backend = variant.removeprefix("ours-")
        env = SignalParallelEnv(
            scenario=config, end=seconds, backend=backend, decision_interval=DECISION,
            yellow=YELLOW, min_green=MIN_GREEN, max_green=MAX_GREEN,
        )  # fmt: skip
        rng = np.random.default_rng(seed)
        greens = {a: env.action_space(a).n for a in env.possible_agents}
        env.reset(seed=seed)  # starts SUMO: not timed, like the bare run's start
        started = time.perf_counter()
        while env.agents:
            env.step({a: int(rng.integers(n)) for a, n in greens.items()})
        elapsed = time.perf_counter() - started
        env.close()
        return elapsed
    return run_sumo_rl(variant.removeprefix("sumo-rl-"), scenario, seconds, seed)


def run_sumo_rl(backend: str, scenario: object, seconds: float, seed: int) -> float:
    """One sumo-rl episode (its PettingZoo parallel env) with random actions."""
    import sumo

    os.environ.setdefault("SUMO_HOME", sumo.SUMO_HOME)  # sumo-rl insists on it
    if backend == "libsumo":
        os.environ["LIBSUMO_AS_TRACI"] = "1"  # read by sumo-rl at import
    import numpy as np
    import sumo_rl

    env = sumo_rl.parallel_env(
        net_file=str(scenario.net_file),  # type: ignore[attr-defined]
        route_file=",".join(map(str, scenario.route_files)),  # type: ignore[attr-defined]
        use_gui=False, num_seconds=int(seconds), delta_time=int(DECISION),
        yellow_time=int(YELLOW), min_green=int(MIN_GREEN), max_green=int(MAX_GREEN),
        sumo_seed=seed, sumo_warnings=False,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)  # starts SUMO: not timed
    started = time.perf_counter()
    while env.agents:
        env.step({a: int(rng.integers(env.action_space(a).n)) for a in env.agents})
    elapsed = time.perf_counter() - started
    env.close()
    return elapsed


def sumo_rl_available() -> bool:
    probe = [sys.executable, "-c", "import sumo_rl"]
    environment = {**os.environ, "SUMO_HOME": _sumo_home()}
    return subprocess.run(probe, capture_output=True, env=environment).returncode == 0


def _sumo_home() -> str:
    import sumo

    return str(sumo.SUMO_HOME)


def measure(variant: str, config: str, seconds: float, seed: int) -> float:
    """Run one variant in a fresh process and return its wall time."""
    command = [sys.executable, __file__, "--worker", variant, config, str(seconds), str(seed)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{variant} on {config} failed:\n{result.stderr[-2000:]}")
    return float(json.loads(result.stdout.strip().splitlines()[-1])["seconds"])


def grid4x4(directory: Path) -> str:
    """Generate the 16-signal 4×4 grid with the built-in recipe."""
    recipe = REPO / "networks" / "build.py"
    command = [
        sys.executable,
        str(recipe),
        "grid",
        "--rows",
        "4",
        "--cols",
        "4",
        "--out",
        str(directory),
    ]
    subprocess.run(command, check=True, capture_output=True)
    return str(directory / "grid4x4.sumocfg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        variant, config, seconds, seed = args.worker
        print(json.dumps({"seconds": run_variant(variant, config, float(seconds), int(seed))}))
        return

    variants = ["bare", "bare-1call", "ours-libsumo", "ours-traci"]
    if sumo_rl_available():
        variants += ["sumo-rl-libsumo", "sumo-rl-traci"]
    else:
        print("sumo-rl is not installed here: its columns are skipped", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        networks = {"grid3x3": "grid3x3", "grid4x4": grid4x4(Path(scratch))}
        print(f"{args.seconds:g} s episodes, decisions every {DECISION:g} s, best of "
              f"{args.repeats}; ratios are wall time / bare", flush=True)  # fmt: skip
        for label, config in networks.items():
            best = dict.fromkeys(variants, float("inf"))
            for _ in range(args.repeats):
                for variant in variants:
                    seconds = measure(variant, config, args.seconds, args.seed)
                    best[variant] = min(best[variant], seconds)
            bare = best["bare"]
            print(f"\n{label}: bare {bare:.2f} s (single call {best['bare-1call']:.2f} s)")
            for variant in variants[2:]:
                print(f"  {variant:<16} {best[variant]:7.2f} s   ratio {best[variant] / bare:6.2f}")
            for backend in ("libsumo", "traci"):
                peer = best.get(f"sumo-rl-{backend}")
                if peer is not None:
                    speedup = peer / best[f"ours-{backend}"]
                    print(f"  {backend}: twin-traffic is {speedup:.1f}× faster than sumo-rl")


if __name__ == "__main__":
    main()
