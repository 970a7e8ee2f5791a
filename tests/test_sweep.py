"""Sweeps on a real SUMO: validation, interruption and resume, failures, the Ray engine."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import write_scenario

from twin_traffic.compare import compare_sweep
from twin_traffic.errors import TwinTrafficError
from twin_traffic.store import RUN_FILES, read_index, read_metrics
from twin_traffic.sweep import SweepError, SweepRun, load_sweep, run_sweep

# 2 scenarios × 3 controllers (one of them twice, with other parameters) × 2 seeds.
SWEEP = """
name = "small"
scenarios = {scenarios}
seeds = [0, 1]
end = {end}

[[controllers]]
name = "fixed"

[[controllers]]
name = "actuated"

[[controllers]]
name = "actuated"
label = "actuated-short"
params = {{ min_green = 3, max_green = 20 }}
"""


def write_sweep(directory: Path, scenarios: str = '["single", "mixed"]', end: int = 300) -> Path:
    path = directory / "small.toml"
    path.write_text(SWEEP.format(scenarios=scenarios, end=end))
    return path


def bad_scenario(directory: Path) -> Path:
    """A scenario that passes validation but that SUMO refuses at load: a detector on a
    lane the network does not have."""
    config = write_scenario(
        directory, [("v0", 0), ("v1", 5)], [(30, "G"), (3, "y"), (30, "r")], end=120
    )
    (directory / "loop.add.xml").write_text(
        '<additional><inductionLoop id="d0" lane="nowhere_0" pos="10" period="60" '
        'file="NUL"/></additional>\n'
    )
    broken = directory / "broken.sumocfg"
    broken.write_text(config.read_text().replace("plan.add.xml", "plan.add.xml,loop.add.xml"))
    return broken


def metrics_by_run(root: Path) -> dict[str, dict[str, Any]]:
    index = read_index(root)
    assert index is not None
    return {
        r["run"]: read_metrics(root / r["path"])["metrics"]
        for r in index["runs"]
        if r["status"] == "ok"
    }


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "twin_traffic.cli", *args]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The small sweep run once without interruption: (sweep file, results folder)."""
    directory = tmp_path_factory.mktemp("reference")
    # Runs long enough (a fraction of a second each) for the interrupt test to signal the
    # sweep between runs rather than after its last one.
    sweep_file = write_sweep(directory, end=1200)
    result = run_sweep(load_sweep(sweep_file), directory / "runs", workers=2)
    assert len(result.ok) == 12 and not result.failed
    return sweep_file, directory / "runs"


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "key", "hint"),
    [
        (("seeds = [0, 1]", "seeds = [0, 1]\nworkers = 2"), "workers", "not a sweep setting"),
        (('"mixed"]', '"mixd"]'), "scenarios[1]", "unknown scenario 'mixd'"),
        (('name = "actuated"\n\n', 'name = "actuatd"\n\n'), "controllers[1].name", "actuatd"),
        (("seeds = [0, 1]", "seeds = [0, -1]"), "seeds", "-1 is not a seed"),
        (("seeds = [0, 1]", "seeds = [1, 1]"), "seeds", "listed twice"),
        (("seeds = [0, 1]", 'seeds = "5-2"'), "seeds", "not a range"),
        (("seeds = [0, 1]", "seeds = [true]"), "seeds", "True is not a seed"),
        (("min_green = 3,", "min_grn = 3,"), "controllers[2].params", "no parameter 'min_grn'"),
        (('label = "actuated-short"\n', ""), "", ""),  # distinct params: still valid
        (('label = "actuated-short"', 'label = "fixed"'), "controllers[2]", "same label"),
        (("end = 300", "end = 300\nbaseline = 'webster'"), "baseline", "none of the controllers"),
        (('scenarios = ["single"', 'scenarios = [{ source = "single", net = 1 }'), "", "net"),
        (("end = 300", 'end = "5 min"'), "end", "not a time"),
    ],
)
def test_a_bad_sweep_file_names_the_file_and_the_key(
    tmp_path: Path, edit: tuple[str, str], key: str, hint: str
) -> None:
    path = write_sweep(tmp_path)
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1))
    if not hint:
        sweep = load_sweep(path)
        assert [c.label for c in sweep.controllers][2] == "actuated[max_green=20,min_green=3]"
        return
    with pytest.raises(SweepError) as caught:
        load_sweep(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}"), message
    assert hint in message and "\n" not in message


def test_the_cli_reports_a_bad_sweep_file_in_one_line(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, scenarios='["single", "nowhere.sumocfg"]')
    result = subprocess.run(cli("sweep", str(path)), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: {path}: scenarios[1]: ")
    assert "nowhere.sumocfg: scenario configuration not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- interruption and resume -----------------------------------------------------------------


def _wait_for_ok(root: Path, at_least: int, process: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sweep ended before it could be interrupted"
        try:
            index = read_index(root)
        except ValueError:  # never happens: the index is replaced in one rename
            pytest.fail("index.json was read half-written")
        if index is not None and index["counts"]["ok"] >= at_least:
            return int(index["counts"]["ok"])
        time.sleep(0.02)
    pytest.fail("the sweep made no progress")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(root: Path, sweep_file: Path, at_least: int, signum: int) -> int:
    """Start the sweep in its own process group, signal the group part-way, and check that
    it stops, every process of the group dies, and nothing half-written remains."""
    process = subprocess.Popen(
        cli("sweep", str(sweep_file), "--workers", "2", "--out", str(root)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # A shell starting this suite in the background ignores SIGINT, and the sweep would
        # inherit that: give it the default, as a terminal would.
        preexec_fn=_default_sigint,
    )
    try:
        finished = _wait_for_ok(root, at_least, process)
        os.killpg(process.pid, signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    assert "run the same command again to resume" in stderr
    # No worker outlives the sweep: the process group is empty.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("a worker of the interrupted sweep is still running")
    leftovers = [p for p in root.rglob("*") if ".tmp-" in p.name]
    assert leftovers == []
    index = read_index(root)
    assert index is not None
    for run in index["runs"]:
        folder = root / run["path"]
        if run["status"] == "ok":
            assert all((folder / name).is_file() for name in RUN_FILES)
        else:
            assert run["status"] == "pending" and not folder.exists()
    assert finished <= index["counts"]["ok"] < 12
    return int(index["counts"]["ok"])


def test_an_interrupted_sweep_resumes_to_the_same_metrics(
    tmp_path: Path, reference: tuple[Path, Path]
) -> None:
    sweep_file, reference_root = reference
    root = tmp_path / "runs"
    done = _interrupt(root, sweep_file, 2, signal.SIGTERM)
    done = max(done, _interrupt(root, sweep_file, done + 2, signal.SIGINT))

    result = subprocess.run(
        cli("sweep", str(sweep_file), "--workers", "2", "--out", str(root)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    skipped = int(result.stdout.split("ok (")[1].split(" already done")[0])
    assert skipped == done  # finished runs were not run again
    index = read_index(root)
    assert index is not None
    keys = [r["run"] for r in index["runs"]]
    assert len(keys) == len(set(keys)) == 12
    assert all(r["status"] == "ok" for r in index["runs"])
    run_folders = {p.parent for p in root.rglob("spec.json")}
    assert len(run_folders) == 12
    assert (root / "sweep.toml").read_text() == sweep_file.read_text()
    assert metrics_by_run(root) == metrics_by_run(reference_root)


# -- failures --------------------------------------------------------------------------------


def test_a_failed_run_is_recorded_and_the_others_complete(tmp_path: Path) -> None:
    broken = bad_scenario(tmp_path)
    sweep_file = write_sweep(tmp_path, scenarios=f'["single", "{broken.name}"]', end=120)
    root = tmp_path / "runs"
    result = subprocess.run(
        cli("sweep", str(sweep_file), "--workers", "2", "--out", str(root)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "6 ok (0 already done), 6 failed" in result.stdout
    index = read_index(root)
    assert index is not None and index["counts"] == {"ok": 6, "failed": 6, "pending": 0}
    for run in index["runs"]:
        if run["scenario"] == "single":
            assert run["status"] == "ok" and run["error"] is None
        else:
            assert run["status"] == "failed"
            assert "The lane with the id 'nowhere_0' is not known" in run["error"]
            assert str(broken) in run["error"]
            assert not (root / run["path"]).exists()
    assert "failed: broken/fixed/seed0:" in result.stderr


def test_a_changed_sweep_file_reruns_only_what_changed(tmp_path: Path) -> None:
    sweep_file = write_sweep(tmp_path, scenarios='["single"]', end=60)
    root = tmp_path / "runs"
    first = run_sweep(load_sweep(sweep_file), root, workers=2)
    assert len(first.ok) == 6
    before = metrics_by_run(root)
    sweep_file.write_text(sweep_file.read_text().replace("max_green = 20", "max_green = 40"))
    second = run_sweep(load_sweep(sweep_file), root, workers=2)
    assert second.skipped == 4  # fixed and actuated kept; actuated-short ran again
    after = metrics_by_run(root)
    assert {k: v for k, v in after.items() if "short" not in k} == {
        k: v for k, v in before.items() if "short" not in k
    }
    specs = [json.loads(p.read_text()) for p in root.rglob("spec.json") if "short" in str(p)]
    assert [s["params"]["max_green"] for s in specs] == [40, 40]


def test_a_folder_holding_other_results_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    sweep_file = write_sweep(tmp_path, scenarios='["single"]', end=60)
    root = tmp_path / "runs"
    run_sweep(load_sweep(sweep_file), str(root), workers=2)  # a str is a folder too
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    other = tmp_path / "other.toml"
    other.write_text(sweep_file.read_text().replace('name = "small"', 'name = "other"'))
    with pytest.raises(SweepError, match="the results of the sweep 'small', not 'other'"):
        run_sweep(load_sweep(other), root)
    # Another file of the same name is another sweep too.
    (tmp_path / "elsewhere").mkdir()
    namesake = tmp_path / "elsewhere" / "small.toml"
    namesake.write_text(sweep_file.read_text().replace("seeds = [0, 1]", "seeds = [0]"))
    with pytest.raises(SweepError, match=r"the results of the sweep file .*small\.toml, not"):
        run_sweep(load_sweep(namesake), root)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    with pytest.raises(SweepError, match="not this sweep's results"):
        run_sweep(load_sweep(sweep_file), notes)
    assert [p.name for p in notes.iterdir()] == ["notes.txt"]


def test_a_sweep_whose_workers_cannot_start_leaves_no_folder(tmp_path: Path) -> None:
    sweep_file = write_sweep(tmp_path, scenarios='["single"]', end=30)
    script = tmp_path / "unguarded.py"  # no `if __name__ == "__main__":` guard
    script.write_text(
        "from pathlib import Path\n"
        "from twin_traffic.sweep import load_sweep, run_sweep\n"
        f"run_sweep(load_sweep(Path({str(sweep_file)!r})), Path({str(tmp_path / 'runs')!r}),"
        " workers=1)\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0 and 'if __name__ == "__main__":' in done.stderr
    assert not (tmp_path / "runs").exists()


def test_damaged_results_files_are_named_and_their_runs_run_again(tmp_path: Path) -> None:
    sweep_file = write_sweep(tmp_path, scenarios='["single"]', end=60)
    root = tmp_path / "runs"
    run_sweep(load_sweep(sweep_file), root, workers=2)
    metrics = root / "single" / "fixed" / "seed0" / "metrics.json"
    metrics.write_text(metrics.read_text()[:40])  # cut short, as by a full disk
    with pytest.raises(TwinTrafficError, match=r"metrics\.json: damaged, not valid JSON"):
        compare_sweep(root)
    (root / "index.json").write_text("{")
    with pytest.raises(TwinTrafficError, match=r"index\.json: damaged.*run the sweep that wrote"):
        compare_sweep(root)
    # The sweep itself resumes: it runs the damaged run again and rewrites its index.
    again = run_sweep(load_sweep(sweep_file), root, workers=2)
    assert again.skipped == 5 and len(again.ok) == 6
    assert compare_sweep(root).scenarios


def test_address_needs_the_ray_engine(tmp_path: Path, reference: tuple[Path, Path]) -> None:
    with pytest.raises(SweepError, match="add --engine ray"):
        run_sweep(load_sweep(reference[0]), tmp_path, address="auto")


# -- the Ray engine --------------------------------------------------------------------------


@pytest.mark.slow
def test_the_ray_engine_gives_the_local_engines_metrics(
    tmp_path: Path, reference: tuple[Path, Path]
) -> None:
    pytest.importorskip("ray", reason='Ray is not installed (pip install "twin-traffic[ray]")')
    sweep_file, reference_root = reference
    broken = bad_scenario(tmp_path)
    text = sweep_file.read_text().replace('"mixed"]', f'"mixed", "{broken}"]')
    ray_file = tmp_path / "ray.toml"
    ray_file.write_text(text)
    result = run_sweep(load_sweep(ray_file), tmp_path / "runs", workers=2, engine="ray")
    assert len(result.ok) == 12 and len(result.failed) == 6
    assert metrics_by_run(tmp_path / "runs") == metrics_by_run(reference_root)
    for record in result.failed:
        # SUMO's own message, carried out of the Ray worker as a plain error.
        assert record["error"].startswith(f"{broken}: SUMO did not start")
        assert "nowhere_0" in record["error"]


def test_an_unreachable_ray_cluster_is_one_clear_error(
    tmp_path: Path, reference: tuple[Path, Path]
) -> None:
    pytest.importorskip("ray", reason='Ray is not installed (pip install "twin-traffic[ray]")')
    with pytest.raises(TwinTrafficError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:1"):
        run_sweep(load_sweep(reference[0]), tmp_path, engine="ray", address="127.0.0.1:1")
    index = read_index(tmp_path)
    assert index is not None and index["counts"]["pending"] == 12  # ready to resume


def test_a_worker_killed_mid_run_loses_no_run(tmp_path: Path, reference: tuple[Path, Path]) -> None:
    sweep_file, reference_root = reference
    killed: list[int] = []

    def kill_a_worker(run: SweepRun, record: dict[str, Any]) -> None:
        # As the out-of-memory killer would: SIGKILL to a pool worker busy with a run.
        workers = multiprocessing.active_children()
        if not killed and workers:
            os.kill(workers[0].pid or 0, signal.SIGKILL)
            killed.append(workers[0].pid or 0)

    result = run_sweep(load_sweep(sweep_file), tmp_path / "runs", workers=2, on_run=kill_a_worker)
    assert killed and not result.failed and len(result.ok) == 12
    assert metrics_by_run(tmp_path / "runs") == metrics_by_run(reference_root)


# -- train then evaluate ----------------------------------------------------------------------


def test_a_sweep_trains_a_policy_then_evaluates_it(tmp_path: Path) -> None:
    # A small recipe: the default one's cloning and eight baselines take minutes.
    (tmp_path / "small.toml").write_text(
        """
algo = "ppo"
eval_every = 128
eval_seeds = [100]
baselines = ["fixed", "max-pressure"]
teacher = "best"
imitation_steps = 64
imitation_epochs = 1

[env]
observation = ["greens", "timing"]
reward = "delay"

[hyperparameters]
n_steps = 64
batch_size = 64
n_epochs = 1
"""
    )
    sweep_file = tmp_path / "learn.toml"
    sweep_file.write_text(
        """
scenarios = ["single"]
seeds = [0, 1]
end = 150

[[controllers]]
name = "fixed"

[[controllers]]
name = "policy"
label = "ppo"
train = { recipe = "small.toml", timesteps = 128, envs = 1, seed = 4 }
"""
    )
    sweep = load_sweep(sweep_file)
    said: list[str] = []
    result = run_sweep(sweep, tmp_path / "runs", workers=2, on_train=said.append)
    assert [r["status"] for r in result.records] == ["ok"] * 4
    assert said[0] == "training of ppo on single" and said[1].startswith("trained ppo on single")
    [agent] = (tmp_path / "runs" / "agents" / "single").iterdir()
    assert agent.name.startswith("ppo-")  # ppo-KEY, the digest of its training settings
    assert (agent / "best.zip").is_file() and (agent / "learning_curve.png").is_file()
    spec = json.loads((tmp_path / "runs" / "single" / "ppo" / "seed1" / "spec.json").read_text())
    assert spec["params"]["model"] == str((agent / "best.zip").resolve())
    # Resuming trains nothing again and finds every run done.
    modified = (agent / "best.zip").stat().st_mtime_ns
    again = run_sweep(sweep, tmp_path / "runs", workers=2)
    assert again.skipped == 4 and (agent / "best.zip").stat().st_mtime_ns == modified
    # Another training setting (here the recipe's) trains a new agent, and its runs run
    # again; fixed time's stay.
    recipe = tmp_path / "small.toml"
    recipe.write_text(recipe.read_text().replace("imitation_epochs = 1", "imitation_epochs = 2"))
    changed = run_sweep(load_sweep(sweep_file), tmp_path / "runs", workers=2)
    assert changed.skipped == 2 and [r["status"] for r in changed.records] == ["ok"] * 4
    retrained = {p.name for p in (tmp_path / "runs" / "agents" / "single").iterdir()} - {agent.name}
    assert len(retrained) == 1
    spec = json.loads((tmp_path / "runs" / "single" / "ppo" / "seed1" / "spec.json").read_text())
    assert retrained.pop() in spec["params"]["model"]


def test_a_sweep_interrupted_while_training_keeps_the_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import twin_traffic.train

    def interrupted(scenario: object, recipe: object, folder: Path, **_: object) -> None:
        (folder / "checkpoints").mkdir(parents=True)
        (folder / "checkpoints" / "model_2048_steps.zip").write_bytes(b"trained so far")
        raise KeyboardInterrupt  # Ctrl-C during the first training, before any run

    monkeypatch.setattr(twin_traffic.train, "train", interrupted)
    sweep_file = tmp_path / "learn.toml"
    sweep_file.write_text(
        'scenarios = ["single"]\nseeds = [0]\nend = 60\n\n[[controllers]]\nname = "fixed"\n'
        '\n[[controllers]]\nname = "policy"\nlabel = "ppo"\ntrain = { timesteps = 2048 }\n'
    )
    with pytest.raises(KeyboardInterrupt):
        run_sweep(load_sweep(sweep_file), tmp_path / "runs")
    [checkpoint] = (tmp_path / "runs" / "agents").rglob("model_2048_steps.zip")
    assert checkpoint.read_bytes() == b"trained so far"


def test_only_a_policy_is_trained_by_a_sweep(tmp_path: Path) -> None:
    sweep_file = tmp_path / "bad.toml"
    sweep_file.write_text(
        'scenarios = ["single"]\nseeds = [0]\n\n[[controllers]]\nname = "fixed"\n'
        "train = { timesteps = 10 }\n"
    )
    with pytest.raises(SweepError, match=r"controllers\[0\].train: only a name = \"policy\""):
        load_sweep(sweep_file)


def test_a_run_folder_written_before_the_protocol_fields_still_counts(tmp_path: Path) -> None:
    from twin_traffic.evaluate import RunSpec, run_episode
    from twin_traffic.store import SPEC_FILE, write_run
    from twin_traffic.sweep import _finished

    spec = RunSpec("single", end=30)
    folder = write_run(tmp_path, run_episode(spec))
    old = json.loads((folder / SPEC_FILE).read_text())
    for key in ("protocol", "time_to_teleport", "sumo_options"):
        del old[key]
    (folder / SPEC_FILE).write_text(json.dumps(old))
    assert _finished(folder, spec)
    assert not _finished(folder, RunSpec("single", end=30, time_to_teleport=-1))


def test_sweep_training_takes_workers_and_its_old_name_envs(tmp_path: Path) -> None:
    for key in ("workers", "envs"):
        path = tmp_path / f"{key}.toml"
        path.write_text(
            'scenarios = ["single"]\nseeds = [0]\n[[controllers]]\nname = "policy"\n'
            f'train = {{ algo = "ppo", timesteps = 128, {key} = 2 }}\n'
        )
        assert load_sweep(path).controllers[0].train == {"algo": "ppo", "timesteps": 128, key: 2}


@pytest.mark.parametrize(
    ("train", "recipe", "key", "message"),
    [
        ('{ algo = "nosuch" }', None, "train.algo", "unknown algorithm 'nosuch'"),
        ('{ recipe = "missing.toml" }', None, "train.recipe", "recipe not found"),
        ('{ recipe = "r.toml" }', "imitation_steps = -1\n", "train.recipe", "imitation_steps"),
        ("{ timesteps = 0 }", None, "train.timesteps", "must be a whole number >= 1"),
        ("{ workers = 0 }", None, "train.workers", "must be a whole number >= 1"),
    ],
)
def test_a_bad_training_table_stops_the_sweep_at_load(
    tmp_path: Path, train: str, recipe: str | None, key: str, message: str
) -> None:
    if recipe is not None:
        (tmp_path / "r.toml").write_text(f'algo = "ppo"\n{recipe}')
    sweep_file = tmp_path / "learn.toml"
    sweep_file.write_text(
        'scenarios = ["single"]\nseeds = [0]\nend = 60\n\n[[controllers]]\nname = "fixed"\n'
        f'\n[[controllers]]\nname = "policy"\nlabel = "ppo"\ntrain = {train}\n'
    )
    with pytest.raises(SweepError) as error:
        load_sweep(sweep_file)
    assert str(error.value).startswith(f"{sweep_file}: controllers[1].{key}: ")
    assert message in str(error.value)
