"""Webster's fixed-time plan: optimal cycle and green splits from the scenario's demand.

Webster (1958), *Traffic signal settings*, Road Research Technical Paper 39:

* the cycle that minimises delay is ``C0 = (1.5 L + 5) / (1 - Y)``, where ``L`` is the
  time lost per cycle and ``Y = sum(y_i)`` the sum of the critical flow ratios
  ``y_i = q_i / s_i`` of the green phases;
* the effective green ``C - L`` is split between the phases in proportion to ``y_i``.

Here ``q`` is measured per approach lane, ``s`` is a saturation flow per lane (default
1800 veh/h, the HCM base rate), and the phases timed are the programme's *stages*
(:func:`adjustable_stages`): a stage split into several phases is timed as one, and the
greens a real programme fixes inside its intergreens (``minDur == maxDur``, clearance
greens) keep their durations. A stage's critical ratio is that of the largest of the
lanes it serves (a lane served by several stages shares its ratio between them in
proportion to the programme's greens in each), and
``L`` is the rest of the programme's cycle: its yellows, all-reds and fixed greens. The
programme's phase sequence and transitions stay as they are; only green durations
change. SUMO starts a static programme at its first phase at the scenario's begin time
(offset 0), so the plan is in phase from the first second whatever the begin time.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from twin_traffic.errors import ControllerError, SimulationError
from twin_traffic.network import TrafficLight
from twin_traffic.plans import (
    Programme,
    green_slots,
    round_to_total,
    with_greens,
    write_plan,
)
from twin_traffic.signals import GREEN_CHARS, dominated_greens

if TYPE_CHECKING:
    from twin_traffic.network import Network
    from twin_traffic.scenario import Scenario

PROGRAM_ID = "twin-traffic-webster"
# Controllers whose runs may measure Webster's flows: the scenario's own plans, or a
# deciding controller that needs nothing but its name.
FLOW_CONTROLLERS = (
    "fixed", "max-pressure", "efficient-max-pressure", "advanced-max-pressure", "greedy", "sotl"
)  # fmt: skip
SECONDS_PER_HOUR = 3600.0


# -- Webster's formulas (pure) -----------------------------------------------------------------


def webster_cycle(lost_time: float, flow_ratio_sum: float) -> float:
    """Webster's optimal cycle ``C0 = (1.5 L + 5) / (1 - Y)`` in seconds.

    Args:
        lost_time: ``L``, seconds lost per cycle.
        flow_ratio_sum: ``Y``, the sum of the phases' critical flow ratios; below 1.
    """
    if not 0 <= flow_ratio_sum < 1:
        raise ValueError(f"Y = {flow_ratio_sum:g}: Webster's cycle needs 0 <= Y < 1")
    return (1.5 * lost_time + 5.0) / (1.0 - flow_ratio_sum)


def webster_greens(cycle: float, lost_time: float, flow_ratios: Sequence[float]) -> list[float]:
    """Effective greens ``g_i = (C - L) y_i / Y`` (equal shares when no phase has flow)."""
    total = sum(flow_ratios)
    effective = cycle - lost_time
    if total <= 0:
        return [effective / len(flow_ratios)] * len(flow_ratios)
    return [effective * y / total for y in flow_ratios]


@dataclass(frozen=True)
class WebsterTiming:
    """A signal's timing: cycle, green per green phase, and how it was bounded.

    Attributes:
        cycle: seconds, ``lost_time + sum(greens)``.
        greens: seconds per green phase, in programme order.
        lost_time: ``L``, seconds per cycle.
        flow_ratios: critical ``y_i`` per green phase.
        flow_ratio_sum: ``Y`` as measured (may exceed the cap).
        oversaturated: ``Y`` exceeded the cap, so the cap was used for the cycle.
    """

    cycle: float
    greens: tuple[float, ...]
    lost_time: float
    flow_ratios: tuple[float, ...]
    flow_ratio_sum: float
    oversaturated: bool


def webster_timing(
    flow_ratios: Sequence[float],
    lost_time: float,
    *,
    min_cycle: float = 30.0,
    max_cycle: float = 150.0,
    min_green: float = 5.0,
    max_flow_ratio: float = 0.9,
) -> WebsterTiming:
    """Webster's cycle and splits, bounded for practice.

    ``Y`` is capped at ``max_flow_ratio`` (at ``Y >= 1`` the formula has no finite cycle;
    an oversaturated junction gets the longest sensible cycle instead), the cycle is
    clamped to ``[min_cycle, max_cycle]``, and every green gets at least ``min_green``,
    taken from the others in proportion to their shares. If the minimum greens alone do
    not fit the cycle, the cycle grows to ``lost_time + n * min_green``.
    """
    ratios = [max(0.0, float(y)) for y in flow_ratios]
    measured = sum(ratios)
    capped = min(measured, max_flow_ratio)
    cycle = min(max(webster_cycle(lost_time, capped), min_cycle), max_cycle)
    greens = _with_minimum(webster_greens(cycle, lost_time, ratios), ratios, min_green)
    return WebsterTiming(
        cycle=lost_time + sum(greens),
        greens=tuple(greens),
        lost_time=lost_time,
        flow_ratios=tuple(ratios),
        flow_ratio_sum=measured,
        oversaturated=measured > max_flow_ratio,
    )


def _with_minimum(greens: list[float], ratios: list[float], min_green: float) -> list[float]:
    effective = sum(greens)
    if len(greens) * min_green >= effective:
        return [min_green] * len(greens)
    pinned: set[int] = set()
    result = list(greens)
    while True:
        short = {i for i, g in enumerate(result) if g < min_green - 1e-9 and i not in pinned}
        if not short:
            return result
        pinned |= short
        free = [i for i in range(len(result)) if i not in pinned]
        left = effective - min_green * len(pinned)
        weights = [ratios[i] for i in free]
        total = sum(weights)
        for i in pinned:
            result[i] = min_green
        for i, w in zip(free, weights, strict=True):
            result[i] = left * (w / total if total > 0 else 1 / len(free))


def phase_flow_ratios(
    light: TrafficLight,
    lane_flows: Mapping[str, float],
    saturation_flow: float,
    stages: Sequence[Sequence[int]] | None = None,
) -> list[float]:
    """Critical flow ratio ``y`` of each stage (by default each green phase,
    :func:`~twin_traffic.plans.green_slots`).

    A lane's ratio is its flow over ``saturation_flow``; a stage's ratio is that of its
    critical lane, the largest of its lanes' (Webster 1958; HCM 2010, ch. 18, critical
    lane groups). A lane served by several stages needs the sum of their greens, not each
    one's (HCM's critical path through overlapping phases), so its ratio is shared between
    them in proportion to the programme's own green in each: that is how the measured
    flow was served. An even share would make a short stage that merely continues a main
    movement (a lead or lag green) as critical as the main stage itself.
    """
    if stages is None:
        stages = [[slot] for slot in green_slots(light.phases)]
    greens = [sum(light.phases[i].duration for i in stage) for stage in stages]
    served: dict[str, list[int]] = {}
    for k, stage in enumerate(stages):
        state = light.phases[stage[0]].state
        for lane in dict.fromkeys(
            link.in_lane for link in light.links if state[link.index] in GREEN_CHARS
        ):
            served.setdefault(lane, []).append(k)
    ratios = [0.0] * len(stages)
    for lane, phases in served.items():
        ratio = lane_flows.get(lane, 0.0) / saturation_flow
        total = sum(greens[k] for k in phases)
        for k in phases:
            share = greens[k] / total if total > 0 else 1.0 / len(phases)
            ratios[k] = max(ratios[k], ratio * share)
    return ratios


def adjustable_stages(light: TrafficLight) -> list[list[int]]:
    """The green phases Webster retimes, grouped by stage (phases of the same state).

    A real programme splits a stage into several phases and puts fixed greens inside
    its intergreens. Left as they are: greens the programme fixes (``minDur`` equal to
    ``maxDur``) and clearance greens (greens another green serves at least as well,
    :func:`~twin_traffic.signals.dominated_greens`); they count as lost time.
    """
    slots = green_slots(light.phases)
    distinct = list(dict.fromkeys(light.phases[i].state for i in slots))
    dominated = dict(zip(distinct, dominated_greens(distinct), strict=True))
    stages: dict[str, list[int]] = {}
    for i in slots:
        phase = light.phases[i]
        fixed = phase.min_dur is not None and phase.min_dur == phase.max_dur
        if not fixed and not dominated[phase.state]:
            stages.setdefault(phase.state, []).append(i)
    return list(stages.values())


# -- demand ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaneCounts:
    """Vehicles that crossed each lane's end, per measurement interval.

    Attributes:
        intervals: ``(begin, end)`` of each interval, s.
        counts: lane id -> vehicles per interval (same order as ``intervals``).
    """

    intervals: tuple[tuple[float, float], ...]
    counts: dict[str, tuple[float, ...]]

    def design_flows(self, lanes: Sequence[str]) -> dict[str, float]:
        """Flows (veh/h) of ``lanes`` in the interval where their total is highest.

        Webster's method times a signal for its design flow, the busiest period, not the
        average. Intervals shorter than half the longest one (a run's tail) are skipped
        unless nothing else was measured.
        """
        lengths = [end - begin for begin, end in self.intervals]
        longest = max(lengths, default=0.0)
        usable = [i for i, n in enumerate(lengths) if n >= longest / 2 and n > 0]
        if not usable:
            return dict.fromkeys(lanes, 0.0)

        def rate(lane: str, i: int) -> float:
            return self.counts.get(lane, (0.0,) * len(lengths))[i] * SECONDS_PER_HOUR / lengths[i]

        peak = max(usable, key=lambda i: (sum(rate(lane, i) for lane in lanes), -i))
        return {lane: rate(lane, peak) for lane in lanes}


def read_lane_counts(path: Path) -> LaneCounts:
    """Read SUMO lane-based mean data (``<laneData>`` output): the ``left`` count per lane.

    ``left`` counts vehicles that left a lane over its end, so on an approach lane it is the
    traffic served through the stop line.
    """
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        raise ControllerError(
            f"{path}: cannot read the lane flows; give a SUMO <laneData> output file"
        ) from None
    intervals: list[tuple[float, float]] = []
    counts: dict[str, list[float]] = {}
    for k, interval in enumerate(root.iter("interval")):
        intervals.append((float(interval.get("begin", "0")), float(interval.get("end", "0"))))
        for lane in interval.iter("lane"):
            row = counts.setdefault(lane.get("id", ""), [])
            row.extend([0.0] * (k - len(row)))
            row.append(float(lane.get("left", "0")))
    if not intervals or not counts:
        raise ControllerError(
            f"{path}: no <interval> with <lane> counts; give a SUMO <laneData> output file "
            '(an additional with <laneData id="..." file="..."/>)'
        )
    width = len(intervals)
    return LaneCounts(
        tuple(intervals),
        {lane: tuple(row + [0.0] * (width - len(row))) for lane, row in counts.items()},
    )


def _flow_probe(directory: Path, period: float) -> tuple[Path, Path]:
    """A ``<laneData>`` definition counting lane flows every ``period`` s: (probe, output)."""
    output = directory / "webster-lane-flows.xml"
    probe = directory / "webster-lane-flows.add.xml"
    probe.write_text(
        f'<additional>\n  <laneData id="twin-traffic-flows" file="{output}" '
        f'period="{period:g}" excludeEmpty="true"/>\n</additional>\n',
        encoding="utf-8",
    )
    return probe, output


def measure_lane_counts(
    scenario: Scenario, seed: int, period: float, directory: Path
) -> LaneCounts:
    """Run the scenario under its own programmes in the ``sumo`` binary and count lane flows.

    A separate process, so it works beside a libsumo simulation in this one.
    """
    from twin_traffic.redirect import scenario_args
    from twin_traffic.sim import sumo_binary

    probe, output = _flow_probe(directory, period)
    command = [
        str(sumo_binary()),
        *scenario_args(scenario, [probe], directory),
        "--seed", str(seed),
        "--no-step-log", "true",
        "--no-warnings", "true",
        "--duration-log.disable", "true",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit code {done.returncode}"
        source = scenario.config_file or scenario.net_file
        raise SimulationError(f"{source}: measuring flows for webster failed: {detail}")
    return read_lane_counts(output)


def measure_served_counts(
    scenario: Scenario, controller: str, seed: int, period: float, directory: Path
) -> LaneCounts:
    """Run the scenario under ``controller`` (a registered name, default parameters) and
    count the lane flows it served.

    Over TraCI, so SUMO runs in a process of its own beside any libsumo simulation in
    this one.
    """
    from twin_traffic.evaluate import RunSpec, run_episode

    probe, output = _flow_probe(directory, period)
    source = str(scenario.config_file or scenario.net_file)
    spec = RunSpec(scenario=source, controller=controller, seed=seed, backend="traci")
    run_episode(spec, scenario=scenario, probes=(probe,))
    return read_lane_counts(output)


def _green_durations(light: TrafficLight) -> list[float]:
    return [light.phases[i].duration for i in green_slots(light.phases)]


def _stage_greens(
    light: TrafficLight, stages: Sequence[Sequence[int]], greens: Sequence[float]
) -> list[float]:
    """Durations of every green phase: each stage's green shared over its phases in
    proportion to their programme durations, in whole seconds (what a signal controller
    in the street is programmed with); the other greens unchanged."""
    durations = dict(zip(green_slots(light.phases), _green_durations(light), strict=True))
    # Whole seconds per stage that keep the total, so the cycle is the intended one.
    totals = round_to_total(greens, round(sum(greens)))
    for stage, green, total in zip(stages, greens, totals, strict=True):
        weights = [max(light.phases[i].duration, 1e-9) for i in stage]
        parts = [green * w / sum(weights) for w in weights]
        for i, seconds in zip(stage, round_to_total(parts, max(total, len(stage))),
                              strict=True):  # fmt: skip
            durations[i] = float(seconds)
    return [durations[i] for i in green_slots(light.phases)]


def _checked_flow_controller(name: str) -> str:
    if name not in FLOW_CONTROLLERS:
        raise ControllerError(
            f"webster: flow_controller {name!r} cannot measure flows; use one of "
            + ", ".join(FLOW_CONTROLLERS)
        )
    return name


# -- the controller ----------------------------------------------------------------------------


class WebsterController:
    """Fixed-time plans with Webster's cycle and splits, run by SUMO itself.

    Demand comes from a run of the scenario's own fixed-time plans in a separate ``sumo``
    process (``flows="measured"``, seed ``flow_seed``), or from a SUMO ``<laneData>``
    output file (``flows=PATH``, e.g. counts from a city's detectors mapped to lanes). Each
    signal is timed for its busiest ``flow_period``. Served flows are what a fixed plan can
    pass: at an oversaturated approach they understate demand, and ``Y`` then reaches the
    cap anyway. Where the scenario's own plans are gridlocked, ``flow_controller`` measures
    the flows under a deciding controller instead (e.g. ``advanced-max-pressure``), which
    passes much closer to the demand: on Monaco, whose own plan leaves 1 124 vehicles a
    run uninserted, that plan has 12% less delay than the one timed for the flows its own
    plans pass (held-out seeds 100-104; docs/classical.md).

    Args:
        saturation_flow: veh/h per lane at a green (HCM base: 1800; 1900 for ideal lanes).
        min_cycle: shortest cycle, s.
        max_cycle: longest cycle, s.
        min_green: shortest green of any phase, s.
        max_flow_ratio: cap on ``Y``; above it the junction is treated as oversaturated.
        flows: ``measured``, or a ``<laneData>`` output file.
        flow_seed: seed of the measuring run.
        flow_controller: the controller of the measuring run: ``fixed`` (the scenario's
            own programmes) or a registered deciding controller's name.
        flow_period: seconds per measurement interval; the busiest one is the design flow
            (900 s = the HCM peak 15 minutes; the window length gives the mean).
        cycle: ``webster`` (Webster's optimal cycle per signal) or ``programme`` (each
            signal keeps its programme's cycle and only its splits are Webster's, which
            keeps a city's coordination: signals that share a cycle stay in step).
    """

    name = "webster"
    decision_interval: float | None = None

    def __init__(
        self,
        saturation_flow: float = 1800.0,
        min_cycle: float = 30.0,
        max_cycle: float = 150.0,
        min_green: float = 5.0,
        max_flow_ratio: float = 0.9,
        flows: str | Path = "measured",
        flow_seed: int = 0,
        flow_period: float = 900.0,
        cycle: str = "webster",
        flow_controller: str = "fixed",
    ) -> None:
        self.saturation_flow = float(saturation_flow)
        self.min_cycle = float(min_cycle)
        self.max_cycle = float(max_cycle)
        self.min_green = float(min_green)
        self.max_flow_ratio = float(max_flow_ratio)
        self.flow_seed = int(flow_seed)
        self.flow_period = float(flow_period)
        self.cycle = str(cycle)
        checks = (
            (self.cycle in ("webster", "programme"), "cycle must be webster or programme"),
            (self.saturation_flow > 0, "saturation_flow must be positive (veh/h per lane)"),
            (0 < self.min_cycle <= self.max_cycle, "need 0 < min_cycle <= max_cycle (s)"),
            (self.min_green > 0, "min_green must be positive (s)"),
            (0 < self.max_flow_ratio < 1, "max_flow_ratio must lie strictly between 0 and 1"),
            (self.flow_period > 0, "flow_period must be positive (s)"),
        )
        for ok, message in checks:
            if not ok:
                raise ControllerError(f"webster: {message}")
        self.flow_controller = _checked_flow_controller(str(flow_controller))
        self.flows: Path | None = None
        if str(flows) != "measured":
            self.flows = Path(flows).expanduser().resolve()
            if not self.flows.is_file():
                raise ControllerError(
                    f"{self.flows}: lane flow file not found; pass flows=measured or a SUMO "
                    "<laneData> output file"
                )
        self.timings: dict[str, WebsterTiming] = {}

    def plan(self, network: Network, directory: Path) -> list[Programme]:
        """Webster's programme for every signal of ``network`` (``timings`` holds the figures)."""
        if self.flows is not None:
            counts = read_lane_counts(self.flows)
        elif network.scenario is None:
            raise ControllerError(
                "webster: the network was loaded without its scenario, so there is no "
                "demand to measure; load it with twin_traffic.network.load_network"
            )
        elif self.flow_controller == "fixed":
            counts = measure_lane_counts(
                network.scenario, self.flow_seed, self.flow_period, directory
            )
        else:
            counts = measure_served_counts(
                network.scenario, self.flow_controller, self.flow_seed, self.flow_period,
                directory,
            )  # fmt: skip
        programmes = []
        self.timings = {}
        for light in network.traffic_lights.values():
            stages = adjustable_stages(light)
            if not stages:
                programmes.append(with_greens(light, _green_durations(light), PROGRAM_ID))
                continue
            flows = counts.design_flows(light.incoming_lanes)
            ratios = phase_flow_ratios(light, flows, self.saturation_flow, stages)
            adjustable = [i for stage in stages for i in stage]
            cycle = sum(phase.duration for phase in light.phases)
            keep = self.cycle == "programme"
            timing = webster_timing(
                ratios,
                cycle - sum(light.phases[i].duration for i in adjustable),
                min_cycle=cycle if keep else self.min_cycle,
                max_cycle=cycle if keep else self.max_cycle,
                min_green=self.min_green,
                max_flow_ratio=self.max_flow_ratio,
            )
            self.timings[light.id] = timing
            programmes.append(with_greens(light, _stage_greens(light, stages, timing.greens),
                                          PROGRAM_ID))  # fmt: skip
        return programmes

    def additional_files(self, network: Network, directory: Path) -> list[Path]:
        """Measure demand, time every signal and write the plan as ``webster.add.xml``."""
        programmes = self.plan(network, directory)
        summary = ", ".join(
            f"{tls}: C={t.cycle:.0f} s, Y={t.flow_ratio_sum:.2f}" for tls, t in self.timings.items()
        )
        path = directory / "webster.add.xml"
        return [write_plan(programmes, path, comment=f"Webster plan ({summary})")]


__all__ = [
    "LaneCounts",
    "WebsterController",
    "WebsterTiming",
    "measure_lane_counts",
    "measure_served_counts",
    "phase_flow_ratios",
    "read_lane_counts",
    "webster_cycle",
    "webster_greens",
    "webster_timing",
]
