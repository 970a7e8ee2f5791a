"""Up-front checks: controller parameters, seeds and the run protocol, on their own."""

from __future__ import annotations

import importlib
import inspect

import pytest

from twin_traffic.controllers import CONTROLLERS, make_controller
from twin_traffic.controllers.parameters import PARAMETERS, check_params
from twin_traffic.errors import ControllerError, TwinTrafficError
from twin_traffic.protocol import ProtocolError, make_protocol
from twin_traffic.seeds import SeedError, check_seeds, parse_seeds, seeds_after


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_every_controller_declares_its_constructor(name: str) -> None:
    module, _, cls = CONTROLLERS[name].partition(":")
    signature = inspect.signature(getattr(importlib.import_module(module), cls))
    declared = {p.name: p.default for p in PARAMETERS[name]}
    accepted = {
        key: (None if p.default is inspect.Parameter.empty else p.default)
        for key, p in signature.parameters.items()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    }
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        assert set(accepted) <= set(declared)  # the rest goes to the shared timings
    else:
        assert set(accepted) == set(declared)
    for key, default in accepted.items():
        assert declared[key] == default, key


def test_unknown_key_lists_the_valid_ones() -> None:
    with pytest.raises(ControllerError) as error:
        check_params("max-pressure", {"min_gren": 5})
    assert str(error.value) == (
        "max-pressure: no parameter 'min_gren'; its parameters are: decision_interval, "
        "min_green, max_green, yellow, all_red, clearance, cycle, spillback, max_wait, "
        "sensor_range, reach, initial_per_vehicle, max_initial, blocked_after"
    )
    with pytest.raises(ControllerError, match="fixed: no parameter 'x'; its parameters are: none"):
        make_controller("fixed", {"x": 1})


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("sotl", {"threshold": "many"}, "sotl: threshold='many' must be a number"),
        ("sotl", {"threshold": 0}, "threshold must be > 0"),
        ("greedy", {"yellow": -1}, "yellow must be >= 0"),
        ("webster", {"flow_seed": 1.5}, "flow_seed=1.5 must be a whole number"),
        ("webster", {"max_flow_ratio": 2}, "max_flow_ratio must be in (0, 1]"),
        ("policy", {"deterministic": "maybe"}, "is not true or false"),
        ("policy", {}, "policy: needs model=...; pass --param model=VALUE"),
        (
            "max-pressure",
            {"min_green": 70},
            "max-pressure: min_green=70 is more than max_green=60; choose min_green <= max_green",
        ),
        ("webster", {"min_cycle": 200}, "webster: min_cycle=200 is more than max_cycle=150"),
    ],
)
def test_types_ranges_and_required_values(name: str, params: dict, message: str) -> None:
    with pytest.raises(ControllerError) as error:
        check_params(name, params)
    assert message in str(error.value)
    assert "__init__" not in str(error.value)


def test_values_are_converted_to_their_types() -> None:
    assert check_params("sotl", {"threshold": "30", "decision_interval": 2}) == {
        "threshold": 30.0, "decision_interval": 2.0,
    }  # fmt: skip
    assert check_params("policy", {"model": "m.zip", "deterministic": "false"}) == {
        "model": "m.zip", "deterministic": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("0-4", (0, 1, 2, 3, 4)), ("0,1,2", (0, 1, 2)), ("0 1 2", (0, 1, 2)), ("0-1, 7", (0, 1, 7))],
)
def test_one_seed_syntax(text: str, seeds: tuple[int, ...]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5-2", "--seeds '5-2': not a range (it runs backwards); write FIRST-LAST with FIRST "
                "<= LAST, e.g. 2-5"),
        ("-1", "--seeds '-1': not a seed or a range"),
        ("0,1,1", "--seeds: seed 1 is listed twice"),
        ("", "--seeds: no seeds given"),
        ("3000000000", "--seeds '3000000000': seeds go up to 2147483647"),
    ],
)  # fmt: skip
def test_bad_seeds_say_why(text: str, message: str) -> None:
    with pytest.raises(SeedError) as error:
        parse_seeds(text)
    assert str(error.value).startswith(message)


def test_seed_lists_from_toml_are_checked_alike() -> None:
    assert check_seeds([3, 1]) == (3, 1)
    with pytest.raises(SeedError, match="True is not a seed"):
        check_seeds([True])


def test_confirmation_seeds_follow_the_training_seeds_and_skip_held_out_ones() -> None:
    assert seeds_after([0, 1, 2], 3) == [3, 4, 5]
    assert seeds_after([0, 2, 5], 2, avoid=[6, 8]) == [7, 9]
    assert seeds_after([4], 1, avoid=range(100)) == [100]


def test_resco_protocol_and_sumo_options() -> None:
    resco = make_protocol("resco", sumo_options=["--max-depart-delay 600"])
    assert resco.sumo_args() == ["--max-depart-delay", "600", "--time-to-teleport", "-1"]
    assert resco.timings() == {"decision_interval": 10.0, "yellow": 3.0}
    assert make_protocol("resco", time_to_teleport=120).time_to_teleport == 120
    assert make_protocol().sumo_args() == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--no-such-option 1"], "SUMO has no option --no-such-option"),
        (["--seed 4"], "--seed cannot be passed here"),
        (["--time-to-teleport 5"], "use --time-to-teleport"),
        (["max-depart-delay"], "write one SUMO option and its value"),
    ],
)
def test_bad_sumo_options(options: list[str], message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        make_protocol(sumo_options=options)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hyperparameters": {"learning_rate": "fast"}},
         "r.toml: [hyperparameters]: learning_rate = 'fast' must be a number"),
        ({"hyperparameters": {"n_steps": 12.5}}, "n_steps = 12.5 must be a whole number"),
        ({"hyperparameters": {"seed": 3}}, "seed is set by twin-traffic itself"),
        ({"env": {"decision_interval": "x"}}, "env.decision_interval = 'x' must be a number"),
        ({"env": {"min_green": -1}}, "r.toml: env:"),
        ({"simulations": 0}, "r.toml: simulations: 0 is not a whole number >= 1"),
        ({"algo": "sac"}, "r.toml: algo must be one of ppo, a2c, dqn (not 'sac')"),
    ],
)  # fmt: skip
def test_recipes_are_checked_key_by_key_and_type_by_type(change: dict, message: str) -> None:
    from dataclasses import replace

    from twin_traffic.train import check_recipe, default_recipe, load_recipe

    base = load_recipe(default_recipe("ppo"))
    with pytest.raises(TwinTrafficError) as error:
        check_recipe(replace(base, **change), "r.toml")
    assert message in str(error.value), str(error.value)


def test_shipped_recipes_pass_their_checks() -> None:
    from twin_traffic.train import ALGORITHMS, default_recipe, load_recipe

    for algo in ALGORITHMS:
        assert load_recipe(default_recipe(algo)).algo == algo


def test_training_baselines_follow_the_protocol_preset() -> None:
    from twin_traffic.train import protocol_params

    assert protocol_params("max-pressure", "resco") == {"decision_interval": 10.0, "yellow": 3.0}
    assert protocol_params("fixed", "resco") == {}
    assert protocol_params("max-pressure", None) == {}


def test_seeds_written_back_read_as_the_same_seeds() -> None:
    from twin_traffic.seeds import parse_seeds, seed_text

    for seeds in ([0, 1, 2, 3, 4], [0, 1], [7], [1, 5, 9], [200, 201, 202]):
        assert list(parse_seeds(seed_text(seeds))) == seeds
    assert seed_text([100, 101, 102], dash="–", separator=", ") == "100–102"
    assert seed_text([0, 2], dash="–", separator=", ") == "0, 2"
