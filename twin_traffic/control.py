"""Safe signal control of a running simulation: one phase engine per controlled signal.

Every controller that decides in Python (learned or classical) asks for greens here; the
engines insert yellows, clearances and min/max green, and this module has SUMO show their
states. Each signal's programme holds all of its engine's transitions from the start
(:mod:`twin_traffic.programmes`); for each decision interval the engines are run ahead and
each signal whose course changes gets one cue (a ``setPhase``, and a ``setPhaseDuration``
when the phase must end early), so the interval is one SUMO step whatever the signals do,
no programme is sent again after the start, and a signal whose course has not changed
costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from twin_traffic.network import Network, TrafficLight, programme_min_green
from twin_traffic.programmes import Cue, Schedule, SignalProgramme, cues_for_interval
from twin_traffic.signals import PhaseEngine, SignalTiming, green_phase_indices
from twin_traffic.sim import Simulation

_EPS = 1e-6
_MEMO_SIZE = 100_000  # remembered cue computations per bank (a few MB at most)


@dataclass(frozen=True)
class ControlConfig:
    """How signals are driven.

    Attributes:
        timing: yellow, all-red, min and max green (seconds).
        decision_interval: seconds between a controller's decisions.
    """

    timing: SignalTiming = field(default_factory=SignalTiming)
    decision_interval: float = 5.0

    def __post_init__(self) -> None:
        if self.decision_interval <= 0:
            raise ValueError(f"decision_interval must be positive, got {self.decision_interval}")


class SignalBank:
    """The phase engines of a set of signals, applied to one running simulation."""

    def __init__(
        self,
        network: Network,
        signal_ids: Sequence[str],
        timing: SignalTiming,
        step_length: float = 1.0,
    ) -> None:
        self.ids = tuple(signal_ids)
        self.step_length = step_length
        self.engines = tuple(
            _engine(network.traffic_lights[tls], timing, step_length) for tls in self.ids
        )
        self._programmes = tuple(_compile(engine) for engine in self.engines)
        self._signals = tuple(
            zip(range(len(self.ids)), self.ids, self.engines, self._programmes, strict=True)
        )
        self._playing: list[Schedule] = []  # what SUMO plays from now, per signal
        self._memo: dict[
            tuple[int, Schedule, Schedule, int], tuple[list[tuple[int, Cue]], Schedule]
        ] = {}

    @property
    def num_greens(self) -> tuple[int, ...]:
        """Number of greens (actions) of each signal."""
        return tuple(engine.num_greens for engine in self.engines)

    def start(self, sim: Simulation, greens: Sequence[int] | None = None) -> None:
        """Take the signals over from their programmes, each showing a green."""
        self._playing = []
        for index, (tls, engine, programme) in enumerate(
            zip(self.ids, self.engines, self._programmes, strict=True)
        ):
            green = greens[index] if greens is not None else 0
            engine.reset(green)
            sim.load_programme(tls, programme.phases, green)
            self._playing.append(Schedule((), engine.state))

    def request(self, greens: Sequence[int]) -> None:
        """Ask each signal for a green (indices into its engine's greens)."""
        for engine, green in zip(self.engines, greens, strict=True):
            engine.request(int(green))

    def advance(self, sim: Simulation, until: float) -> None:
        """Run SUMO up to time ``until`` (in whole steps), the signals showing their
        engines' states as they change."""
        if sim.time >= until - _EPS:
            return
        steps = math.ceil((until - sim.time) / self.step_length - _EPS)
        start = sim.time
        cues: list[tuple[int, str, Cue]] = []
        playing, memo = self._playing, self._memo
        for index, tls, engine, programme in self._signals:
            wanted = _run_ahead(engine, steps)
            key = (index, playing[index], wanted, steps)
            found = memo.get(key)  # a signal meets the same few courses over and over
            if found is None:
                found = cues_for_interval(programme, playing[index], wanted, steps)
                if len(memo) < _MEMO_SIZE:
                    memo[key] = found
            signal_cues, playing[index] = found
            if signal_cues:
                cues.extend((offset, tls, cue) for offset, cue in signal_cues)
        # Almost always every cue is at offset 0: one step call for the whole interval.
        if any(offset for offset, _, _ in cues):
            cues.sort(key=lambda item: item[0])  # stable: signal order within an offset
        reached = 0
        for offset, tls, cue in cues:
            if offset > reached:
                sim.step(start + offset * self.step_length)
                reached = offset
            sim.set_phase(tls, cue.phase, cue.steps)
        sim.step(start + steps * self.step_length)


def _engine(light: TrafficLight, timing: SignalTiming, step_length: float) -> PhaseEngine:
    """The phase engine of a signal: its programme, its greens' own minimums, and its
    pedestrian crossings."""
    states = [phase.state for phase in light.phases]
    greens = [states[i] for i in green_phase_indices(states)]
    return PhaseEngine(
        states,
        [phase.duration for phase in light.phases],
        timing,
        step_length,
        green_minimums=[programme_min_green(light.phases, green) for green in greens],
        crossings=light.crossings,
    )


def _compile(engine: PhaseEngine) -> SignalProgramme:
    """The programme holding every transition of ``engine``, in steps."""
    step = engine.step_length
    transitions = {
        (src, dst): [
            (state, round(seconds / step)) for state, seconds in engine.transition(src, dst)
        ]
        for src in range(engine.num_greens)
        for dst in range(engine.num_greens)
        if src != dst
    }
    return SignalProgramme(engine.greens, transitions)


def _run_ahead(engine: PhaseEngine, steps: int) -> Schedule:
    """Run ``engine`` through ``steps`` steps and return what it shows from the first:
    its states until then, and on to the green that ends any transition still running
    (a transition cannot be interrupted, so its end is already known). Steps in which
    nothing can change are passed over at once; only those that may change are ticked."""
    done = length = engine.coast(steps)
    if done == steps and not engine.in_transition:
        return Schedule((), engine.state)  # a green held through the interval
    runs: list[tuple[str, int]] = []  # the states shown before the current one
    shown = engine.state
    while done < steps:
        new = engine.tick()
        length, done = length + 1, done + 1
        if new is not None and new != shown:
            runs.append((shown, length))
            shown, length = new, 0
        quiet = engine.coast(steps - done)
        length, done = length + quiet, done + quiet
    if not engine.in_transition:
        return Schedule(tuple(runs), shown)
    (_, left), *later = engine.rest_of_transition()
    return Schedule.of([*runs, (shown, length + left), *later], engine.greens[engine.current_green])
