"""Independent policies: one network per signal inside one stable-baselines3 model.

Each slot's observation ends with a one-hot of its signal. :class:`PerSignalExtractor`
runs a sample through its own signal's policy and value networks only, and places the
result in that signal's block of a wider latent vector, so the final action and value
layers are per signal too: no parameter is shared between signals, and a signal's
networks learn from its own experience only (the optimiser's step and PPO's advantage
normalisation are common to the batch).
"""

from __future__ import annotations

from typing import Any

import torch as th
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from torch import nn


def _mlp(inputs: int, layers: list[int], activation: type[nn.Module]) -> nn.Sequential:
    modules: list[nn.Module] = []
    for size in layers:
        modules += [nn.Linear(inputs, size), activation()]
        inputs = size
    return nn.Sequential(*modules)


class PerSignalExtractor(nn.Module):
    """Policy and value networks for each of ``signals`` signals.

    Args:
        features_dim: observation size, the signal one-hot included.
        signals: number of signals (the one-hot's length).
        net_arch: hidden layers, a list, or ``{"pi": [...], "vf": [...]}``.
        activation_fn: the hidden layers' activation.
    """

    def __init__(
        self,
        features_dim: int,
        signals: int,
        net_arch: list[int] | dict[str, list[int]],
        activation_fn: type[nn.Module],
    ) -> None:
        super().__init__()
        self.signals = signals
        inputs = features_dim - signals
        pi = list(net_arch["pi"] if isinstance(net_arch, dict) else net_arch)
        vf = list(net_arch["vf"] if isinstance(net_arch, dict) else net_arch)
        self.policy_nets = nn.ModuleList(_mlp(inputs, pi, activation_fn) for _ in range(signals))
        self.value_nets = nn.ModuleList(_mlp(inputs, vf, activation_fn) for _ in range(signals))
        self.latent_dim_pi = signals * (pi[-1] if pi else inputs)
        self.latent_dim_vf = signals * (vf[-1] if vf else inputs)

    def _blocks(self, networks: nn.ModuleList, features: th.Tensor) -> th.Tensor:
        observation, signal = features[:, : -self.signals], features[:, -self.signals :]
        outputs = th.stack([network(observation) for network in networks], dim=1)
        return (outputs * signal.unsqueeze(-1)).flatten(1)  # zero outside the own block

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Latent policy and value vectors."""
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        """Latent policy vector: the own signal's block, zeros elsewhere."""
        return self._blocks(self.policy_nets, features)

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        """Latent value vector: the own signal's block, zeros elsewhere."""
        return self._blocks(self.value_nets, features)


class IndependentMaskablePolicy(MaskableActorCriticPolicy):
    """MaskablePPO's actor-critic with :class:`PerSignalExtractor` (``signals`` given in
    ``policy_kwargs``)."""

    def __init__(self, *args: Any, signals: int, **kwargs: Any) -> None:
        self.signals = signals  # read by _build_mlp_extractor during the base __init__
        super().__init__(*args, **kwargs)

    def _build_mlp_extractor(self) -> None:
        net_arch = self.net_arch if self.net_arch is not None else [64, 64]
        self.mlp_extractor = PerSignalExtractor(  # type: ignore[assignment]
            self.features_dim, self.signals, net_arch, self.activation_fn
        ).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["signals"] = self.signals
        return data
