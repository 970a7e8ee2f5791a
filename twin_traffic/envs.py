"""Gymnasium and PettingZoo environments for signal control on a SUMO twin.

``SignalEnv`` (Gymnasium) controls one signal (``Discrete``) or several at once
(``MultiDiscrete``); signals not controlled keep running their programmes.
``SignalParallelEnv`` (PettingZoo parallel API) has one agent per signal, each with its
own spaces; with ``padded=True`` every agent shares one observation and action space
(zero-padded, with an ``action_mask`` in its info) so a single shared policy can drive
heterogeneous signals.

An action asks for a green: an index into the signal's distinct green phases (see
``twin-traffic scenario info``). The phase engine serves it safely — yellow and
optional all-red before a conflicting green, minimum green before a switch, maximum green
forcing one — so no policy can break the safety rules. Observations and rewards are
chosen by name (see :mod:`twin_traffic.features`; defaults ``phase, density, queue`` and
``wait``). Each ``step`` covers ``decision_interval`` seconds; an episode ends by
truncation at the scenario's end time. ``reset(seed=s)`` runs SUMO with seed ``s``;
later resets without a seed draw SUMO's seed from the env's ``np_random``. Each step's
``info`` carries ``time``, ``queue`` (halting vehicles on the controlled approaches),
``waiting_time`` (their accumulated waiting, s) and ``vehicles`` (in the network).

libsumo (the default backend) allows one simulation per process: a second env in the
same process fails with a clear error; run environments in subprocesses
(``SubprocVecEnv``) or use ``backend="traci"``.

Registered ids: ``twin_traffic/<scenario>-v0`` for every built-in scenario, e.g.
``gymnasium.make("twin_traffic.envs:twin_traffic/grid3x3-v0")``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from twin_traffic.agent import shape_signals
from twin_traffic.control import SignalBank
from twin_traffic.errors import TwinTrafficError
from twin_traffic.features import DEFAULT_OBSERVATION, DEFAULT_REWARD, Observer, Snapshot
from twin_traffic.network import Network, load_network
from twin_traffic.protocol import sumo_option_tokens
from twin_traffic.scenario import Scenario, builtin_scenarios, load_scenario
from twin_traffic.signals import PhaseEngine, SignalTiming
from twin_traffic.sim import MAX_SEED, Backend, SimConfig, Simulation


@dataclass(frozen=True)
class EnvConfig:
    """Everything that shapes an environment (shared by both APIs).

    Attributes:
        scenario: built-in name, ``.sumocfg`` or ``.net.xml`` (with ``routes``).
        signals: ids of the signals to control (``None``: all of them).
        observation: observation feature names, concatenated in this order.
        reward: reward name.
        reward_neighbours: share of each neighbouring signal's reward added to a
            signal's own, from 0 (its own alone) to 1 (MA2C's spatial discount; see
            :meth:`~twin_traffic.features.Observer.rewards`). Neighbours are the signals
            the road leads to or comes from without another signal between.
        decision_interval: seconds per step.
        yellow: yellow time where the programme has none for a transition, s.
        all_red: all-red clearance after a derived yellow, s (0: none).
        clearance: ``yellow`` (a switch the engine derives clears with ``yellow +
            all_red``) or ``programme`` (at least the programme's own intergreens too);
            see :class:`~twin_traffic.signals.SignalTiming`.
        min_green: minimum green before a switch, s.
        max_green: maximum green before a forced switch, s.
        sensor_range: reach of the approach detectors of the ``sensor`` observation, m.
        cycle: ``acyclic`` (an action is the green to show) or ``cyclic`` (the programme's
            order: an action other than the current green moves on to the next green
            in order that no other green serves better; the policy decides when).
        demand_scale: SUMO's ``--scale`` for the demand; a ``(low, high)`` pair draws a
            scale per episode from ``np_random`` (demand randomisation).
        backend: ``libsumo`` or ``traci``.
        gui: watch in sumo-gui (TraCI).
        begin: start time override, s.
        end: end time override, s.
        routes: route files, with a ``.net.xml`` scenario.
        protocol: the benchmark preset followed (``resco``): its time-to-teleport applies
            unless ``time_to_teleport`` is given; its decision interval and yellow are
            this config's own fields (the CLI sets them from the preset).
        time_to_teleport: SUMO's ``--time-to-teleport``, s (-1: never; ``None``: the
            scenario's own).
        sumo_options: further SUMO options for every episode (see
            :mod:`twin_traffic.protocol`).
    """

    scenario: str = "grid3x3"
    signals: tuple[str, ...] | None = None
    observation: tuple[str, ...] = DEFAULT_OBSERVATION
    reward: str = DEFAULT_REWARD
    reward_neighbours: float = 0.0
    decision_interval: float = 5.0
    yellow: float = 3.0
    all_red: float = 0.0
    clearance: str = "yellow"
    min_green: float = 5.0
    max_green: float = 60.0
    sensor_range: float = 50.0
    cycle: str = "acyclic"
    demand_scale: float | tuple[float, float] = 1.0
    backend: Backend = "libsumo"
    gui: bool = False
    begin: float | None = None
    end: float | None = None
    routes: tuple[str, ...] = ()
    protocol: str | None = None
    time_to_teleport: float | None = None
    sumo_options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A lone name where names are expected (``signals="A0"``) is that one name, not
        # its characters; lists (from TOML, JSON) are taken as tuples.
        for key in ("signals", "observation", "routes", "sumo_options"):
            value = getattr(self, key)
            if isinstance(value, (set, frozenset)):  # no order, where order is meaning
                raise TwinTrafficError(f"{key}: give a list or tuple, in order, not a set")
            if isinstance(value, str):
                object.__setattr__(self, key, (value,))
            elif value is not None and not isinstance(value, tuple):
                object.__setattr__(self, key, tuple(value))
        if isinstance(self.demand_scale, list):
            object.__setattr__(self, "demand_scale", tuple(self.demand_scale))
        object.__setattr__(self, "sumo_options", sumo_option_tokens(self.sumo_options))

    @property
    def protocol_args(self) -> tuple[str, ...]:
        """The SUMO options of the protocol (see
        :func:`~twin_traffic.protocol.protocol_sumo_args`)."""
        from twin_traffic.protocol import protocol_sumo_args

        return protocol_sumo_args(self.protocol, self.time_to_teleport, self.sumo_options)

    @property
    def timing(self) -> SignalTiming:
        """The phase engine's safety timings."""
        return SignalTiming(self.yellow, self.all_red, self.min_green, self.max_green,
                            self.clearance)  # fmt: skip


class SignalTwin:
    """The machinery both environment APIs share: one SUMO run at a time, the phase
    engines of the controlled signals, and their observations and rewards.

    ``teacher`` names a deciding classical controller (``max-pressure`` …) that, with the
    env's own timings, says at every step which greens it would choose
    (:meth:`teacher_greens`): the demonstrations of behaviour cloning
    (:mod:`twin_traffic.imitation`). Its state is read with the observations.
    """

    def __init__(self, config: EnvConfig, teacher: str | None = None) -> None:
        self.config = config
        self.scenario: Scenario = load_scenario(
            config.scenario, routes=config.routes, begin=config.begin, end=config.end
        )
        self.network: Network = load_network(self.scenario)
        signals = config.signals or self.network.controlled_ids
        unknown = [s for s in signals if s not in self.network.traffic_lights]
        if unknown:
            raise TwinTrafficError(
                f"{self.scenario.net_file}: no signal {unknown[0]!r}; signals are: "
                f"{', '.join(self.network.signal_ids)}"
            )
        if not signals:
            raise TwinTrafficError(
                f"{self.scenario.net_file}: no signal has two greens to choose between"
            )
        single = [s for s in signals if s not in self.network.controlled_ids]
        if single:
            raise TwinTrafficError(
                f"{self.scenario.net_file}: signal {single[0]!r} has a single green in its "
                "programme, so there is nothing to choose; leave it out of signals (it runs "
                "its own programme)"
            )
        self.network.check_takeover(signals, "the environment")
        self.signal_ids = tuple(signals)
        try:
            timing = config.timing  # validates the timings
        except ValueError as error:
            raise TwinTrafficError(str(error)) from None
        self.protocol_args = config.protocol_args  # checks the preset's name
        _check_settings(config)
        if config.cycle not in ("acyclic", "cyclic"):
            raise TwinTrafficError(f"cycle must be 'acyclic' or 'cyclic', got {config.cycle!r}")
        from twin_traffic.imitation import make_teacher

        self.teacher = make_teacher(teacher, config) if teacher is not None else None
        teacher_needs = self.teacher.needs if self.teacher is not None else frozenset()
        self.observer = Observer(
            self.network,
            self.signal_ids,
            config.observation,
            config.reward,
            max_green=config.max_green,
            sensor_range=config.sensor_range,
            # halting and waiting for each step's info
            extra_needs=frozenset({"halting", "waiting"}) | teacher_needs,
            neighbour_weight=config.reward_neighbours,
        )
        self.bank = SignalBank(self.network, self.signal_ids, timing)
        self.layouts = self.observer.layouts
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._additional: list[Path] = []
        self.sim: Simulation | None = None
        self._last: Snapshot | None = None

    def observation_bounds(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of signal ``index``'s observation vector."""
        return self.observer.observation_bounds(self.layouts[index])

    def start(self, seed: int, scale: float) -> list[np.ndarray]:
        """(Re)start SUMO with ``seed`` and demand ``scale``; the first observations."""
        self.close_sim()
        scratch = self._scratch_folder()
        extra = self.protocol_args
        extra += ("--scale", f"{scale:g}") if scale != 1.0 else ()
        config = SimConfig(backend=self.config.backend, gui=self.config.gui, extra_args=extra,
                           stderr=scratch / "sumo.stderr")  # fmt: skip
        self.sim = Simulation(self.scenario, seed, None, config, self._additional).start()
        steps = self.config.decision_interval / self.sim.step_length
        if abs(steps - round(steps)) > 1e-6:  # SUMO would run whole steps past it
            step = self.sim.step_length
            self.close_sim()
            raise TwinTrafficError(
                f"decision_interval {self.config.decision_interval:g} s is not a whole number "
                f"of the scenario's {step:g} s steps; give a multiple of {step:g} s"
            )
        if self.bank.step_length != self.sim.step_length:  # the engines count in steps
            self.bank = SignalBank(self.network, self.signal_ids, self.config.timing,
                                   self.sim.step_length)  # fmt: skip
        self.bank.start(self.sim)
        self.observer.attach(self.sim)
        if self.teacher is not None:
            self.teacher.start(self.network, self.bank.engines, self.observer)
        self._last = self.observer.read(self.sim.time)
        return self._observations(self._last)

    def teacher_greens(self) -> list[int]:
        """The greens the teacher would ask for now, one per controlled signal.

        Call it once per step, before :meth:`step`: the teacher keeps its own account of
        how long each movement has waited.
        """
        if self.teacher is None:
            raise TwinTrafficError("this env has no teacher; create it with teacher=NAME")
        if self.sim is None or self._last is None:
            raise TwinTrafficError("call reset() before teacher_greens()")
        return self.teacher.greens(self._last, self.bank.engines, self.observer)

    def step(self, greens: Sequence[int]) -> tuple[list[np.ndarray], list[float], bool]:
        """Request greens, run one decision interval; observations, rewards, truncated."""
        sim = self.sim
        if sim is None or self._last is None:
            raise TwinTrafficError("call reset() before step()")
        if not sim.running:
            raise TwinTrafficError("the episode has ended (truncated); call reset() for another")
        if self.config.cycle == "cyclic":
            greens = [
                green if green == engine.current_green else _next_stage(engine)
                for green, engine in zip(greens, self.bank.engines, strict=True)
            ]
        self.bank.request(greens)
        self.bank.advance(sim, min(sim.time + self.config.decision_interval, self.scenario.end))
        snapshot = self.observer.read(sim.time)
        rewards = self.observer.rewards(snapshot, self._last)
        self._last = snapshot
        return self._observations(snapshot), rewards, not sim.running

    def info(self) -> dict[str, float]:
        """The congestion figures of the last step."""
        assert self.sim is not None and self._last is not None
        observer, last = self.observer, self._last
        return {
            "time": self.sim.time,
            "queue": observer.approach_total(last, "halting"),
            "waiting_time": observer.approach_total(last, "waiting"),
            "vehicles": float(self.sim.vehicle_count()),
        }

    def _observations(self, snapshot: Snapshot) -> list[np.ndarray]:
        return self.observer.observe_all(snapshot, self.bank.engines)

    def _scratch_folder(self) -> Path:
        """The folder of this twin's detector file and SUMO's messages, made on first use
        (again after :meth:`close`)."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="twin-traffic-env-")
            folder = Path(self._scratch.name)
            self._additional = []
            if self.observer.needs_detectors:
                path = self.observer.detector_file(folder / "detectors.add.xml",
                                                   self.network.lane_lengths)  # fmt: skip
                self._additional.append(path)
        return Path(self._scratch.name)

    def close_sim(self) -> None:
        """Stop the running simulation, if any."""
        if self.sim is not None:
            self.sim.close()
            self.sim = None

    def close(self) -> None:
        """Stop SUMO and remove the scratch folder; a later :meth:`start` makes a new one.
        Safe to call twice."""
        self.close_sim()
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


def _next_stage(engine: PhaseEngine) -> int:
    """The next green after the current one in programme order that is not dominated."""
    n = engine.num_greens
    for step in range(1, n):
        green = (engine.current_green + step) % n
        if not engine.dominated[green]:
            return green
    return engine.current_green


ScenarioSource = str | Path | Scenario
"""A scenario as the envs take it: a built-in name, a file, or a loaded :class:`Scenario`."""

RENDER_MODES = ("human",)
"""``human`` watches the episodes in sumo-gui (through TraCI; it needs a display)."""


class UnsupportedRenderMode(TwinTrafficError, TypeError):
    """A render mode the envs do not have. A ``TypeError`` too, as stable-baselines3's
    ``make_vec_env`` expects of an env that cannot render ``rgb_array`` frames."""


def sumo_seed(seed: int) -> int:
    """SUMO's seed for an episode's seed: Gymnasium takes any whole number >= 0
    (stable-baselines3 draws them up to 2**32), SUMO one from 0 to 2**31 - 1."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TwinTrafficError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(seed) % (MAX_SEED + 1)


def _config(
    owner: str,
    scenario: ScenarioSource | EnvConfig | None,
    config: EnvConfig | None,
    render_mode: str | None,
    overrides: Mapping[str, Any],
) -> EnvConfig:
    """The env's config from its arguments; unknown keywords and render modes raise."""
    if isinstance(scenario, EnvConfig):  # ``SignalEnv(config)``
        if config is not None:
            raise TwinTrafficError(f"{owner}: give the EnvConfig once, not also as config=")
        scenario, config = None, scenario
    known = [f.name for f in fields(EnvConfig)]
    unknown = [key for key in overrides if key not in known]
    if unknown:
        raise TwinTrafficError(
            f"{owner}: unknown keyword '{unknown[0]}'; the keywords are: "
            f"{', '.join(['config', 'render_mode', *known])}"
        )
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise UnsupportedRenderMode(
            f"{owner}: render_mode={render_mode!r} is not supported; choose one of: "
            f"{', '.join(RENDER_MODES)} (or None)"
        )
    values = dict(overrides)
    if scenario is not None:
        if "scenario" in values:
            raise TwinTrafficError(f"{owner}: give the scenario once, not also as scenario=")
        values.update(_scenario_fields(scenario))
    if render_mode == "human":
        values["gui"] = True
    base = config or EnvConfig()
    return replace(base, **values)


def _scenario_fields(scenario: ScenarioSource) -> dict[str, Any]:
    """The :class:`EnvConfig` fields that name ``scenario``."""
    if not isinstance(scenario, Scenario):
        return {"scenario": str(scenario)}
    if scenario.builtin:
        source = scenario.name
    elif scenario.config_file is not None:
        source = str(scenario.config_file)
    else:
        source = str(scenario.net_file)
    fields_ = {"scenario": source, "begin": scenario.begin, "end": scenario.end}
    if scenario.config_file is None:
        fields_["routes"] = tuple(str(p) for p in scenario.route_files)
    return fields_


def _check_settings(config: EnvConfig) -> None:
    """Refuse, at construction, the settings SUMO or the engines would only fail on later
    (or never end with)."""
    for name in ("decision_interval", "yellow", "all_red", "min_green", "max_green",
                 "sensor_range"):  # fmt: skip
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise TwinTrafficError(f"{name} must be a number of seconds, got {value!r}")
    if not config.decision_interval > 0:
        raise TwinTrafficError(
            f"decision_interval must be > 0 seconds, got {config.decision_interval!r}"
        )
    if not config.sensor_range > 0:
        raise TwinTrafficError(f"sensor_range must be > 0 metres, got {config.sensor_range!r}")
    neighbours = config.reward_neighbours
    if (
        isinstance(neighbours, bool)
        or not isinstance(neighbours, (int, float, np.number))
        or (not 0 <= neighbours <= 1)
    ):
        raise TwinTrafficError(
            f"reward_neighbours must be a number from 0 to 1 (the share of each neighbouring "
            f"signal's reward a signal takes on), got {neighbours!r}"
        )
    if not config.observation:
        raise TwinTrafficError("observation: name at least one feature")
    if len(set(config.observation)) != len(config.observation):
        raise TwinTrafficError(f"observation {list(config.observation)}: each feature once")
    if config.backend not in ("libsumo", "traci"):
        raise TwinTrafficError(f"backend must be 'libsumo' or 'traci', got {config.backend!r}")
    if config.signals is not None and not config.signals:
        raise TwinTrafficError("signals: name at least one signal, or None for all of them")
    if config.signals and len(set(config.signals)) != len(config.signals):
        raise TwinTrafficError(f"signals {list(config.signals)}: each signal once")
    scale = config.demand_scale
    low, high = scale if isinstance(scale, tuple) and len(scale) == 2 else (scale, scale)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or (
        not 0 < low <= high
    ):
        raise TwinTrafficError(
            f"demand_scale {scale!r}: give a factor > 0, or a (low, high) range with "
            "0 < low <= high"
        )


def _draw_scale(scale: float | tuple[float, float], rng: np.random.Generator) -> float:
    if isinstance(scale, tuple):
        low, high = scale
        return float(rng.uniform(low, high))
    return float(scale)


class SignalEnv(gym.Env[np.ndarray, Any]):
    """Gymnasium env: one agent controls one signal or several at once.

    The scenario comes first (a built-in name, a ``.sumocfg`` or ``.net.xml`` path, or a
    loaded :class:`~twin_traffic.scenario.Scenario`): ``SignalEnv("my.sumocfg")``.
    Keyword arguments are :class:`EnvConfig` fields (or pass ``config=``); an unknown one
    raises with the list of valid ones. ``render_mode="human"`` watches the episodes in
    sumo-gui. With one controlled signal the action space is ``Discrete(greens)``, with
    several it is ``MultiDiscrete`` and the observation concatenates the signals'
    vectors; the reward is then the mean of the signals' rewards.
    """

    metadata = {"render_modes": list(RENDER_MODES)}  # noqa: RUF012  (Gymnasium's convention)

    def __init__(
        self,
        scenario: ScenarioSource | EnvConfig | None = None,
        config: EnvConfig | None = None,
        *,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        self.config = _config(type(self).__name__, scenario, config, render_mode, overrides)
        self.render_mode = render_mode
        self.twin = SignalTwin(self.config)
        greens = self.twin.bank.num_greens
        if len(greens) == 1:
            self.action_space: spaces.Space[Any] = spaces.Discrete(greens[0])
        else:
            self.action_space = spaces.MultiDiscrete(list(greens))
        bounds = [self.twin.observation_bounds(i) for i in range(len(greens))]
        low = np.concatenate([b[0] for b in bounds])
        high = np.concatenate([b[1] for b in bounds])
        self.observation_space = spaces.Box(low, high, dtype=np.float32)

    @property
    def signal_ids(self) -> tuple[str, ...]:
        """The controlled signals, in action order."""
        return self.twin.signal_ids

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode; ``seed`` is SUMO's seed (modulo 2**31; drawn when not
        given)."""
        episode_seed = sumo_seed(seed) if seed is not None else None
        super().reset(seed=seed)
        if episode_seed is None:
            episode_seed = int(self.np_random.integers(MAX_SEED))
        scale = _draw_scale(self.config.demand_scale, self.np_random)
        observations = self.twin.start(episode_seed, scale)
        return np.concatenate(observations), {**self.twin.info(), "seed": episode_seed}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Serve the requested green(s) for one decision interval."""
        whole = np.issubdtype(np.asarray(action).dtype, np.integer)
        if not (whole and self.action_space.contains(action)):
            raise TwinTrafficError(
                f"action {action!r} is not in the action space {self.action_space}"
            )
        greens = [int(action)] if np.ndim(action) == 0 else [int(a) for a in action]
        observations, rewards, truncated = self.twin.step(greens)
        return (
            np.concatenate(observations),
            float(np.mean(rewards)),
            False,
            truncated,
            self.twin.info(),
        )

    def render(self) -> None:
        """Nothing to do: in ``human`` mode sumo-gui draws every step itself."""

    def close(self) -> None:
        """Stop SUMO and remove the env's scratch files (a later ``reset`` starts afresh)."""
        self.twin.close()


class SignalParallelEnv(ParallelEnv[str, np.ndarray, int]):
    """PettingZoo parallel env: one agent per signal.

    The scenario and keyword arguments are those of :class:`SignalEnv`, plus ``padded``:
    give every agent the same observation and action space (zero-padded observations,
    ``Discrete(max greens)`` actions and an ``action_mask`` in each info), so one shared
    policy can drive every signal. Every live agent must act, within its action space:
    anything else raises, as PettingZoo's wrappers do. The one exception is padding: in
    ``padded`` mode an action the signal's mask rules out (a green it does not have)
    keeps its current green, so a shared policy that ignores masks cannot crash a run.
    ``teacher`` names a classical controller whose choices :meth:`teacher_actions` gives
    (see :class:`SignalTwin`).
    """

    metadata = {"name": "twin_traffic_signals_v0", "render_modes": list(RENDER_MODES)}  # noqa: RUF012

    def __init__(
        self,
        scenario: ScenarioSource | EnvConfig | None = None,
        config: EnvConfig | None = None,
        padded: bool = False,
        *,
        render_mode: str | None = None,
        teacher: str | None = None,
        **overrides: Any,
    ) -> None:
        self.config = _config(type(self).__name__, scenario, config, render_mode, overrides)
        self.render_mode = render_mode
        self.padded = padded
        self.twin = SignalTwin(self.config, teacher)
        self.possible_agents = list(self.twin.signal_ids)
        self.agents: list[str] = []
        greens = self.twin.bank.num_greens
        bounds = [self.twin.observation_bounds(i) for i in range(len(greens))]
        self._sizes = [len(low) for low, _ in bounds]
        self._greens = dict(zip(self.possible_agents, greens, strict=True))
        if padded:
            width, most = max(self._sizes), max(greens)
            low = np.full(width, min(float(b[0].min()) for b in bounds), dtype=np.float32)
            shared_obs = spaces.Box(low, np.ones(width, dtype=np.float32), dtype=np.float32)
            shared_action = spaces.Discrete(most)
            self._observation_spaces = dict.fromkeys(self.possible_agents, shared_obs)
            self._action_spaces = dict.fromkeys(self.possible_agents, shared_action)
            empty = [np.zeros(0, dtype=np.float32)] * len(greens)
            _, masks = shape_signals(empty, greens, width, most)
            self._masks = {
                agent: mask.astype(np.int8)
                for agent, mask in zip(self.possible_agents, masks, strict=True)
            }
        else:
            self._observation_spaces = {
                agent: spaces.Box(low, high, dtype=np.float32)
                for agent, (low, high) in zip(self.possible_agents, bounds, strict=True)
            }
            self._action_spaces = {
                agent: spaces.Discrete(self._greens[agent]) for agent in self._greens
            }
        # Per agent, what a step checks its action against: the space, its size as a
        # plain int (a NumPy integer compares slower) and the number of valid greens.
        self._action_table = tuple(
            (agent, space, int(space.n), self._greens[agent])
            for agent, space in self._action_spaces.items()
        )
        self._rng = np.random.default_rng()

    @property
    def greens(self) -> dict[str, int]:
        """Each agent's number of greens (its valid actions are the first ones)."""
        return dict(self._greens)

    def observation_space(self, agent: str) -> spaces.Box:
        """The agent's observation space (the same object on every call)."""
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        """The agent's action space (the same object on every call)."""
        return self._action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start a new episode; ``seed`` is SUMO's seed (modulo 2**31; drawn when not
        given)."""
        episode_seed = sumo_seed(seed) if seed is not None else None
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        if episode_seed is None:
            episode_seed = int(self._rng.integers(MAX_SEED))
        scale = _draw_scale(self.config.demand_scale, self._rng)
        observations = self.twin.start(episode_seed, scale)
        self.agents = list(self.possible_agents)
        return self._pack(observations), self._infos()

    def step(
        self, actions: Mapping[str, int]
    ) -> tuple[
        dict[str, np.ndarray],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Serve each agent's requested green for one decision interval."""
        missing = [agent for agent in self.agents if agent not in actions]
        if missing or not self.agents:
            raise TwinTrafficError(
                "no live agents: call reset() to start an episode (also after one ends)"
                if not self.agents
                else f"no action for agent '{missing[0]}'; every live agent acts at each step"
            )  # fmt: skip
        unknown = [agent for agent in actions if agent not in self.agents]
        if unknown:
            raise TwinTrafficError(
                f"no live agent '{unknown[0]}'; the agents are: {', '.join(self.agents)}"
            )
        greens = []
        for index, (agent, space, size, valid) in enumerate(self._action_table):
            action = actions[agent]
            # A plain int is checked here; anything else as the space itself checks it
            # (a bool, which Discrete takes for an int, is no green).
            if isinstance(action, (bool, np.bool_)) or not (
                0 <= action < size if type(action) is int else space.contains(action)
            ):
                raise TwinTrafficError(
                    f"agent '{agent}': action {action!r} is not in its action space {space}"
                )
            green = int(action)  # padded mode: an action beyond the mask keeps the green
            greens.append(green if green < valid else self.twin.bank.engines[index].current_green)
        observations, rewards, truncated = self.twin.step(greens)
        agents = self.possible_agents
        result = (
            self._pack(observations),
            dict(zip(agents, rewards, strict=True)),
            dict.fromkeys(agents, False),
            dict.fromkeys(agents, truncated),
            self._infos(),
        )
        if truncated:
            self.agents = []
        return result

    def teacher_actions(self) -> dict[str, int]:
        """The teacher's green for every agent now (call once per step, before it)."""
        return dict(zip(self.possible_agents, self.twin.teacher_greens(), strict=True))

    def _pack(self, observations: list[np.ndarray]) -> dict[str, np.ndarray]:
        if not self.padded:
            return dict(zip(self.possible_agents, observations, strict=True))
        space = self._action_spaces[self.possible_agents[0]]
        width = self._observation_spaces[self.possible_agents[0]].shape[0]
        rows, _ = shape_signals(observations, list(self._greens.values()), width, int(space.n))
        return dict(zip(self.possible_agents, rows, strict=True))

    def _infos(self) -> dict[str, dict[str, Any]]:
        shared = self.twin.info()
        if not self.padded:
            return {agent: dict(shared) for agent in self.possible_agents}
        return {
            agent: {**shared, "action_mask": self._masks[agent]} for agent in self.possible_agents
        }

    def render(self) -> None:
        """Nothing to do: in ``human`` mode sumo-gui draws every step itself."""

    def close(self) -> None:
        """Stop SUMO and remove the env's scratch files (a later ``reset`` starts afresh)."""
        self.twin.close()


def register_builtin_envs() -> None:
    """Register ``twin_traffic/<scenario>-v0`` for every built-in scenario."""
    for name in builtin_scenarios():
        env_id = f"twin_traffic/{name}-v0"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=SignalEnv, kwargs={"scenario": name})


register_builtin_envs()
