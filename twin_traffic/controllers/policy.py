"""A trained RL agent as a controller: the policy picks each signal's green."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from twin_traffic.agent import load_model, shape_signals
from twin_traffic.controllers.decision import GreenChooser
from twin_traffic.errors import ControllerError
from twin_traffic.features import Observer, SignalLayout, Snapshot
from twin_traffic.signals import PhaseEngine

if TYPE_CHECKING:
    from twin_traffic.network import Network


class PolicyController(GreenChooser):
    """Runs a model trained with ``twin-traffic train`` on any scenario whose signals fit
    it, with the observations and safety timings it learned with, deciding at the
    interval its recipe deploys it at (``deploy_interval`` in ``agent.json``; the
    training env's interval for agents without one).

    Args:
        model: path of the ``.zip`` (e.g. ``runs/NAME/best.zip``).
        deterministic: take the most likely action (else sample).
        decision_interval: seconds between decisions; 0 for the agent's own.
    """

    name = "policy"

    def __init__(
        self, model: str, deterministic: bool = True, decision_interval: float = 0.0
    ) -> None:
        self.model_path = Path(str(model))
        self.model, self.description = load_model(self.model_path)
        env = self.description["env"]
        own = self.description.get("deploy_interval", env["decision_interval"])
        super().__init__(
            decision_interval=float(decision_interval) or float(own),
            min_green=env["min_green"],
            max_green=env["max_green"],
            yellow=env["yellow"],
            all_red=env["all_red"],
            clearance=env.get("clearance", "yellow"),  # older agents: yellow + all_red
        )
        self.deterministic = bool(deterministic)
        self.observation = tuple(env["observation"])
        self.sensor_range = float(env["sensor_range"])
        self.actions = int(self.model.action_space.n)
        # Independent policies end each observation with a one-hot of the signal.
        self.signals: list[str] | None = (
            list(self.description["signals"]) if self.description.get("independent") else None
        )
        identity = len(self.signals) if self.signals is not None else 0
        self.width = int(self.model.observation_space.shape[0]) - identity

    def observer_for(self, network: Network) -> Observer:
        """The observations the policy was trained on."""
        return Observer(
            network,
            network.controlled_ids,
            self.observation,
            reward="queue",
            max_green=self.timing.max_green,
            sensor_range=self.sensor_range,
        )

    def additional_files(self, network: Network, directory: Path) -> list[Path]:
        """Detectors, when the policy observes through them."""
        observer = self.observer_for(network)
        if not observer.needs_detectors:
            return []
        return [
            observer.detector_file(directory / "policy-detectors.add.xml", network.lane_lengths)
        ]

    def start(self, network: Network, engines: Sequence[PhaseEngine], observer: Observer) -> None:
        """Check the signals fit the policy."""
        if self.signals is not None and list(network.controlled_ids) != self.signals:
            raise ControllerError(
                f"{self.model_path}: independent policies belong to the network they were "
                f"trained on (signals {', '.join(self.signals)}); train them on this one"
            )
        super().start(network, engines, observer)
        for layout, engine in zip(observer.layouts, engines, strict=True):
            size = len(observer.observation_bounds(layout)[0])
            if size > self.width or engine.num_greens > self.actions:
                raise ControllerError(
                    f"{self.model_path}: signal {layout.id} does not fit this policy "
                    f"({size} observations and {engine.num_greens} greens, the policy takes "
                    f"{self.width} and {self.actions}); train it on this network"
                )

    def greens(
        self, snapshot: Snapshot, engines: Sequence[PhaseEngine], observer: Observer
    ) -> list[int]:
        """Ask the policy for every signal's green at once."""
        observations, masks = shape_signals(
            observer.observe_all(snapshot, engines),
            [engine.num_greens for engine in engines],
            self.width, self.actions, identify=self.signals is not None,
        )  # fmt: skip
        actions = self.predict(observations, masks)
        return [
            int(a) if a < engine.num_greens else engine.current_green
            for a, engine in zip(actions, engines, strict=True)
        ]

    def predict(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """The policy's actions for a batch of signals."""
        if self.description["algo"] == "ppo":
            actions, _ = self.model.predict(
                observations, deterministic=self.deterministic, action_masks=masks
            )
        else:
            actions, _ = self.model.predict(observations, deterministic=self.deterministic)
        return np.asarray(actions).reshape(-1)

    def choose(self, layout: SignalLayout, snapshot: Snapshot, engine: PhaseEngine) -> int:
        """Unused: :meth:`greens` asks the policy for all signals in one batch."""
        raise NotImplementedError
