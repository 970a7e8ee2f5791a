"""How much does the environment cost on top of SUMO itself?

On the built-in ``grid3x3``, a generated 16-signal 4×4 grid under light traffic (its
demand at SUMO ``--scale`` 0.25, about 1 400 veh/h: SUMO's own step is cheap there, so the
env's cost shows) and the real networks of ``../shared/realnets`` when they are there,
one episode with every signal controlled, decisions every 5 s, 3 s yellow, min green 5 s,
max green 60 s, the default observation (phase, density, queue) and reward (wait),
random actions:

* ``bare``: libsumo stepping the same scenario and seed with no control (the network's
  own plans), one ``simulationStep()`` per second (``bare-1call``: a single
  ``simulationStep(end)``, the floor of SUMO's own cost, shown for reference);
* ``bare-replay``: the same plain stepping, the signals playing what the env's episode
  showed: an untimed recording pass runs that episode (same seed, same actions), reads
  every controlled signal's link states after each second, and compiles them into one
  static ``<tlLogic>`` per signal (a phase per run of equal states, starting at the
  scenario's begin), loaded as an additional file from a scratch folder. Same seed and
  same signal states give the same traffic: the check line compares the final state of
  every vehicle (and the inserted and running counts) of the env's episodes and the
  replay;
* ``ours-libsumo`` / ``ours-traci``: ``SignalParallelEnv`` episodes;

(SUMO's start-up, ``reset``, is left out of every variant's time)
* ``sumo-rl-libsumo`` / ``sumo-rl-traci``: the peer toolkit sumo-rl on the same network
  and route files with the same decision interval, yellow, min and max green — when it is
  importable: installed in this environment, or with ``--sumo-rl-path DIR`` from a folder
  of its own (``pip install --target DIR --no-deps sumo-rl==1.4.5 pettingzoo==1.24.3``:
  sumo-rl 1.4.5 needs a PettingZoo older than this project's).

Every variant runs in its own process (libsumo allows one simulation per process),
interleaved, ``--repeats`` times; each keeps its best time: wall time, or with
``--clock cpu`` the CPU time of the worker and of its TraCI SUMO (on a machine shared
with other work, wall times swing from one minute to the next; CPU times much less). The
actions are drawn before the clock starts (drawing them is the benchmark's work, not the
env's). The ratios divide by ``bare``; beside each, the env's cost per signal and
decision three ways:

* ``µs vs bare``: ``(episode − bare) / (decisions × signals)``. Signals under random
  control make SUMO's own step slower than under the network's plans (jams are more
  work), and this figure charges that to the env;
* ``µs vs replay``: ``(episode − bare-replay) / (decisions × signals)``: against SUMO
  running the very traffic the env's control produced, so it charges the env only for
  what it adds (reads, observations, rewards, the engines, the cues, and with TraCI the
  socket);
* ``µs own``: ``(episode − time inside SUMO's steps) / (decisions × signals)``, the
  env's Python and reads alone;

and ``µs read``, the part of that spent reading the lanes: as the episode read them, each
right after a SUMO step, and timed apart on the episode's final traffic, 200 reads in a
row. The two differ by the caches: SUMO's step leaves the CPU's caches full of its own
data, and a read right after it misses where a repeated read hits.

Targets: with libsumo at most 50 µs per signal-decision, with TraCI at most twice the
libsumo figure, and faster than sumo-rl on every network with both backends.

    python benchmarks/env_speed.py [--repeats 3] [--seconds 900] [--clock cpu] [--sumo-rl-path DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DECISION = 5.0
YELLOW = 3.0
MIN_GREEN = 5.0
MAX_GREEN = 60.0
REPO = Path(__file__).resolve().parents[1]
REALNETS = REPO.parent / "shared" / "realnets"
LIGHT_SCALE = 0.25


REPLAY_PROGRAMME = "env-speed-replay"
CLOCKS = ("wall", "cpu")
_clock = ["wall"]  # the worker's clock
_server: list[int] = []  # with the cpu clock, the pid of the episode's TraCI SUMO


def now() -> float:
    """The worker's clock: wall time, or the CPU time of this process and of the TraCI
    SUMO serving it (what other work on a shared machine disturbs least)."""
    if _clock[0] == "wall":
        return time.perf_counter()
    # Linux's CPU clock of another process: MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED).
    return time.process_time() + sum(time.clock_gettime((~pid << 3) | 2) for pid in _server)


def run_variant(
    variant: str, config: str, seconds: float, seed: int, scale: float, replay: Path
) -> dict[str, object]:
    """Inside a worker process: one episode of ``variant``; its wall time, the part of
    it spent inside SUMO's own steps (NaN where it is not measured) and the traffic's
    state at the end (``record`` writes ``replay`` instead and times nothing)."""
    from twin_traffic.scenario import load_scenario
    from twin_traffic.sim import SimConfig, Simulation

    scenario = load_scenario(config, end=seconds)
    scale_args = ("--scale", f"{scale:g}") if scale != 1.0 else ()
    if variant.startswith("bare"):
        additional = [replay] if variant == "bare-replay" else []
        sim_config = SimConfig(backend="libsumo", extra_args=scale_args)
        sim = Simulation(scenario, seed, None, sim_config, additional).start()
        if variant == "bare-replay":
            select_replay(sim.api)
        started = now()
        if variant == "bare-1call":
            sim.step(scenario.end)
        else:
            while sim.running:
                sim.step()
        elapsed = now() - started
        state = traffic_state(sim.api)
        sim.close()
        return {"seconds": elapsed, "sumo": elapsed, "state": state}
    if variant.startswith("ours") or variant == "record":
        return run_ours(variant, config, seconds, seed, scale, replay)
    elapsed = run_sumo_rl(variant.removeprefix("sumo-rl-"), scenario, seconds, seed, scale)
    return {"seconds": elapsed, "sumo": float("nan"), "state": None}


def run_ours(
    variant: str, config: str, seconds: float, seed: int, scale: float, replay: Path
) -> dict[str, object]:
    """One ``SignalParallelEnv`` episode with random actions (``record``: untimed, its
    signals' states written to ``replay`` as static programmes)."""
    from twin_traffic.envs import SignalParallelEnv

    backend = "libsumo" if variant == "record" else variant.removeprefix("ours-")
    env = SignalParallelEnv(
        scenario=config, end=seconds, backend=backend, decision_interval=DECISION,
        yellow=YELLOW, min_green=MIN_GREEN, max_green=MAX_GREEN, demand_scale=scale,
    )  # fmt: skip
    actions = random_actions(env, seed, seconds)
    env.reset(seed=seed)  # starts SUMO: not timed, like the bare run's start
    sim = env.twin.sim
    assert sim is not None
    if backend == "traci":
        _server[:] = [sim.api._process.pid]
    if variant == "record":
        states = _record_states(sim, env.possible_agents)
        begin = sim.time
    inside = _time_sumo_steps(sim)
    reading = _time_reads_in_episode(env.twin.observer)
    elapsed = play(env, actions)
    read = time_reads(env.twin.observer, sim.time)
    state = traffic_state(sim.api)
    env.close()
    if variant == "record":
        write_replay(replay, dict(zip(env.possible_agents, states, strict=True)), sim.step_length,
                     begin)  # fmt: skip
    return {"seconds": elapsed, "sumo": inside[0], "state": state, "read": read,
            "read_in_episode": reading[0] / len(actions)}  # fmt: skip


def time_reads(observer: Any, at: float, reads: int = 200) -> float:
    """The cost of one read of every lane variable the env observes, s: ``reads`` reads
    of the traffic at the episode's end, timed together. Unlike the episode's, this time
    holds nothing of SUMO's stepping, whose swings from run to run (0.2 s per episode on
    Pasubio) can exceed the whole cost of the env."""
    started = now()
    for _ in range(reads):
        observer.read(at)
    return (now() - started) / reads


def play(env: Any, actions: list[dict[str, int]]) -> float:
    """Step a PettingZoo parallel env through ``actions`` until it ends: the time taken."""
    started = now()
    for decision in actions:
        if not env.agents:
            break
        env.step(decision)
    return now() - started


def random_actions(env: object, seed: int, seconds: float) -> list[dict[str, int]]:
    """Every decision's random actions, drawn up front from ``seed``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    agents = env.possible_agents  # type: ignore[attr-defined]
    greens = {a: env.action_space(a).n for a in agents}  # type: ignore[attr-defined]
    decisions = math.ceil(seconds / DECISION) + 1
    return [{a: int(rng.integers(n)) for a, n in greens.items()} for _ in range(decisions)]


def _record_states(sim: object, signals: list[str]) -> list[list[str]]:
    """Make ``sim`` step one step at a time (the same traffic) and collect, after each
    step, every signal's link states: what it showed during that step (a programme's own
    switch at a step's start shows only once the step has run)."""
    states: list[list[str]] = [[] for _ in signals]
    step = sim.step  # type: ignore[attr-defined]
    get_state = sim.api.trafficlight.getRedYellowGreenState  # type: ignore[attr-defined]

    def stepwise(until: float = 0.0) -> None:
        target = until if until > 0 else sim.time + sim.step_length  # type: ignore[attr-defined]
        while sim.time < target - 1e-9:  # type: ignore[attr-defined]
            step()
            for tls, shown in zip(signals, states, strict=True):
                shown.append(get_state(tls))

    sim.step = stepwise  # type: ignore[attr-defined]
    return states


def write_replay(path: Path, states: dict[str, list[str]], step: float, begin: float) -> None:
    """One static programme per signal playing ``states`` (one per step from ``begin``):
    a phase per run of equal states, the last one held far past the end."""
    from xml.sax.saxutils import quoteattr

    lines = ["<additional>"]
    for tls, shown in states.items():
        # SUMO starts a static programme at phase 0 when begin − offset is a whole cycle.
        lines.append(f"    <tlLogic id={quoteattr(tls)} type=\"static\" "
                     f"programID=\"{REPLAY_PROGRAMME}\" offset=\"{begin:g}\">")  # fmt: skip
        runs = [(state, len(list(group))) for state, group in itertools.groupby(shown)]
        for index, (state, count) in enumerate(runs):
            hold = 86400.0 if index == len(runs) - 1 else 0.0
            lines.append(f'        <phase duration="{count * step + hold:g}" state="{state}"/>')
        lines.append("    </tlLogic>")
    lines.append("</additional>")
    path.write_text("\n".join(lines) + "\n")


def select_replay(api: object) -> None:
    """Have every signal that has the replay programme run it (SUMO makes the programme
    loaded last the active one; this makes sure)."""
    trafficlight = api.trafficlight  # type: ignore[attr-defined]
    for tls in trafficlight.getIDList():
        if trafficlight.getProgram(tls) != REPLAY_PROGRAMME:
            programmes = [logic.programID for logic in trafficlight.getAllProgramLogics(tls)]
            if REPLAY_PROGRAMME in programmes:
                trafficlight.setProgram(tls, REPLAY_PROGRAMME)


def traffic_state(api: object) -> dict[str, object]:
    """The traffic now, to compare runs: vehicles inserted and running, and a digest of
    every running vehicle's lane, position and speed (read once, after the clock)."""
    vehicle = api.vehicle  # type: ignore[attr-defined]
    ids = sorted(vehicle.getIDList())
    rows = [(v, vehicle.getLaneID(v), vehicle.getLanePosition(v), vehicle.getSpeed(v)) for v in ids]
    inserted = int(api.simulation.getParameter("", "stats.vehicles.inserted"))  # type: ignore[attr-defined]
    digest = hashlib.sha256(repr(rows).encode()).hexdigest()[:12]
    return {"inserted": inserted, "running": len(ids), "digest": digest}


def run_sumo_rl(backend: str, scenario: object, seconds: float, seed: int, scale: float) -> float:
    """One sumo-rl episode (its PettingZoo parallel env) with random actions: its wall
    time."""
    import sumo

    scratch = tempfile.TemporaryDirectory(prefix="env-speed-")

    os.environ.setdefault("SUMO_HOME", sumo.SUMO_HOME)  # sumo-rl insists on it
    if backend == "libsumo":
        os.environ["LIBSUMO_AS_TRACI"] = "1"  # read by sumo-rl at import
    import sumo_rl

    env = sumo_rl.parallel_env(
        net_file=str(scenario.net_file),  # type: ignore[attr-defined]
        route_file=",".join(map(str, scenario.route_files)),  # type: ignore[attr-defined]
        use_gui=False, num_seconds=int(seconds), delta_time=int(DECISION),
        yellow_time=int(YELLOW), min_green=int(MIN_GREEN), max_green=int(MAX_GREEN),
        sumo_seed=seed, sumo_warnings=False,
        additional_sumo_cmd=" ".join(sumo_rl_options(scenario, scale, Path(scratch.name))) or None,
    )  # fmt: skip
    actions = random_actions(env, seed, seconds)
    env.reset(seed=seed)  # starts SUMO: not timed
    _server[:] = _children()  # its TraCI SUMO, for the cpu clock
    elapsed = play(env, actions)
    env.close()
    scratch.cleanup()
    return elapsed


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
        started = now()
        step(until)
        total[0] += now() - started

    sim.step = timed  # type: ignore[attr-defined]
    return total


def _time_reads_in_episode(observer: Any) -> list[float]:
    """Accumulate, in the returned one-element list, the time of the episode's own lane
    reads, each right after a SUMO step (:func:`time_reads` times them with warm caches)."""
    total = [0.0]
    read = observer.read

    def timed(at: float) -> Any:
        started = now()
        snapshot = read(at)
        total[0] += now() - started
        return snapshot

    observer.read = timed
    return total


def _children() -> list[int]:
    """The pids of this process's children (Linux)."""
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        pids += map(int, (task / "children").read_text().split())
    return pids


def sumo_rl_environment(path: Path | None) -> dict[str, str]:
    """The environment of a sumo-rl worker: ``path`` (a folder sumo-rl and the PettingZoo
    it needs were installed into with ``pip install --target``) first on its import path,
    so that it need not share this environment's packages."""
    environment = {**os.environ, "SUMO_HOME": _sumo_home()}
    if path is not None:
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(path), environment.get("PYTHONPATH", "")])
        )
    return environment


def sumo_rl_available(path: Path | None) -> bool:
    probe = [sys.executable, "-c", "import sumo_rl"]
    environment = sumo_rl_environment(path)
    return subprocess.run(probe, capture_output=True, env=environment).returncode == 0


def _sumo_home() -> str:
    import sumo

    return str(sumo.SUMO_HOME)


def measure(
    variant: str, config: str, seconds: float, seed: int, scale: float, replay: Path,
    clock: str = "wall", sumo_rl_path: Path | None = None,
) -> dict[str, object]:  # fmt: skip
    """Run one variant in a fresh process: its time, SUMO's part of it and the traffic's
    state at the end."""
    command = [sys.executable, __file__, "--worker", variant, config, str(seconds), str(seed)]
    command += [str(scale), str(replay), "--clock", clock]
    environment = sumo_rl_environment(sumo_rl_path) if variant.startswith("sumo-rl") else None
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        raise RuntimeError(f"{variant} on {config} failed:\n{result.stderr[-2000:]}")
    reply: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return reply


def replay_check(states: dict[str, object]) -> str:
    """One line: whether the recording, the env's episodes and the replay ended with the
    same traffic."""
    known = {variant: state for variant, state in states.items() if state is not None}
    reference = known["record"]
    differ = [variant for variant, state in known.items() if state != reference]
    if differ:
        detail = "; ".join(f"{variant} {state}" for variant, state in known.items())
        return f"  replay check: DIFFERENT traffic in {', '.join(differ)}: {detail}"
    return (f"  replay check: the same traffic at the end in {', '.join(known)} "  # type: ignore[index]
            f"({reference['inserted']} inserted, {reference['running']} running, "
            f"state {reference['digest']})")  # fmt: skip


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
    parser.add_argument(
        "--clock", choices=CLOCKS, default="wall",
        help="wall time, or CPU time (this process's and its TraCI SUMO's: steadier on a "
        "busy machine)",
    )  # fmt: skip
    parser.add_argument(
        "--sumo-rl-path", type=Path,
        help="a folder holding sumo-rl and pettingzoo<1.25 (pip install --target DIR "
        "--no-deps sumo-rl==1.4.5 pettingzoo==1.24.3), for its columns",
    )  # fmt: skip
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        variant, config, seconds, seed, scale, replay = args.worker
        _clock[0] = args.clock
        reply = run_variant(variant, config, float(seconds), int(seed), float(scale), Path(replay))
        print(json.dumps(reply))
        return

    variants = ["bare", "bare-1call", "bare-replay", "ours-libsumo", "ours-traci"]
    if sumo_rl_available(args.sumo_rl_path):
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
              f"{args.repeats}; ratios are {args.clock} time / bare; µs: the env's cost per "
              "signal and decision", flush=True)  # fmt: skip
        for label, (config, scale) in networks.items():
            signals = signal_count(config)
            replay = Path(scratch) / f"{label}-replay.add.xml"
            states = {
                "record": measure("record", config, args.seconds, args.seed, scale, replay)["state"]
            }
            best = dict.fromkeys(variants, float("inf"))
            sumo_part = dict.fromkeys(variants, float("nan"))
            reads = dict.fromkeys(variants, float("inf"))
            episode_reads = dict.fromkeys(variants, float("inf"))
            for _ in range(args.repeats):
                for variant in variants:
                    reply = measure(variant, config, args.seconds, args.seed, scale, replay,
                                    args.clock, args.sumo_rl_path)  # fmt: skip
                    seconds, sumo = float(reply["seconds"]), float(reply["sumo"])  # type: ignore[arg-type]
                    if variant in ("bare-replay", "ours-libsumo", "ours-traci"):
                        states[variant] = reply["state"]
                    if "read" in reply:  # our env's variants time their reads
                        reads[variant] = min(reads[variant], float(reply["read"]))  # type: ignore[arg-type]
                        episode_reads[variant] = min(
                            episode_reads[variant],
                            float(reply["read_in_episode"]),  # type: ignore[arg-type]
                        )
                    if seconds < best[variant]:
                        best[variant], sumo_part[variant] = seconds, sumo
            print_network(label, signals, scale, decisions * signals, best, sumo_part,
                          (episode_reads, reads))  # fmt: skip
            print(replay_check(states), flush=True)


def print_network(
    label: str, signals: int, scale: float, slots: float, best: dict[str, float],
    sumo_part: dict[str, float], reads: tuple[dict[str, float], dict[str, float]],
) -> None:  # fmt: skip
    """The table of one network: each variant's time, ratio and cost per signal-decision
    (``µs read``: the part of it spent reading the lanes, as the episode read them right
    after SUMO's steps / timed apart with warm caches)."""
    bare, replay = best["bare"], best["bare-replay"]
    print(f"\n{label} ({signals} signals, demand scale {scale:g}): bare {bare:.2f} s "
          f"(single call {best['bare-1call']:.2f} s), bare-replay {replay:.2f} s")  # fmt: skip
    print(f"  {'variant':<16} {'episode':>8} {'/ bare':>7} {'µs vs bare':>11} "
          f"{'µs vs replay':>13} {'in SUMO':>8} {'µs own':>7} {'µs read':>12}")  # fmt: skip
    for variant in [v for v in best if v.startswith(("ours", "sumo-rl"))]:
        against_bare = (best[variant] - bare) / slots * 1e6
        against_replay = (best[variant] - replay) / slots * 1e6
        own = (best[variant] - sumo_part[variant]) / slots * 1e6
        in_episode, warm = (r[variant] / signals * 1e6 for r in reads)
        read_text = f"{in_episode:5.1f} / {warm:4.1f}" if math.isfinite(warm) else f"{'–':>12}"
        print(f"  {variant:<16} {best[variant]:7.2f}s {best[variant] / bare:7.2f} "
              f"{against_bare:11.1f} {against_replay:13.1f} {sumo_part[variant]:7.2f}s "
              f"{own:7.1f} {read_text}")  # fmt: skip
    for backend in ("libsumo", "traci"):
        peer = best.get(f"sumo-rl-{backend}")
        if peer is not None:
            speedup = peer / best[f"ours-{backend}"]
            print(f"  {backend}: twin-traffic is {speedup:.1f}× faster than sumo-rl")


if __name__ == "__main__":
    main()
