"""Comparing a sweep's controllers: paired tests, the figures of a real sweep, the CLI."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from twin_traffic.compare import WILCOXON_MIN_PAIRS, compare_sweep, paired_test
from twin_traffic.errors import TwinTrafficError
from twin_traffic.evaluate import RunSpec
from twin_traffic.metrics import METRICS, summarize_runs
from twin_traffic.report import relative_change
from twin_traffic.store import read_index, read_metrics, read_queues, read_trips, run_folder
from twin_traffic.sweep import load_sweep, run_sweep

SWEEP = """
scenarios = ["single"]
seeds = [0, 1, 2]
end = 240

[[controllers]]
name = "fixed"

[[controllers]]
name = "actuated"
"""


@pytest.fixture(scope="module")
def sweep_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("compare")
    (directory / "pair.toml").write_text(SWEEP)
    result = run_sweep(load_sweep(directory / "pair.toml"), directory / "runs", workers=2)
    assert len(result.ok) == 6
    return directory / "runs"


def test_paired_t_test_matches_scipy_and_wilcoxon_waits_for_enough_pairs() -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(30, 3, size=8)
    other = base - 2 + rng.normal(0, 1, size=8)
    few = paired_test(dict(enumerate(base[:5])), dict(enumerate(other[:5])))
    assert few.n == 5 and few.wilcoxon_pvalue is None and few.tests == "paired t"
    assert few.t_pvalue == pytest.approx(stats.ttest_rel(other[:5], base[:5]).pvalue)
    many = paired_test(dict(enumerate(base)), dict(enumerate(other)))
    assert many.n == 8 >= WILCOXON_MIN_PAIRS and many.tests == "paired t + Wilcoxon"
    assert many.wilcoxon_pvalue == pytest.approx(stats.wilcoxon(other - base).pvalue)
    assert many.mean_difference == pytest.approx(float(np.mean(other - base)))
    assert many.significant == (many.t_pvalue < 0.05 and many.wilcoxon_pvalue < 0.05)


def test_paired_test_pairs_common_seeds_and_handles_degenerate_differences() -> None:
    # Seed 3 ran only under the baseline and seed 1 has no value: two pairs remain.
    test = paired_test({0: 10.0, 1: 11.0, 2: 12.0, 3: 50.0}, {0: 9.0, 1: math.nan, 2: 10.0})
    assert test.n == 2 and test.mean_difference == pytest.approx(-1.5)
    same = paired_test({0: 5.0, 1: 6.0, 2: 7.0}, {0: 5.0, 1: 6.0, 2: 7.0})
    assert same.t_pvalue == 1.0 and not same.significant
    shifted = paired_test({0: 5.0, 1: 6.0, 2: 7.0}, {0: 4.0, 1: 5.0, 2: 6.0})
    assert shifted.t_pvalue == 0.0 and shifted.significant
    alone = paired_test({0: 5.0}, {0: 4.0})
    assert alone.tests == "none" and not alone.significant


def test_compare_summarises_every_metric_against_the_baseline(sweep_root: Path) -> None:
    comparison = compare_sweep(sweep_root)
    assert comparison.baseline == "fixed" and comparison.seeds == [0, 1, 2]
    (scenario,) = comparison.scenarios
    assert scenario.controllers == ["fixed", "actuated"]
    index = read_index(sweep_root)
    assert index is not None
    stored = {
        name: [
            read_metrics(sweep_root / r["path"])["metrics"]
            for r in index["runs"]
            if r["controller"] == name
        ]
        for name in ("fixed", "actuated")
    }
    for name, runs in stored.items():
        # Metrics not measured (CO2 without --emissions) are stored as null.
        expected = summarize_runs(
            [{m: math.nan if r[m] is None else r[m] for m in METRICS} for r in runs]
        )
        for metric in ("delay", "travel_time", "queue_mean", "throughput"):
            assert scenario.summaries[name][metric] == expected[metric]
    delay = scenario.tests["actuated"]["delay"]
    assert delay.n == 3 and delay.tests == "paired t"
    differences = [
        a["delay"] - f["delay"] for f, a in zip(stored["fixed"], stored["actuated"], strict=True)
    ]
    assert delay.t_pvalue == pytest.approx(stats.ttest_1samp(differences, 0).pvalue)
    assert scenario.changes["actuated"]["delay"] == pytest.approx(
        relative_change(
            scenario.summaries["actuated"]["delay"].mean,
            scenario.summaries["fixed"]["delay"].mean,
        )
    )
    # The demand is the seed's: both controllers see the same vehicles.
    assert scenario.tests["actuated"]["vehicles"].mean_difference == 0.0
    # The other way round: the opposite change, the same paired test.
    reverse = compare_sweep(sweep_root, baseline="actuated").scenarios[0]
    assert "actuated" not in reverse.tests
    assert reverse.changes["fixed"]["delay"] == pytest.approx(
        relative_change(
            scenario.summaries["fixed"]["delay"].mean,
            scenario.summaries["actuated"]["delay"].mean,
        )
    )
    assert reverse.tests["fixed"]["delay"].t_pvalue == pytest.approx(delay.t_pvalue)


def test_compare_cli_prints_json_and_writes_the_plots(sweep_root: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "twin_traffic.cli", "compare", str(sweep_root),
            "--format", "json", "--plots", str(tmp_path / "plots"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    delay = document["scenarios"]["single"]["actuated"]["delay"]
    assert set(delay["per_seed"]) == {"0", "1", "2"}
    assert delay["paired"]["tests"] == "paired t" and delay["paired"]["n"] == 3
    assert "change_pct" not in document["scenarios"]["single"]["fixed"]["delay"]
    for name in ("delay", "queues", "travel_time"):
        png = (tmp_path / "plots" / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_compare_prints_its_tables_where_it_cannot_write_its_plots(
    sweep_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "results"
    shutil.copytree(sweep_root, root)
    (root / "plots").write_text("not a folder")  # as a folder that refuses writing would

    def compare(*options: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "twin_traffic.cli", "compare", str(root), *options]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    result = compare()
    assert result.returncode == 0 and "actuated" in result.stdout
    assert "plots not written" in result.stderr and "give --plots FOLDER" in result.stderr
    # Paths given explicitly are checked before anything is printed or written.
    for options, message in (
        (("--html", str(tmp_path)), "a folder; --html takes a file name"),
        (("--plots", str(root / "plots")), "not a folder; choose another --plots"),
        (("--html", str(root / "plots" / "r.html")), "is a file, not a folder"),
    ):
        refused = compare(*options)
        assert refused.returncode == 1 and refused.stdout == ""
        assert message in refused.stderr and "Traceback" not in refused.stderr


def test_compare_errors_name_the_folder_and_the_fix(sweep_root: Path, tmp_path: Path) -> None:
    with pytest.raises(
        TwinTrafficError, match=r"not a results folder \(no index.json\); give the --out"
    ):
        compare_sweep(tmp_path)
    with pytest.raises(TwinTrafficError, match=r"--baseline 'webster' is none of .*fixed"):
        compare_sweep(sweep_root, baseline="webster")


def test_a_parameter_that_is_a_path_names_one_folder(tmp_path: Path) -> None:
    # `evaluate -c policy --param policy.model=../runs/a b/best.zip` keeps one folder per run.
    spec = RunSpec("grid3x3", controller="policy", params={"model": "../runs/a b/best.zip"}, seed=3)
    assert run_folder(tmp_path, spec) == (
        tmp_path / "grid3x3" / "policy[model=.._runs_a_b_best.zip]" / "seed3"
    )


def test_folders_named_with_an_equals_sign_are_read_as_they_are(tmp_path: Path) -> None:
    # A controller's parameters name its folder (``max-pressure[min_green=8]``); pyarrow
    # would read ``name=value`` on a path as a hive partition and add it as a column.
    (tmp_path / "params.toml").write_text(
        'scenarios = ["single"]\nseeds = [0, 1]\nend = 120\n\n[[controllers]]\nname = "fixed"\n'
        '\n[[controllers]]\nname = "max-pressure"\nparams = { min_green = 8 }\n'
    )
    root = tmp_path / "scale=2"
    result = run_sweep(load_sweep(tmp_path / "params.toml"), root, workers=2)
    assert not result.failed
    folder = next(root.rglob("max-pressure[[]min_green=8[]]/seed0"))
    partitions = {"scale", "max-pressure[min_green"}
    assert not partitions & set(read_queues(folder).columns)
    assert not partitions & set(read_trips(folder).columns)
    done = subprocess.run(
        [sys.executable, "-m", "twin_traffic.cli", "compare", str(root), "--format", "json",
         "--plots", str(tmp_path / "plots")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "max-pressure[min_green=8]" in json.loads(done.stdout)["scenarios"]["single"]


def test_the_table_leaves_out_metrics_no_run_measured(sweep_root: Path) -> None:
    from rich.console import Console

    from twin_traffic.compare import scenario_table

    (scenario,) = compare_sweep(sweep_root).scenarios
    console = Console(width=200, record=True)
    console.print(scenario_table(scenario, "fixed", 0.05))
    text = console.export_text()
    assert "delay" in text and "co2_kg" not in text and "fuel_kg" not in text


def test_a_change_is_taken_over_the_seeds_both_controllers_ran() -> None:
    from rich.console import Console

    from twin_traffic.compare import _compare, scenario_table

    def runs(delays: dict[int, float]) -> dict[int, dict[str, float]]:
        return {seed: {**dict.fromkeys(METRICS, 1.0), "delay": d} for seed, d in delays.items()}

    # The baseline ran seeds 0-2; the other only seed 0 (its other runs pending or failed).
    per_seed = {
        "fixed": runs({0: 40.0, 1: 60.0, 2: 80.0}),
        "actuated[min_green=3]": runs({0: 20.0}),
    }
    folders: dict[str, dict[int, Path]] = {name: {} for name in per_seed}
    result = _compare("single", list(per_seed), per_seed, folders, "fixed", 0.05)
    assert result.changes["actuated[min_green=3]"]["delay"] == pytest.approx(-50.0)  # not -66.7
    console = Console(record=True, width=200)
    console.print(scenario_table(result, "fixed", 0.05))
    assert "actuated[min_green=3]" in console.export_text()  # its brackets are not markup


def test_plots_of_runs_in_which_no_trip_arrived_warn_of_nothing(tmp_path: Path) -> None:
    import warnings

    from twin_traffic.plots import render_plots

    (tmp_path / "short.toml").write_text(
        'scenarios = ["single"]\nseeds = [0, 1]\nend = 2\n\n[[controllers]]\nname = "fixed"\n'
        '\n[[controllers]]\nname = "actuated"\n'
    )
    run_sweep(load_sweep(tmp_path / "short.toml"), tmp_path / "runs")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warned of a legend without lines
        images = render_plots(compare_sweep(tmp_path / "runs"))
    assert len(images) == 3
