"""The Gymnasium and PettingZoo environments on real SUMO runs."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test, parallel_seed_test
from test_control import SecondBySecond

from twin_traffic.controllers import make_controller
from twin_traffic.envs import SignalEnv, SignalParallelEnv
from twin_traffic.errors import SimulationError, TwinTrafficError
from twin_traffic.evaluate import DecisionRunner
from twin_traffic.features import OBSERVATIONS, REWARDS
from twin_traffic.network import load_network
from twin_traffic.scenario import builtin_scenarios, load_scenario
from twin_traffic.sim import PROGRAMME_ID, SimConfig

SCENARIOS = list(builtin_scenarios())
GREEN = frozenset("Gg")


@pytest.mark.parametrize("name", SCENARIOS)
def test_gymnasium_env_checker_passes(name: str) -> None:
    env = gym.make(f"twin_traffic/{name}-v0", end=120).unwrapped
    check_env(env, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("name", SCENARIOS)
def test_pettingzoo_parallel_api_test_passes(name: str) -> None:
    env = SignalParallelEnv(scenario=name, end=150)
    parallel_api_test(env, num_cycles=40)
    env.close()


@pytest.mark.parametrize("name", SCENARIOS)
def test_pettingzoo_seed_test_passes(name: str) -> None:
    # Two environments run side by side, so they need TraCI (one libsumo per process).
    parallel_seed_test(
        lambda: SignalParallelEnv(scenario=name, end=100, backend="traci", padded=True),
        num_cycles=20,
    )


def test_padded_env_shares_spaces_and_masks_actions_on_heterogeneous_signals() -> None:
    env = SignalParallelEnv(scenario="mixed", padded=True, end=100)
    spaces_seen = {id(env.observation_space(a)) for a in env.possible_agents}
    assert len(spaces_seen) == 1
    observations, infos = env.reset(seed=0)
    masks = {agent: info["action_mask"] for agent, info in infos.items()}
    assert sorted(int(m.sum()) for m in masks.values()) == [2, 3, 4]
    width = env.observation_space(env.possible_agents[0]).shape[0]
    assert all(obs.shape == (width,) for obs in observations.values())
    # An action outside the mask keeps the current green instead of failing.
    actions = dict.fromkeys(env.possible_agents, 3)
    observations, rewards, _, _, _ = env.step(actions)
    assert set(rewards) == set(env.possible_agents)
    parallel_api_test(env, num_cycles=20)
    env.close()


def test_same_seed_same_episode_and_seed_reaches_sumo() -> None:
    def rollout(seed: int) -> tuple[list[np.ndarray], list[float]]:
        env = SignalEnv(scenario="grid3x3", end=200)
        obs, info = env.reset(seed=seed)
        assert info["seed"] == seed
        env.action_space.seed(7)
        observations, rewards = [obs], []
        truncated = False
        while not truncated:
            obs, reward, _, truncated, _ = env.step(env.action_space.sample())
            observations.append(obs)
            rewards.append(reward)
        env.close()
        return observations, rewards

    first, again, other = rollout(5), rollout(5), rollout(6)
    assert all(np.array_equal(a, b) for a, b in zip(first[0], again[0], strict=True))
    assert first[1] == again[1]
    assert first[1] != other[1]
    assert len(first[1]) == 40  # 200 s in 5 s decisions, ending by truncation


def test_an_ended_episode_refuses_steps_and_close_removes_the_scratch_folder() -> None:
    env = SignalEnv(scenario="single", observation=("sensor",), end=20)
    env.reset(seed=0)
    folder = env.twin._scratch_folder()
    assert (folder / "detectors.add.xml").is_file()
    truncated = False
    while not truncated:
        *_, truncated, _ = env.step(0)
    with pytest.raises(TwinTrafficError, match="episode has ended"):
        env.step(0)
    env.close()
    assert not folder.exists()
    env.close()  # twice is harmless
    # A closed env starts again afresh, detectors included.
    env.reset(seed=0)
    assert env.step(0)[0] in env.observation_space
    env.close()


def test_one_signal_discrete_others_keep_their_programmes() -> None:
    env = SignalEnv(scenario="arterial", signals=["A2"], end=60)
    assert isinstance(env.action_space, gym.spaces.Discrete)
    env.reset(seed=0)
    api = env.twin.sim.api  # type: ignore[union-attr]
    for _ in range(4):
        env.step(1)
    assert api.trafficlight.getProgram("A2") == PROGRAMME_ID
    assert api.trafficlight.getProgram("A0") != PROGRAMME_ID
    env.close()


def test_every_observation_and_reward_is_in_bounds() -> None:
    env = SignalEnv(scenario="mixed", observation=tuple(OBSERVATIONS), reward="wait", end=400)
    obs, _ = env.reset(seed=3)
    env.action_space.seed(3)
    for reward_name in REWARDS:
        env.twin.observer.reward = reward_name
        for _ in range(8):
            obs, reward, _, _, info = env.step(env.action_space.sample())
            assert env.observation_space.contains(obs)
            assert -2.0 <= reward <= 2.0
    assert info["vehicles"] > 0 and info["queue"] >= 0
    assert obs.max() > 0  # traffic is seen
    env.close()


def test_demand_scale_changes_the_traffic() -> None:
    def vehicles(scale: float) -> float:
        env = SignalEnv(scenario="single", demand_scale=scale, end=300)
        env.reset(seed=1)
        info: dict[str, float] = {}
        for _ in range(60):
            info = env.step(0)[4]
        env.close()
        return info["vehicles"]

    assert vehicles(2.0) > 1.5 * vehicles(1.0)


def test_second_libsumo_env_in_one_process_fails_clearly() -> None:
    first = SignalEnv(scenario="single", end=60)
    first.reset(seed=0)
    second = SignalEnv(scenario="single", end=60)
    with pytest.raises(SimulationError, match="libsumo runs one simulation per process"):
        second.reset(seed=0)
    first.close()
    second.close()


def test_an_env_no_one_can_reach_gives_way_to_a_new_one() -> None:
    # A notebook cell run twice: the first env can no longer be closed by its user.
    env = gym.make("twin_traffic/single-v0", end=60)
    env.reset(seed=0)
    env = gym.make("twin_traffic/single-v0", end=60)
    observation, _ = env.reset(seed=0)
    assert observation in env.observation_space
    env.close()


def test_bad_names_are_clear_errors() -> None:
    with pytest.raises(TwinTrafficError, match="unknown observation 'lidar'"):
        SignalEnv(scenario="single", observation=("lidar",))
    with pytest.raises(TwinTrafficError, match="unknown reward 'fun'"):
        SignalEnv(scenario="single", reward="fun")
    with pytest.raises(TwinTrafficError, match="no signal 'Z9'"):
        SignalEnv(scenario="single", signals=["Z9"])


@pytest.mark.parametrize("name", ["single", "mixed"])
def test_sumo_signal_states_obey_the_safety_rules(name: str) -> None:
    # One-second decisions with random requests; SUMO's own signal state is read every
    # second and checked: yellow before red, min green before a switch, max green kept.
    yellow, min_green, max_green = 3.0, 5.0, 20.0
    env = SignalEnv(
        scenario=name,
        decision_interval=1.0,
        yellow=yellow,
        all_red=2.0,
        min_green=min_green,
        max_green=max_green,
        end=900,
    )
    env.reset(seed=2)
    env.action_space.seed(2)
    api = env.twin.sim.api  # type: ignore[union-attr]
    signals = env.signal_ids
    history: dict[str, list[str]] = {tls: [] for tls in signals}
    truncated = False
    while not truncated:
        # Keep a request for several seconds, as a policy would, so greens change often.
        action = env.action_space.sample()
        for _ in range(3):
            *_, truncated, _ = env.step(action)
            for tls in signals:
                history[tls].append(api.trafficlight.getRedYellowGreenState(tls))
            if truncated:
                break
    env.close()
    for tls, states in history.items():
        greens = set(env.twin.bank.engines[signals.index(tls)].greens)
        switches = 0
        for link in range(len(states[0])):
            chars = [state[link] for state in states]
            for t in range(1, len(chars)):
                if chars[t - 1] in GREEN and chars[t] in "rs":
                    pytest.fail(f"{tls} link {link}: green to red without yellow at t={t}")
        runs = _green_runs(states, greens)
        switches += len(runs)
        for state, length, ended_by_switch in runs[1:-1]:
            assert length <= max_green, f"{tls}: green {state} shown {length} s"
            if ended_by_switch:
                assert length >= min_green, f"{tls}: green {state} ended after {length} s"
        assert switches > 3, f"{tls}: the test never switched greens"


def _green_runs(states: list[str], greens: set[str]) -> list[tuple[str, int, bool]]:
    """(green state, seconds shown, whether a different state followed) per run."""
    runs: list[tuple[str, int, bool]] = []
    for state in states:
        if runs and runs[-1][0] == state:
            runs[-1] = (state, runs[-1][1] + 1, False)
        else:
            if runs:
                runs[-1] = (runs[-1][0], runs[-1][1], True)
            runs.append((state, 1, False))
    return [run for run in runs if run[0] in greens]


def test_the_scenario_can_be_given_positionally() -> None:
    from twin_traffic.scenario import load_scenario

    config = load_scenario("single").config_file
    assert config is not None
    for source in (str(config), config, load_scenario(config, end=30)):
        env = SignalEnv(source, end=30)
        assert env.twin.scenario.config_file == config.resolve()
        env.close()
    parallel = SignalParallelEnv("single", end=30)
    observations, _ = parallel.reset(seed=0)
    assert set(observations) == set(parallel.possible_agents)
    parallel.close()


def test_a_signal_with_a_single_green_is_left_on_its_programme(road: Path) -> None:
    """The road's signal runs green, yellow, red: one green, nothing to choose. An env
    refuses it by name; a deciding controller leaves it on its programme, red included."""
    with pytest.raises(TwinTrafficError, match="no signal has two greens"):
        SignalEnv(road, end=30)
    with pytest.raises(TwinTrafficError, match="'B' has a single green"):
        SignalParallelEnv(road, end=30, signals=["B"])
    scenario = load_scenario(road, end=90)
    network = load_network(scenario)
    assert network.controlled_ids == ()
    with SecondBySecond(scenario, 0, None, SimConfig()) as sim:
        sim.ids, sim.shown, sim.commands = ("B",), [], 0
        runner = DecisionRunner(make_controller("max-pressure"), network, sim)
        while sim.time < 90:
            runner.decide(sim)
            runner.bank.advance(sim, sim.time + 1)
    assert "".join(row["B"] for row in sim.shown) == "G" * 30 + "y" * 3 + "r" * 30 + "G" * 27


def test_unknown_keywords_are_rejected_with_the_valid_ones() -> None:
    with pytest.raises(TwinTrafficError) as error:
        SignalEnv("single", min_gren=5)
    assert str(error.value).startswith(
        "SignalEnv: unknown keyword 'min_gren'; the keywords are: config, render_mode, scenario,"
    )
    with pytest.raises(TwinTrafficError, match="SignalParallelEnv: unknown keyword 'pad'"):
        SignalParallelEnv("single", pad=True)
    with pytest.raises(TwinTrafficError, match="render_mode='rgb_array' is not supported"):
        SignalEnv("single", render_mode="rgb_array")


def test_human_render_mode_constructs_and_needs_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    env = gym.make("twin_traffic/single-v0", render_mode="human")
    assert env.render_mode == "human" and env.unwrapped.config.gui
    with pytest.raises(SimulationError, match="no display is available"):
        env.reset(seed=0)
    env.close()


def test_parallel_env_rejects_invalid_actions() -> None:
    env = SignalParallelEnv("arterial", end=60)
    env.reset(seed=0)
    agent = env.possible_agents[0]
    actions = {a: 0 for a in env.possible_agents}
    with pytest.raises(TwinTrafficError, match=f"agent '{agent}': action 7 is not in its action"):
        env.step({**actions, agent: 7})
    with pytest.raises(TwinTrafficError, match="action -1 is not in"):
        env.step({**actions, agent: -1})
    with pytest.raises(TwinTrafficError, match=f"no action for agent '{agent}'"):
        env.step({a: 0 for a in env.possible_agents[1:]})
    env.close()
    padded = SignalParallelEnv("mixed", padded=True, end=60)
    padded.reset(seed=0)
    most = padded.action_space(padded.possible_agents[0]).n
    with pytest.raises(TwinTrafficError, match="is not in its action space"):
        padded.step(dict.fromkeys(padded.possible_agents, most))
    padded.close()


def test_sumo_errors_reach_the_user_of_a_traci_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":nonexistent-display-99")
    env = SignalEnv("single", end=30, render_mode="human")
    with pytest.raises(SimulationError, match="unable to open display"):
        env.reset(seed=0)
    env.close()


def test_cyclic_mode_moves_on_in_programme_order() -> None:
    # single's C has four greens; asking for the third from the first serves the second.
    env = SignalEnv(scenario="single", end=120, min_green=5, cycle="cyclic")
    env.reset(seed=0)
    engine = env.twin.bank.engines[0]
    assert engine.num_greens == 4 and engine.current_green == 0
    env.step(2)
    assert engine.current_green == 1
    env.step(1)  # the current green: kept
    assert engine.current_green == 1
    env.close()
    with pytest.raises(TwinTrafficError, match="cycle must be"):
        SignalEnv(scenario="single", cycle="round")


def test_a_verbose_scenario_prints_nothing_at_each_episode(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A ``.sumocfg`` may ask SUMO to be verbose (Monaco's does): its progress lines would
    come at every reset of an env, so every run tells SUMO to be quiet."""
    network = Path(__file__).parents[1] / "networks" / "single"
    config = tmp_path / "verbose.sumocfg"
    config.write_text(
        "<configuration><input>"
        f'<net-file value="{network / "single.net.xml"}"/>'
        f'<route-files value="{network / "single.rou.xml"}"/>'
        '</input><report><verbose value="true"/></report></configuration>'
    )
    env = SignalParallelEnv(str(config), end=20)
    for seed in (0, 1):
        env.reset(seed=seed)
        env.step(dict.fromkeys(env.agents, 0))
    env.close()
    printed = capfd.readouterr().out
    assert "Loading" not in printed and "Simulation version" not in printed


def test_bad_actions_settings_and_seeds_are_refused_clearly() -> None:
    env = SignalEnv("single", end=60)
    env.reset(seed=0)
    for action in (1.7, [0, 1], None, -1, 4, np.array([1])):
        with pytest.raises(TwinTrafficError, match=r"is not in the action space Discrete\(4\)"):
            env.step(action)
    env.step(np.int64(2))  # a NumPy integer is an action like an int
    # Gymnasium's seeds go past SUMO's (stable-baselines3 draws them up to 2**32).
    assert env.reset(seed=2**31 + 5)[1]["seed"] == 5
    for seed in (-1, 1.5, True):
        with pytest.raises(TwinTrafficError, match="seed must be a whole number >= 0"):
            env.reset(seed=seed)  # type: ignore[arg-type]
    env.close()
    uneven = SignalEnv("single", end=60, decision_interval=2.5)
    with pytest.raises(TwinTrafficError, match="not a whole number of the scenario's 1 s steps"):
        uneven.reset(seed=0)
    uneven.close()
    with pytest.raises(TwinTrafficError, match="decision_interval must be > 0 seconds"):
        SignalEnv("single", end=60, decision_interval=0)
    with pytest.raises(TwinTrafficError, match="yellow must be non-negative"):
        SignalEnv("single", end=60, yellow=-1)
    for settings, message in (
        ({"backend": "foo"}, "backend must be 'libsumo' or 'traci'"),
        ({"signals": ["C", "C"]}, "each signal once"),
        ({"demand_scale": (2.0, 1.0)}, r"demand_scale \(2.0, 1.0\): give a factor > 0"),
        ({"demand_scale": -1.0}, "give a factor > 0"),
        ({"sensor_range": 0}, "sensor_range must be > 0 metres"),
        ({"decision_interval": "5"}, "decision_interval must be a number of seconds"),
        ({"observation": ()}, "name at least one feature"),
        ({"observation": ("queue", "queue")}, "each feature once"),
        ({"observation": {"queue", "density"}}, "not a set"),
        ({"signals": ()}, "name at least one signal, or None"),
        ({"sumo_options": ("--tripinfo-output", "x.xml")}, "--tripinfo-output cannot be passed"),
    ):
        with pytest.raises(TwinTrafficError, match=message):
            SignalParallelEnv("single", end=60, **settings)
    parallel = SignalParallelEnv("single", end=10, decision_interval=5)
    parallel.reset(seed=0)
    while parallel.agents:
        parallel.step(dict.fromkeys(parallel.agents, 0))
    with pytest.raises(TwinTrafficError, match="no live agents: call reset"):
        parallel.step({"C": 0})
    parallel.reset(seed=0)
    with pytest.raises(TwinTrafficError, match="action True is not in its action space"):
        parallel.step({"C": True})
    with pytest.raises(TwinTrafficError, match="no live agent 'X'; the agents are: C"):
        parallel.step({"C": 0, "X": 1})
    parallel.close()
    grid = SignalEnv("grid3x3", end=60)
    grid.reset(seed=0)
    grid.step([0] * 9)
    with pytest.raises(TwinTrafficError, match="is not in the action space MultiDiscrete"):
        grid.step(np.full(9, 0.9))
    grid.close()


def test_stable_baselines3_makes_vector_envs_from_the_registered_ids() -> None:
    from stable_baselines3.common.env_util import make_vec_env

    # It asks for rgb_array frames first and falls back on a TypeError; it seeds each
    # env with a draw up to 2**32.
    vector = make_vec_env("twin_traffic/single-v0", n_envs=1, env_kwargs={"end": 30})
    assert vector.reset().shape == (1, *vector.observation_space.shape)
    vector.close()


def test_the_vector_env_raises_its_workers_errors() -> None:
    from twin_traffic.envs import EnvConfig
    from twin_traffic.vec_env import SignalVecEnv

    with pytest.raises(TwinTrafficError, match="unknown observation 'nope'"):
        SignalVecEnv(EnvConfig("single", observation=("nope",), end=30), simulations=2)


def test_a_lone_name_in_a_config_is_one_name() -> None:
    from twin_traffic.envs import EnvConfig
    from twin_traffic.evaluate import RunSpec

    config = EnvConfig(scenario="grid3x3", signals="A0", observation="density", end=30)
    assert config.signals == ("A0",) and config.observation == ("density",)
    assert SignalEnv(config=config).action_space.n == 2
    assert EnvConfig(demand_scale=[0.8, 1.2]).demand_scale == (0.8, 1.2)  # type: ignore[arg-type]
    assert RunSpec("my.net.xml", routes="my.rou.xml").routes == ("my.rou.xml",)  # type: ignore[arg-type]
    # SUMO options as two items or one string, a path as its text.
    spec = RunSpec(Path("a.sumocfg"), sumo_options=("--max-depart-delay 600", "--no-warnings"))  # type: ignore[arg-type]
    assert spec.scenario == "a.sumocfg"
    assert spec.sumo_options == ("--max-depart-delay", "600", "--no-warnings")
    assert RunSpec("single", sumo_options="--no-warnings").sumo_options == ("--no-warnings",)  # type: ignore[arg-type]
    with pytest.raises(TwinTrafficError, match="--seed cannot be passed"):
        RunSpec("single", sumo_options=("--seed", "1"))
    with pytest.raises(TwinTrafficError, match="backend must be 'libsumo' or 'traci'"):
        RunSpec("single", backend="foo")  # type: ignore[arg-type]
    with pytest.raises(TwinTrafficError, match="end must be a number of seconds, got '60'"):
        RunSpec("single", end="60")  # type: ignore[arg-type]
    assert RunSpec("single", seed=np.int64(3)).seed == 3  # type: ignore[arg-type]
    policy = RunSpec("single", controller="policy", params={"model": Path("m.zip")})
    assert policy.params == {"model": "m.zip"}  # as its spec.json holds it


def test_a_loaded_scenario_must_be_the_specs() -> None:
    from twin_traffic.evaluate import RunSpec, run_episode
    from twin_traffic.scenario import load_scenario

    with pytest.raises(TwinTrafficError, match="is not the spec's"):
        run_episode(RunSpec("single", end=300), scenario=load_scenario("single", end=120))
    with pytest.raises(TwinTrafficError, match="is not the spec's"):
        run_episode(RunSpec("single", end=60), scenario=load_scenario("arterial", end=60))
    result = run_episode(RunSpec("single", end=60), scenario=load_scenario("single", end=60))
    assert result.metrics["vehicles"] > 0
