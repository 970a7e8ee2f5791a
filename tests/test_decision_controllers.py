"""Max-pressure, greedy and SOTL on hand-built states, and on real SUMO runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from twin_traffic.controllers.decision import decide
from twin_traffic.controllers.greedy import GreedyController, longest_queues
from twin_traffic.controllers.max_pressure import (
    AdvancedMaxPressureController,
    EfficientMaxPressureController,
    MaxPressureController,
    green_pressures,
)
from twin_traffic.controllers.sotl import SotlController
from twin_traffic.errors import ControllerError
from twin_traffic.evaluate import DecisionRunner, RunSpec, run_episode
from twin_traffic.features import SignalLayout, Snapshot, _layout
from twin_traffic.network import Link, Phase, TrafficLight, load_network
from twin_traffic.scenario import load_scenario
from twin_traffic.signals import PhaseEngine, SignalTiming
from twin_traffic.sim import Backend, SimConfig, Simulation

LANES = ["n", "s", "e", "w", "out_ns", "out_ew"]
CAPACITY = np.full(len(LANES), 10.0)


def layout_of(states: list[str], links: list[tuple[str, str]]) -> SignalLayout:
    """The layout the observer builds for a hand-built programme and its links."""
    phases = tuple(Phase(state, 30.0) for state in states)
    light = TrafficLight("X", "0", phases, tuple(Link(i, a, b) for i, (a, b) in enumerate(links)))
    return _layout(light, {lane: i for i, lane in enumerate(LANES)}, CAPACITY)


# A crossing: n, s feed out_ns; e, w feed out_ew. Green 0 serves N/S, green 1 E/W.
CROSSING = ["GGrr", "yyrr", "rrGG", "rryy"]
LAYOUT = layout_of(CROSSING, [("n", "out_ns"), ("s", "out_ns"), ("e", "out_ew"), ("w", "out_ew")])


def snapshot(
    vehicles: list[float],
    halting: list[float] | None = None,
    pending: list[float] | None = None,
    in_range: list[float] | None = None,
    time: float = 0.0,
    crossed: list[float] | None = None,
) -> Snapshot:
    zeros = np.zeros(6)
    return Snapshot(
        time=time,
        vehicles=np.array(vehicles, dtype=float),
        halting=np.array(halting if halting is not None else vehicles, dtype=float),
        speed=zeros, waiting=zeros, sensor_occupancy=zeros,
        crossed=np.array(crossed if crossed is not None else zeros, dtype=float),
        sensor_halting=np.array(halting if halting is not None else vehicles, dtype=float),
        sensor_vehicles=np.array(in_range if in_range is not None else vehicles, dtype=float),
        pending=np.array(pending if pending is not None else zeros, dtype=float),
    )  # fmt: skip


def engine(min_green: float = 5.0, states: list[str] = CROSSING) -> PhaseEngine:
    timing = SignalTiming(yellow=3, min_green=min_green, max_green=60)
    return PhaseEngine(states, [30, 3] * (len(states) // 2), timing)


def test_max_pressure_picks_the_largest_incoming_minus_outgoing() -> None:
    # N/S: 6 - 9 and 2 - 9 are no claim; E/W: (3 - 1) + (4 - 1) = 5 -> east/west.
    state = snapshot([6, 2, 3, 4, 9, 1])
    assert list(green_pressures(LAYOUT, state.vehicles, np.ones(4))) == [0.0, 5.0]
    assert MaxPressureController().choose(LAYOUT, state, engine()) == 1
    # A lighter downstream lane is what turns the choice: same queues, empty out_ns.
    assert MaxPressureController().choose(LAYOUT, snapshot([6, 2, 3, 4, 0, 1]), engine()) == 0


def test_a_switch_must_win_by_more_than_the_transition_loses() -> None:
    signal = engine()
    signal.reset(1)  # E/W green with pressure 5; the switch to N/S costs a 3 s yellow
    # Over H = 3 + 5 s, N/S serves 5 s: 8 * 5 = 40 does not beat 5 * 8 = 40 -> stay.
    assert MaxPressureController().choose(LAYOUT, snapshot([6, 2, 3, 4, 0, 1]), signal) == 1
    # 12 * 5 = 60 > 40 -> switch.
    assert MaxPressureController().choose(LAYOUT, snapshot([10, 2, 3, 4, 0, 1]), signal) == 0


def test_a_movement_whose_exit_spills_back_has_no_claim() -> None:
    # E/W has the larger pressure (22 against 6), but out_ew is full (9 of 10 places,
    # the default spillback 0.9): N/S is served.
    state = snapshot([3, 3, 20, 20, 0, 9])
    assert MaxPressureController().choose(LAYOUT, state, engine()) == 0
    assert EfficientMaxPressureController().choose(LAYOUT, state, engine()) == 0
    assert GreedyController().choose(LAYOUT, state, engine()) == 0
    # A lane counted full only at 10 vehicles still has room: E/W wins.
    assert MaxPressureController(spillback=1.0).choose(LAYOUT, state, engine()) == 1


def test_vehicles_waiting_to_enter_count_as_queued() -> None:
    # Lane counts favour N/S, but 20 vehicles wait to be inserted on e's edge.
    state = snapshot([4, 4, 1, 1, 0, 0], pending=[0, 0, 20, 0, 0, 0])
    assert MaxPressureController().choose(LAYOUT, state, engine()) == 1
    assert GreedyController().choose(LAYOUT, state, engine()) == 1


def test_a_starving_lane_is_served_whatever_the_pressure() -> None:
    controller = MaxPressureController(max_wait=60)
    signal = engine(min_green=0)
    heavy_ns = [20, 20, 1, 0, 0, 0]  # one car waits on e, N/S always wins on pressure
    for time in (0.0, 30.0):
        # N/S discharges: its stop lines count vehicles.
        state = snapshot(heavy_ns, time=time, crossed=[time, time, 0, 0, 0, 0])
        assert controller.choose(LAYOUT, state, signal) == 0
    state = snapshot(heavy_ns, time=60.0, crossed=[60, 60, 0, 0, 0, 0])
    assert controller.choose(LAYOUT, state, signal) == 1


@pytest.mark.parametrize(
    "controller_class",
    [MaxPressureController, EfficientMaxPressureController, AdvancedMaxPressureController],
)
def test_a_green_lane_that_discharges_nobody_has_no_claim_to_keep_its_green(
    controller_class: type[MaxPressureController],
) -> None:
    # N/S is green with 8 standing on n against 4 on e, but n's stop line counts nobody
    # (a permissive turner waits at its head for a gap): 6 s on (blocked_after), N/S has
    # no claim left to its green and E/W is served.
    queues = [8, 0, 4, 0, 0, 0]
    stuck = controller_class()
    signal = engine()
    signal.reset(0)
    for time, expected in ((0.0, 0), (5.0, 0), (6.0, 1)):
        assert (
            stuck.choose(LAYOUT, snapshot(queues, time=time, crossed=[3] * 6), signal) == expected
        )
    # A lane that lets vehicles over its stop line keeps its claim.
    flowing = controller_class()
    for time in (0.0, 6.0, 12.0):
        state = snapshot(queues, time=time, crossed=[time, 0, 0, 0, 0, 0])
        assert flowing.choose(LAYOUT, state, signal) == 0
    # Turned off, the standing queue keeps its claim.
    kept = controller_class(blocked_after=0.0)
    for time in (0.0, 6.0, 12.0):
        assert kept.choose(LAYOUT, snapshot(queues, time=time, crossed=[3] * 6), signal) == 0
    # Only a green lane can be blocked: at red, its queue is a claim to the next green.
    signal.reset(1)
    red = controller_class()
    for time in (0.0, 6.0, 12.0):
        state = snapshot(queues, time=time, crossed=[3] * 6)
        assert not red.blocked(LAYOUT, state, signal)[:2].any()
    with pytest.raises(ControllerError, match="blocked_after must be 0 or more"):
        controller_class(blocked_after=-1.0)


def test_efficient_pressure_is_queue_minus_mean_exit_queue() -> None:
    # n feeds both exits (through and turn): it counts once, against their mean queue.
    layout = layout_of(
        ["GGrr", "yyrr", "rrGG", "rryy"],
        [("n", "out_ns"), ("n", "out_ew"), ("e", "out_ew"), ("w", "out_ns")],
    )
    halting = [8, 0, 3, 3, 4, 2]  # n: 8 - (4 + 2) / 2 = 5; e: 3 - 2 = 1; w: 3 - 4 < 0
    state = snapshot([20, 0, 0, 0, 0, 0], halting=halting)
    assert list(EfficientMaxPressureController().scores(layout, state)) == [5.0, 1.0]


def test_max_pressure_counts_queued_and_arriving_vehicles_not_those_far_up_the_road() -> None:
    # n: 12 vehicles on the lane, all moving, 2 of them within range; e: 4 standing.
    state = snapshot([12, 0, 4, 0, 0, 0], halting=[0, 0, 4, 0, 0, 0], in_range=[2, 0, 4, 0, 0, 0])
    assert list(MaxPressureController().scores(LAYOUT, state)) == [2.0, 4.0]
    assert MaxPressureController().choose(LAYOUT, state, engine()) == 1
    # Once the platoon is within range (a longer sensor_range), it is demand: N/S.
    wide = snapshot([12, 0, 4, 0, 0, 0], halting=[0, 0, 4, 0, 0, 0], in_range=[12, 0, 4, 0, 0, 0])
    assert MaxPressureController().choose(LAYOUT, wide, engine()) == 0
    # Exits count every vehicle on them, moving or not: 3 moving on out_ew leave E/W 1.
    exits = snapshot([12, 0, 4, 0, 0, 3], halting=[0, 0, 4, 0, 0, 0],
                     in_range=[2, 0, 4, 0, 0, 0])  # fmt: skip
    assert list(MaxPressureController().scores(LAYOUT, exits)) == [2.0, 1.0]
    assert MaxPressureController().choose(LAYOUT, exits, engine()) == 0


def test_advanced_max_pressure_keeps_a_green_with_running_vehicles() -> None:
    controller = AdvancedMaxPressureController()
    # Green 0 (N/S): 6 vehicles in range, none halting (6 running). E/W queue: 5 + 0.
    state = snapshot([6, 0, 5, 0, 0, 0], halting=[0, 0, 5, 0, 0, 0])
    assert controller.choose(LAYOUT, state, engine()) == 0
    # Only 4 running: the best efficient pressure (5) wins.
    state = snapshot([4, 0, 5, 0, 0, 0], halting=[0, 0, 5, 0, 0, 0])
    assert controller.choose(LAYOUT, state, engine()) == 1


def test_a_green_is_held_for_the_queue_it_inherited() -> None:
    controller = EfficientMaxPressureController()  # 5 s minimum, 2 s per vehicle, at most 20
    signal = engine(min_green=5.0)
    signal.reset(1)
    # While E/W is shown, 6 vehicles queue on n (2 on s): N/S inherits a queue of 6.
    red_queue = snapshot([6, 2, 0, 0, 0, 0])
    assert controller.hold_initial(LAYOUT, red_queue, signal, 1) == 1
    signal.reset(0)
    for _ in range(8):
        signal.tick()
    # 8 s into N/S its queue has started to move (none halting): a switch is asked for,
    # but the variable initial, 2 + 2 x 6 = 14 s, holds N/S.
    moving = snapshot([6, 2, 4, 0, 0, 0], halting=[0, 0, 4, 0, 0, 0])
    assert controller.hold_initial(LAYOUT, moving, signal, 1) == 0
    for _ in range(6):
        signal.tick()
    assert controller.hold_initial(LAYOUT, moving, signal, 1) == 1
    # A green that inherits no queue may end once the engine's 5 s minimum is served.
    empty = EfficientMaxPressureController()
    signal.reset(0)
    for _ in range(5):
        signal.tick()
    assert empty.hold_initial(LAYOUT, moving, signal, 1) == 1


def test_the_variable_initial_is_capped_and_can_be_turned_off() -> None:
    long_queue = snapshot([40, 0, 0, 0, 0, 0])
    for controller, seconds, held in (
        (EfficientMaxPressureController(), 25, False),  # 2 + 2 x 40 s, capped at 20
        (EfficientMaxPressureController(max_initial=60.0), 25, True),
        (MaxPressureController(), 5, True),  # the family's default holds a long queue
        # Turned off, the engine's 5 s minimum alone holds the green, whatever its queue.
        (MaxPressureController(initial_per_vehicle=0.0), 5, False),
    ):
        signal = engine(min_green=5.0)
        signal.reset(1)
        controller.hold_initial(LAYOUT, long_queue, signal, 1)
        signal.reset(0)
        for _ in range(seconds):
            signal.tick()
        assert (controller.hold_initial(LAYOUT, long_queue, signal, 1) == 0) is held


THREE_STAGES = ["GrrGrr", "yrryrr", "rGrrGr", "ryrryr", "rrGrrG", "rryrry"]
THREE_LINKS = [("n", "out_ns"), ("e", "out_ew"), ("w", "out_ew")] * 2


def test_cyclic_mode_goes_to_the_next_green_with_demand() -> None:
    layout = layout_of(THREE_STAGES, THREE_LINKS)
    signal = engine(states=THREE_STAGES)
    signal.reset(0)
    state = snapshot([0, 0, 1, 9, 0, 0])  # green 1 (e) has a little demand, green 2 (w) more
    assert MaxPressureController().choose(layout, state, signal) == 2
    assert MaxPressureController(cycle="cyclic").choose(layout, state, signal) == 1
    # Without demand on green 1, cyclic skips it.
    state = snapshot([0, 0, 0, 9, 0, 0])
    assert MaxPressureController(cycle="cyclic").choose(layout, state, signal) == 2


def test_dominated_greens_are_not_chosen() -> None:
    # Green 1 gives the N/S lanes green but nothing more: green 0 serves all it does.
    states = ["GGGr", "yyyr", "GGrr", "yyrr", "rrrG", "rrry"]
    layout = layout_of(states, [("n", "out_ns"), ("s", "out_ns"), ("e", "out_ew"), ("w", "out_ew")])
    assert list(layout.maximal) == [True, False, True]
    signal = engine(states=states)
    signal.reset(2)
    state = snapshot([5, 5, 0, 0, 0, 0])  # greens 0 and 1 tie on pressure
    assert decide(layout, MaxPressureController().scores(layout, state), signal, 5.0) == 0


def test_greedy_serves_the_single_longest_queue() -> None:
    # E/W holds more vehicles in total (5 + 5), but the longest queue is north (8).
    state = snapshot([0, 0, 0, 0, 0, 0], halting=[8, 0, 5, 5, 0, 0])
    assert list(longest_queues(LAYOUT, state)) == pytest.approx([8.0, 5.0], abs=1e-3)
    assert GreedyController().choose(LAYOUT, state, engine()) == 0
    state = snapshot([0] * 6, halting=[1, 0, 0, 2, 0, 0])
    assert GreedyController().choose(LAYOUT, state, engine()) == 1


def test_clearance_is_checked_and_reaches_the_engine() -> None:
    with pytest.raises(ControllerError, match="clearance must be one of yellow, programme"):
        MaxPressureController(clearance="none")
    assert MaxPressureController(clearance="programme").timing.clearance == "programme"
    assert MaxPressureController().timing.clearance == "yellow"


def test_greedy_breaks_a_tie_of_longest_queues_for_the_green_serving_more() -> None:
    # East's through lane also feeds its left (link 4). A lead stage (east through and
    # left) and the through stage (east and west) both serve the longest queue, east's 6;
    # the through stage serves west's 4 as well.
    links = [("n", "out_ns"), ("s", "out_ns"), ("e", "out_ew"), ("w", "out_ew"), ("e", "out_ns")]
    state = snapshot([0, 0, 0, 0, 0, 0], halting=[1, 0, 6, 4, 0, 0])
    for through in (0, 1):  # whatever the order of the greens
        greens = ["rrGGr", "rrGrG"] if through == 0 else ["rrGrG", "rrGGr"]
        states = [greens[0], "rryyr", greens[1], "rryry", "GGrrr", "yyrrr"]
        layout = layout_of(states, links)
        assert list(layout.maximal) == [True, True, True]
        signal = PhaseEngine(states, [30, 3] * 3, SignalTiming(yellow=3, min_green=5))
        signal.reset(2)
        assert GreedyController().choose(layout, state, signal) == through


def test_sotl_switches_once_red_traffic_exceeds_the_threshold() -> None:
    controller = SotlController(threshold=30, decision_interval=2)
    signal = engine(min_green=0)
    state = snapshot([3, 3, 4, 3, 0, 0])  # 7 vehicles at red, 6 on the green
    # kappa grows by 7 * 2 = 14 per decision: 14, 28 keep green 0, 42 switches.
    assert controller.choose(LAYOUT, state, signal) == 0
    assert controller.choose(LAYOUT, state, signal) == 0
    assert controller.choose(LAYOUT, state, signal) == 1


def test_sotl_respects_min_green_and_leaves_an_idle_green_at_once() -> None:
    controller = SotlController(threshold=1000, decision_interval=2)
    idle = snapshot([0, 0, 1, 0, 0, 0])  # nobody on the green, one car at red
    signal = engine(min_green=5)
    assert controller.choose(LAYOUT, idle, signal) == 0  # min green not reached yet
    for _ in range(5):
        signal.tick()
    assert signal.can_switch
    assert controller.choose(LAYOUT, idle, signal) == 1
    assert controller.choose(LAYOUT, snapshot([0, 0, 0, 0, 0, 0]), signal) == 0


@pytest.mark.parametrize(
    "name", ["max-pressure", "efficient-max-pressure", "advanced-max-pressure", "greedy", "sotl"]
)
def test_decision_controllers_beat_fixed_time_on_the_grid(name: str) -> None:
    fixed = run_episode(RunSpec("grid3x3", seed=1, end=900))
    result = run_episode(RunSpec("grid3x3", controller=name, seed=1, end=900))
    assert result.metrics["vehicles"] == fixed.metrics["vehicles"]
    assert result.metrics["delay"] < fixed.metrics["delay"]
    again = run_episode(RunSpec("grid3x3", controller=name, seed=1, end=900))
    assert again.metrics == pytest.approx(result.metrics, rel=0, abs=0, nan_ok=True)


@pytest.mark.parametrize("backend", ["libsumo", "traci"])
def test_a_lane_blocked_by_a_permissive_turner_is_found_in_a_real_run(
    backend: Backend, tmp_path: Path
) -> None:
    """``mixed-high``'s J1 serves its main street's left turns permissively from a shared
    lane: near the peak a turner waits at the lane's head for a gap in the oncoming
    stream. The stop-line loops must find such lanes, and only green lanes where no
    vehicle has made it through the junction in the last ``blocked_after`` seconds, by
    SUMO's own account of its vehicles."""
    scenario = load_scenario("mixed-high", begin=1500, end=1800)
    network = load_network(scenario)
    controller = AdvancedMaxPressureController()
    additional = controller.additional_files(network, tmp_path)
    found: set[str] = set()
    # Per second: each approach lane's vehicles that had not reached its stop-line loop.
    # One of them that is past the junction a few seconds later, and left the approach
    # from this lane (not by changing to a neighbour lane first, as a through vehicle
    # stuck behind a turner does), has crossed this lane's loop.
    before_loop: list[dict[str, set[str]]] = []
    last_lane: dict[str, str] = {}
    with Simulation(scenario, 3, None, SimConfig(backend), additional_files=additional) as sim:
        api = sim.api
        runner = DecisionRunner(controller, network, sim)
        lanes = runner.observer.approach_lanes
        while sim.running:
            on_lane = {lane: api.lane.getLastStepVehicleIDs(lane) for lane in lanes}
            last_lane.update((v, lane) for lane, ids in on_lane.items() for v in ids)
            before_loop.append({
                lane: {v for v in ids
                       if api.vehicle.getLanePosition(v) < api.lane.getLength(lane) - 1.0}
                for lane, ids in on_lane.items()
            })  # fmt: skip
            snapshot = runner.observer.read(sim.time)
            for layout, signal in zip(runner.observer.layouts, runner.bank.engines, strict=True):
                for link in np.flatnonzero(controller.blocked(layout, snapshot, signal)):
                    lane = runner.observer.lanes[layout.link_in[link]]
                    assert signal.state[link] in "Gg"
                    edge = api.lane.getEdgeID(lane)
                    running = set(api.vehicle.getIDList())
                    earlier = before_loop[-int(controller.blocked_after)][lane]
                    crossed = {
                        v for v in earlier
                        if last_lane[v] == lane and _past_junction(api, v, edge, running)
                    }  # fmt: skip
                    assert not crossed, (sim.time, lane, crossed)
                    found.add(lane)
            runner.bank.request(controller.greens(snapshot, runner.bank.engines, runner.observer))
            runner.bank.advance(sim, sim.time + 1)
    assert found & {"J2_J1_1", "W_J1_1"}  # J1's shared through-and-left lanes


def _past_junction(api: Any, vehicle: str, edge: str, running: set[str]) -> bool:
    """Whether ``vehicle``, once on ``edge``, has left it and the junction after it."""
    if vehicle not in running:
        return True
    road = api.vehicle.getRoadID(vehicle)
    return road != edge and not road.startswith(":")
