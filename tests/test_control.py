"""The signal bank on real SUMO runs: SUMO shows, second by second, exactly the states
the phase engines decide, although it is stepped once per decision interval."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence

import numpy as np
import pytest

from twin_traffic.control import SignalBank, _run_ahead
from twin_traffic.network import load_network
from twin_traffic.programmes import ProgrammePhase, Schedule
from twin_traffic.scenario import load_scenario
from twin_traffic.signals import PhaseEngine, SignalTiming
from twin_traffic.sim import SimConfig, Simulation


class SecondBySecond(Simulation):
    """A simulation that runs each step call one second at a time, records the state of
    every signal's links during each second, and counts the commands that move a signal."""

    ids: tuple[str, ...]
    shown: list[dict[str, str]]
    commands: int
    loads: int = 0

    def step(self, until: float = 0.0) -> None:
        target = until if until > 0 else self.time + 1
        while self.time < target - 1e-9:
            super().step()
            # SUMO switches a programme's phase at the start of a step, so what is read
            # after the step to t+1 is the state shown during [t, t+1) (or one set now).
            self.shown.append({tls: self.link_states(tls) for tls in self.ids})

    def link_states(self, tls: str) -> str:
        """The state the links of ``tls`` really have (not just its programme's phase)."""
        states = []
        for (incoming, outgoing, via), *_ in self.api.trafficlight.getControlledLinks(tls):
            link = next(
                link for link in self.api.lane.getLinks(incoming)
                if link[0] == outgoing and link[4] == via
            )  # fmt: skip
            states.append(link[5])
        return "".join(states)

    def set_phase(self, tls: str, index: int, steps: int | None = None) -> None:
        # Every command that moves a signal ends here (a programme load ends with one).
        self.commands += 1
        super().set_phase(tls, index, steps)

    def load_programme(self, tls: str, phases: Sequence[ProgrammePhase], start: int) -> None:
        self.loads += 1
        super().load_programme(tls, phases, start)


@pytest.mark.parametrize("backend", ["libsumo", "traci"])
@pytest.mark.parametrize(("name", "interval"), [("mixed", 5.0), ("single", 7.0)])
def test_sumo_shows_the_engine_states_every_second(
    backend: str, name: str, interval: float
) -> None:
    scenario = load_scenario(name, end=600)
    network = load_network(scenario)
    ids = network.signal_ids
    # All-red and a short max green, so that transitions run across decision intervals
    # and forced switches happen between decisions.
    timing = SignalTiming(yellow=3.0, all_red=2.0, min_green=5.0, max_green=15.0)
    bank = SignalBank(network, ids, timing)
    reference = [
        PhaseEngine(
            [phase.state for phase in network.traffic_lights[tls].phases],
            [phase.duration for phase in network.traffic_lights[tls].phases],
            timing,
        )
        for tls in ids
    ]
    rng = np.random.default_rng(5)
    expected: list[dict[str, str]] = []
    intervals: list[tuple[int, int]] = []
    with SecondBySecond(scenario, 1, None, SimConfig(backend=backend)) as sim:
        sim.ids, sim.shown, sim.commands = ids, [], 0
        bank.start(sim)
        sim.commands = 0
        while sim.running:
            greens = [int(rng.integers(engine.num_greens)) for engine in reference]
            bank.request(greens)
            for engine, green in zip(reference, greens, strict=True):
                engine.request(green)
            until = min(sim.time + interval, scenario.end)
            intervals.append((len(expected), round(until - sim.time)))
            for _ in range(round(until - sim.time)):
                expected.append({tls: e.state for tls, e in zip(ids, reference, strict=True)})
                for engine in reference:
                    engine.tick()
            bank.advance(sim, until)
        shown, commands, loads = sim.shown, sim.commands, sim.loads
    # Each signal's programme is sent once, at the start, whatever the actions.
    assert loads == len(ids)
    assert len(shown) == len(expected) == 600
    for second, (want, got) in enumerate(zip(expected, shown, strict=True)):
        assert got == want, f"t={second}: SUMO showed {got}, the engines {want}"
    # A signal costs a command only in an interval where its state changes (at most):
    # what SUMO plays on by itself is never sent again.
    changing = sum(
        any(expected[s][tls] != expected[s + 1][tls] for s in range(start, start + n)
            if s + 1 < len(expected))
        for start, n in intervals for tls in ids
    )  # fmt: skip
    assert 50 < commands <= changing


def _tick_every_step(engine: PhaseEngine, steps: int) -> Schedule:
    """What ``_run_ahead`` returns, by ticking every single step (its definition)."""
    states, lengths = [engine.state], [0]

    def tick(running: PhaseEngine) -> None:
        lengths[-1] += 1
        if running.tick() is not None and running.state != states[-1]:
            states.append(running.state)
            lengths.append(0)

    for _ in range(steps):
        tick(engine)
    if engine.in_transition:
        ahead = copy.copy(engine)
        while ahead.in_transition:
            tick(ahead)
    return Schedule(tuple(zip(states[:-1], lengths[:-1], strict=True)), states[-1])


@pytest.mark.parametrize("seed", range(3))
def test_running_ahead_past_quiet_steps_equals_ticking_each_one(seed: int) -> None:
    rng = random.Random(seed)
    programmes = [
        (["GGrr", "yyrr", "rrGG", "rryy"], [30, 3, 30, 3]),
        (["GrGr", "yryr", "rGrG", "ryry", "GGrr"], [20, 4, 20, 4, 10]),
        (["GG"], [10]),
    ]
    for _ in range(300):
        states, durations = rng.choice(programmes)
        timing = SignalTiming(rng.choice([2, 3]), rng.choice([0, 2]), rng.choice([1, 5, 7]),
                              rng.choice([10, 60]))  # fmt: skip
        fast, reference = (
            PhaseEngine(states, durations, timing),
            PhaseEngine(states, durations, timing),
        )
        for _ in range(30):
            green = rng.randrange(fast.num_greens)
            fast.request(green)
            reference.request(green)
            steps = rng.choice([1, 3, 5, 7])
            assert _run_ahead(fast, steps) == _tick_every_step(reference, steps)
            assert fast.__dict__ == reference.__dict__
