"""Metric arithmetic, checked against delays computed by hand on tiny real scenarios."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import write_scenario

from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.metrics import summarize_seeds

SPEED = 13.89  # m/s, the road's limit
ACCEL = 2.6  # m/s², the vType's
DEPART_POS = 5.1  # SUMO's departPos="base": the vehicle's length plus 0.1 m


def test_delay_of_a_vehicle_held_at_red_matches_the_hand_computation(tmp_path: Path) -> None:
    # v0 reaches the stop line of a red that lasts 60 s; v1 comes after the red and drives
    # freely; v2 is still driving when the run ends at 120 s.
    config = write_scenario(
        tmp_path,
        [("v0", 0), ("v1", 90), ("v2", 110)],
        [(60, "r"), (1000, "G")],
        end=120,
    )
    result = run_episode(RunSpec(str(config)))
    delays = dict(zip(result.trips["id"], result.trips["delay"], strict=True))

    # Held: free-flow arrival at the stop line, then standing until t=60, then the time
    # lost accelerating back to the limit (v / 2a). One-second steps blur it by < 2 s.
    arrival_at_line = (200 - DEPART_POS) / SPEED
    held = 60 - arrival_at_line + SPEED / (2 * ACCEL)
    assert delays["v0"] == pytest.approx(held, abs=2.0)
    assert delays["v1"] == pytest.approx(0.0, abs=0.1)
    assert delays["v2"] == pytest.approx(0.0, abs=0.1)
    assert result.metrics["delay"] == pytest.approx(sum(delays.values()) / 3)
    assert result.metrics["throughput"] == 2
    assert result.metrics["unfinished"] == 1
    assert result.metrics["not_inserted"] == 0
    assert result.metrics["stops"] == pytest.approx(1 / 3)
    assert result.metrics["travel_time"] == pytest.approx(
        result.trips.loc[result.trips["arrived"], "duration"].mean()
    )


def test_vehicles_that_never_enter_are_charged_end_minus_scheduled_depart(
    tmp_path: Path,
) -> None:
    # A 30 m entry road in front of a red that never ends: it holds four cars, so the
    # later ones are never inserted and are charged the whole time they waited to enter.
    nodes = """<nodes>
  <node id="A" x="0" y="0" type="priority"/>
  <node id="B" x="30" y="0" type="traffic_light"/>
  <node id="C" x="230" y="0" type="priority"/>
</nodes>
"""
    end = 60
    departs = {f"v{i}": float(i) for i in range(8)}
    config = write_scenario(tmp_path, list(departs.items()), [(1000, "r")], end=end, nodes=nodes)
    result = run_episode(RunSpec(str(config)))
    trips = result.trips.set_index("id")

    never = trips[~trips["inserted"]]
    assert 2 <= len(never) <= 5
    for vehicle, row in never.iterrows():
        assert row["delay"] == pytest.approx(end - departs[str(vehicle)])
    # Inserted cars stand at the red: nearly all of their time in the window is delay.
    for vehicle, row in trips[trips["inserted"]].iterrows():
        assert row["delay"] == pytest.approx(end - departs[str(vehicle)], abs=5.0)
    assert result.metrics["not_inserted"] == len(never)
    assert result.metrics["throughput"] == 0
    assert result.metrics["delay"] == pytest.approx(trips["delay"].mean())
    assert result.metrics["queue_max"] == len(trips) - len(never)


def test_confidence_interval_matches_the_student_t_table() -> None:
    # Values 1, 2, 3: mean 2, s = 1, t(0.975, 2 dof) = 4.303 from the printed t table.
    summary = summarize_seeds([1.0, 2.0, 3.0])
    assert summary.mean == 2.0
    assert summary.std == pytest.approx(1.0)
    assert summary.half_width == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)


def test_one_seed_has_no_interval() -> None:
    summary = summarize_seeds([5.0])
    assert summary.mean == 5.0
    assert math.isnan(summary.ci_low) and math.isnan(summary.half_width)
