"""Behaviour cloning: per-green observations that hold the teacher's inputs, and a
policy fitted to a classical controller's decisions that makes them on states it never
saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import Logger

from twin_traffic.agent import algorithm_class
from twin_traffic.envs import EnvConfig, SignalParallelEnv
from twin_traffic.errors import TwinTrafficError
from twin_traffic.features import (
    GREEN_FEATURES,
    green_pressures,
    running_vehicles,
    squash,
    with_pending,
)
from twin_traffic.imitation import (
    agreement,
    clone,
    demonstrate,
    keep_imitating,
    make_teacher,
)
from twin_traffic.train import Recipe, check_recipe
from twin_traffic.vec_env import SignalVecEnv

ALIGNED = ("greens", "running", "timing")


def test_greens_block_lines_up_the_teachers_pressures_with_the_actions() -> None:
    """On ``mixed`` (signals of 2, 3 and 4 greens) every agent's observation has the same
    layout: green g's block holds g's vehicle and queue pressures (efficient
    max-pressure's scores) and its running vehicles (as Advanced-MP counts them),
    padded greens are zero."""
    env = SignalParallelEnv("mixed", observation=("greens", "running", "timing"),
                            teacher="efficient-max-pressure", end=600.0)  # fmt: skip
    teacher = env.twin.teacher
    assert teacher is not None
    most = env.twin.observer.max_greens
    assert most == 4
    try:
        observations, _ = env.reset(seed=3)
        rng = np.random.default_rng(0)
        seen_pressure = False
        for _ in range(60):
            snapshot = env.twin._last
            assert snapshot is not None
            for index, agent in enumerate(env.possible_agents):
                layout, engine = env.twin.layouts[index], env.twin.bank.engines[index]
                row = observations[agent]
                assert row.shape == (most * GREEN_FEATURES + most + 3,)
                block = row[: most * GREEN_FEATURES].reshape(most, GREEN_FEATURES)
                open_links = teacher.open_links(layout, snapshot)
                vehicles = green_pressures(
                    layout, with_pending(snapshot.vehicles, snapshot), open_links
                )
                np.testing.assert_allclose(
                    block[: layout.num_greens, 1], squash(vehicles), rtol=1e-5
                )
                expected = squash(teacher.scores(layout, snapshot))
                np.testing.assert_allclose(block[: layout.num_greens, 2], expected, rtol=1e-5)
                assert not block[layout.num_greens :].any()
                running = row[most * GREEN_FEATURES : most * GREEN_FEATURES + most]
                moving = running_vehicles(layout, snapshot, open_links)
                np.testing.assert_allclose(running[: layout.num_greens], squash(moving), rtol=1e-5)
                assert not running[layout.num_greens :].any()
                assert block[:, 0].argmax() == engine.current_green
                seen_pressure |= bool(expected.max() > 0)
            actions = {a: int(rng.integers(env.greens[a])) for a in env.possible_agents}
            observations, *_ = env.step(actions)
    finally:
        env.close()
    assert seen_pressure


def test_a_cloned_policy_decides_as_its_teacher_on_held_out_states() -> None:
    """Before any PPO update, cloning max-pressure's decisions on one seed gives a policy
    that chooses as max-pressure does on at least 90% of the states of another seed."""
    torch.set_num_threads(1)
    config = EnvConfig(scenario="grid3x3", observation=ALIGNED, reward="queue", min_green=15.0,
                       end=900.0)  # fmt: skip
    training = SignalVecEnv(config, 1, seed=0, teacher="max-pressure")
    held = SignalVecEnv(config, 1, seed=5, teacher="max-pressure")
    try:
        recorded = demonstrate(training, 3000, gamma=0.95, explore=0.1, seed=0)
        unseen = demonstrate(held, 600, gamma=0.95, explore=0.0, seed=1)
        model = algorithm_class("ppo")("MlpPolicy", training, seed=0, device="cpu",
                                       policy_kwargs={"net_arch": [64, 64]})  # fmt: skip
        before = agreement(model, unseen)
        clone(model, recorded, epochs=15)
        after = agreement(model, unseen)
        # The cloning loss kept during PPO pulls a fresh policy towards the teacher too.
        fresh = algorithm_class("ppo")("MlpPolicy", training, seed=1, device="cpu",
                                       learning_rate=1e-3)  # fmt: skip
        fresh.set_logger(Logger(None, []))  # as learn() would, with no folder
        keeping = keep_imitating(recorded, weight=1.0, decay=0.5, batches=60)
        keeping.init_callback(fresh)
        untaught = agreement(fresh, unseen)
        keeping.on_rollout_end()
        taught = agreement(fresh, unseen)
    finally:
        training.close()
        held.close()
    assert len(recorded) >= 3000 and np.isfinite(recorded.returns).all()
    assert after >= 0.9, f"agreement with the teacher on held-out states: {after:.2f}"
    assert after > before + 0.2
    assert taught > untaught + 0.1 and keeping.rollouts == 1


def test_only_a_deciding_controller_can_teach() -> None:
    with pytest.raises(TwinTrafficError, match="teacher 'fixed' cannot teach"):
        make_teacher("fixed", EnvConfig())
    with pytest.raises(TwinTrafficError, match="no teacher"):
        env = SignalParallelEnv("single", end=60.0)
        env.reset(seed=0)
        try:
            env.teacher_actions()
        finally:
            env.close()
    with pytest.raises(TwinTrafficError, match="teacher needs algo = ppo"):
        check_recipe(Recipe(algo="a2c", teacher="max-pressure"), "r.toml")
    with pytest.raises(TwinTrafficError, match=r"r\.toml: teacher .webster. cannot teach"):
        check_recipe(Recipe(teacher="webster"), "r.toml")


def test_the_teacher_decides_with_the_envs_timings() -> None:
    teacher = make_teacher("sotl", EnvConfig(min_green=12.0, yellow=4.0, decision_interval=2.0))
    assert teacher.timing.min_green == 12.0 and teacher.timing.yellow == 4.0
    assert teacher.decision_interval == 2.0
    # The blocked-lane rule's stop-line loops are not read in the env: the teacher goes
    # without the rule (SOTL never had it).
    for name in ("max-pressure", "advanced-max-pressure", "greedy"):
        assert make_teacher(name, EnvConfig()).blocked_after == 0.0
        assert "crossed" not in make_teacher(name, EnvConfig()).needs
