"""Behaviour cloning: start a policy at a classical controller's level before RL.

A policy trained from scratch starts by switching at random, which on a real network
near saturation gridlocks it for the first hundreds of thousands of steps. Instead, the
teacher — a deciding classical controller such as max-pressure, run with the env's own
timings — drives the training env while its decisions are recorded
(:func:`demonstrate`); the policy is then fitted to them by maximum likelihood, and
its value head to the discounted returns those decisions earned (:func:`clone`), so
PPO begins from the teacher's behaviour with a critic that already knows it. This is
behaviour cloning as pre-training for policy-gradient RL (e.g. Rajeswaran et al. 2018,
"Learning complex dexterous manipulation with deep RL and demonstrations"). A share
``explore`` of the recorded steps takes a random valid action instead of the teacher's,
so the demonstrations also show the teacher recovering from states it would not reach
on its own (Ross and Bagnell 2010); later rounds let the cloned policy drive while the
teacher labels the states it reaches (DAgger, Ross, Gordon and Bagnell 2011), since a
policy's own mistakes lead it where the teacher never went.

The observations that let one shared policy imitate a max-pressure teacher are the
per-green ``greens`` and ``timing`` blocks of :mod:`twin_traffic.features`: they hold
the teacher's inputs in the same place for every signal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from twin_traffic.errors import TwinTrafficError

if TYPE_CHECKING:
    from twin_traffic.controllers.decision import GreenChooser
    from twin_traffic.envs import EnvConfig
    from twin_traffic.vec_env import SignalVecEnv

# The env's timings a teacher takes, so it decides under the agent's own rules.
_TIMING_KEYS = ("decision_interval", "min_green", "max_green", "yellow", "all_red", "clearance",
                "cycle")  # fmt: skip


def make_teacher(name: str, config: EnvConfig) -> GreenChooser:
    """The deciding classical controller ``name`` with the env's timings and cycle, and
    without the blocked-lane rule (its stop-line loops would slow every training step).

    Raises:
        TwinTrafficError: ``name`` is not a controller that decides in Python
            (fixed-time, actuated and Webster plans are run by SUMO and cannot say what
            they would do in a state).
    """
    from twin_traffic.controllers import make_controller
    from twin_traffic.controllers.decision import GreenChooser
    from twin_traffic.errors import ControllerError

    if name not in teachers():
        raise TwinTrafficError(
            f"teacher '{name}' cannot teach: choose a controller that decides from the "
            f"state: {', '.join(teachers())}"
        )
    from twin_traffic.controllers.parameters import PARAMETERS

    params: dict[str, object] = {key: getattr(config, key) for key in _TIMING_KEYS}
    if any(param.name == "blocked_after" for param in PARAMETERS[name]):
        # The rule's stop-line loops would be read at every training step (13% of the
        # env's steps/s on grid3x3), though a teacher speaks only while demonstrations
        # are recorded.
        params["blocked_after"] = 0.0
    try:
        teacher = make_controller(name, params)
    except ControllerError as error:
        raise TwinTrafficError(f"teacher '{name}': {error}") from None
    assert isinstance(teacher, GreenChooser)
    return teacher


def teachers() -> list[str]:
    """The controllers that can teach: those that decide from the state in Python."""
    from twin_traffic.controllers import CONTROLLERS

    return [name for name in CONTROLLERS if _is_chooser(name)]


def _is_chooser(name: str) -> bool:
    import importlib

    from twin_traffic.controllers import CONTROLLERS
    from twin_traffic.controllers.decision import GreenChooser

    module_name, _, class_name = CONTROLLERS[name].partition(":")
    if name in ("policy", "plan", "tuned"):  # needs files; never a chooser
        return False
    factory = getattr(importlib.import_module(module_name), class_name)
    return isinstance(factory, type) and issubclass(factory, GreenChooser)


@dataclass
class Demonstrations:
    """What the teacher did: per recorded slot-step, the observation the policy sees,
    the valid actions, the teacher's action and the discounted return that followed."""

    observations: np.ndarray
    masks: np.ndarray
    actions: np.ndarray
    returns: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)


Driver = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Actions for a batch of observations and action masks (a policy's ``predict``)."""


def demonstrate(
    vec: SignalVecEnv,
    steps: int,
    gamma: float,
    explore: float = 0.1,
    seed: int = 0,
    driver: Driver | None = None,
    progress: Callable[[int], None] | None = None,
) -> Demonstrations:
    """Record the teacher of ``vec`` (made with ``teacher=``) for ``steps`` slot-steps.

    The teacher's choice is recorded in every state. Who drives is the teacher, or
    ``driver`` (DAgger: the learner drives, so the teacher labels the states the
    learner reaches, Ross et al. 2011); with probability ``explore`` a slot takes a
    random valid action instead. Returns are discounted with ``gamma`` and restart at
    each episode end; the last steps of the recording are cut by its end like a time
    limit. ``progress`` hears the slot-steps recorded so far.

    Raises:
        TwinTrafficError: ``vec`` has no teacher, or the arguments are out of range.
    """
    if steps < 1 or not 0.0 <= explore < 1.0 or not 0.0 <= gamma < 1.0:
        raise TwinTrafficError("demonstrate: steps >= 1, 0 <= explore < 1 and 0 <= gamma < 1")
    rng = np.random.default_rng(seed)
    masks = vec.action_masks().astype(bool)
    rounds = math.ceil(steps / vec.num_envs)
    observations: list[np.ndarray] = []
    actions: list[np.ndarray] = []
    rewards: list[np.ndarray] = []
    dones: list[np.ndarray] = []
    observation = np.asarray(vec.reset())
    for step in range(rounds):
        if progress is not None:
            progress(min(step * vec.num_envs, steps))
        teacher = vec.teacher_actions()
        taken = teacher.copy() if driver is None else np.asarray(driver(observation, masks))
        for slot in np.flatnonzero(rng.random(vec.num_envs) < explore):
            taken[slot] = rng.choice(np.flatnonzero(masks[slot]))
        observations.append(observation)
        actions.append(teacher)
        next_observation, reward, done, _ = vec.step(taken)
        observation = np.asarray(next_observation)
        rewards.append(np.asarray(reward, dtype=np.float32))
        dones.append(np.asarray(done, dtype=np.float32))
    if progress is not None:
        progress(steps)
    returns = np.zeros((rounds, vec.num_envs), dtype=np.float32)
    following = np.zeros(vec.num_envs)
    for t in range(rounds - 1, -1, -1):
        following = rewards[t] + gamma * following * (1.0 - dones[t])
        returns[t] = following
    return Demonstrations(
        observations=np.concatenate(observations).astype(np.float32),
        masks=np.tile(masks, (rounds, 1)),
        actions=np.concatenate(actions),
        returns=returns.ravel(),
    )


def clone(
    model: Any,
    demonstrations: Demonstrations,
    epochs: int = 10,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    value_weight: float = 0.5,
    seed: int = 0,
) -> float:
    """Fit ``model``'s policy (MaskablePPO's) to the teacher's actions by maximum
    likelihood, and its value head to the returns; returns the last epoch's mean loss."""
    import torch

    policy = model.policy
    generator = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(policy.parameters(), lr=learning_rate)
    policy.set_training_mode(True)
    mean_loss = 0.0
    for _ in range(epochs):
        order = generator.permutation(len(demonstrations))
        losses = [
            imitation_step(policy, optimizer, demonstrations, order[start : start + batch_size],
                           value_weight=value_weight)
            for start in range(0, len(order), batch_size)
        ]  # fmt: skip
        mean_loss = float(np.mean(losses))
    policy.set_training_mode(False)
    return mean_loss


def imitation_step(
    policy: Any,
    optimizer: Any,
    demonstrations: Demonstrations,
    batch: np.ndarray,
    scale: float = 1.0,
    value_weight: float = 0.0,
) -> float:
    """One optimiser step on the rows ``batch``: ``scale`` × (the negative
    log-likelihood of the teacher's actions + ``value_weight`` × the value head's squared
    error on the returns). Returns the loss."""
    import torch

    values, log_prob, _ = policy.evaluate_actions(
        torch.as_tensor(demonstrations.observations[batch]),
        torch.as_tensor(demonstrations.actions[batch]),
        action_masks=demonstrations.masks[batch],
    )
    loss = -log_prob.mean()
    if value_weight:
        returns = torch.as_tensor(demonstrations.returns[batch])
        loss = loss + value_weight * torch.nn.functional.mse_loss(values.flatten(), returns)
    loss = scale * loss
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
    optimizer.step()
    return float(loss.item())


def joined(parts: list[Demonstrations]) -> Demonstrations:
    """Several recordings as one."""
    return Demonstrations(
        *(np.concatenate([getattr(part, f.name) for part in parts]) for f in fields(Demonstrations))
    )


def split(recorded: Demonstrations, share: float) -> tuple[Demonstrations, Demonstrations]:
    """The recording cut in time: the first ``1 - share`` and the last ``share``."""
    cut = len(recorded) - max(int(len(recorded) * share), 1)
    arrays = [getattr(recorded, f.name) for f in fields(Demonstrations)]
    return (
        Demonstrations(*(array[:cut] for array in arrays)),
        Demonstrations(*(array[cut:] for array in arrays)),
    )


def policy_driver(model: Any) -> Driver:
    """A MaskablePPO model's deterministic actions as a :data:`Driver`."""

    def drive(observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        actions, _ = model.predict(observations, action_masks=masks, deterministic=True)
        return np.asarray(actions)

    return drive


def agreement(model: Any, demonstrations: Demonstrations) -> float:
    """Share of the recorded states in which the policy's most likely action is the
    teacher's."""
    chosen, _ = model.predict(
        demonstrations.observations, action_masks=demonstrations.masks, deterministic=True
    )
    return float(np.mean(np.asarray(chosen) == demonstrations.actions))


def keep_imitating(
    demonstrations: Demonstrations,
    weight: float,
    decay: float,
    batches: int = 8,
    batch_size: int = 256,
    seed: int = 0,
) -> Any:
    """A stable-baselines3 callback that, after every rollout, takes ``batches`` steps of
    the policy's optimiser on the teacher's actions, the loss scaled by ``weight`` ×
    ``decay`` ^ rollouts so far: the decaying behaviour-cloning term of DAPG (Rajeswaran
    et al. 2018), which keeps PPO near the teacher while its own gradient is noisy."""
    from stable_baselines3.common.callbacks import BaseCallback

    class KeepImitating(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.rollouts = 0
            self.generator = np.random.default_rng(seed)

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            scale = weight * decay**self.rollouts
            self.rollouts += 1
            if scale < 1e-3:
                return
            policy: Any = self.model.policy
            policy.set_training_mode(True)
            for _ in range(batches):
                batch = self.generator.integers(len(demonstrations), size=batch_size)
                imitation_step(policy, policy.optimizer, demonstrations, batch, scale)
            policy.set_training_mode(False)
            self.logger.record("imitation/weight", scale)

    return KeepImitating()
