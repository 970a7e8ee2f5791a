"""Observations and rewards of signals, chosen by name, computed from lane-level state.

Everything is gathered per lane (or per detector) into NumPy arrays once per decision:
no per-vehicle Python on the decision path. Observations lie in [0, 1] (pressure in
[-1, 1]); rewards are scaled to roughly [-1, 1] so that defaults suit any network.

Observations (per signal, concatenated in the order given):

=============  ====================================================================
``phase``      one-hot of the current green, in-transition flag, time in green
               / max green
``density``    vehicles per incoming lane / the lane's capacity (length / 7.5 m)
``queue``      halting vehicles per incoming lane / capacity
``pressure``   per movement: incoming density minus outgoing density
``speed``      mean speed per incoming lane / its speed limit (1 when empty)
``sensor``     what detectors on the approaches measure, like a camera or loop
               with limited range: per incoming lane, a lane-area detector covering
               the last ``sensor_range`` metres (occupancy, halting / capacity)
``greens``     per green, in action order: whether it is the current green, its
               vehicle pressure (vehicles, with those waiting to enter, on its links'
               entry lanes minus their exit lanes; spill-back links excluded) and
               queue pressure (the same with halting vehicles), each squashed as
               ``x / (x + 10)``, the seconds of transition a switch to it costs
               / 10, and the longest its links have waited for green with
               vehicles queued / 120 s (1: starving, as the controllers' guard)
``running``    per green, in action order: moving vehicles within ``sensor_range`` of
               the stop line on the lanes its open links serve (lane-area
               detectors), squashed — what Advanced-MP keeps a green for, and with
               the queue pressure what max-pressure counts
``timing``     in-transition flag, time in green / max green, and whether the
               current green has served its minimum (the engine's and the
               programme's own)
=============  ====================================================================

``phase``, ``density``, ``queue``, ``pressure``, ``speed`` and ``sensor`` are per lane or
movement, in each signal's own order, so in a shared policy over signals of different
shapes the same input means different lanes. ``greens`` and ``running`` are laid out per
green, padded to the most greens of the controlled signals, so their blocks line up with
the actions of every signal; with ``timing`` they describe every signal in the same
terms.

Rewards (per signal; higher is better):

==============  ===================================================================
``wait``        decrease of the waiting time accumulated by vehicles on the
                approaches, per second and per unit of approach capacity
``queue``       minus queued vehicles on the approaches (halting, and waiting to
                enter the network on their edges) / their capacity
``pressure``    minus |incoming − outgoing vehicles| / approach capacity
``delay``       minus the rate at which the approaches' vehicles accrue delay, as
                the ``delay`` metric counts it (time loss and departure delay):
                vehicles × (1 − speed / limit), plus the vehicles waiting to enter
                the network on their edges, over capacity
``throughput``  vehicles that crossed the stop lines in the interval, per second
                and approach lane (loops at the stop lines count them)
==============  ===================================================================
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from twin_traffic.errors import TwinTrafficError
from twin_traffic.network import Link, Network, programme_min_green
from twin_traffic.roads import Reach, road_stretches, signal_neighbours
from twin_traffic.sensors import Detector, write_detectors
from twin_traffic.signals import GREEN_CHARS, PhaseEngine, dominated_greens
from twin_traffic.sim import (
    LAST_STEP_MEAN_SPEED,
    LAST_STEP_OCCUPANCY,
    LAST_STEP_VEHICLE_HALTING_NUMBER,
    LAST_STEP_VEHICLE_NUMBER,
    VAR_INTERVAL_NUMBER,
    VAR_WAITING_TIME,
    Reader,
    Simulation,
)

VEHICLE_SPACE = 7.5  # metres a queued car takes: SUMO's default length 5 m + gap 2.5 m
DEFAULT_OBSERVATION = ("phase", "density", "queue")
DEFAULT_REWARD = "wait"
DEFAULT_SENSOR_RANGE = 50.0

# Lane variables, in the column order of Snapshot.lanes.
_LANE_VARIABLES = {
    "vehicles": LAST_STEP_VEHICLE_NUMBER,
    "halting": LAST_STEP_VEHICLE_HALTING_NUMBER,
    "speed": LAST_STEP_MEAN_SPEED,
    "waiting": VAR_WAITING_TIME,
}
# The rows of the block a snapshot's per-lane arrays live in: the lane variables, then
# the lane-area detectors' (occupancy, halting, vehicles), the loops' and the pending.
_BLOCK_ROWS = {
    name: row
    for row, name in enumerate((*_LANE_VARIABLES, "sensor_occupancy", "sensor_halting",
                                "sensor_vehicles", "crossed", "pending"))
}  # fmt: skip
_SENSOR_ROWS = np.array(
    [_BLOCK_ROWS[name] for name in ("sensor_occupancy", "sensor_halting", "sensor_vehicles")]
)


@dataclass(frozen=True)
class SignalLayout:
    """A signal's lanes and movements as indices into the observer's lane arrays."""

    id: str
    num_greens: int
    in_lanes: np.ndarray
    movement_in: np.ndarray
    movement_out: np.ndarray
    # green_movements[g, m]: movement m has green in green g.
    green_movements: np.ndarray
    # Per controlled link (signal link order): its incoming and outgoing lane, and the
    # share of its incoming lane's links it is (so a lane counts once over its links).
    link_in: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    link_out: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    link_share: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # protected[g, k] / permissive[g, k]: link k has 'G' / 'g' in green g.
    protected: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    permissive: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    # maximal[g]: no other green serves all of green g's links at least as well.
    maximal: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # Vehicles each link's outgoing lane itself holds when full (spill-back test).
    exit_capacity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # The programme's own minimum per green (its phases' minDur over a stage), s.
    min_green: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @cached_property
    def served(self) -> np.ndarray:
        """``(greens, links)``: 1.0 where a link has green (protected or permissive)."""
        return (self.protected | self.permissive).astype(float)


@dataclass
class Snapshot:
    """Lane (and detector) state after a step: arrays indexed like ``Observer.lanes``."""

    time: float
    vehicles: np.ndarray
    halting: np.ndarray
    speed: np.ndarray
    waiting: np.ndarray
    sensor_occupancy: np.ndarray
    sensor_halting: np.ndarray
    crossed: np.ndarray
    # Vehicles within ``sensor_range`` of the stop line (lane-area detectors).
    sensor_vehicles: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Vehicles waiting to be inserted on the lane's edge, shared over its approach lanes:
    # a queue that reaches back past the network's entry, invisible to lane counts.
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Vehicles on each lane itself, without its road stretch (the spill-back test).
    lane_vehicles: np.ndarray = field(default_factory=lambda: np.zeros(0))


ObservationFn = Callable[["Observer", SignalLayout, Snapshot, PhaseEngine], np.ndarray]
# Every signal's block at once, concatenated in signal order.
ObservationBatchFn = Callable[["Observer", Snapshot, Sequence[PhaseEngine]], np.ndarray]
RewardFn = Callable[["Observer", SignalLayout, Snapshot, Snapshot], float]
# Every signal's reward at once, in signal order.
RewardBatchFn = Callable[["Observer", Snapshot, Snapshot], np.ndarray]


@dataclass(frozen=True)
class ObservationFeature:
    """A named observation block: its size, lower bound and how to compute it, for one
    signal (``compute``, the definition) and, where a feature has one, for every signal
    in one NumPy pass (``batch``, equal to ``compute`` signal by signal)."""

    size: Callable[[Observer, SignalLayout], int]
    low: float
    needs: frozenset[str]
    compute: ObservationFn
    batch: ObservationBatchFn | None = None


@dataclass(frozen=True)
class Stacked:
    """The layouts of an observer's signals side by side: their per-lane and
    per-movement index arrays concatenated in signal order, for batched features."""

    in_lanes: np.ndarray
    # Where each signal's lanes start in ``in_lanes`` (segments for ``np.add.reduceat``).
    in_starts: np.ndarray
    in_capacity: np.ndarray
    in_max_speed: np.ndarray
    in_sensor_capacity: np.ndarray
    movement_in: np.ndarray
    movement_out: np.ndarray
    # The distinct lanes of each signal's movements' entries and exits, and their starts.
    unique_in: np.ndarray
    unique_in_starts: np.ndarray
    unique_out: np.ndarray
    unique_out_starts: np.ndarray
    # Per signal: the capacity of its approaches, its number of approach lanes, and
    # where its ``phase`` block starts and ends in the concatenated ``phase`` blocks.
    approach_capacity: np.ndarray
    lane_count: np.ndarray
    phase_starts: tuple[int, ...]
    phase_ends: tuple[int, ...]
    phase_size: int
    # Every signal has approach lanes and movements (``reduceat`` misreads an empty
    # segment: the batched rewards are then computed signal by signal).
    segmented: bool
    # The signal of each entry of ``in_lanes``.
    in_signal: np.ndarray


def stack_layouts(
    layouts: Sequence[SignalLayout], capacity: np.ndarray, max_speed: np.ndarray,
    sensor_capacity: np.ndarray,
) -> Stacked:  # fmt: skip
    """Concatenate the layouts' index arrays (see :class:`Stacked`)."""

    def joined(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        sizes = [len(a) for a in arrays]
        starts = (
            np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int) if sizes else np.zeros(0, int)
        )
        return np.concatenate(arrays).astype(int) if arrays else np.zeros(0, int), starts

    in_lanes, in_starts = joined([layout.in_lanes for layout in layouts])
    unique_in, unique_in_starts = joined([np.unique(layout.movement_in) for layout in layouts])
    unique_out, unique_out_starts = joined([np.unique(layout.movement_out) for layout in layouts])
    movement_in, _ = joined([layout.movement_in for layout in layouts])
    movement_out, _ = joined([layout.movement_out for layout in layouts])
    phase_ends = tuple(itertools.accumulate(layout.num_greens + 2 for layout in layouts))
    phase_starts = (0, *phase_ends[:-1]) if phase_ends else ()
    return Stacked(
        in_lanes=in_lanes,
        in_starts=in_starts,
        in_capacity=capacity[in_lanes],
        in_max_speed=max_speed[in_lanes],
        in_sensor_capacity=sensor_capacity[in_lanes],
        movement_in=movement_in,
        movement_out=movement_out,
        unique_in=unique_in,
        unique_in_starts=unique_in_starts,
        unique_out=unique_out,
        unique_out_starts=unique_out_starts,
        approach_capacity=np.array(
            [float(capacity[layout.in_lanes].sum()) for layout in layouts], dtype=float
        ),
        lane_count=np.array([len(layout.in_lanes) for layout in layouts], dtype=int),
        phase_starts=phase_starts,
        phase_ends=phase_ends,
        phase_size=phase_ends[-1] if phase_ends else 0,
        segmented=all(len(layout.in_lanes) and len(layout.movement_in) for layout in layouts),
        in_signal=np.repeat(np.arange(len(layouts)), [len(layout.in_lanes) for layout in layouts]),
    )


def _phase(obs: Observer, layout: SignalLayout, snap: Snapshot, engine: PhaseEngine) -> np.ndarray:
    block = np.zeros(layout.num_greens + 2)
    block[engine.current_green] = 1.0
    block[-2] = float(engine.in_transition)
    block[-1] = min(engine.time_in_green / obs.max_green, 1.0)
    return block


def _density(obs: Observer, layout: SignalLayout, snap: Snapshot, _: PhaseEngine) -> np.ndarray:
    lanes = layout.in_lanes
    return np.minimum(snap.vehicles[lanes] / obs.capacity[lanes], 1.0)


def _queue(obs: Observer, layout: SignalLayout, snap: Snapshot, _: PhaseEngine) -> np.ndarray:
    lanes = layout.in_lanes
    return np.minimum(snap.halting[lanes] / obs.capacity[lanes], 1.0)


def _pressure(obs: Observer, layout: SignalLayout, snap: Snapshot, _: PhaseEngine) -> np.ndarray:
    density = np.minimum(snap.vehicles / obs.capacity, 1.0)
    return density[layout.movement_in] - density[layout.movement_out]


def _speed(obs: Observer, layout: SignalLayout, snap: Snapshot, _: PhaseEngine) -> np.ndarray:
    lanes = layout.in_lanes
    ratio = snap.speed[lanes] / obs.max_speed[lanes]
    # SUMO reports the speed limit for an empty lane; clip the rest (speedFactor > 1).
    return np.clip(np.where(snap.vehicles[lanes] > 0, ratio, 1.0), 0.0, 1.0)


def _sensor(obs: Observer, layout: SignalLayout, snap: Snapshot, _: PhaseEngine) -> np.ndarray:
    lanes = layout.in_lanes
    occupancy = snap.sensor_occupancy[lanes] / 100.0
    halting = np.minimum(snap.sensor_halting[lanes] / obs.sensor_capacity[lanes], 1.0)
    return np.stack([occupancy, halting], axis=1).ravel()


@dataclass(frozen=True)
class PaddedLinks:
    """Every signal's controlled links side by side, ``(signals, links)``, padded to the
    most links of any signal, and its greens to ``greens`` (the observer's
    ``max_greens``), for the per-green features of all signals at once. A padding link
    is served by no green, carries no share of its lane and has an exit that never
    fills; a padding green serves no link."""

    link_in: np.ndarray
    link_out: np.ndarray
    share: np.ndarray
    exit_capacity: np.ndarray
    # (signals, greens, links): 1.0 / True where the green serves the link.
    served: np.ndarray
    green: np.ndarray
    rows: np.ndarray


def pad_links(layouts: Sequence[SignalLayout], greens: int) -> PaddedLinks:
    """The layouts' links, padded (see :class:`PaddedLinks`)."""
    counts = [len(layout.link_in) for layout in layouts]
    shape = (len(layouts), max(counts, default=0))
    link_in, link_out = np.zeros(shape, dtype=int), np.zeros(shape, dtype=int)
    share, exit_capacity = np.zeros(shape), np.full(shape, np.inf)
    green = np.zeros((len(layouts), greens, shape[1]), dtype=bool)
    for i, layout in enumerate(layouts):
        n = counts[i]
        link_in[i, :n], link_out[i, :n] = layout.link_in, layout.link_out
        share[i, :n], exit_capacity[i, :n] = layout.link_share, layout.exit_capacity
        green[i, : layout.num_greens, :n] = layout.protected | layout.permissive
    return PaddedLinks(link_in, link_out, share, exit_capacity, green.astype(float), green,
                       np.arange(len(layouts)))  # fmt: skip


def _per_green(padded: PaddedLinks, per_link: np.ndarray) -> np.ndarray:
    """``(signals, greens)``: the sum of ``per_link`` over the links each green serves."""
    # einsum, not a matrix product: a BLAS call can wake threads that spin beside SUMO.
    return np.einsum("sgl,sl->sg", padded.served, per_link)


def _green_pressures_all(
    padded: PaddedLinks, counts: np.ndarray, open_links: np.ndarray
) -> np.ndarray:
    """``(signals, greens)``: :func:`green_pressures` of every signal."""
    raw = padded.share * (counts[padded.link_in] - counts[padded.link_out])
    return _per_green(padded, np.maximum(raw, 0.0) * open_links)


def _exit_open_all(padded: PaddedLinks, snap: Snapshot) -> np.ndarray:
    """``(signals, links)``: :func:`exit_open` of every signal."""
    full = _on_exit(snap)[padded.link_out] >= SPILLBACK * padded.exit_capacity
    return (~full).astype(float)


def _phase_all(obs: Observer, snap: Snapshot, engines: Sequence[PhaseEngine]) -> np.ndarray:
    # A few values per signal: plain Python beats a dozen small NumPy calls here.
    stacked = obs.stacked
    block = [0.0] * stacked.phase_size
    for start, end, engine in zip(stacked.phase_starts, stacked.phase_ends, engines, strict=True):
        block[start + engine.current_green] = 1.0
        block[end - 2] = float(engine.in_transition)
        block[end - 1] = min(engine.time_in_green / obs.max_green, 1.0)
    return np.array(block)


def _density_all(obs: Observer, snap: Snapshot, _: Sequence[PhaseEngine]) -> np.ndarray:
    stacked = obs.stacked
    return np.minimum(snap.vehicles[stacked.in_lanes] / stacked.in_capacity, 1.0)


def _queue_all(obs: Observer, snap: Snapshot, _: Sequence[PhaseEngine]) -> np.ndarray:
    stacked = obs.stacked
    return np.minimum(snap.halting[stacked.in_lanes] / stacked.in_capacity, 1.0)


def _pressure_all(obs: Observer, snap: Snapshot, _: Sequence[PhaseEngine]) -> np.ndarray:
    density = np.minimum(snap.vehicles / obs.capacity, 1.0)
    return density[obs.stacked.movement_in] - density[obs.stacked.movement_out]


def _speed_all(obs: Observer, snap: Snapshot, _: Sequence[PhaseEngine]) -> np.ndarray:
    lanes = obs.stacked.in_lanes
    ratio = snap.speed[lanes] / obs.stacked.in_max_speed
    return np.clip(np.where(snap.vehicles[lanes] > 0, ratio, 1.0), 0.0, 1.0)


def _sensor_all(obs: Observer, snap: Snapshot, _: Sequence[PhaseEngine]) -> np.ndarray:
    lanes = obs.stacked.in_lanes
    occupancy = snap.sensor_occupancy[lanes] / 100.0
    halting = np.minimum(snap.sensor_halting[lanes] / obs.stacked.in_sensor_capacity, 1.0)
    return np.stack([occupancy, halting], axis=1).ravel()


GREEN_FEATURES = 5  # values per green in the ``greens`` block
PRESSURE_SCALE = 10.0  # vehicles at which a squashed pressure reaches 0.5
TRANSITION_SCALE = 10.0  # seconds of transition that read as 1
SPILLBACK = 0.9  # share of an exit lane's capacity at which its links lose their claim


def squash(x: np.ndarray) -> np.ndarray:
    """``x / (x + PRESSURE_SCALE)`` for ``x >= 0``: bounded, and it keeps the order of
    greens' pressures however busy the junction (a clip would tie them)."""
    positive = np.maximum(x, 0.0)
    return positive / (positive + PRESSURE_SCALE)


def exit_open(layout: SignalLayout, snap: Snapshot, spillback: float = SPILLBACK) -> np.ndarray:
    """Per link: 1.0 where its exit lane has room, 0.0 where it holds ``spillback`` × its
    capacity (serving the link would only block the junction)."""
    full = _on_exit(snap)[layout.link_out] >= spillback * layout.exit_capacity
    return (~full).astype(float)


def _on_exit(snap: Snapshot) -> np.ndarray:
    """Vehicles on each lane itself, which the spill-back test reads on exit lanes."""
    return snap.lane_vehicles if len(snap.lane_vehicles) else snap.vehicles


def link_pressure(
    layout: SignalLayout,
    counts: np.ndarray,
    open_links: np.ndarray,
    exits: np.ndarray | None = None,
) -> np.ndarray:
    """Per link: ``share × (counts[in] − exits[out])``, clipped at 0, 0 where blocked
    (``exits``: ``counts`` when not given).

    A lane feeding several links counts once over them (each link carries its share).
    """
    downstream = counts if exits is None else exits
    raw = layout.link_share * (counts[layout.link_in] - downstream[layout.link_out])
    return np.maximum(raw, 0.0) * open_links


def green_pressures(
    layout: SignalLayout,
    counts: np.ndarray,
    open_links: np.ndarray,
    exits: np.ndarray | None = None,
) -> np.ndarray:
    """Pressure of each green: the sum of its links' pressures, permissive links counted
    as protected ones — the movement-level pressure of max-pressure control (Varaiya
    2013), see :mod:`twin_traffic.controllers.max_pressure`."""
    return layout.served @ link_pressure(layout, counts, open_links, exits)


def moving_in_range(snap: Snapshot) -> np.ndarray:
    """Per lane: vehicles moving (not halting) within detector range of the stop line."""
    return np.maximum(snap.sensor_vehicles - snap.sensor_halting, 0.0)


def queued_or_arriving(snap: Snapshot) -> np.ndarray:
    """Per lane: its queue (halting vehicles, over its road stretch where ``reach`` is
    set, plus those waiting to enter) and the vehicles moving within detector range of
    the stop line, which join the queue or cross within seconds. A vehicle still far
    up the road is neither."""
    return with_pending(snap.halting + moving_in_range(snap), snap)


MAX_WAIT = 120.0  # seconds without green that a waiting movement tolerates (as the controllers)


def served_now(layout: SignalLayout, engine: PhaseEngine) -> np.ndarray:
    """Per link: True where the signal shows it green now (not while in a transition)."""
    if engine.in_transition:
        return np.zeros(len(layout.link_in), dtype=bool)
    return layout.protected[engine.current_green] | layout.permissive[engine.current_green]


def unserved_since(
    since: np.ndarray | None, layout: SignalLayout, snap: Snapshot, engine: PhaseEngine
) -> np.ndarray:
    """Per link: the time since which its lane has had demand (halting or waiting to
    enter) without green — ``snap.time`` where it is served or has none. ``since`` is
    the previous decision's answer (``None`` at the start)."""
    queued = with_pending(snap.halting, snap)[layout.link_in]
    served = served_now(layout, engine)
    if since is None or len(since) != len(queued):
        since = np.full(len(queued), snap.time)
    return np.where(served | (queued <= 0), snap.time, since)


def discharged_since(
    last: tuple[np.ndarray, np.ndarray] | None,
    layout: SignalLayout,
    snap: Snapshot,
    engine: PhaseEngine,
) -> tuple[np.ndarray, np.ndarray]:
    """Per link: its lane's stop-line count (``snap.crossed``) and the time since which its
    lane, green all along, has let no vehicle over its stop line — ``snap.time`` where it
    is not green (or its signal is in a transition) or a vehicle crossed since ``last``,
    the previous decision's answer (``None`` at the start)."""
    crossed = snap.crossed[layout.link_in]
    served = served_now(layout, engine)
    if last is None or len(last[0]) != len(crossed):
        return crossed, np.full(len(crossed), snap.time)
    counted, since = last
    return crossed, np.where(~served | (crossed > counted), snap.time, since)


def with_pending(values: np.ndarray, snap: Snapshot) -> np.ndarray:
    """Per-lane ``values`` plus the vehicles waiting to enter on the lane's edge (where
    they are read): a queue that reaches back past the network's entry counts."""
    return values + snap.pending if len(snap.pending) else values


def _greens(obs: Observer, layout: SignalLayout, snap: Snapshot, engine: PhaseEngine) -> np.ndarray:
    block = np.zeros((obs.max_greens, GREEN_FEATURES))
    n = layout.num_greens
    block[engine.current_green, 0] = 1.0
    open_links = exit_open(layout, snap)
    block[:n, 1] = squash(green_pressures(layout, with_pending(snap.vehicles, snap), open_links))
    block[:n, 2] = squash(green_pressures(layout, with_pending(snap.halting, snap), open_links))
    block[:n, 3] = obs.switch_seconds(layout, engine)[engine.current_green] / TRANSITION_SCALE
    waited = snap.time - obs.waiting_since(layout, snap, engine)
    block[:n, 4] = (layout.served * waited).max(axis=1, initial=0.0) / MAX_WAIT
    return np.minimum(block, 1.0).ravel()


def running_vehicles(layout: SignalLayout, snap: Snapshot, open_links: np.ndarray) -> np.ndarray:
    """Per green: moving vehicles within detector range on the lanes its open links
    serve — the *effective running vehicles* of Advanced-MP (Zhang et al. 2022)."""
    per_link = layout.link_share * moving_in_range(snap)[layout.link_in] * open_links
    return layout.served @ per_link


def _running(
    obs: Observer, layout: SignalLayout, snap: Snapshot, engine: PhaseEngine
) -> np.ndarray:
    block = np.zeros(obs.max_greens)
    block[: layout.num_greens] = squash(running_vehicles(layout, snap, exit_open(layout, snap)))
    return block


def _timing(obs: Observer, layout: SignalLayout, snap: Snapshot, engine: PhaseEngine) -> np.ndarray:
    current = engine.current_green
    minimum = max(engine.timing.min_green, float(layout.min_green[current]))
    served = engine.time_in_green >= minimum and not engine.in_transition
    return np.array([float(engine.in_transition), min(engine.time_in_green / obs.max_green, 1.0),
                     float(served)])  # fmt: skip


def _greens_all(obs: Observer, snap: Snapshot, engines: Sequence[PhaseEngine]) -> np.ndarray:
    padded = obs.padded
    current = np.array([engine.current_green for engine in engines], dtype=int)
    block = np.zeros((len(engines), obs.max_greens, GREEN_FEATURES))
    block[padded.rows, current, 0] = 1.0
    open_links = _exit_open_all(padded, snap)
    for column, counts in ((1, snap.vehicles), (2, snap.halting)):
        pressures = _green_pressures_all(padded, with_pending(counts, snap), open_links)
        block[:, :, column] = squash(pressures)
    block[:, :, 3] = obs.switch_table(engines)[padded.rows, current] / TRANSITION_SCALE
    waited = snap.time - obs.waiting_since_all(snap, engines, current)
    block[:, :, 4] = (padded.served * waited[:, None, :]).max(axis=2, initial=0.0) / MAX_WAIT
    return np.minimum(block, 1.0).ravel()


def _running_all(obs: Observer, snap: Snapshot, engines: Sequence[PhaseEngine]) -> np.ndarray:
    padded = obs.padded
    per_link = padded.share * moving_in_range(snap)[padded.link_in] * _exit_open_all(padded, snap)
    return squash(_per_green(padded, per_link)).ravel()


def _timing_all(obs: Observer, snap: Snapshot, engines: Sequence[PhaseEngine]) -> np.ndarray:
    # Three values per signal: plain Python beats NumPy calls here (as ``_phase_all``).
    values: list[float] = []
    for layout, engine in zip(obs.layouts, engines, strict=True):
        minimum = max(engine.timing.min_green, float(layout.min_green[engine.current_green]))
        in_transition = engine.in_transition
        served = engine.time_in_green >= minimum and not in_transition
        values += (float(in_transition), min(engine.time_in_green / obs.max_green, 1.0),
                   float(served))  # fmt: skip
    return np.array(values)


OBSERVATIONS: dict[str, ObservationFeature] = {
    "phase": ObservationFeature(
        lambda _, s: s.num_greens + 2, 0.0, frozenset(), _phase, _phase_all
    ),
    "density": ObservationFeature(
        lambda _, s: len(s.in_lanes), 0.0, frozenset({"vehicles"}), _density, _density_all
    ),
    "queue": ObservationFeature(
        lambda _, s: len(s.in_lanes), 0.0, frozenset({"halting"}), _queue, _queue_all
    ),
    "pressure": ObservationFeature(
        lambda _, s: len(s.movement_in),
        -1.0,
        frozenset({"vehicles", "outgoing"}),
        _pressure,
        _pressure_all,
    ),
    "speed": ObservationFeature(
        lambda _, s: len(s.in_lanes), 0.0, frozenset({"speed", "vehicles"}), _speed, _speed_all
    ),
    "sensor": ObservationFeature(
        lambda _, s: 2 * len(s.in_lanes), 0.0, frozenset({"sensor"}), _sensor, _sensor_all
    ),
    "greens": ObservationFeature(
        lambda o, _: o.max_greens * GREEN_FEATURES,
        0.0,
        frozenset({"vehicles", "halting", "outgoing", "pending"}),
        _greens,
        _greens_all,
    ),
    "running": ObservationFeature(
        lambda o, _: o.max_greens, 0.0, frozenset({"sensor"}), _running, _running_all
    ),
    "timing": ObservationFeature(lambda _, s: 3, 0.0, frozenset(), _timing, _timing_all),
}


def _approach_capacity(obs: Observer, layout: SignalLayout) -> float:
    return float(obs.capacity[layout.in_lanes].sum())


def _wait(obs: Observer, layout: SignalLayout, snap: Snapshot, before: Snapshot) -> float:
    lanes = layout.in_lanes
    change = snap.waiting[lanes].sum() - before.waiting[lanes].sum()
    elapsed = max(snap.time - before.time, 1e-9)
    return float(-change / (elapsed * _approach_capacity(obs, layout)))


def _entering(layout: SignalLayout, snap: Snapshot) -> float:
    """Vehicles waiting to enter the network on the signal's approach edges."""
    return float(snap.pending[layout.in_lanes].sum()) if len(snap.pending) else 0.0


def _queue_reward(obs: Observer, layout: SignalLayout, snap: Snapshot, _: Snapshot) -> float:
    queued = snap.halting[layout.in_lanes].sum() + _entering(layout, snap)
    return float(-queued / _approach_capacity(obs, layout))


def _pressure_reward(obs: Observer, layout: SignalLayout, snap: Snapshot, _: Snapshot) -> float:
    inflow = snap.vehicles[np.unique(layout.movement_in)].sum()
    outflow = snap.vehicles[np.unique(layout.movement_out)].sum()
    return float(-abs(inflow - outflow) / _approach_capacity(obs, layout))


def _delay_reward(obs: Observer, layout: SignalLayout, snap: Snapshot, _: Snapshot) -> float:
    lanes = layout.in_lanes
    slowdown = np.clip(1.0 - snap.speed[lanes] / obs.max_speed[lanes], 0.0, 1.0)
    rate = (snap.vehicles[lanes] * slowdown).sum() + _entering(layout, snap)
    return float(-rate / _approach_capacity(obs, layout))


def _throughput(obs: Observer, layout: SignalLayout, snap: Snapshot, before: Snapshot) -> float:
    lanes = layout.in_lanes
    crossed = snap.crossed[lanes].sum() - before.crossed[lanes].sum()
    elapsed = max(snap.time - before.time, 1e-9)
    return float(crossed / (elapsed * len(lanes)))


def _segment_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of ``values`` over the segments beginning at ``starts`` (each non-empty)."""
    return np.add.reduceat(values, starts)


def _entering_all(obs: Observer, snap: Snapshot) -> np.ndarray | float:
    if not len(snap.pending):
        return 0.0
    return _approach_sums(obs, snap, "pending")


def _approach_sums(obs: Observer, snap: Snapshot, name: str) -> np.ndarray:
    """Per signal, the sum of the snapshot's ``name`` over the signal's approaches;
    kept for the last snapshot, which is the next decision's ``before``."""
    cached = obs.approach_sums_of.get(name)
    if cached is not None and cached[0] is snap:
        return cached[1]
    stacked = obs.stacked
    # bincount, not a matrix product: a BLAS call can wake threads that spin beside SUMO.
    sums = np.bincount(stacked.in_signal, getattr(snap, name)[stacked.in_lanes],
                       len(stacked.lane_count))  # fmt: skip
    obs.approach_sums_of[name] = (snap, sums)
    return sums


def _elapsed(snap: Snapshot, before: Snapshot) -> float:
    return max(snap.time - before.time, 1e-9)


def _wait_all(obs: Observer, snap: Snapshot, before: Snapshot) -> np.ndarray:
    fall = _approach_sums(obs, before, "waiting") - _approach_sums(obs, snap, "waiting")
    return fall / (_elapsed(snap, before) * obs.stacked.approach_capacity)


def _queue_reward_all(obs: Observer, snap: Snapshot, _: Snapshot) -> np.ndarray:
    queued = _approach_sums(obs, snap, "halting") + _entering_all(obs, snap)
    return -queued / obs.stacked.approach_capacity


def _pressure_reward_all(obs: Observer, snap: Snapshot, _: Snapshot) -> np.ndarray:
    stacked = obs.stacked
    inflow = _segment_sums(snap.vehicles[stacked.unique_in], stacked.unique_in_starts)
    outflow = _segment_sums(snap.vehicles[stacked.unique_out], stacked.unique_out_starts)
    return -np.abs(inflow - outflow) / stacked.approach_capacity


def _delay_reward_all(obs: Observer, snap: Snapshot, _: Snapshot) -> np.ndarray:
    stacked = obs.stacked
    lanes = stacked.in_lanes
    slowdown = np.clip(1.0 - snap.speed[lanes] / stacked.in_max_speed, 0.0, 1.0)
    moving = _segment_sums(snap.vehicles[lanes] * slowdown, stacked.in_starts)
    return -(moving + _entering_all(obs, snap)) / stacked.approach_capacity


def _throughput_all(obs: Observer, snap: Snapshot, before: Snapshot) -> np.ndarray:
    crossed = _approach_sums(obs, snap, "crossed") - _approach_sums(obs, before, "crossed")
    return crossed / (_elapsed(snap, before) * obs.stacked.lane_count)


# Every reward for all signals at once, in one NumPy pass (equal to REWARDS' per-signal
# definitions up to the order of summation).
REWARD_BATCHES: dict[str, RewardBatchFn] = {
    "wait": _wait_all,
    "queue": _queue_reward_all,
    "pressure": _pressure_reward_all,
    "delay": _delay_reward_all,
    "throughput": _throughput_all,
}

REWARDS: dict[str, tuple[frozenset[str], RewardFn]] = {
    "wait": (frozenset({"waiting"}), _wait),
    "queue": (frozenset({"halting", "pending"}), _queue_reward),
    "pressure": (frozenset({"vehicles", "outgoing"}), _pressure_reward),
    "delay": (frozenset({"vehicles", "speed", "pending"}), _delay_reward),
    "throughput": (frozenset({"crossed"}), _throughput),
}


def check_feature_names(observation: Sequence[str], reward: str) -> None:
    """Raise a clear error for unknown observation or reward names."""
    for name in observation:
        if name not in OBSERVATIONS:
            raise TwinTrafficError(
                f"unknown observation '{name}'; choose from: {', '.join(OBSERVATIONS)}"
            )
    if reward not in REWARDS:
        raise TwinTrafficError(f"unknown reward '{reward}'; choose from: {', '.join(REWARDS)}")


class Observer:
    """Reads what the chosen features need about a set of signals, once per decision.

    The lanes are the incoming and outgoing lanes of the signals; ``sensor`` and
    ``throughput`` add detectors, written by :meth:`detector_file` and loaded with the
    scenario. ``extra_needs`` names lane variables to read besides the features' own
    (``vehicles``, ``halting``, ``speed``, ``waiting``; ``outgoing`` reads vehicles on
    the outgoing lanes too). ``reach`` > 0 extends each approach (exit) lane's vehicles,
    halting vehicles, capacity and vehicles waiting to enter over the road within that
    many metres upstream (downstream) through junctions without signals (see
    :mod:`twin_traffic.roads`). ``neighbour_weight`` > 0 adds that share of each
    neighbouring signal's reward to a signal's own (see :meth:`rewards`).
    """

    def __init__(
        self,
        network: Network,
        signal_ids: Sequence[str],
        observation: Sequence[str] = DEFAULT_OBSERVATION,
        reward: str = DEFAULT_REWARD,
        max_green: float = 60.0,
        sensor_range: float = DEFAULT_SENSOR_RANGE,
        extra_needs: frozenset[str] = frozenset(),
        reach: float = 0.0,
        neighbour_weight: float = 0.0,
    ) -> None:
        check_feature_names(observation, reward)
        if not 0.0 <= neighbour_weight <= 1.0:
            raise TwinTrafficError(
                f"reward_neighbours must be from 0 to 1 (a share of each neighbour's "
                f"reward), got {neighbour_weight!r}"
            )
        self.observation = tuple(observation)
        self.reward = reward
        self.max_green = max_green
        self.sensor_range = sensor_range
        lights = [network.traffic_lights[tls] for tls in signal_ids]
        own = tuple(
            dict.fromkeys(
                lane for light in lights for lane in (*light.incoming_lanes, *light.outgoing_lanes)
            )
        )
        stretches = road_stretches(
            [lane for light in lights for lane in light.incoming_lanes],
            [lane for light in lights for lane in light.outgoing_lanes],
            network.free_successors,
            network.lane_lengths,
            reach,
        )
        # The lanes a road stretch adds come after the signals' own lanes.
        own_set = set(own)
        self.lanes = own + tuple(
            dict.fromkeys(o for found in stretches.values() for o in found if o not in own_set)
        )
        index = {lane: i for i, lane in enumerate(self.lanes)}
        self.reach = Reach(
            np.array([index[lane] for lane, found in stretches.items() for _ in found], dtype=int),
            np.array([index[o] for found in stretches.values() for o in found], dtype=int),
            np.array([w for found in stretches.values() for w in found.values()]),
        )
        self._stretch_rows = np.arange(len(own), len(self.lanes))
        lengths = np.array([network.lane_lengths[lane] for lane in self.lanes])
        self.lane_capacity = np.maximum(lengths / VEHICLE_SPACE, 1.0)
        self.capacity = self.reach.extend(self.lane_capacity)
        self.max_speed = np.array([network.lane_speeds[lane] for lane in self.lanes])
        self.sensor_capacity = np.maximum(np.minimum(lengths, sensor_range) / VEHICLE_SPACE, 1.0)
        self.layouts = tuple(_layout(light, index, self.lane_capacity) for light in lights)
        self.neighbour_weight = float(neighbour_weight)
        # The road search runs only for a reward that uses it (controllers never do).
        neighbours = (
            signal_neighbours(
                [light.incoming_lanes for light in lights],
                [light.outgoing_lanes for light in lights],
                network.free_successors,
            )
            if self.neighbour_weight
            else []
        )
        # Pairs (signal, neighbour): each signal's reward gathers its neighbours' ones.
        self._neighbour_pairs = (
            np.array([i for i, found in enumerate(neighbours) for _ in found], dtype=int),
            np.array([j for found in neighbours for j in sorted(found)], dtype=int),
        )
        self.max_greens: int = max((layout.num_greens for layout in self.layouts), default=0)
        self.stacked = stack_layouts(
            self.layouts, self.capacity, self.max_speed, self.sensor_capacity
        )
        self._order, self._bounds = self._interleaving()
        # The last snapshot's per-signal sums, by variable (see ``_approach_sums``).
        self.approach_sums_of: dict[str, tuple[Snapshot, np.ndarray]] = {}
        self._switch_seconds: dict[str, np.ndarray] = {}
        self._switch_table: np.ndarray | None = None
        self.padded = pad_links(self.layouts, self.max_greens)
        self._signal_index = {layout.id: i for i, layout in enumerate(self.layouts)}
        # Per link, since when its lane has waited for green, and per signal the time of
        # that answer (NaN: not yet asked in this run); see ``waiting_since``.
        self._since = np.zeros(self.padded.link_in.shape)
        self._since_time = np.full(len(self.layouts), np.nan)
        self.needs = frozenset().union(
            *(OBSERVATIONS[name].needs for name in self.observation),
            REWARDS[reward][0],
            extra_needs,
        )
        # Each lane reader, with the (lane rows, block rows) its values go to.
        self._lane_readers: list[tuple[Reader, tuple[np.ndarray, np.ndarray]]] = []
        self._sensor_reader: Reader | None = None
        self._loop_reader: Reader | None = None
        self._pending: PendingReader | None = None
        self._pending_rows = np.zeros(0, dtype=int)

    # -- detectors -------------------------------------------------------------------------

    @property
    def needs_detectors(self) -> bool:
        """True when the features read detectors that must be loaded with the scenario."""
        return bool(self.needs & {"sensor", "crossed"})

    @property
    def approach_lanes(self) -> list[str]:
        """The incoming lanes of the signals, in lane-array order."""
        incoming = {int(i) for layout in self.layouts for i in layout.in_lanes}
        return [lane for i, lane in enumerate(self.lanes) if i in incoming]

    def detector_file(self, path: Path, lane_lengths: dict[str, float]) -> Path:
        """Write lane-area detectors over the last ``sensor_range`` m of each approach lane
        and induction loops at its stop line (their own ids, beside any sensors the
        scenario already has)."""
        detectors = []
        for lane in self.approach_lanes:
            length = lane_lengths[lane]
            span = min(self.sensor_range, length - 0.1)
            detectors.append(Detector(f"tt_e2_{lane}", "e2", lane, length - span, span))
            detectors.append(Detector(f"tt_e1_{lane}", "e1", lane, max(length - 1.0, 0.0)))
        # One interval for the whole run: the loops' counts only ever grow.
        return write_detectors(detectors, path, period=86400)

    # -- reading ---------------------------------------------------------------------------

    def attach(self, sim: Simulation) -> None:
        """Prepare the readers on a started simulation (and forget the last run's waits).

        Each lane variable is read only where a feature uses it: on the approaches, and
        vehicles also on the outgoing lanes when a pressure is computed.
        """
        self._since_time[:] = np.nan
        approaches = self.approach_lanes
        self._approach_rows = np.array([self.lanes.index(lane) for lane in approaches], dtype=int)
        all_rows = np.arange(len(self.lanes))
        # One reader per set of lanes (with TraCI, one round trip each).
        everywhere = ("vehicles",) if {"vehicles", "outgoing"} <= self.needs else ()
        approach = tuple(n for n in _LANE_VARIABLES if n in self.needs and n not in everywhere)
        self._lane_readers = []
        groups: list[tuple[tuple[str, ...], np.ndarray]] = [(everywhere, all_rows)]
        if len(self._stretch_rows):
            # Movements see their road stretch: its lanes' vehicles and halting vehicles too.
            stretched = tuple(n for n in approach if n in ("vehicles", "halting"))
            approach = tuple(n for n in approach if n not in stretched)
            groups.append((stretched, np.union1d(self._approach_rows, self._stretch_rows)))
        groups.append((approach, self._approach_rows))
        for names, rows in groups:
            if names:
                lanes = [self.lanes[i] for i in rows]
                reader = sim.lane_reader(lanes, [_LANE_VARIABLES[n] for n in names])
                # Where each value the reader returns goes in a snapshot's block of rows
                # (see ``read``): one NumPy assignment per read.
                variables = np.array([_BLOCK_ROWS[name] for name in names], dtype=int)
                self._lane_readers.append((reader, (rows[:, None], variables[None, :])))
        self._sensor_reader = None
        self._loop_reader = None
        if "sensor" in self.needs:
            self._sensor_reader = sim.detector_reader(
                "lanearea",
                [f"tt_e2_{lane}" for lane in approaches],
                [LAST_STEP_OCCUPANCY, LAST_STEP_VEHICLE_HALTING_NUMBER, LAST_STEP_VEHICLE_NUMBER],
            )
        self._pending = None
        if "pending" in self.needs:
            rows = np.union1d(self._approach_rows, self._stretch_rows)
            self._pending = PendingReader(sim, [self.lanes[i] for i in rows])
            self._pending_rows = rows
        if "crossed" in self.needs:
            self._loop_reader = sim.detector_reader(
                "inductionloop", [f"tt_e1_{lane}" for lane in approaches], [VAR_INTERVAL_NUMBER]
            )

    def read(self, time: float) -> Snapshot:
        """The lane state now (zero where a variable is not read)."""
        # Every per-lane array of the snapshot is a row of one block: on a light network
        # the count of NumPy calls, not their size, is what a read costs.
        block = np.zeros((len(_BLOCK_ROWS), len(self.lanes)))
        for reader, (rows, variables) in self._lane_readers:
            block.T[rows, variables] = reader.read()
        approaches = self._approach_rows
        if self._sensor_reader is not None:
            block.T[approaches[:, None], _SENSOR_ROWS] = self._sensor_reader.read()
        if self._pending is not None:
            block[_BLOCK_ROWS["pending"], self._pending_rows] = self._pending.read()
        if self._loop_reader is not None:
            block[_BLOCK_ROWS["crossed"], approaches] = self._loop_reader.read()[:, 0]
        columns = dict(zip(_BLOCK_ROWS, block, strict=True))
        lane_vehicles = columns["vehicles"]
        if len(self._stretch_rows):
            # Movements see their whole road stretch (see twin_traffic.roads).
            for name in ("vehicles", "halting", "pending"):
                columns[name] = self.reach.extend(columns[name])
        return Snapshot(time, lane_vehicles=lane_vehicles, **columns)

    def observe(self, layout: SignalLayout, snap: Snapshot, engine: PhaseEngine) -> np.ndarray:
        """One signal's observation vector (float32)."""
        blocks = [
            OBSERVATIONS[name].compute(self, layout, snap, engine) for name in self.observation
        ]
        return np.concatenate(blocks).astype(np.float32)

    def observe_all(self, snap: Snapshot, engines: Sequence[PhaseEngine]) -> list[np.ndarray]:
        """Every signal's observation vector (float32), as :meth:`observe` gives them,
        each feature computed for all signals at once where it can be."""
        if not self.layouts:
            return []
        blocks = [self._feature_blocks(name, snap, engines) for name in self.observation]
        flat = np.concatenate(blocks, dtype=np.float32)[self._order]
        return [flat[start:end] for start, end in self._bounds]

    def _feature_blocks(
        self, name: str, snap: Snapshot, engines: Sequence[PhaseEngine]
    ) -> np.ndarray:
        """One feature's blocks of every signal, concatenated in signal order."""
        feature = OBSERVATIONS[name]
        if feature.batch is not None:
            return feature.batch(self, snap, engines)
        return np.concatenate([
            feature.compute(self, layout, snap, engine)
            for layout, engine in zip(self.layouts, engines, strict=True)
        ])  # fmt: skip

    def _interleaving(self) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """The permutation taking the features' concatenated blocks (feature by feature)
        to the signals' observations (signal by signal), and each signal's slice."""
        sizes = np.array(
            [[OBSERVATIONS[name].size(self, layout) for name in self.observation]
             for layout in self.layouts], dtype=int,
        ).reshape(len(self.layouts), len(self.observation))  # fmt: skip
        # Where signal i's block of feature f starts in the feature-by-feature layout.
        feature_starts = np.concatenate([[0], np.cumsum(sizes.sum(axis=0))[:-1]])
        within = np.cumsum(sizes, axis=0) - sizes
        pieces = [
            np.arange(size) + feature_starts[f] + within[i, f]
            for i in range(len(self.layouts))
            for f, size in enumerate(sizes[i])
        ]
        order = np.concatenate(pieces).astype(int) if pieces else np.zeros(0, dtype=int)
        ends = np.cumsum(sizes.sum(axis=1))
        bounds = [
            (int(end - total), int(end)) for end, total in zip(ends, sizes.sum(axis=1), strict=True)
        ]
        return order, bounds

    def rewards(self, snap: Snapshot, before: Snapshot) -> list[float]:
        """Every signal's reward for the interval from ``before`` to ``snap``: its own,
        as :meth:`reward_of` gives it (up to the order of summation), plus
        ``neighbour_weight`` times each neighbouring signal's own.

        The neighbours' share is MA2C's spatially discounted reward (Chu et al.,
        "Multi-agent deep reinforcement learning for large-scale traffic signal
        control", IEEE T-ITS 2019; 0.9 on Monaco there): a signal that empties its
        approaches into a jammed neighbour pays for the delay it moved there.
        """
        if self.stacked.segmented:
            own = REWARD_BATCHES[self.reward](self, snap, before)
        else:
            own = np.array([self.reward_of(layout, snap, before) for layout in self.layouts])
        if len(self._neighbour_pairs[0]):
            signal, neighbour = self._neighbour_pairs
            gathered = np.bincount(signal, weights=own[neighbour], minlength=len(own))
            own = own + self.neighbour_weight * gathered
        values: list[float] = own.tolist()
        return values

    def approach_total(self, snap: Snapshot, name: str) -> float:
        """The sum of the snapshot's ``name`` over every signal's approaches (a lane
        that approaches two signals counts twice)."""
        return float(_approach_sums(self, snap, name).sum())

    def switch_seconds(self, layout: SignalLayout, engine: PhaseEngine) -> np.ndarray:
        """``(greens, greens)``: seconds of the transition from one green to another
        (0 on the diagonal), computed once per signal."""
        table = self._switch_seconds.get(layout.id)
        if table is None:
            n = engine.num_greens
            table = np.array([[0.0 if src == dst else
                               sum(seconds for _, seconds in engine.transition(src, dst))
                               for dst in range(n)] for src in range(n)])  # fmt: skip
            self._switch_seconds[layout.id] = table
        return table

    def switch_table(self, engines: Sequence[PhaseEngine]) -> np.ndarray:
        """``(signals, greens, greens)``: :meth:`switch_seconds` of every signal, padded
        with zeros to ``max_greens``."""
        if self._switch_table is None:
            table = np.zeros((len(self.layouts), self.max_greens, self.max_greens))
            for i, (layout, engine) in enumerate(zip(self.layouts, engines, strict=True)):
                n = layout.num_greens
                table[i, :n, :n] = self.switch_seconds(layout, engine)
            self._switch_table = table
        return self._switch_table

    def waiting_since(
        self, layout: SignalLayout, snap: Snapshot, engine: PhaseEngine
    ) -> np.ndarray:
        """Per link: since when its lane has waited for green (see :func:`unserved_since`),
        brought up to date once per snapshot."""
        i, n = self._signal_index[layout.id], len(layout.link_in)
        stamp = self._since_time[i]
        if stamp == snap.time:
            return self._since[i, :n].copy()
        previous = self._since[i, :n] if stamp < snap.time else None
        since = unserved_since(previous, layout, snap, engine)
        self._since[i, :n] = since
        self._since_time[i] = snap.time
        return since

    def waiting_since_all(
        self, snap: Snapshot, engines: Sequence[PhaseEngine], current: np.ndarray
    ) -> np.ndarray:
        """``(signals, links)``: :meth:`waiting_since` of every signal at once (0 on
        padding links), ``current`` being each signal's current green."""
        padded, stamps = self.padded, self._since_time
        queued = with_pending(snap.halting, snap)[padded.link_in]
        in_transition = np.array([engine.in_transition for engine in engines], dtype=bool)
        served = padded.green[padded.rows, current] & ~in_transition[:, None]
        # A signal not yet asked in this run, or asked in an earlier one, starts afresh.
        previous = np.where((stamps < snap.time)[:, None], self._since, snap.time)
        since = np.where(served | (queued <= 0), snap.time, previous)
        since = np.where((stamps == snap.time)[:, None], self._since, since)
        self._since, self._since_time = since, np.full(len(stamps), snap.time)
        return since

    def observation_bounds(self, layout: SignalLayout) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of a signal's observation vector."""
        lows = [
            np.full(OBSERVATIONS[name].size(self, layout), OBSERVATIONS[name].low, dtype=np.float32)
            for name in self.observation
        ]
        low = np.concatenate(lows)
        return low, np.ones_like(low)

    def reward_of(self, layout: SignalLayout, snap: Snapshot, before: Snapshot) -> float:
        """One signal's reward for the interval from ``before`` to ``snap``."""
        return REWARDS[self.reward][1](self, layout, snap, before)


def _layout(light: object, index: dict[str, int], capacity: np.ndarray) -> SignalLayout:
    from twin_traffic.network import TrafficLight

    assert isinstance(light, TrafficLight)
    movements = light.movements
    greens = [light.phases[i].state for i in light.green_phases]
    green_movements = np.zeros((len(greens), len(movements)), dtype=bool)
    position = {movement: m for m, movement in enumerate(movements)}
    for link in light.links:
        m = position[(link.in_lane, link.out_lane)]
        for g, state in enumerate(greens):
            if state[link.index] in GREEN_CHARS:
                green_movements[g, m] = True
    links = light.links
    per_lane = {lane: sum(link.in_lane == lane for link in links) for lane in light.incoming_lanes}
    return SignalLayout(
        id=light.id,
        num_greens=len(greens),
        in_lanes=np.array([index[lane] for lane in light.incoming_lanes], dtype=int),
        movement_in=np.array([index[a] for a, _ in movements], dtype=int),
        movement_out=np.array([index[b] for _, b in movements], dtype=int),
        green_movements=green_movements,
        link_in=np.array([index[link.in_lane] for link in links], dtype=int),
        link_out=np.array([index[link.out_lane] for link in links], dtype=int),
        link_share=np.array([1.0 / per_lane[link.in_lane] for link in links]),
        protected=_link_chars(greens, links, "G"),
        permissive=_link_chars(greens, links, "g"),
        maximal=~np.array(dominated_greens(greens), dtype=bool),
        exit_capacity=np.array([capacity[index[link.out_lane]] for link in links]),
        min_green=np.array([programme_min_green(light.phases, green) for green in greens]),
    )


def _link_chars(greens: Sequence[str], links: Sequence[Link], char: str) -> np.ndarray:
    """``(greens, links)``: True where the link shows ``char`` in the green."""
    table = [[state[link.index] == char for link in links] for state in greens]
    return np.array(table, dtype=bool).reshape(len(greens), len(links))


class PendingReader:
    """Vehicles waiting to be inserted on the edges of approach lanes, one value per lane
    (an edge's count shared equally over its approach lanes). One call per edge: SUMO
    keeps these queues per edge, and only edges that feed a signal are asked."""

    def __init__(self, sim: Simulation, lanes: Sequence[str]) -> None:
        edges = [lane.rsplit("_", 1)[0] for lane in lanes]
        self._edges = tuple(dict.fromkeys(edges))
        position = {edge: i for i, edge in enumerate(self._edges)}
        self._edge_of_lane = np.array([position[edge] for edge in edges], dtype=int)
        lanes_per_edge = np.bincount(self._edge_of_lane, minlength=len(self._edges))
        self._share = 1.0 / lanes_per_edge[self._edge_of_lane]
        self._get = sim.api.edge.getPendingVehicles

    def read(self) -> np.ndarray:
        """Pending vehicles per lane now."""
        counts = np.array([len(self._get(edge)) for edge in self._edges], dtype=float)
        return counts[self._edge_of_lane] * self._share
