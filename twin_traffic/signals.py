"""Safe phase engine for one SUMO traffic signal (pure logic, no SUMO import).

Controllers ask for a *green* (an index into :attr:`PhaseEngine.greens`); the
engine decides what the signal actually shows, step by step:

* a switch to a conflicting green always goes through yellow (and an optional
  all-red clearance);
* a green is held for at least ``min_green`` before a requested switch;
* a green held for ``max_green`` is ended even without a request (when the
  programme has two or more greens).

Time model: :meth:`PhaseEngine.reset` returns the state to show for the first
step; each :meth:`PhaseEngine.tick` means "one ``step_length`` has elapsed with
the current state shown" and returns the state to show for the next step when
it differs (``None`` otherwise).  A typical loop is::

    traci.trafficlight.setRedYellowGreenState(tls, engine.reset())
    while running:
        engine.request(controller.act(obs))
        traci.simulationStep()
        if (new_state := engine.tick()) is not None:
            traci.trafficlight.setRedYellowGreenState(tls, new_state)

State characters follow SUMO: ``G``/``g`` green, ``y``/``Y`` yellow, ``r`` red,
``s`` stop-then-go, ``u`` red-yellow, ``o``/``O`` off.  A *green phase* has at
least one ``G``/``g`` and no ``y``/``Y``/``u``; every other phase (yellows,
red-yellows, all-reds) is a transition phase.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GREEN_CHARS",
    "YELLOW_CHARS",
    "PhaseEngine",
    "SignalTiming",
    "TransitionOrigin",
    "dominated_greens",
    "green_phase_indices",
    "is_green_phase",
    "programme_intergreens",
]

GREEN_CHARS = frozenset("Gg")
YELLOW_CHARS = frozenset("yY")
_TRANSITION_CHARS = frozenset("yYu")
_VALID_CHARS = frozenset("GgyYrsuoO")
# Tolerance when converting seconds to whole steps, so that e.g. 3.0 / 0.1
# (= 30.000000000000004) is 30 steps and not 31.
_EPS = 1e-9

TransitionOrigin = Literal["none", "direct", "programme", "derived"]
CLEARANCES = ("yellow", "programme")


def _ceil_steps(seconds: float, step_length: float) -> int:
    """Number of whole steps covering ``seconds`` (rounded up, never negative)."""
    return max(0, math.ceil(seconds / step_length - _EPS))


@dataclass(frozen=True)
class SignalTiming:
    """Safety timings applied by :class:`PhaseEngine` (all in seconds).

    Attributes:
        yellow: yellow time used when the engine derives a transition itself
            (programme transitions keep the programme's yellow durations).
        all_red: clearance after a derived yellow, during which the links that
            just lost green are red and no new green is shown; 0 disables it.
        min_green: minimum time a green is shown before a requested switch.
        max_green: time after which a green is ended without a request
            (``math.inf`` disables it).
        clearance: how long a transition the engine derives lasts at least: ``yellow``
            (the default), ``yellow + all_red``, as benchmarks in the literature switch;
            ``programme``, also the programme's own intergreens between the vehicle
            links it ends and starts (see :func:`programme_intergreens`), never clearing
            faster than the city's programme. Pedestrian crossings always keep the
            programme's clearance.
    """

    yellow: float = 3.0
    all_red: float = 0.0
    min_green: float = 5.0
    max_green: float = 60.0
    clearance: str = "yellow"

    def __post_init__(self) -> None:
        for name in ("yellow", "all_red", "min_green", "max_green"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"SignalTiming.{name} must be a number, got {value!r}")
            if math.isnan(value) or value < 0:
                raise ValueError(f"SignalTiming.{name} must be non-negative, got {value!r}")
            if name != "max_green" and math.isinf(value):
                raise ValueError(f"SignalTiming.{name} must be finite, got {value!r}")
        if self.yellow <= 0:
            raise ValueError(f"SignalTiming.yellow must be > 0, got {self.yellow!r}")
        if self.max_green <= 0:
            raise ValueError(f"SignalTiming.max_green must be > 0, got {self.max_green!r}")
        if self.clearance not in CLEARANCES:
            raise ValueError(
                f"SignalTiming.clearance must be one of {', '.join(CLEARANCES)}, "
                f"got {self.clearance!r}"
            )
        if self.min_green > self.max_green:
            raise ValueError(
                f"SignalTiming.min_green ({self.min_green!r}) must be <= "
                f"max_green ({self.max_green!r})"
            )


def is_green_phase(state: str) -> bool:
    """True if ``state`` has a ``G``/``g`` link and no ``y``/``Y``/``u`` link."""
    return any(c in GREEN_CHARS for c in state) and not any(c in _TRANSITION_CHARS for c in state)


def green_phase_indices(states: Sequence[str]) -> tuple[int, ...]:
    """Indices of the programme's green phases, skipping repeated green states.

    When the same green state appears several times, only its first occurrence
    is kept, so the result maps one-to-one onto :attr:`PhaseEngine.greens`.
    """
    seen: set[str] = set()
    indices: list[int] = []
    for i, state in enumerate(states):
        if state not in seen and is_green_phase(state):
            seen.add(state)
            indices.append(i)
    return tuple(indices)


def _is_safe_path(path: Sequence[str], no_yellow: frozenset[int] = frozenset()) -> bool:
    """True if no link goes from green straight to a non-yellow, non-green char, except
    the links in ``no_yellow`` (pedestrian crossings, whose green ends in red)."""
    for prev, cur in itertools.pairwise(path):
        for k, (a, b) in enumerate(zip(prev, cur, strict=True)):
            cut = a in GREEN_CHARS and b not in GREEN_CHARS and b not in YELLOW_CHARS
            if cut and k not in no_yellow:
                return False
    return True


def programme_intergreens(
    states: Sequence[str], steps: Sequence[int], crossings: frozenset[int] = frozenset()
) -> dict[tuple[int, int], int]:
    """The programme's own intergreens: for links ``i`` and ``j`` that no phase shows
    green together (conflicting movements), the fewest steps it leaves between the end
    of ``i``'s green and the start of ``j``'s, where ``j``'s green follows ``i``'s within
    one clearance.

    A vehicle link's clearance is its yellow and the all-reds after it: the phases in
    which no link has green (or some show yellow). A phase in which some other movement
    runs (a bypass lane alone, or vehicles while people cannot cross) serves that
    movement; it is a stage, not clearance. A pedestrian crossing (``crossings``) is
    cleared with time while vehicles still run (the walk ends, the vehicles' yellow
    follows later), so its clearance reaches back through green phases to the one that
    started something (gave a link green or protection).

    This is the programme's intergreen matrix (e.g. FGSV RiLSA, HCM's yellow plus
    red clearance per movement pair): a derived transition that waits as long never
    clears faster than the city's own programme."""
    count = len(states)
    green = [_green_links(state) for state in states]
    together = _green_together(states)
    starts = list(itertools.accumulate(steps, initial=0))
    cycle = max(starts[-1], 1)
    found: dict[tuple[int, int], int] = {}
    for p in range(count):  # the phase where j's green starts
        rising = green[p] - green[p - 1]
        through_green = False  # a green phase stands between phase q and phase p
        for back in range(1, count):
            q = (p - back) % count
            ended = green[q] - green[(q + 1) % count]  # links whose green ends with phase q
            gap = (starts[p] - starts[(q + 1) % count]) % cycle
            for i, j in itertools.product(ended, rising):
                if (i, j) not in together and (i in crossings or not through_green):
                    found[(i, j)] = min(found.get((i, j), gap), gap)
            if _starts_something(states[q - 1], states[q]):
                break  # phase q gave a link green or protection: the transition began after it
            through_green = through_green or is_green_phase(states[q])
    return found


def _green_links(state: str) -> frozenset[int]:
    """Indices of the links that have green (``G`` or ``g``) in ``state``."""
    return frozenset(i for i, c in enumerate(state) if c in GREEN_CHARS)


def _green_together(states: Sequence[str]) -> frozenset[tuple[int, int]]:
    """The pairs of links some phase shows green at once (each link with itself too);
    the programme treats every other pair as conflicting."""
    return frozenset(
        (i, j) for state in states for i, j in itertools.product(_green_links(state), repeat=2)
    )


def _starts_something(before: str, after: str) -> bool:
    """True when ``after`` gives some link green, or protection (``g`` to ``G``), that
    ``before`` did not."""
    return any(
        (b in GREEN_CHARS and a not in GREEN_CHARS) or (b == "G" and a == "g")
        for a, b in zip(before, after, strict=True)
    )


def dominated_greens(greens: Sequence[str]) -> tuple[bool, ...]:
    """For each green, whether another green serves all its links at least as well.

    A green is dominated when another green gives green to every link it does and
    protected green (``G``) to every link it protects: a lead phase, a clearance
    green or an always-green bypass. A protected-left-only phase is *not* dominated
    by a phase where the same left is only permissive (``g``).
    """

    def covers(big: str, small: str) -> bool:
        return all(
            (b in GREEN_CHARS or s not in GREEN_CHARS) and (b == "G" or s != "G")
            for b, s in zip(big, small, strict=True)
        )

    return tuple(
        any(j != i and other != green and covers(other, green) for j, other in enumerate(greens))
        for i, green in enumerate(greens)
    )


def _merge(segments: list[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Drop zero-length segments and fuse consecutive identical states."""
    merged: list[tuple[str, int]] = []
    for state, steps in segments:
        if steps <= 0:
            continue
        if merged and merged[-1][0] == state:
            merged[-1] = (state, merged[-1][1] + steps)
        else:
            merged.append((state, steps))
    return tuple(merged)


class PhaseEngine:
    """One signal's safe phase state machine.

    Args:
        states: the programme's phase states (SUMO ``state`` strings).
        durations: the programme's phase durations in seconds (used for the
            yellow / all-red phases of programme transitions).
        timing: safety timings.
        step_length: seconds advanced by one :meth:`tick`.
        green_minimums: the programme's own minimum per green (its ``minDur``), s,
            held before a requested switch as ``timing.min_green`` is (the longer of
            the two; never past ``max_green``).
        crossings: links onto pedestrian crossings. SUMO shows a crossing no yellow:
            its green ends in red, and the programme clears it with time before
            conflicting vehicles get green (see :func:`programme_intergreens`).

    Actions are indices into :attr:`greens` (the distinct green states in order
    of first appearance in the programme).  All durations are rounded up to
    whole steps.

    Raises:
        ValueError: on an empty or malformed programme, or one with no green.
    """

    def __init__(
        self,
        states: Sequence[str],
        durations: Sequence[float],
        timing: SignalTiming,
        step_length: float = 1.0,
        green_minimums: Sequence[float] | None = None,
        crossings: frozenset[int] = frozenset(),
    ) -> None:
        states = tuple(states)
        durations = tuple(float(d) for d in durations)
        if not states:
            raise ValueError("signal programme has no phases")
        if len(durations) != len(states):
            raise ValueError(f"got {len(states)} phase states but {len(durations)} durations")
        n_links = len(states[0])
        for i, s in enumerate(states):
            if len(s) != n_links:
                raise ValueError(f"phase {i} state {s!r} has {len(s)} links, phase 0 has {n_links}")
            bad = set(s) - _VALID_CHARS
            if bad:
                raise ValueError(f"phase {i} state {s!r} has invalid chars {sorted(bad)}")
        for i, d in enumerate(durations):
            if not math.isfinite(d) or d < 0:
                raise ValueError(f"phase {i} duration must be finite and >= 0, got {d!r}")
        if not (math.isfinite(step_length) and step_length > 0):
            raise ValueError(f"step_length must be a positive number, got {step_length!r}")
        green_idx = green_phase_indices(states)
        if not green_idx:
            raise ValueError(
                "signal programme has no green phase (a phase with a 'G'/'g' link "
                f"and no 'y'/'Y'/'u' link): {list(states)}"
            )

        self.programme_states: tuple[str, ...] = states
        self.programme_durations: tuple[float, ...] = durations
        self.timing = timing
        self.step_length = float(step_length)
        self.greens: tuple[str, ...] = tuple(states[i] for i in green_idx)
        self.num_greens: int = len(self.greens)
        self._min_steps = _ceil_steps(timing.min_green, self.step_length)
        own = tuple(green_minimums) if green_minimums is not None else (0.0,) * len(green_idx)
        if len(own) != len(green_idx):
            raise ValueError(f"got {len(own)} green minimums for {len(green_idx)} greens")
        # A green is always shown for at least one step.
        self._max_steps: float = (
            math.inf
            if math.isinf(timing.max_green)
            else max(1, _ceil_steps(timing.max_green, self.step_length))
        )

        # Per green: the steps it is held before a requested switch.
        self._green_min_steps = tuple(
            min(max(self._min_steps, _ceil_steps(seconds, self.step_length)), self._max_steps)
            for seconds in own
        )

        self.dominated: tuple[bool, ...] = dominated_greens(self.greens)
        self._stages = frozenset(
            g for g, dominated in zip(self.greens, self.dominated, strict=True) if not dominated
        )
        self._no_yellow = frozenset(crossings)
        self._intergreens = programme_intergreens(
            states, [_ceil_steps(d, self.step_length) for d in durations], self._no_yellow
        )
        self._clearance: dict[int, int] = {}  # per link: its longest intergreen
        for (i, _), gap in self._intergreens.items():
            self._clearance[i] = max(self._clearance.get(i, 0), gap)
        self._longest_intergreen = max(self._intergreens.values(), default=0)
        self._together = _green_together(states)
        # Precompute every src -> dst plan so tick() only indexes tuples.
        n = self.num_greens
        self._plans: list[list[tuple[tuple[str, int], ...]]] = [[()] * n for _ in range(n)]
        self._origins: list[list[TransitionOrigin]] = [["none"] * n for _ in range(n)]
        for src in range(n):
            for dst in range(n):
                if src != dst:
                    plan, origin = self._build_transition(src, dst)
                    self._plans[src][dst] = plan
                    self._origins[src][dst] = origin

        # Mutable run state (set by reset).
        self._green = 0  # green shown, or the target while in transition
        self._green_steps = 0  # steps the current green has been shown
        self._pending: int | None = None  # latched request (never == _green)
        self._plan: tuple[tuple[str, int], ...] = ()
        self._seg = -1  # index into _plan; -1 means a green is shown
        self._seg_left = 0  # steps left in the current transition segment
        self._state = self.greens[0]
        self.reset(0)

    # ------------------------------------------------------------------ setup

    def _build_transition(
        self, src: int, dst: int
    ) -> tuple[tuple[tuple[str, int], ...], TransitionOrigin]:
        """Plan for green ``src`` -> green ``dst`` as ((state, steps), ...)."""
        plan = self._programme_transition(src, dst)
        if plan is not None:
            return plan, "programme"
        return self._derived_transition(src, dst)

    def _programme_transition(self, src: int, dst: int) -> tuple[tuple[str, int], ...] | None:
        """The programme's own path from green ``src`` to green ``dst``, if it is safe.

        The path runs through the programme's transition phases and through
        clearance greens: dominated greens (:func:`dominated_greens`) that only keep
        links ``src`` already gives green to, such as an intergreen where only an
        always-green bypass lane runs. A real programme's intergreen is so followed as
        written; a path through another stage (a lagging protected left) is not a
        transition, since a controller may choose that stage or skip it.
        """
        states, durations, step = self.programme_states, self.programme_durations, self.step_length
        src_state, dst_state = self.greens[src], self.greens[dst]
        src_green = _green_links(src_state)
        n = len(states)
        for i, s in enumerate(states):
            if s != src_state:
                continue
            segments: list[tuple[str, int]] = []
            for k in range(1, n):
                j = (i + k) % n
                phase = states[j]
                if is_green_phase(phase):
                    if phase == dst_state:
                        # A green -> green hop without an intermediate phase is derived.
                        plan = _merge(self._with_clearance(segments))
                        # Phases that repeat src (a stage split in several) are its green.
                        while plan and plan[0][0] == src_state:
                            plan = plan[1:]
                        path = [src_state, *(p for p, _ in plan), dst_state]
                        if plan and _is_safe_path(path, self._no_yellow):
                            return plan
                        break
                    if phase in self._stages or not _green_links(phase) <= src_green:
                        break  # another stage starts: not a path to dst
                steps = _ceil_steps(durations[j], step)
                if any(c in YELLOW_CHARS for c in phase):
                    steps = max(1, steps)  # never skip a programme yellow
                segments.append((phase, steps))
        return None

    def _with_clearance(self, segments: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """Segments with an all-red clearance of at least ``timing.all_red`` after each
        yellow: the links that showed yellow are red before any other phase follows."""
        clear_steps = _ceil_steps(self.timing.all_red, self.step_length)
        if clear_steps == 0:
            return segments
        out: list[tuple[str, int]] = []
        inserted = False  # out[-1] is a clearance added here
        for state, steps in segments:
            if inserted and out[-1][0] == state:
                # The programme's own clearance after the yellow: kept, at least all_red.
                out[-1] = (state, max(out[-1][1], steps))
                inserted = False
                continue
            out.append((state, steps))
            inserted = any(c in YELLOW_CHARS for c in state)
            if inserted:
                out.append(("".join("r" if c in YELLOW_CHARS else c for c in state), clear_steps))
        return out

    def _derived_transition(
        self, src: int, dst: int
    ) -> tuple[tuple[tuple[str, int], ...], TransitionOrigin]:
        """Per-link transition from green ``src`` to green ``dst``.

        A link loses right of way when its green ends, or when its protected green
        (``G``) becomes permissive (``g``) as other links gain green or priority: a turn
        that had priority must clear before its opposing traffic is given green.
        Losing links show yellow (pedestrian crossings red: SUMO gives them none), then
        red until the transition has lasted ``yellow + all_red`` and the programme's own
        clearance of every losing crossing (with ``clearance="programme"``, of every
        losing link) before a link ``dst`` gives green (:func:`programme_intergreens`).
        Links green on both sides keep their ``src`` character, links red on both theirs.
        """
        a, b = self.greens[src], self.greens[dst]
        gaining = [k for k, (ca, cb) in enumerate(zip(a, b, strict=True))
                   if ca not in GREEN_CHARS and cb in GREEN_CHARS]  # fmt: skip
        gains_priority = bool(gaining) or any(
            ca == "g" and cb == "G" for ca, cb in zip(a, b, strict=True)
        )
        losing = [
            (ca in GREEN_CHARS and cb not in GREEN_CHARS)
            or (ca == "G" and cb == "g" and gains_priority)
            for ca, cb in zip(a, b, strict=True)
        ]
        if not any(losing):
            return (), "direct"  # dst only adds greens: nothing to clear
        yellow = "".join(
            ("r" if k in self._no_yellow else "y") if lose else c
            for k, (lose, c) in enumerate(zip(losing, a, strict=True))
        )
        vehicles_lose = any(lose and k not in self._no_yellow for k, lose in enumerate(losing))
        yellow_steps = max(1, _ceil_steps(self.timing.yellow, self.step_length))
        if not vehicles_lose:  # only crossings end: no yellow, only their clearance
            yellow_steps = 0
        # A crossing's clearance is always the programme's (people on the crossing); a
        # vehicle link's only with clearance="programme".
        ending = [i for i in itertools.compress(range(len(a)), losing)
                  if i in self._no_yellow or self.timing.clearance == "programme"]  # fmt: skip
        needed = max((self._intergreen(i, j) for i in ending for j in gaining), default=0)
        all_red = _ceil_steps(self.timing.all_red, self.step_length) if vehicles_lose else 0
        clear_steps = max(all_red, needed - yellow_steps)
        clear = "".join("r" if lose else c for lose, c in zip(losing, a, strict=True))
        plan = _merge([(yellow, yellow_steps), (clear, clear_steps)])
        return (plan, "derived") if plan else ((), "direct")

    def _intergreen(self, i: int, j: int) -> int:
        """Steps from the end of link ``i``'s green to the start of link ``j``'s: the
        programme's own where it has that pair, else ``i``'s longest one for links the
        programme never shows green together, or its longest one where ``i`` has none
        (0 for links it shows green together)."""
        found = self._intergreens.get((i, j))
        if found is not None:
            return found
        if (i, j) in self._together:
            return 0
        return self._clearance.get(i, self._longest_intergreen)

    def _check_green(self, green: int) -> int:
        try:
            g = operator.index(green)
        except TypeError:
            raise ValueError(f"green index must be an integer, got {green!r}") from None
        if not 0 <= g < self.num_greens:
            raise ValueError(f"green index {g} out of range [0, {self.num_greens})")
        return g

    # -------------------------------------------------------------- public API

    def transition(self, src: int, dst: int) -> tuple[tuple[str, float], ...]:
        """Intermediate ``(state, seconds)`` shown between green ``src`` and ``dst``.

        Empty when ``src == dst`` or when ``dst`` only adds green links (direct
        switch).  Seconds are whole multiples of ``step_length``.
        """
        s, d = self._check_green(src), self._check_green(dst)
        return tuple((state, steps * self.step_length) for state, steps in self._plans[s][d])

    def transition_origin(self, src: int, dst: int) -> TransitionOrigin:
        """How the src -> dst transition was built.

        ``"programme"`` (the programme's own phases), ``"derived"`` (yellow and
        optional all-red built from the link states), ``"direct"`` (no link
        loses green, no intermediate phase) or ``"none"`` (``src == dst``).
        """
        s, d = self._check_green(src), self._check_green(dst)
        return self._origins[s][d]

    def reset(self, green: int = 0) -> str:
        """Show green ``green`` from now on (no transition) and clear requests."""
        g = self._check_green(green)
        self._green = g
        self._green_steps = 0
        self._pending = None
        self._plan = ()
        self._seg = -1
        self._seg_left = 0
        self._state = self.greens[g]
        return self._state

    def request(self, green: int) -> None:
        """Ask for green ``green``; latched until served or replaced.

        Requesting the green currently shown (or being moved to) cancels a
        pending switch.  A request never interrupts a running transition.
        """
        g = self._check_green(green)
        self._pending = None if g == self._green else g

    def tick(self) -> str | None:
        """Advance one step; return the new state if it changed, else ``None``."""
        if self._seg < 0:
            # A green is shown.
            self._green_steps += 1
            pending = self._pending
            if pending is not None and self._green_steps >= self._green_min_steps[self._green]:
                return self._start(pending)
            if self._green_steps >= self._max_steps and self.num_greens > 1:
                return self._start((self._green + 1) % self.num_greens)
            return None
        # In a transition.
        self._seg_left -= 1
        if self._seg_left > 0:
            return None
        self._seg += 1
        plan = self._plan
        if self._seg < len(plan):
            self._state, self._seg_left = plan[self._seg]
            return self._state
        # Transition done: the target green starts being shown now.
        self._seg = -1
        self._green_steps = 0
        new = self.greens[self._green]
        if new == self._state:
            return None
        self._state = new
        return new

    def coast(self, limit: int) -> int:
        """Advance at once through the coming steps (at most ``limit``) in which
        :meth:`tick` would change nothing shown — a green before its request is due or
        its max green, a transition phase before its end — and return how many."""
        if self._seg >= 0:
            steps = max(min(limit, self._seg_left - 1), 0)
            self._seg_left -= steps
            return steps
        quiet: float = limit  # a lone green without a request is never forced off
        if self.num_greens > 1:
            quiet = min(quiet, self._max_steps - self._green_steps - 1)
        if self._pending is not None:
            quiet = min(quiet, self._green_min_steps[self._green] - self._green_steps - 1)
        steps = max(int(quiet), 0)
        self._green_steps += steps
        return steps

    def rest_of_transition(self) -> tuple[tuple[str, int], ...]:
        """The transition still to show, as ``(state, steps)``: the current phase for
        the steps it has left, then the later ones (empty while a green is shown); the
        green that ends it is :attr:`current_green`."""
        if self._seg < 0:
            return ()
        return ((self._state, self._seg_left), *self._plan[self._seg + 1 :])

    def _start(self, dst: int) -> str | None:
        """Leave the current green for ``dst`` (called from tick)."""
        plan = self._plans[self._green][dst]
        self._green = dst
        self._pending = None
        self._green_steps = 0
        if plan:
            self._plan = plan
            self._seg = 0
            self._state, self._seg_left = plan[0]
        else:
            self._state = self.greens[dst]
        return self._state

    # ------------------------------------------------------------- properties

    @property
    def state(self) -> str:
        """The state string currently shown."""
        return self._state

    @property
    def current_green(self) -> int:
        """Index of the green shown, or of the green being moved to."""
        return self._green

    @property
    def pending(self) -> int | None:
        """The latched, not yet served request (``None`` if none)."""
        return self._pending

    @property
    def in_transition(self) -> bool:
        """True while yellow / clearance phases are shown."""
        return self._seg >= 0

    @property
    def time_in_green(self) -> float:
        """Seconds the current green has been shown (0 during a transition)."""
        return self._green_steps * self.step_length

    @property
    def can_switch(self) -> bool:
        """True once min green has been shown (and not in a transition).

        A request made now is served at the next :meth:`tick`.  (A request made
        one step earlier is served at that same tick too: the tick that
        completes min green also serves it.)
        """
        return self._seg < 0 and self._green_steps >= self._green_min_steps[self._green]

    @property
    def min_green_steps(self) -> int:
        """``min_green`` in whole steps (rounded up)."""
        return self._min_steps

    @property
    def max_green_steps(self) -> float:
        """``max_green`` in whole steps (rounded up; ``inf`` if disabled)."""
        return self._max_steps
