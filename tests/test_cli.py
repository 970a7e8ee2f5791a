"""The command line, run as users run it: exit codes, stdout and stderr."""

from __future__ import annotations

import json
import re
import shutil
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


def test_unknown_controller_fails_before_any_run() -> None:
    result = cli("evaluate", "single", "--end", "30", "-c", "fixed", "--controller", "magic")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: unknown controller 'magic'; choose one of: actuated,")
    assert len(result.stderr.strip().splitlines()) == 1  # once, not once per seed; no run
    assert "done" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-c", "max-pressure", "-p", "min_gren=5"),
         "error: max-pressure: no parameter 'min_gren'; its parameters are: decision_interval, "
         "min_green, max_green, yellow, all_red, clearance, cycle, spillback, max_wait, "
         "sensor_range"),
        (("-c", "sotl", "-p", "threshold=lots"), "error: sotl: threshold='lots' must be a number"),
        (("-c", "greedy", "-p", "min_green=-2"),
         "error: greedy: min_green=-2 is out of range; min_green must be >= 0"),
        (("--seeds", "5-2"), "error: --seeds '5-2': not a range (it runs backwards)"),
        (("--seeds", "-1"), "error: --seeds '-1': not a seed or a range"),
        (("--sumo-option", "--bogus 1"), "error: --sumo-option '--bogus 1': SUMO has no option"),
    ],
)  # fmt: skip
def test_evaluate_checks_its_input_before_any_run(args: tuple[str, ...], message: str) -> None:
    result = cli("evaluate", "single", "--end", "30", "--seeds", "0-2", *args)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and "__init__" not in result.stderr


def test_seed_syntax_is_one_everywhere() -> None:
    result = cli("evaluate", "single", "--end", "30", "--seeds", "0,1", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["seeds"] == [0, 1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("evaluate", "single", "--sed", "3"),
         "error: No such option: --sed (Possible options: --end, --seeds); see twin-traffic "
         "evaluate --help"),
        (("evaluate", "single", "--workers", "0"),
         "error: Invalid value for '--workers': Input should be greater than or equal to 1; see "
         "twin-traffic evaluate --help"),
        (("evaluate",), "error: Missing argument 'scenario'; see twin-traffic evaluate --help"),
        (("nonsense",), "error: No such command 'nonsense'; see twin-traffic --help"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line_and_exit_1(args: tuple[str, ...], message: str) -> None:
    result = cli(*args)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == message


def test_version_and_help_still_work() -> None:
    from importlib.metadata import version

    result = cli("--version")
    assert (
        result.returncode == 0
        and result.stdout.strip() == f"twin-traffic {version('twin-traffic')}"
    )
    helped = cli("evaluate", "--help")
    assert helped.returncode == 0 and "--protocol" in helped.stdout
    assert "max-pressure: decision_interval=1, min_green=5, max_green=60" in helped.stdout
    assert "plan: file or plan (a plan file, required)" in helped.stdout
    bare = cli("scenario")
    assert bare.returncode == 0 and "check" in bare.stdout


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
        "evaluate", "x", "--seeds", "0 2-4", "--format", "json",
    ]  # fmt: skip
    assert expand_multi_value_options(["--seeds", "x"]) == ["--seeds", "x"]
    assert expand_multi_value_options(["--seeds", "-1", "-c", "a"]) == ["--seeds", "-1", "-c", "a"]


def test_outputs_that_could_not_be_written_are_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    held = tmp_path / "held"
    (held / "arterial").mkdir(parents=True)
    (held / "index.json").write_text("{}")
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    refusals = {
        # Two commands' results never mix: an --out with results in it is left as it is.
        ("evaluate", "arterial", "--out", str(held)): "already holds results",
        ("evaluate", "arterial", "--out", str(a_file)): "not a folder",
        ("evaluate", "arterial", "--out", str(a_file / "runs")): "is a file, not a folder",
        ("tune", "single", "--budget", "5", "--out", str(held)): "takes a file name",
        ("scenario", "counts", "single", "--out", str(a_file / "c.csv")): "is a file",
    }
    for command, message in refusals.items():
        result = cli(*command)
        assert result.returncode == 1, command
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in held.iterdir()) == ["arterial", "index.json"]
    assert (held / "index.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "held"]  # no study file


def test_check_refuses_a_scenario_without_demand(tmp_path: Path) -> None:
    net = builtin_scenarios()["single"].parent / "single.net.xml"
    config = tmp_path / "empty.sumocfg"
    config.write_text(
        f'<configuration><input><net-file value="{net}"/></input>'
        '<time><end value="600"/></time></configuration>'
    )
    result = cli("scenario", "check", str(config))
    assert result.returncode == 1 and "no demand: no route files" in result.stderr
    # Demand may also be declared in an additional file.
    flows = tmp_path / "flows.add.xml"
    route = builtin_scenarios()["single"].parent / "single.rou.xml"
    edges = next(line for line in route.read_text().splitlines() if "edges=" in line)
    edge = edges.split('edges="')[1].split()[0].rstrip('"')
    flows.write_text(
        f'<additional><flow id="f" from="{edge}" begin="0" end="600" number="10"/></additional>'
    )
    config.write_text(config.read_text().replace(
        "</input>", f'<additional-files value="{flows}"/></input>'
    ))  # fmt: skip
    result = cli("scenario", "check", str(config))
    assert result.returncode == 0, result.stderr


def test_counts_make_the_folder_they_are_written_to(tmp_path: Path) -> None:
    target = tmp_path / "new" / "folder" / "counts.csv"
    result = cli("scenario", "counts", "single", "--out", str(target), "--interval", "900")
    assert result.returncode == 0, result.stderr
    assert target.read_text().splitlines()[0] == "location,begin,end,count"
    assert sorted(p.name for p in target.parent.iterdir()) == ["counts.csv"]  # no staging


def test_counts_never_replace_a_counts_file_unasked(tmp_path: Path) -> None:
    target = tmp_path / "counts.csv"
    target.write_text("location,begin,end,count\nloop_1,0,900,42\n")  # the city's own
    refused = cli("scenario", "counts", "single", "--out", str(target), "--end", "60")
    assert (
        refused.returncode == 1
        and "already exists" in refused.stderr
        and "--force" in refused.stderr
    )
    assert target.read_text().endswith("loop_1,0,900,42\n")
    replaced = cli("scenario", "counts", "single", "--out", str(target), "--end", "900",
                   "--interval", "900", "--force")  # fmt: skip
    assert replaced.returncode == 0, replaced.stderr
    assert "loop_1" not in target.read_text()


def test_counts_take_a_window_a_configuration_lacks(tmp_path: Path) -> None:
    folder = tmp_path / "single"
    shutil.copytree(builtin_scenarios()["single"].parent, folder)
    config = folder / "single.sumocfg"
    config.write_text(re.sub(r"<end value=\"[^\"]*\"\s*/>", "", config.read_text()))
    assert cli("scenario", "sensors", str(config)).returncode == 0  # runs nothing: no end needed
    refused = cli("scenario", "counts", str(config), "--out", str(tmp_path / "c.csv"))
    assert refused.returncode == 1 and "pass --end SECONDS" in refused.stderr
    result = cli("scenario", "counts", str(config), "--out", str(tmp_path / "c.csv"),
                 "--end", "900", "--interval", "900")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "loops × 1 interval," in result.stdout
    assert {row.split(",")[2] for row in (tmp_path / "c.csv").read_text().split()[1:]} == {"900"}


def test_check_refuses_a_detector_on_a_lane_the_network_lacks(tmp_path: Path) -> None:
    folder = tmp_path / "single"
    shutil.copytree(builtin_scenarios()["single"].parent, folder)
    assert cli("scenario", "sensors", str(folder / "single.sumocfg")).returncode == 0
    assert cli("scenario", "check", str(folder / "single.sumocfg")).returncode == 0
    sensors = folder / "sensors.add.xml"
    sensors.write_text(re.sub(r'lane="[^"]*"', 'lane="zz_0"', sensors.read_text(), count=1))
    result = cli("scenario", "check", str(folder / "single.sumocfg"))
    assert result.returncode == 1
    assert "sensors.add.xml: detector" in result.stderr and "is on lane 'zz_0'" in result.stderr
