"""What evaluate and compare print and write: gridlock warnings, tables in 80 columns,
results folders that compare reads, file permissions, the progress line's counts."""

from __future__ import annotations

import json
import math
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_scenario

from twin_traffic.cli.progress import RunsProgress
from twin_traffic.evaluate import RunSpec
from twin_traffic.executor import Outcome
from twin_traffic.metrics import METRICS, summarize_runs
from twin_traffic.report import comparison_json

# How a Ctrl-C'd command may end: exit status 130, or killed by SIGINT (which a shell also
# reports as 130). CPython takes the second way at exit once the KeyboardInterrupt has passed
# through an ``exec`` of source text (dataclasses and namedtuples build methods so), even
# though the CLI then handled it.
INTERRUPTED = (130, -signal.SIGINT)


def cli(*args: str, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twin_traffic.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "80"},
        preexec_fn=lambda: os.umask(umask),
    )


@pytest.fixture
def jammed(tmp_path: Path) -> Path:
    """A fixed plan whose red outlasts the run, teleporting on (SUMO's default): the jam
    is teleported away; a controller that gives the green clears it. (The plan has two
    greens, protected and permissive: a single-green signal stays on its programme.)"""
    folder = tmp_path / "jam"
    folder.mkdir()
    plan = [(1000, "r"), (10, "G"), (3, "y"), (10, "g")]
    return write_scenario(folder, [(f"v{i}", i) for i in range(20)], plan, 800)


def test_evaluate_says_gridlock_in_the_table_on_stderr_and_in_json(jammed: Path) -> None:
    table = cli("evaluate", str(jammed), "--seeds", "0", "1")
    assert table.returncode == 0, table.stderr
    row = next(
        line for line in table.stdout.splitlines() if line.strip("│ ").startswith("gridlock")
    )
    assert "2/2" in row
    warnings = [line for line in table.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and "road/fixed/seed0: gridlock:" in warnings[0]
    assert "teleported out of jams" in warnings[0]
    document = json.loads(cli("evaluate", str(jammed), "--format", "json").stdout)
    assert document["controllers"]["fixed"]["gridlock"]["per_seed"] == {"0": 1.0}
    assert document["warnings"][0]["run"] == "road/fixed/seed0"


def test_evaluate_out_is_a_folder_compare_reads(tmp_path: Path, jammed: Path) -> None:
    # The README's twin walkthrough: evaluate --out DIR, then compare DIR --html.
    out = tmp_path / "runs"
    evaluated = cli("evaluate", str(jammed), "-c", "fixed", "-c", "max-pressure",
                    "--seeds", "0", "1", "--out", str(out))  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"twin-traffic compare {out}" in evaluated.stderr
    compared = cli("compare", str(out), "--html", str(out / "report.html"))
    assert compared.returncode == 0, compared.stderr
    assert "pressure" in compared.stdout and "…" not in compared.stdout
    assert "gridlock" in compared.stdout
    assert "warning: road/fixed/seed0: gridlock:" in compared.stderr
    page = (out / "report.html").read_text()
    assert '<h2 class="warning">Warnings</h2>' in page and 'class="flagged">2/2<' in page
    assert "<td>0/2</td>" in page  # max-pressure gives the green: no gridlock
    # Every result is readable by others under umask 022, as any file the user creates.
    for path in [out / "index.json", out / "report.html", *out.rglob("*.png"),
                 *out.rglob("metrics.json"), out / "road" / "fixed" / "seed0"]:  # fmt: skip
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))


def test_comparison_tables_fit_80_columns_without_cutting_headers(road: Path) -> None:
    result = cli("evaluate", str(road), "-c", "fixed", "-c", "max-pressure", "-c", "greedy",
                 "--seeds", "0", "1")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in result.stdout
    header = lines[1 : lines.index(next(line for line in lines if line.startswith("┡")))]
    words = [w for w in " ".join(header).replace("┃", " ").split() if w.isascii()]
    # Headers break between words and after hyphens only: no word is cut.
    assert set(words) == {"metric", "unit", "fixed", "max-", "pressure", "greedy", "vs"}


def test_json_values_are_keyed_by_seed_when_a_run_is_missing() -> None:
    # Seed 1's run failed: the values that remain keep their seeds.
    runs = {seed: {**dict.fromkeys(METRICS, math.nan), "delay": delay}
            for seed, delay in ((0, 10.0), (2, 14.0))}  # fmt: skip
    document = comparison_json({"fixed": summarize_runs(list(runs.values()))}, {"fixed": runs})
    assert document["fixed"]["delay"]["per_seed"] == {"0": 10.0, "2": 14.0}
    assert document["fixed"]["delay"]["mean"] == 12.0


def test_the_progress_line_counts_finished_failed_and_running_runs() -> None:
    progress = RunsProgress(runs=4)
    spec = RunSpec("single")
    progress.advance(0, 300.0, 600.0)
    progress.advance(1, 60.0, 600.0)
    assert progress.running == 2 and progress.completed == pytest.approx(0.6)
    progress.end(Outcome(1, spec, error="boom"))
    progress.advance(2, 0.0, 600.0)
    assert progress.status() == "0/4 finished · [red]1 failed[/red] · 2 running"
    assert progress.completed == pytest.approx(1.5)


def test_train_says_what_it_does_and_ctrl_c_ends_it_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "agent"
    process = subprocess.Popen(
        [sys.executable, "-m", "twin_traffic.cli", "train", "single", "--end", "300",
         "--timesteps", "100000", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # As a terminal would: a shell running this suite in the background ignores SIGINT.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        # Interrupt once the baselines are done and training runs (its first checkpoint
        # folder or evaluations file appears only later; the baselines file is written first).
        while not (out / "baselines.json").exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(2.0)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    lines = stderr.strip().splitlines()
    assert lines[0] == f"run folder: {out}"
    assert lines[1].startswith("scoring 8 classical controllers on validation seeds 100, 101")
    assert lines[2].startswith("imitating the best deciding classical controller (2 rounds")
    assert process.returncode in INTERRUPTED, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert lines[-1].startswith("interrupted; run the same command with --resume")


def test_the_first_ctrl_c_ends_evaluate_and_its_workers(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "twin_traffic.cli", "evaluate", "grid3x3-high", "--seeds", "0-3",
         "--workers", "2", "--out", str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        time.sleep(6.0)  # workers started, SUMO running
        assert process.poll() is None
        os.killpg(process.pid, signal.SIGINT)
        began = time.monotonic()
        _, stderr = process.communicate(timeout=30)
        assert time.monotonic() - began < 10
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode in INTERRUPTED, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted; no results written"
    assert "Traceback" not in stderr
    deadline = time.monotonic() + 10
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "a worker outlived the interrupted evaluate"
        time.sleep(0.1)
    assert not (tmp_path / "runs").exists()


def test_train_compares_with_the_best_classical_controller_and_its_teacher(
    tmp_path: Path,
) -> None:
    """The final table holds fixed-time, the best classical controller of the validation
    seeds, the teacher and the agent; a barely trained agent is said to lose."""
    (tmp_path / "small.toml").write_text(
        'algo = "ppo"\neval_every = 256\neval_seeds = [100]\n'
        'baselines = ["fixed", "greedy", "actuated"]\nteacher = "best"\n'
        "imitation_steps = 128\nimitation_epochs = 2\n"
        '[env]\nobservation = ["greens", "timing"]\nreward = "delay"\n'
        "[hyperparameters]\nn_steps = 64\nbatch_size = 64\nn_epochs = 1\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "twin_traffic.cli", "train", "single", "--end", "300",
         "--timesteps", "128", "--recipe", "small.toml", "--holdout-seeds", "200-201",
         "--confirm-seeds", "103", "--out", "out", "--workers", "1"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "metric" in line)
    for column in ("fixed", "actuated", "greedy", "agent"):
        assert column in header, header
    assert json.loads((tmp_path / "out" / "agent.json").read_text())["teacher"] == "greedy"
    # The untrained and the trained policy, scored at 0 and 128 steps, met seed 103 too.
    assert "chosen among 2 finalists on validation and confirmation seeds" in result.stderr
    # Without a terminal each phase around PPO ends with a line: what it did and how long.
    for line in ("scoring classical controllers: ", "imitating the teacher: ",
                 "confirming finalists: 2 simulations ("):  # fmt: skip
        assert line in result.stderr, result.stderr
    assert len((tmp_path / "out" / "selection.csv").read_text().splitlines()) == 3
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("the agent is worse than actuated, the best classical controller")
