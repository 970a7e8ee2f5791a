"""libsumo and TraCI give the same episode: every observation, reward and info of random
decisions matches exactly, for every observation that reads SUMO (lanes, detectors)."""

from __future__ import annotations

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
