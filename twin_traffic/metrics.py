"""Congestion metrics from SUMO's own outputs, per run and across seeds.

Per-run metrics (the names used in tables, JSON and result files):

========================  ===================================================================
``delay``                 mean delay per trip, s: ``timeLoss + departDelay`` over every trip
                          of the window: arrived, still running at the end, and never inserted
                          (charged ``end - scheduled depart``, which is SUMO's departDelay for
                          them). The RESCO benchmark's definition.
``travel_time``           mean trip duration of arrived vehicles, s
``waiting_time``          mean time spent standing (speed < 0.1 m/s) per inserted trip, s
``stops``                 mean number of stops per inserted trip
``throughput``            vehicles that arrived at their destination
``vehicles``              trips whose scheduled depart falls inside the window
``unfinished``            vehicles still driving at the end
``not_inserted``          vehicles that never entered the network
``queue_mean``            halting vehicles on a signal's approaches, mean over the samples
                          (every 5 s by default) and the signals
``queue_max``             the largest such queue at one signal in any sample
``teleports``             vehicles SUMO teleported out of a jam (a sign of gridlock)
``gridlock``              1 when the run gridlocked (see :func:`is_gridlock`), else 0; its
                          mean over seeds is the share of runs that gridlocked
``co2_kg``                CO2 emitted inside the window, kg
``fuel_kg``               fuel burnt inside the window, kg
========================  ===================================================================

Across seeds every metric is summarised as mean, standard deviation and a 95% Student-t
confidence interval.

A run is a gridlock when every vehicle in the network stood still for the evaluation's
``gridlock_seconds`` (what shows with teleporting off), or when SUMO teleported at least
:data:`GRIDLOCK_TELEPORT_SHARE` of the window's vehicles (with teleporting on, SUMO's
default, a vehicle is teleported after standing ``--time-to-teleport`` = 300 s, so the jam
is carried away instead of standing still). :func:`run_warnings` says so in words, and
also when at least :data:`NOT_INSERTED_SHARE` of the vehicles never entered the network.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sumolib

# Headline first; the order of tables and JSON.
METRICS: dict[str, str] = {
    "delay": "s/trip",
    "travel_time": "s/trip",
    "waiting_time": "s/trip",
    "stops": "per trip",
    "throughput": "veh",
    "vehicles": "veh",
    "unfinished": "veh",
    "not_inserted": "veh",
    "queue_mean": "veh",
    "queue_max": "veh",
    "teleports": "veh",
    "gridlock": "runs",
    "co2_kg": "kg",
    "fuel_kg": "kg",
}
"""Metric names (the order of tables and JSON, headline first) and their units."""

# Metrics where a larger value is better; all others are costs.
HIGHER_IS_BETTER = frozenset({"throughput"})

RUN_COUNTS = frozenset({"gridlock"})
"""Metrics that are 0 or 1 per run: shown as how many runs had them, not as an estimate."""

GRIDLOCK_TELEPORT_SHARE = 0.01
"""Teleports, as a share of the window's vehicles, from which a run counts as a gridlock:
each one is a vehicle that stood 300 s in a jam; a free-flowing run has none."""

NOT_INSERTED_SHARE = 0.05
"""Share of the window's vehicles that never entered, from which a run is warned about:
the queues reach back to where demand enters the network."""

_TRIP_ATTRIBUTES = [
    "id", "depart", "departDelay", "arrival", "duration", "routeLength",
    "waitingTime", "waitingCount", "timeLoss", "vType",
]  # fmt: skip
_EMISSION_ATTRIBUTES = ["CO2_abs", "fuel_abs"]
_MG_PER_KG = 1e6


def read_tripinfo(path: Path) -> pd.DataFrame:
    """Per-trip table from a tripinfo file written with unfinished and undeparted trips.

    Columns: ``id``, ``vtype``, ``depart`` (NaN when never inserted), ``depart_delay``,
    ``arrival`` (NaN when not arrived), ``duration``, ``route_length``, ``waiting_time``,
    ``stops``, ``time_loss``, ``delay``, ``co2_mg``, ``fuel_mg``, ``arrived``, ``inserted``.
    """
    rows = []
    # Trips come with an <emissions> child only when the emissions device was on.
    for trip, emissions in _trips_with_emissions(path):
        rows.append(
            (
                trip.id, trip.vType, float(trip.depart), float(trip.departDelay),
                float(trip.arrival), float(trip.duration), float(trip.routeLength),
                float(trip.waitingTime), int(trip.waitingCount), float(trip.timeLoss),
                float(emissions.CO2_abs) if emissions else math.nan,
                float(emissions.fuel_abs) if emissions else math.nan,
            )
        )  # fmt: skip
    trips = pd.DataFrame.from_records(
        rows,
        columns=[
            "id", "vtype", "depart", "depart_delay", "arrival", "duration", "route_length",
            "waiting_time", "stops", "time_loss", "co2_mg", "fuel_mg",
        ],
    )  # fmt: skip
    # SUMO writes -1 for "never happened"; NaN says so to pandas.
    trips["inserted"] = trips["depart"] >= 0
    trips["arrived"] = trips["arrival"] >= 0
    trips.loc[~trips["inserted"], "depart"] = np.nan
    trips.loc[~trips["arrived"], "arrival"] = np.nan
    trips["delay"] = trips["time_loss"] + trips["depart_delay"]
    return trips


def _trips_with_emissions(path: Path) -> Iterator[tuple[Any, Any]]:
    with_emissions = sumolib.xml.parse_fast_nested(
        str(path), "tripinfo", _TRIP_ATTRIBUTES, "emissions", _EMISSION_ATTRIBUTES
    )
    first = next(iter(with_emissions), None)
    if first is not None:
        yield first
        yield from with_emissions
        return
    for trip in sumolib.xml.parse_fast(str(path), "tripinfo", _TRIP_ATTRIBUTES):
        yield trip, None


def read_teleports(statistics_file: Path) -> int:
    """Total teleports from SUMO's ``--statistic-output``."""
    element = ET.parse(statistics_file).getroot().find("teleports")
    return 0 if element is None else int(element.get("total", "0"))


def summarize_run(
    trips: pd.DataFrame,
    queues: np.ndarray | None = None,
    teleports: int = 0,
    gridlock_at: float | None = None,
) -> dict[str, float]:
    """The per-run metrics (see the module docstring) of one run.

    Args:
        trips: the table from :func:`read_tripinfo`.
        queues: halting vehicles per signal over time, shape ``(steps, signals)``.
        teleports: from :func:`read_teleports`.
        gridlock_at: when a network-wide standstill began, if the runner saw one.
    """
    inserted = trips[trips["inserted"]]
    arrived = trips[trips["arrived"]]
    has_queues = queues is not None and queues.size > 0
    metrics = {
        "delay": _mean(trips["delay"]),
        "travel_time": _mean(arrived["duration"]),
        "waiting_time": _mean(inserted["waiting_time"]),
        "stops": _mean(inserted["stops"]),
        "throughput": float(len(arrived)),
        "vehicles": float(len(trips)),
        "unfinished": float(len(inserted) - len(arrived)),
        "not_inserted": float(len(trips) - len(inserted)),
        "queue_mean": float(queues.mean()) if has_queues else math.nan,  # type: ignore[union-attr]
        "queue_max": float(queues.max()) if has_queues else math.nan,  # type: ignore[union-attr]
        "teleports": float(teleports),
        "co2_kg": float(trips["co2_mg"].sum(min_count=1)) / _MG_PER_KG,
        "fuel_kg": float(trips["fuel_mg"].sum(min_count=1)) / _MG_PER_KG,
    }
    metrics["gridlock"] = float(is_gridlock(metrics, gridlock_at))
    return {name: metrics[name] for name in METRICS}


def is_gridlock(metrics: Mapping[str, float], gridlock_at: float | None = None) -> bool:
    """True when a run gridlocked: a network-wide standstill (``gridlock_at``) or at least
    :data:`GRIDLOCK_TELEPORT_SHARE` of its vehicles teleported out of jams."""
    if gridlock_at is not None:
        return True
    return _share(metrics, "teleports") >= GRIDLOCK_TELEPORT_SHARE


def run_warnings(metrics: Mapping[str, float], gridlock_at: float | None = None) -> list[str]:
    """What a reader must know about a run beyond its averages, one phrase each: gridlock,
    heavy teleporting, vehicles that never entered. Empty for a healthy run."""
    vehicles = metrics.get("vehicles", math.nan)
    warnings = []
    if vehicles == 0:
        warnings.append(
            "no vehicle was due in the window: the scenario has no demand there (check its "
            "route files and the begin/end window, --begin/--end)"
        )
    if gridlock_at is not None:
        warnings.append(f"gridlock: every vehicle stood still from t={gridlock_at:,.0f} s")
    teleports = _share(metrics, "teleports")
    if teleports >= GRIDLOCK_TELEPORT_SHARE:
        warnings.append(
            f"gridlock: {metrics['teleports']:,.0f} vehicles ({teleports:.1%} of "
            f"{vehicles:,.0f}) teleported out of jams"
        )
    not_inserted = _share(metrics, "not_inserted")
    if not_inserted >= NOT_INSERTED_SHARE:
        warnings.append(
            f"{metrics['not_inserted']:,.0f} vehicles ({not_inserted:.1%} of "
            f"{vehicles:,.0f}) never entered the network"
        )
    return warnings


def _share(metrics: Mapping[str, float], name: str) -> float:
    """``metrics[name]`` per scheduled vehicle (0 when unknown)."""
    value, vehicles = metrics.get(name), metrics.get("vehicles")
    if value is None or vehicles is None or math.isnan(value) or not vehicles > 0:
        return 0.0
    return float(value) / float(vehicles)


@dataclass(frozen=True)
class Summary:
    """One metric across seeds: mean, standard deviation and 95% confidence interval."""

    mean: float
    std: float
    ci_low: float
    ci_high: float
    n: int

    @property
    def half_width(self) -> float:
        """Half the width of the confidence interval (NaN with one seed)."""
        return (self.ci_high - self.ci_low) / 2


def summarize_seeds(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean and Student-t confidence interval of one metric over seeds.

    With a single seed the spread is unknown: std and the interval are NaN.
    """
    array = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    n = len(array)
    if n == 0:
        return Summary(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(array.mean())
    if n == 1:
        return Summary(mean, math.nan, math.nan, math.nan, 1)
    from scipy import stats  # here: it takes a second to import, and workers never need it

    std = float(array.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * std / math.sqrt(n)
    return Summary(mean, std, mean - half, mean + half, n)


def summarize_runs(per_seed: Sequence[Mapping[str, float]]) -> dict[str, Summary]:
    """Summaries of every metric over a list of per-run metric dicts."""
    return {name: summarize_seeds([m[name] for m in per_seed]) for name in METRICS}


def _mean(series: pd.Series) -> float:
    return float(series.mean()) if len(series) else math.nan
