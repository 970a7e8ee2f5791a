"""The command line, run as users run it: exit codes, stdout and stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from twin_traffic.cli import expand_multi_value_options
from twin_traffic.evaluate import RunSpec
from twin_traffic.metrics import METRICS
from twin_traffic.scenario import builtin_scenarios


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twin_traffic.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_help_does_not_import_the_simulation_stack() -> None:
    probe = (
        "import sys, twin_traffic.cli; "
        "print([m for m in ('libsumo', 'traci', 'torch', 'pandas', 'numpy', "
        "'stable_baselines3', 'sumolib') if m in sys.modules])"
    )
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert output.stdout.strip() == "[]"
    result = cli("--help")
    assert result.returncode == 0 and "evaluate" in result.stdout


def test_scenario_list_shows_every_builtin() -> None:
    result = cli("scenario", "list")
    assert result.returncode == 0
    for name in builtin_scenarios():
        assert name in result.stdout


def test_scenario_info_and_check() -> None:
    info = cli("scenario", "info", "mixed")
    assert info.returncode == 0 and "signals" in info.stdout and "mixed.net.xml" in info.stdout
    check = cli("scenario", "check", "grid3x3-high")
    assert check.returncode == 0 and check.stdout.startswith("ok grid3x3-high: 9 signals")


def test_bad_scenario_is_one_line_on_stderr(tmp_path: Path) -> None:
    result = cli("evaluate", str(tmp_path / "missing.sumocfg"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'missing.sumocfg'}: scenario configuration not found; "
        "check the path (or its spelling)"
    )


def test_unknown_controller_is_reported_per_run() -> None:
    result = cli("evaluate", "single", "--end", "30", "--controller", "magic")
    assert result.returncode == 1
    assert "unknown controller 'magic'; choose one of: actuated, fixed," in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_param_syntax() -> None:
    result = cli(
        "evaluate",
        "single",
        "--end",
        "30",
        "-c",
        "fixed",
        "-c",
        "actuated",
        "--param",
        "min_green=4",
    )
    assert result.returncode == 1
    assert "several controllers are compared; name one, e.g. actuated.min_green=4" in result.stderr


def test_evaluate_json_has_per_seed_values_and_intervals() -> None:
    result = cli(
        "evaluate",
        "single",
        "--end",
        "240",
        "-c",
        "fixed",
        "-c",
        "actuated",
        "--param",
        "actuated.max_green=30",
        "--seeds",
        "0",
        "1",
        "--format",
        "json",
        "--workers",
        "2",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["scenario"] == "single" and document["seeds"] == [0, 1]
    assert document["units"] == METRICS and document["failures"] == []
    for controller in ("fixed", "actuated"):
        delay = document["controllers"][controller]["delay"]
        assert list(delay["per_seed"]) == ["0", "1"] and delay["n"] == 2
        assert delay["mean"] == pytest.approx(sum(delay["per_seed"].values()) / 2)
        assert delay["ci95_low"] < delay["mean"] < delay["ci95_high"]


def test_evaluate_table_and_results_folder(tmp_path: Path) -> None:
    result = cli("evaluate", "arterial", "--end", "120", "--seeds", "0-1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "delay" in result.stdout and "± " in result.stdout
    runs = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*/*/*"))
    assert runs == ["arterial/fixed/seed0", "arterial/fixed/seed1"]
    folder = tmp_path / "arterial" / "fixed" / "seed1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "metrics.json", "queues.parquet", "spec.json", "trips.parquet",
    ]  # fmt: skip
    spec = RunSpec.from_dict(json.loads((folder / "spec.json").read_text()))
    assert spec == RunSpec("arterial", seed=1, end=120)
    trips = pd.read_parquet(folder / "trips.parquet")
    metrics = json.loads((folder / "metrics.json").read_text())["metrics"]
    assert metrics["delay"] == pytest.approx(trips["delay"].mean())
    assert not list(tmp_path.glob("**/.*"))  # no staging folders left behind


def test_evaluate_a_user_sumocfg(road: Path) -> None:
    result = cli("evaluate", str(road), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["scenario"] == "road"


def test_seed_lists_and_ranges_expand() -> None:
    argv = ["evaluate", "x", "--seeds", "0", "2-4", "--format", "json"]
    assert expand_multi_value_options(argv) == [
        "evaluate", "x", "--seeds", "0", "--seeds", "2", "--seeds", "3", "--seeds", "4",
        "--format", "json",
    ]  # fmt: skip
    assert expand_multi_value_options(["--seeds", "x"]) == ["--seeds", "x"]
