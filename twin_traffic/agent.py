"""A trained agent on disk: its algorithm, its ``agent.json`` and how it sees signals.

Training (:mod:`twin_traffic.train`), the vector env (:mod:`twin_traffic.vec_env`), the
padded PettingZoo env and the policy controller all meet here, so what a model was
trained on and what it is given later are defined once:

* :func:`algorithms` — the algorithm table (stable-baselines3 classes by name);
* :func:`write_agent` / :func:`read_agent` — ``agent.json`` beside the model, with a
  format ``version``;
* :func:`load_model` — a saved model and its description;
* :func:`shape_signals` — a batch of signals' observations and action masks, padded to
  the policy's width, with the signal one-hot of independent policies.

stable-baselines3 (and torch) are imported only when a model is built or loaded, so the
envs can shape observations without them.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from twin_traffic.errors import ControllerError
from twin_traffic.files import read_json_object

if TYPE_CHECKING:
    from gymnasium import spaces
    from stable_baselines3.common.base_class import BaseAlgorithm

AGENT_FILE = "agent.json"
"""Written beside a trained model: its algorithm and the environment it learned in."""

AGENT_VERSION = 1
"""Format of ``agent.json``; files from before the field existed are version 1."""

# name -> "module:Class"; MaskablePPO reads the action masks, A2C and DQN do not.
_ALGORITHMS = {
    "ppo": "sb3_contrib:MaskablePPO",
    "a2c": "stable_baselines3:A2C",
    "dqn": "stable_baselines3:DQN",
}
ALGORITHM_NAMES: tuple[str, ...] = tuple(_ALGORITHMS)
"""The algorithms an agent can be trained with."""

_REQUIRED = ("algo", "env")
# What the policy controller rebuilds the training env's observations and timings from.
_ENV_KEYS = ("observation", "decision_interval", "min_green", "max_green", "yellow",
             "all_red", "sensor_range")  # fmt: skip


def algorithm_class(name: str) -> type[BaseAlgorithm]:
    """The stable-baselines3 class of an algorithm name (see :data:`ALGORITHM_NAMES`)."""
    if name not in _ALGORITHMS:
        raise ControllerError(
            f"unknown algorithm '{name}'; choose one of: {', '.join(ALGORITHM_NAMES)}"
        )
    module_name, _, class_name = _ALGORITHMS[name].partition(":")
    algorithm: type[BaseAlgorithm] = getattr(importlib.import_module(module_name), class_name)
    return algorithm


def algorithms() -> dict[str, type[BaseAlgorithm]]:
    """The algorithm table: every name of :data:`ALGORITHM_NAMES` with its class."""
    return {name: algorithm_class(name) for name in ALGORITHM_NAMES}


def write_agent(folder: Path, description: Mapping[str, Any]) -> Path:
    """Write ``agent.json`` (``description`` plus the format version) into ``folder``."""
    path = folder / AGENT_FILE
    content = {"version": AGENT_VERSION, **description}
    path.write_text(json.dumps(content, indent=2, default=list) + "\n")
    return path


def read_agent(folder: Path) -> dict[str, Any]:
    """Read and check the ``agent.json`` of ``folder``.

    Raises:
        ControllerError: the file is missing, not JSON, of another format version, or
            lacks the algorithm or environment; the message names the file.
    """
    path = folder / AGENT_FILE
    if not path.is_file():
        raise ControllerError(
            f"{path}: missing; a model trained by twin-traffic has it beside the .zip"
        )
    description = read_json_object(path, "train the agent again", ControllerError)
    version = description.setdefault("version", AGENT_VERSION)
    if version != AGENT_VERSION:
        raise ControllerError(
            f"{path}: agent format version {version!r}, this twin-traffic reads version "
            f"{AGENT_VERSION}; train the agent again with this version"
        )
    missing = [key for key in _REQUIRED if key not in description]
    if missing:
        raise ControllerError(f"{path}: no '{missing[0]}' entry; train the agent again")
    if description["algo"] not in _ALGORITHMS:
        raise ControllerError(
            f"{path}: unknown algorithm {description['algo']!r}; "
            f"it must be one of {', '.join(ALGORITHM_NAMES)}"
        )
    env = description["env"]
    missing = [key for key in _ENV_KEYS if not isinstance(env, dict) or key not in env]
    if missing:
        raise ControllerError(
            f"{path}: its 'env' entry lacks '{missing[0]}' (it needs "
            f"{', '.join(_ENV_KEYS)}); train the agent again"
        )
    return description


def load_model(path: Path) -> tuple[Any, dict[str, Any]]:
    """A saved stable-baselines3 model and the description of its training env."""
    if not path.is_file():
        raise ControllerError(f"{path}: no trained model there; train one with twin-traffic train")
    description = read_agent(path.parent)
    import torch
    from gymnasium import spaces

    torch.set_num_threads(1)  # one process per simulation already fills the cores
    algo = description["algo"]
    try:
        model = algorithm_class(algo).load(str(path), device="cpu")
    except Exception as error:  # another algorithm's or library's file
        raise ControllerError(
            f"{path}: cannot be loaded as '{algo}' ({_ALGORITHMS[algo]}): {error}; the policy "
            "controller runs models that `twin-traffic train` wrote"
        ) from None
    if not isinstance(model.action_space, spaces.Discrete):
        raise ControllerError(
            f"{path}: its actions are {model.action_space}; the policy controller runs a "
            "policy that chooses one signal's green (Discrete), as `twin-traffic train` trains"
        )
    return model, description


def shape_signals(
    observations: Sequence[np.ndarray],
    greens: Sequence[int],
    width: int,
    actions: int,
    identify: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """One batch for a policy from the signals' own observations and green counts.

    Args:
        observations: each signal's observation vector (any length up to ``width``).
        greens: each signal's number of greens (up to ``actions``).
        width: the policy's observation width, without the signal one-hot.
        actions: the policy's number of actions.
        identify: end each row with a one-hot of its signal (independent policies,
            :mod:`twin_traffic.policies`).

    Returns:
        ``(rows, masks)``: ``rows`` of shape ``(signals, width [+ signals])``, float32,
        zero-padded; ``masks`` of shape ``(signals, actions)``, True for a signal's greens
        and False for the padded actions.

    Raises:
        ValueError: a signal with more observations or greens than the policy takes.
    """
    if len(observations) != len(greens):
        raise ValueError(f"{len(observations)} observations for {len(greens)} signals")
    count = len(observations)
    rows = np.zeros((count, width), dtype=np.float32)
    masks = np.zeros((count, actions), dtype=bool)
    for row, (vector, num_greens) in enumerate(zip(observations, greens, strict=True)):
        if len(vector) > width or num_greens > actions:
            raise ValueError(
                f"signal {row}: {len(vector)} observations and {num_greens} greens do not fit "
                f"a policy of {width} and {actions}"
            )
        rows[row, : len(vector)] = vector
        masks[row, :num_greens] = True
    if identify:
        rows = np.hstack([rows, np.eye(count, dtype=np.float32)])
    return rows, masks


def identified_space(space: spaces.Box, signals: int) -> spaces.Box:
    """``space`` extended by the signal one-hot that :func:`shape_signals` appends."""
    from gymnasium import spaces

    low = np.concatenate([space.low, np.zeros(signals, dtype=np.float32)])
    high = np.concatenate([space.high, np.ones(signals, dtype=np.float32)])
    return spaces.Box(low, high, dtype=np.float32)
