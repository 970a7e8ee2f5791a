"""libsumo and TraCI give the same episode: every observation, reward and info of random
decisions matches exactly, for every observation that reads SUMO (lanes, detectors)."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest

from twin_traffic.envs import SignalParallelEnv

ALL_OBSERVATIONS = ("phase", "density", "queue", "pressure", "speed", "sensor", "greens",
                    "running", "timing")  # fmt: skip


def episode(backend: str, name: str, reward: str) -> list[tuple[object, ...]]:
    env = SignalParallelEnv(
        scenario=name,
        end=400,
        backend=backend,
        observation=ALL_OBSERVATIONS,
        reward=reward,
    )
    rng = np.random.default_rng(3)
    observations, infos = env.reset(seed=4)
    trace: list[tuple[object, ...]] = [(observations, infos)]
    while env.agents:
        actions = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
        observations, rewards, _, _, infos = env.step(actions)
        trace.append((observations, rewards, infos))
    env.close()
    return trace


def same(a: object, b: object) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if isinstance(a, np.ndarray):
        return np.array_equal(a, np.asarray(b))
    return a == b


@pytest.mark.parametrize(
    ("name", "reward"), [("mixed", "pressure"), ("grid3x3", "wait"), ("mixed", "delay")]
)
def test_both_backends_give_the_same_episode(name: str, reward: str) -> None:
    libsumo, traci = episode("libsumo", name, reward), episode("traci", name, reward)
    assert len(libsumo) == len(traci) > 50
    for step, (a, b) in enumerate(zip(libsumo, traci, strict=True)):
        assert same(a, b), f"decision {step}: libsumo {a} != traci {b}"


def test_a_traci_read_finds_its_values_where_the_first_reply_had_them() -> None:
    from twin_traffic.scenario import load_scenario
    from twin_traffic.sim import (
        LAST_STEP_MEAN_SPEED,
        LAST_STEP_VEHICLE_NUMBER,
        VAR_WAITING_TIME,
        SimConfig,
        Simulation,
        _parse_values,
    )

    variables = [LAST_STEP_VEHICLE_NUMBER, LAST_STEP_MEAN_SPEED, VAR_WAITING_TIME]
    with Simulation(load_scenario("grid3x3", end=300), 1, None, SimConfig("traci")) as sim:
        lanes = [lane for lane in sim.api.lane.getIDList() if not lane.startswith(":")][:20]
        reader = sim.lane_reader(lanes, variables)
        lane = sim.api.lane
        for until in (60.0, 120.0, 200.0):  # the first read parses, the next ones gather
            sim.step(until)
            expected = [[lane.getLastStepVehicleNumber(x), lane.getLastStepMeanSpeed(x),
                         lane.getWaitingTime(x)] for x in lanes]  # fmt: skip
            assert np.array_equal(reader.read(), np.array(expected, dtype=float))
        assert np.array(expected)[:, 0].sum() > 0
        # A reply of another shape is parsed in full, not gathered.
        connection = sim.api
        connection._socket.send(struct.pack("!i", len(reader._message) + 4) + reader._message)
        data = connection._recvExact()._content
        values, layout = _parse_values(data, len(lanes) * len(variables))
        assert np.array_equal(layout.values(data), values)
        assert layout.values(data + b"\0") is None
        kind = layout._check_at[-1]
        assert layout.values(data[:kind] + b"\x0c" + data[kind + 1 :]) is None


def test_a_libsumo_read_asks_empty_lanes_and_edges_only_for_their_count() -> None:
    from collections import Counter

    from twin_traffic.scenario import load_scenario
    from twin_traffic.sim import (
        LAST_STEP_MEAN_SPEED,
        LAST_STEP_VEHICLE_HALTING_NUMBER,
        LAST_STEP_VEHICLE_NUMBER,
        VAR_WAITING_TIME,
        SimConfig,
        Simulation,
    )

    # The count last, and speed, which an empty lane reads as its limit: asked of all.
    variables = [VAR_WAITING_TIME, LAST_STEP_MEAN_SPEED, LAST_STEP_VEHICLE_HALTING_NUMBER,
                 LAST_STEP_VEHICLE_NUMBER]  # fmt: skip
    getters = ["getWaitingTime", "getLastStepMeanSpeed", "getLastStepHaltingNumber",
               "getLastStepVehicleNumber"]  # fmt: skip
    asked: Counter[int] = Counter()

    def counted(k: int, get: Any) -> Any:
        def call(object_id: str) -> Any:
            asked[k] += 1
            return get(object_id)

        return call

    with Simulation(load_scenario("grid3x3", end=400), 1, None, SimConfig("libsumo")) as sim:
        lanes = [lane for lane in sim.api.lane.getIDList() if not lane.startswith(":")]
        edges = [edge for edge in sim.api.edge.getIDList() if not edge.startswith(":")]
        readers = [(sim.api.lane, lanes, sim.lane_reader(lanes, variables)),
                   (sim.api.edge, edges, sim.edge_reader(edges, variables))]  # fmt: skip
        for _, _, reader in readers:
            reader._getters = [counted(k, g) for k, g in enumerate(reader._getters)]  # type: ignore[attr-defined]
        for until in (100.0, 250.0, 400.0):
            sim.step(until)
            for domain, ids, reader in readers:
                expected = np.array(
                    [[getattr(domain, name)(x) for name in getters] for x in ids], dtype=float
                )
                busy = np.count_nonzero(expected[:, 3])
                assert 0 < busy < len(ids)  # empty and busy ones
                assert (expected[:, 0] > 0).any()  # someone waits
                asked.clear()
                assert np.array_equal(reader.read(), expected)
                assert asked == {0: busy, 1: len(ids), 2: busy, 3: len(ids)}
