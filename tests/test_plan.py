"""Plan files: writing and reading <tlLogic>, and the plan / tuned controllers on SUMO."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from twin_traffic.errors import ControllerError
from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.network import Phase, load_network
from twin_traffic.plans import Programme, read_plan, round_to_total, with_greens, write_plan
from twin_traffic.scenario import load_scenario

END = 600.0


def test_plan_file_round_trip(tmp_path: Path) -> None:
    programmes = [
        Programme("A", "p1", (Phase("Gr", 31.5), Phase("yr", 3)), offset=12),
        Programme(
            "B",
            "act",
            (Phase("G", 20, min_dur=5, max_dur=50), Phase("y", 3)),
            type="actuated",
            params=(("max-gap", "3"),),
        ),
    ]
    path = write_plan(programmes, tmp_path / "nested" / "plan.add.xml", comment="made by hand")
    assert read_plan(path) == {p.tls_id: p for p in programmes}
    assert 'duration="31.5"' in path.read_text() and "<!-- made by hand -->" in path.read_text()
    assert read_plan(path)["A"].cycle == 34.5


def test_round_to_total_keeps_the_sum() -> None:
    assert round_to_total([10.6, 20.3, 30.1], 61) == [11, 20, 30]
    assert round_to_total([1.5, 1.5, 1.0], 4) == [2, 1, 1]
    assert sum(round_to_total([7.33, 19.27, 5.0, 13.2], 45)) == 45


def test_a_plan_equal_to_the_network_programme_reproduces_fixed_time(tmp_path: Path) -> None:
    network = load_network(load_scenario("mixed"))
    own = [
        with_greens(
            light,
            [
                light.phases[i].duration
                for i in range(len(light.phases))
                if light.phases[i].is_green
            ],
            "copy",
        )
        for light in network.traffic_lights.values()
    ]
    plan = write_plan(own, tmp_path / "own.add.xml")
    fixed = run_episode(RunSpec("mixed", end=END, seed=2))
    copied = run_episode(RunSpec("mixed", "plan", {"file": str(plan)}, end=END, seed=2))
    assert copied.metrics == pytest.approx(fixed.metrics, rel=0, abs=0, nan_ok=True)
    # Longer greens at J1 only: another plan, other traffic.
    light = network.traffic_lights["J1"]
    longer = with_greens(light, [50, 35], "longer")
    other = write_plan([longer], tmp_path / "longer.add.xml")
    changed = run_episode(RunSpec("mixed", "plan", {"file": str(other)}, end=END, seed=2))
    assert changed.metrics["delay"] != fixed.metrics["delay"]


def test_tuned_takes_a_plan_and_refuses_to_run_without_one(tmp_path: Path) -> None:
    light = load_network(load_scenario("single")).traffic_lights["C"]
    plan = write_plan([with_greens(light, [10, 25, 8, 20], "t")], tmp_path / "t.add.xml")
    by_plan = run_episode(RunSpec("single", "plan", {"file": str(plan)}, end=300))
    by_tuned = run_episode(RunSpec("single", "tuned", {"plan": str(plan)}, end=300))
    assert by_tuned.metrics == pytest.approx(by_plan.metrics, rel=0, abs=0, nan_ok=True)
    with pytest.raises(ControllerError, match="tuned: no plan; make one with `twin-traffic tune"):
        run_episode(RunSpec("single", "tuned", end=10))


def test_plan_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ControllerError, match="plan: no plan file; pass --param file="):
        run_episode(RunSpec("single", "plan", end=10))
    missing = tmp_path / "missing.add.xml"
    with pytest.raises(ControllerError, match=f"{missing}: plan file not found"):
        run_episode(RunSpec("single", "plan", {"file": str(missing)}, end=10))
    broken = tmp_path / "broken.add.xml"
    broken.write_text("<additional><tlLogic")
    with pytest.raises(ControllerError, match="the plan is not valid XML"):
        run_episode(RunSpec("single", "plan", {"file": str(broken)}, end=10))
    stranger = write_plan([Programme("Z", "p", (Phase("G", 30),))], tmp_path / "z.add.xml")
    with pytest.raises(ControllerError, match=r"signal 'Z' is not in single\.net\.xml"):
        run_episode(RunSpec("single", "plan", {"file": str(stranger)}, end=10))
    short = write_plan([Programme("C", "p", (Phase("GGr", 30),))], tmp_path / "c.add.xml")
    with pytest.raises(ControllerError, match="of 3 links, but it controls 16"):
        run_episode(RunSpec("single", "plan", {"file": str(short)}, end=10))
    empty = tmp_path / "empty.add.xml"
    empty.write_text("<additional/>")
    with pytest.raises(ControllerError, match="no <tlLogic> in the file"):
        run_episode(RunSpec("single", "plan", {"file": str(empty)}, end=10))


def test_a_plan_that_does_not_fit_stops_evaluate_before_any_run(tmp_path: Path) -> None:
    stranger = write_plan([Programme("Z", "p", (Phase("G", 30),))], tmp_path / "z.add.xml")
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "twin_traffic.cli", "evaluate", "single", "-c", "fixed",
         "-c", "plan", "--param", f"plan.file={stranger}", "--end", "60", "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"error: {stranger}: signal 'Z' is not in single.net.xml (signals: C); the plan was "
        "made for another network\n"
    )  # one line: fixed time did not run first
    assert not out.exists()
