"""How much does the environment cost on top of SUMO itself?

On the built-in ``grid3x3``, a generated 16-signal 4×4 grid under light traffic (its
demand at SUMO ``--scale`` 0.25, about 1 400 veh/h: SUMO's own step is cheap there, so the
env's cost shows) and the real networks of ``../shared/realnets`` when they are there,
one episode with every signal controlled, decisions every 5 s, 3 s yellow, min green 5 s,
max green 60 s, the default observation (phase, density, queue) and reward (wait),
random actions:

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
``bare``; beside each, the env's cost per signal and decision,
``(episode − bare) / (decisions × signals)``, and its own part of it,
``(episode − time inside SUMO's steps) / (decisions × signals)``: signals under random
control make SUMO's own step slower than under the network's plans (jams are more work),
which the first figure charges to the env. Targets: with libsumo at most 50 µs per
signal-decision, with TraCI at most twice the libsumo figure, and faster than sumo-rl on
every network with both backends.

    python benchmarks/env_speed.py [--repeats 3] [--seconds 900]
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
REALNETS = REPO.parent / "shared" / "realnets"
LIGHT_SCALE = 0.25


def run_variant(
    variant: str, config: str, seconds: float, seed: int, scale: float
) -> tuple[float, float]:
    """Inside a worker process: one episode of ``variant``; its wall time and the part
    of it spent inside SUMO's own steps (NaN where it is not measured)."""
    from twin_traffic.scenario import load_scenario
    from twin_traffic.sim import SimConfig, Simulation

    scenario = load_scenario(config, end=seconds)
    scale_args = ("--scale", f"{scale:g}") if scale != 1.0 else ()
    if variant.startswith("bare"):
        sim_config = SimConfig(backend="libsumo", extra_args=scale_args)
        sim = Simulation(scenario, seed, None, sim_config).start()
        started = time.perf_counter()
        if variant == "bare-1call":
            sim.step(scenario.end)
        else:
            while sim.running:
                sim.step()
        elapsed = time.perf_counter() - started
        sim.close()
        return elapsed, elapsed
    if variant.startswith("ours"):
        import numpy as np

        from twin_traffic.envs import SignalParallelEnv

        backend = variant.removeprefix("ours-")
        env = SignalParallelEnv(
            scenario=config, end=seconds, backend=backend, decision_interval=DECISION,
            yellow=YELLOW, min_green=MIN_GREEN, max_green=MAX_GREEN, demand_scale=scale,
        )  # fmt: skip
        rng = np.random.default_rng(seed)
        greens = {a: env.action_space(a).n for a in env.possible_agents}
        env.reset(seed=seed)  # starts SUMO: not timed, like the bare run's start
        inside = _time_sumo_steps(env.twin.sim)
        started = time.perf_counter()
        while env.agents:
            env.step({a: int(rng.integers(n)) for a, n in greens.items()})
        elapsed = time.perf_counter() - started
        env.close()
        return elapsed, inside[0]
    return run_sumo_rl(variant.removeprefix("sumo-rl-"), scenario, seconds, seed, scale)


def run_sumo_rl(
    backend: str, scenario: object, seconds: float, seed: int, scale: float
) -> tuple[float, float]:
    """One sumo-rl episode (its PettingZoo parallel env) with random actions."""
    import sumo

    scratch = tempfile.TemporaryDirectory(prefix="env-speed-")

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
        additional_sumo_cmd=" ".join(sumo_rl_options(scenario, scale, Path(scratch.name))) or None,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)  # starts SUMO: not timed
    started = time.perf_counter()
    while env.agents:
        env.step({a: int(rng.integers(env.action_space(a).n)) for a in env.agents})
    elapsed = time.perf_counter() - started
    env.close()
    scratch.cleanup()
    return elapsed, float("nan")


def sumo_rl_options(scenario: object, scale: float, scratch: Path) -> list[str]:
    """What sumo-rl needs on SUMO's command line beyond its net and route files: the
    scenario's additional files (vehicle types, signal plans), with those that declare
    outputs of their own copied into ``scratch`` so nothing is written beside the
    scenario, and the demand scale."""
    from twin_traffic.redirect import scenario_args

    args = scenario_args(scenario, (), scratch)  # type: ignore[arg-type]
    options = []
    if "--additional-files" in args:
        options += ["--additional-files", args[args.index("--additional-files") + 1]]
    if scale != 1.0:
        options += ["--scale", f"{scale:g}"]
    return options


def _time_sumo_steps(sim: object) -> list[float]:
    """Accumulate, in the returned one-element list, the wall time of ``sim``'s steps
    (SUMO's own work, and with TraCI the round trip that carries it)."""
    total = [0.0]
    step = sim.step  # type: ignore[attr-defined]

    def timed(until: float = 0.0) -> None:
        started = time.perf_counter()
        step(until)
        total[0] += time.perf_counter() - started

    sim.step = timed  # type: ignore[attr-defined]
    return total


def sumo_rl_available() -> bool:
    probe = [sys.executable, "-c", "import sumo_rl"]
    environment = {**os.environ, "SUMO_HOME": _sumo_home()}
    return subprocess.run(probe, capture_output=True, env=environment).returncode == 0


def _sumo_home() -> str:
    import sumo

    return str(sumo.SUMO_HOME)


def measure(
    variant: str, config: str, seconds: float, seed: int, scale: float
) -> tuple[float, float]:
    """Run one variant in a fresh process: its wall time and SUMO's part of it."""
    command = [sys.executable, __file__, "--worker", variant, config, str(seconds), str(seed)]
    command.append(str(scale))
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{variant} on {config} failed:\n{result.stderr[-2000:]}")
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    return float(reply["seconds"]), float(reply["sumo"])


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


def signal_count(config: str) -> int:
    """Signals the env controls in ``config`` (all of them)."""
    from twin_traffic.network import load_network
    from twin_traffic.scenario import load_scenario

    return len(load_network(load_scenario(config)).signal_ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--networks", nargs="+", help="labels to run (default: all)")
    parser.add_argument("--realnets", type=Path, default=REALNETS, help="real networks folder")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        variant, config, seconds, seed, scale = args.worker
        elapsed, sumo = run_variant(variant, config, float(seconds), int(seed), float(scale))
        print(json.dumps({"seconds": elapsed, "sumo": sumo}))
        return

    variants = ["bare", "bare-1call", "ours-libsumo", "ours-traci"]
    if sumo_rl_available():
        variants += ["sumo-rl-libsumo", "sumo-rl-traci"]
    else:
        print("sumo-rl is not installed here: its columns are skipped", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        networks = {
            "grid3x3": ("grid3x3", 1.0),
            "grid4x4-light": (grid4x4(Path(scratch)), LIGHT_SCALE),
        }
        for name in ("pasubio", "monaco"):
            config = args.realnets / name / f"{name}.sumocfg"
            if config.exists():
                networks[name] = (str(config), 1.0)
        if args.networks:
            networks = {k: v for k, v in networks.items() if k in args.networks}
        decisions = args.seconds / DECISION
        print(f"{args.seconds:g} s episodes, decisions every {DECISION:g} s, best of "
              f"{args.repeats}; ratios are wall time / bare; µs: the env's own cost per "
              "signal and decision", flush=True)  # fmt: skip
        for label, (config, scale) in networks.items():
            signals = signal_count(config)
            best = dict.fromkeys(variants, float("inf"))
            sumo_part = dict.fromkeys(variants, float("nan"))
            for _ in range(args.repeats):
                for variant in variants:
                    seconds, sumo = measure(variant, config, args.seconds, args.seed, scale)
                    if seconds < best[variant]:
                        best[variant], sumo_part[variant] = seconds, sumo
            bare = best["bare"]
            slots = decisions * signals
            print(f"\n{label} ({signals} signals, demand scale {scale:g}): bare {bare:.2f} s "
                  f"(single call {best['bare-1call']:.2f} s)")  # fmt: skip
            print(f"  {'variant':<16} {'episode':>8} {'/ bare':>7} {'µs vs bare':>11} "
                  f"{'in SUMO':>8} {'µs own':>7}")  # fmt: skip
            for variant in variants[2:]:
                against_bare = (best[variant] - bare) / slots * 1e6
                own = (best[variant] - sumo_part[variant]) / slots * 1e6
                print(f"  {variant:<16} {best[variant]:7.2f}s {best[variant] / bare:7.2f} "
                      f"{against_bare:11.1f} {sumo_part[variant]:7.2f}s {own:7.1f}")  # fmt: skip
            for backend in ("libsumo", "traci"):
                peer = best.get(f"sumo-rl-{backend}")
                if peer is not None:
                    speedup = peer / best[f"ours-{backend}"]
                    print(f"  {backend}: twin-traffic is {speedup:.1f}× faster than sumo-rl")


if __name__ == "__main__":
    main()
