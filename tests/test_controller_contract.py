"""Every registered controller keeps the contract of :mod:`twin_traffic.controllers.base`:
a programme controller only writes files before SUMO starts; a deciding controller only
chooses greens from a state, and the runner owns the engines and the lane reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin_traffic.controllers import CONTROLLERS, make_controller
from twin_traffic.controllers.base import Controller, DecidingController, is_deciding
from twin_traffic.controllers.policy import PolicyController
from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.network import load_network
from twin_traffic.plans import green_slots, with_greens, write_plan
from twin_traffic.scenario import load_scenario

PROGRAMME = {"fixed", "plan", "tuned", "webster", "actuated"}


def _params(name: str, tmp_path: Path) -> dict[str, object]:
    if name not in {"plan", "tuned"}:
        return {}
    network = load_network(load_scenario("mixed"))
    programmes = [
        with_greens(light, [light.phases[i].duration for i in green_slots(light.phases)], "p")
        for light in network.traffic_lights.values()
    ]
    return {"plan": str(write_plan(programmes, tmp_path / "plan.add.xml"))}


def test_every_controller_is_classified() -> None:
    deciding = set(CONTROLLERS) - PROGRAMME
    assert {"max-pressure", "efficient-max-pressure", "advanced-max-pressure"} <= deciding
    assert {"greedy", "sotl", "policy"} <= deciding


@pytest.mark.parametrize("name", sorted(set(CONTROLLERS) - {"policy"}))
def test_controller_keeps_the_contract(name: str, tmp_path: Path) -> None:
    controller = make_controller(name, _params(name, tmp_path))
    assert isinstance(controller, Controller)
    assert controller.name == name
    if name in PROGRAMME:
        assert not is_deciding(controller)
        network = load_network(load_scenario("mixed", end=120))
        files = controller.additional_files(network, tmp_path)
        assert all(path.is_file() and tmp_path in path.parents for path in files)
    else:
        assert is_deciding(controller)
        assert isinstance(controller, DecidingController)
        assert not hasattr(controller, "bank")  # the runner owns the engines
    result = run_episode(RunSpec("mixed", controller=name, params=_params(name, tmp_path),
                                 seed=0, end=120))  # fmt: skip
    assert result.metrics["vehicles"] > 0


def test_the_policy_controller_is_a_deciding_controller() -> None:
    # Running it needs a trained model (tests/test_train.py does); its class keeps the
    # deciding contract: the runner gives it engines and a reader.
    for method in ("observer_for", "start", "greens", "additional_files"):
        assert callable(getattr(PolicyController, method))
