"""A stable-baselines3 VecEnv in which every signal of every simulation is one slot.

One shared policy learns from all signals at once: each simulation runs a padded
:class:`~twin_traffic.envs.SignalParallelEnv` in its own process (libsumo allows one
per process), and the VecEnv flattens their agents into ``simulations × signals`` slots,
with action masks for signals that have fewer greens than the most (MaskablePPO reads
them through ``env_method("action_masks")``); the rows and masks are shaped by
:func:`twin_traffic.agent.shape_signals`, as the policy controller shapes them later.
Episodes restart inside the workers with the next seed of a deterministic sequence, so a
training run is reproducible.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from twin_traffic.agent import identified_space, shape_signals
from twin_traffic.envs import EnvConfig, SignalParallelEnv
from twin_traffic.errors import TwinTrafficError
from twin_traffic.workers import become_worker, children_ignore_sigint

# Training episodes use seeds from here on; evaluation seeds below it stay unseen.
TRAINING_SEED_BASE = 1_000_000


def training_seed(seed: int, simulation: int, episode: int, simulations: int) -> int:
    """SUMO seed of a training episode: distinct per run seed, simulation and episode."""
    return TRAINING_SEED_BASE + seed * 100_000 + episode * simulations + simulation


def _worker(
    remote: Connection,
    config: EnvConfig,
    seed: int,
    index: int,
    count: int,
    identify: bool,
    teacher: str | None,
) -> None:
    """Runs one padded parallel env; answers commands from the VecEnv. An error (a bad
    config, SUMO failing) is sent back for the VecEnv to raise."""
    become_worker()
    try:
        env = SignalParallelEnv(config=config, padded=True, teacher=teacher)
    except Exception as error:
        with contextlib.suppress(BrokenPipeError):
            remote.send(_sendable(error))
        remote.close()
        return
    remote.send("ready")
    agents = env.possible_agents
    space, action_space = env.observation_space(agents[0]), env.action_space(agents[0])
    width, actions = int(space.shape[0]), int(action_space.n)
    greens = [env.greens[a] for a in agents]
    episode = 0

    def stack(observations: dict[str, np.ndarray]) -> np.ndarray:
        # With independent policies each slot says which signal it is (a one-hot at the end).
        rows, _ = shape_signals([observations[a] for a in agents], greens, width, actions, identify)
        return rows

    def restart() -> dict[str, np.ndarray]:
        nonlocal episode
        observations, _ = env.reset(seed=training_seed(seed, index, episode, count))
        episode += 1
        return observations

    def answer(command: str, data: Any) -> Any:
        nonlocal episode
        if command == "reset":
            episode = 0
            return stack(restart())
        if command == "step":
            observations, rewards, _, truncations, infos = env.step(
                dict(zip(agents, data, strict=True))
            )
            truncated = truncations[agents[0]]
            final = stack(observations)
            result = {
                "observations": final,
                "rewards": np.array([rewards[a] for a in agents], dtype=np.float32),
                "truncated": truncated,
                "info": {k: v for k, v in infos[agents[0]].items() if k != "action_mask"},
            }
            if truncated:
                result["final_observations"] = final
                result["observations"] = stack(restart())
            return result
        if command == "teacher":
            chosen = env.teacher_actions()
            return np.array([chosen[a] for a in agents], dtype=np.int64)
        if command == "masks":
            empty = [np.zeros(0, dtype=np.float32)] * len(agents)
            return shape_signals(empty, greens, width, actions)[1]
        if command == "spaces":
            shaped = identified_space(space, len(agents)) if identify else space
            return (shaped, action_space, list(agents))
        raise TwinTrafficError(f"unknown command {command!r}")

    try:
        while True:
            try:
                command, data = remote.recv()
            except (EOFError, OSError):  # the parent went away without closing us
                break
            if command == "close":
                break
            try:
                reply = answer(command, data)
            except Exception as error:
                reply = _sendable(error)
            remote.send(reply)
    except BrokenPipeError:  # the parent went away while we answered
        pass
    finally:
        env.close()
        remote.close()


def _sendable(error: Exception) -> Exception:
    """``error`` if it survives pickling, else a TwinTrafficError with its message."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return TwinTrafficError(f"{type(error).__name__}: {error}")
    return error


def _answer(remote: Connection) -> Any:
    """A worker's reply; an error it sent back is raised here."""
    reply = remote.recv()
    if isinstance(reply, BaseException):
        raise reply
    return reply


def _answers(remotes: Sequence[Connection]) -> list[Any]:
    """Every worker's reply, all read before the first error among them is raised (so
    no reply is left waiting in a pipe)."""
    replies = [remote.recv() for remote in remotes]
    for reply in replies:
        if isinstance(reply, BaseException):
            raise reply
    return replies


class SignalVecEnv(VecEnv):
    """``simulations`` SUMO runs × their signals as the slots of one VecEnv.

    Args:
        config: the environment configuration (``padded`` is implied).
        simulations: SUMO runs in parallel, one process each.
        seed: the run's seed; episode seeds follow :func:`training_seed`.
        identify: end each observation with a one-hot of its signal (for independent
            policies, :mod:`twin_traffic.policies`).
        teacher: a classical controller whose choices :meth:`teacher_actions` gives
            (behaviour cloning, :mod:`twin_traffic.imitation`).
    """

    def __init__(
        self,
        config: EnvConfig,
        simulations: int = 1,
        seed: int = 0,
        identify: bool = False,
        teacher: str | None = None,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.simulations = simulations
        self._remotes: list[Connection] = []
        self._processes = []
        for index in range(simulations):
            local, remote = context.Pipe()
            process = context.Process(
                target=_worker,
                args=(remote, config, seed, index, simulations, identify, teacher),
                daemon=True,
            )
            with children_ignore_sigint():
                process.start()
            remote.close()
            self._remotes.append(local)
            self._processes.append(process)
        self.closed = False
        try:
            _answers(self._remotes)  # each env is made (or its config refused)
            self._remotes[0].send(("spaces", None))
            observation_space, action_space, self.signal_ids = _answer(self._remotes[0])
            self.signals = len(self.signal_ids)
            super().__init__(simulations * self.signals, observation_space, action_space)
            self._actions: np.ndarray | None = None
            # A signal's valid greens never change: ask once.
            for remote in self._remotes:
                remote.send(("masks", None))
            self._masks = np.concatenate(_answers(self._remotes))
        except BaseException:  # e.g. Ctrl-C while the simulations start: stop them too
            self.close()
            raise

    def reset(self) -> VecEnvObs:
        """Restart every simulation from the start of its seed sequence."""
        for remote in self._remotes:
            remote.send(("reset", None))
        return np.concatenate(_answers(self._remotes))

    def step_async(self, actions: np.ndarray) -> None:
        """Send each simulation the actions of its signals."""
        self._actions = np.asarray(actions).reshape(self.simulations, self.signals)
        for remote, actions_of_sim in zip(self._remotes, self._actions, strict=True):
            remote.send(("step", [int(a) for a in actions_of_sim]))

    def step_wait(self) -> VecEnvStepReturn:
        """Collect every slot's observation, reward, done and info."""
        observations, rewards, dones, infos = [], [], [], []
        for result in _answers(self._remotes):
            observations.append(result["observations"])
            rewards.append(result["rewards"])
            dones.append(np.full(self.signals, result["truncated"]))
            for slot in range(self.signals):
                info = dict(result["info"])
                if result["truncated"]:
                    # A time limit, not a terminal state: SB3 bootstraps from this.
                    info["terminal_observation"] = result["final_observations"][slot]
                    info["TimeLimit.truncated"] = True
                infos.append(info)
        return np.concatenate(observations), np.concatenate(rewards), np.concatenate(dones), infos

    def action_masks(self) -> np.ndarray:
        """Valid actions of every slot, shape ``(slots, actions)``."""
        return self._masks

    def teacher_actions(self) -> np.ndarray:
        """The teacher's green for every slot now (the env was made with ``teacher``)."""
        for remote in self._remotes:
            remote.send(("teacher", None))
        return np.concatenate(_answers(self._remotes))

    def close(self) -> None:
        """Stop the simulations."""
        if self.closed:
            return
        for remote in self._remotes:
            with contextlib.suppress(BrokenPipeError, EOFError):  # a worker already gone
                remote.send(("close", None))
        for process in self._processes:
            process.join(timeout=10)
        self.closed = True

    # The VecEnv interface for attributes and methods of the slots.

    def env_method(
        self, method_name: str, *args: Any, indices: VecEnvIndices = None, **kwargs: Any
    ) -> list[Any]:
        """Only ``action_masks`` is served (what MaskablePPO asks for)."""
        if method_name != "action_masks":
            raise AttributeError(f"SignalVecEnv slots have no method {method_name!r}")
        masks = self.action_masks()
        return [masks[i] for i in self._get_indices(indices)]

    def has_attr(self, attr_name: str) -> bool:
        """Slots have ``action_masks`` and ``render_mode``."""
        return attr_name in ("action_masks", "render_mode")

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Slots expose ``render_mode`` (None) only."""
        if attr_name != "render_mode":
            raise AttributeError(f"SignalVecEnv slots have no attribute {attr_name!r}")
        return [None for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Not supported: the slots live in other processes."""
        raise AttributeError("SignalVecEnv slots cannot be changed from here")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        """No slot is wrapped."""
        return [False for _ in self._get_indices(indices)]

    def _get_indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)
