"""The trained agent on disk: the algorithm table, agent.json and observation shaping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from twin_traffic.agent import (
    AGENT_FILE,
    AGENT_VERSION,
    ALGORITHM_NAMES,
    algorithm_class,
    identified_space,
    load_model,
    read_agent,
    shape_signals,
    write_agent,
)
from twin_traffic.errors import ControllerError


def test_shape_signals_pads_rows_and_masks_padded_actions() -> None:
    rows, masks = shape_signals(
        [np.array([0.5, 0.25]), np.array([1.0, 2.0, 3.0])], greens=[2, 4], width=4, actions=4
    )
    assert rows.dtype == np.float32 and masks.dtype == bool
    np.testing.assert_array_equal(rows, [[0.5, 0.25, 0, 0], [1, 2, 3, 0]])
    np.testing.assert_array_equal(masks, [[True, True, False, False], [True] * 4])


def test_shape_signals_appends_the_signal_one_hot_for_independent_policies() -> None:
    observations = [np.array([0.1]), np.array([0.2]), np.array([0.3])]
    rows, masks = shape_signals(observations, [2, 2, 3], width=2, actions=3, identify=True)
    assert rows.shape == (3, 2 + 3) and masks.shape == (3, 3)
    np.testing.assert_array_equal(rows[:, 2:], np.eye(3))
    np.testing.assert_allclose(rows[:, 0], [0.1, 0.2, 0.3])
    assert (rows[:, 1] == 0).all()


@pytest.mark.parametrize(
    ("observation", "greens", "problem"),
    [(np.zeros(3), 2, "3 observations"), (np.zeros(2), 4, "4 greens")],
)
def test_shape_signals_refuses_a_signal_wider_than_the_policy(
    observation: np.ndarray, greens: int, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        shape_signals([observation], [greens], width=2, actions=3)
    with pytest.raises(ValueError, match="2 observations for 1 signals"):
        shape_signals([observation, observation], [greens], width=2, actions=3)


def test_identified_space_matches_the_shaped_rows() -> None:
    from gymnasium import spaces

    space = identified_space(spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32), signals=3)
    rows, _ = shape_signals([np.zeros(2)] * 3, [1, 1, 1], 2, 1, identify=True)
    assert space.shape == (5,) and all(space.contains(row) for row in rows)


ENV = {
    "observation": ["queue"],
    "decision_interval": 5.0,
    "min_green": 5.0,
    "max_green": 60.0,
    "yellow": 3.0,
    "all_red": 0.0,
    "sensor_range": 50.0,
}


def test_agent_json_round_trip_carries_its_version(tmp_path: Path) -> None:
    write_agent(tmp_path, {"algo": "ppo", "env": {**ENV, "end": 100}})
    stored = json.loads((tmp_path / AGENT_FILE).read_text())
    assert stored["version"] == AGENT_VERSION
    assert read_agent(tmp_path) == stored
    # Files written before the version field existed read as version 1.
    (tmp_path / AGENT_FILE).write_text(json.dumps({"algo": "dqn", "env": ENV}))
    assert read_agent(tmp_path)["version"] == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "agent.json: missing"),
        ("{not json", "agent.json: damaged, not valid JSON"),
        ("[1, 2]", "agent.json: damaged, not a JSON object"),
        ('{"version": 99, "algo": "ppo", "env": {}}', "agent format version 99"),
        ('{"version": 1, "env": {}}', "no 'algo' entry"),
        ('{"algo": "ppo"}', "no 'env' entry"),
        ('{"algo": "sac", "env": {}}', "unknown algorithm 'sac'"),
        ('{"algo": "ppo", "env": {}}', "its 'env' entry lacks 'observation'"),
    ],
)
def test_a_bad_agent_json_is_named_with_the_fix(
    tmp_path: Path, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / AGENT_FILE).write_text(content)
    with pytest.raises(ControllerError, match=message):
        read_agent(tmp_path)


@pytest.mark.parametrize(
    ("algo", "scenario", "message"),
    [
        ("ppo", "single", r"cannot be loaded as 'ppo'.*twin-traffic train"),
        ("a2c", "grid3x3", r"its actions are MultiDiscrete"),
    ],
)
def test_a_model_twin_traffic_did_not_train_is_refused_clearly(
    tmp_path: Path, algo: str, scenario: str, message: str
) -> None:
    from stable_baselines3 import A2C, PPO

    from twin_traffic.envs import SignalEnv

    # Trained (here: made) with stable-baselines3 on the Gymnasium env directly: a plain
    # PPO, or an A2C choosing every signal's green at once.
    env = SignalEnv(scenario, end=30)
    {"ppo": PPO, "a2c": A2C}[algo]("MlpPolicy", env, n_steps=8, device="cpu").save(
        tmp_path / "model.zip"
    )
    env.close()
    write_agent(tmp_path, {"algo": algo, "env": ENV})
    with pytest.raises(ControllerError, match=message):
        load_model(tmp_path / "model.zip")


def test_the_algorithm_table_is_the_one_train_uses() -> None:
    from sb3_contrib import MaskablePPO

    from twin_traffic.train import ALGORITHMS

    assert tuple(ALGORITHMS) == ALGORITHM_NAMES == ("ppo", "a2c", "dqn")
    assert ALGORITHMS["ppo"] is algorithm_class("ppo") is MaskablePPO
    with pytest.raises(ControllerError, match="unknown algorithm 'sac'; choose one of: ppo"):
        algorithm_class("sac")
