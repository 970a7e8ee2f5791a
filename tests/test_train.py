"""Training on a real SUMO scenario: save, reload, evaluate, resume, reproduce."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from twin_traffic.controllers import make_controller
from twin_traffic.errors import ControllerError, TwinTrafficError
from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.train import CLASSICAL, Recipe, default_recipe, load_recipe, train

END = 200.0  # 40 decisions per episode


def small_recipe() -> Recipe:
    recipe = load_recipe(default_recipe("ppo"))
    return replace(
        recipe,
        timesteps=512,
        simulations=1,
        eval_every=256,
        eval_seeds=(100,),
        checkpoint_every=256,
        baselines=("fixed", "max-pressure"),
        imitation_steps=128,
        imitation_epochs=2,
        env={**recipe.env, "end": END},
        hyperparameters={**recipe.hyperparameters, "n_steps": 64, "batch_size": 64, "n_epochs": 2},
        confirm_seeds=(),
    )


def test_train_evaluate_reload_resume_and_reproduce(tmp_path: Path) -> None:
    recipe = small_recipe()
    first = train("single", recipe, tmp_path / "a", seed=3, progress_bar=False)
    folder = first.folder
    for name in ("best.zip", "final.zip", "agent.json", "baselines.json", "learning_curve.png",
                 "imitation.json"):  # fmt: skip
        assert (folder / name).is_file(), name
    # The recipe's teacher = best: the better of the deciding baselines was imitated.
    assert first.teacher == "max-pressure"
    assert json.loads((folder / "imitation.json").read_text())["teacher"] == "max-pressure"
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == [
        "model_256_steps.zip", "model_512_steps.zip",
    ]  # fmt: skip
    steps = [row["timesteps"] for row in first.evaluations]
    assert steps[:3] == [0, 256, 512]
    assert set(first.baselines) == {"fixed", "max-pressure"}

    # Reloaded as a controller, the best model scores what training recorded for it.
    reloaded = run_episode(
        RunSpec("single", controller="policy", params={"model": str(first.best_model)},
                seed=100, end=END, emissions=False)
    )  # fmt: skip
    assert reloaded.metrics["delay"] == pytest.approx(
        min(row["delay"] for row in first.evaluations), abs=1e-3
    )
    # Trained deciding every 5 s, the agent is deployed at the recipe's interval (1 s),
    # which agent.json records; a parameter overrides it.
    assert recipe.env["decision_interval"] == 5.0 and recipe.deploy_interval == 1.0
    assert json.loads((folder / "agent.json").read_text())["deploy_interval"] == 1.0
    model = {"model": str(first.best_model)}
    assert make_controller("policy", model).decision_interval == 1.0
    every_five = make_controller("policy", {**model, "decision_interval": 5})
    assert every_five.decision_interval == 5.0
    slower = run_episode(
        RunSpec("single", controller="policy", params={**model, "decision_interval": 5},
                seed=100, end=END, emissions=False)
    )  # fmt: skip
    assert slower.metrics["delay"] != reloaded.metrics["delay"]

    # The same seed trains the same agent.
    second = train("single", recipe, tmp_path / "b", seed=3, progress_bar=False)
    assert second.evaluations == first.evaluations

    # Training again into the run's folder without --resume is refused, by the library
    # and by the CLI (whatever the scenario), and leaves every file as it was.
    before = _files(folder)
    with pytest.raises(TwinTrafficError, match="already holds a run; pass --resume"):
        train("single", recipe, folder, seed=4, progress_bar=False)
    refused = subprocess.run(
        [sys.executable, "-m", "twin_traffic.cli", "train", "mixed", "--timesteps", "64",
         "--end", "60", "--out", str(folder)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip() == (
        f"error: {folder}: already holds a run; pass --resume to continue it, or choose "
        "another --out (or leave --out out for a new run folder)"
    )
    assert _files(folder) == before

    # Resuming continues from the last checkpoint up to the new total.
    resumed = train("single", replace(recipe, timesteps=768), folder, seed=3, resume=True,
                    progress_bar=False)  # fmt: skip
    assert [row["timesteps"] for row in resumed.evaluations][: len(steps)] == steps
    assert resumed.evaluations[-1]["timesteps"] == 768
    assert (folder / "checkpoints" / "model_768_steps.zip").is_file()


def test_the_kept_model_is_chosen_among_finalists_on_new_seeds(tmp_path: Path) -> None:
    recipe = replace(small_recipe(), teacher="", confirm_seeds=(103, 104), finalists=2)
    result = train("single", recipe, tmp_path / "run", seed=3, progress_bar=False)
    folder = result.folder
    # The two models of least validation delay were kept, and only they.
    by_delay = sorted(result.evaluations, key=lambda row: row["delay"])
    kept = sorted(int(row["timesteps"]) for row in by_delay[:2])
    finalists = sorted(int(p.stem.removeprefix("finalist_")) for p in folder.glob("finalist_*"))
    assert finalists == kept
    assert sorted(int(row["timesteps"]) for row in result.selection) == kept
    # Each finalist's confirmation is its delay on the new seeds, run again here.
    for row in result.selection:
        model = folder / f"finalist_{int(row['timesteps'])}.zip"
        delays = [
            run_episode(RunSpec("single", controller="policy", params={"model": str(model)},
                                seed=seed, end=END, emissions=False)).metrics["delay"]
            for seed in recipe.confirm_seeds
        ]  # fmt: skip
        assert row["confirmation"] == pytest.approx(sum(delays) / len(delays), abs=1e-3)
        assert row["combined"] == pytest.approx(
            (row["validation"] * len(recipe.eval_seeds) + sum(delays)) / 3, abs=1e-3
        )
    # best.zip is the finalist with the least delay over all three seeds.
    chosen = min(result.selection, key=lambda row: row["combined"])
    chosen_file = folder / f"finalist_{int(chosen['timesteps'])}.zip"
    assert result.best_model.read_bytes() == chosen_file.read_bytes()
    lines = (folder / "selection.csv").read_text().splitlines()
    assert lines[0] == "timesteps,validation,confirmation,combined,chosen"
    assert sum(line.endswith(",1") for line in lines[1:]) == 1 and len(lines) == 3


def test_confirmation_seeds_must_be_new() -> None:
    from twin_traffic.train import check_recipe

    with pytest.raises(TwinTrafficError, match="confirm_seeds: seed 100 is a validation seed"):
        check_recipe(replace(small_recipe(), confirm_seeds=(100, 103)), "recipe")


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_resume_without_checkpoint_and_bad_recipes(tmp_path: Path) -> None:
    with pytest.raises(TwinTrafficError, match="no checkpoint to resume from"):
        train("single", small_recipe(), tmp_path / "empty", resume=True, progress_bar=False)
    bad = tmp_path / "bad.toml"
    bad.write_text('algo = "ppo"\nlearning_rate = 0.1\n')
    with pytest.raises(TwinTrafficError, match="unknown key 'learning_rate'"):
        load_recipe(bad)
    bad.write_text('algo = "ppo"\ndeploy_interval = 0\n')
    with pytest.raises(
        TwinTrafficError, match="deploy_interval: 0 must be a number of seconds > 0"
    ):
        load_recipe(bad)
    bad.write_text('algo = "sac"\n')
    with pytest.raises(TwinTrafficError, match="algo must be one of ppo, a2c, dqn"):
        load_recipe(bad)


def test_policy_controller_needs_a_model(tmp_path: Path) -> None:
    missing = {"model": str(tmp_path / "x.zip")}
    with pytest.raises(ControllerError, match="no trained model there"):
        run_episode(RunSpec("single", controller="policy", params=missing, end=10))


@pytest.mark.parametrize("algo", ["a2c", "dqn"])
def test_other_algorithms_train(algo: str, tmp_path: Path) -> None:
    recipe = load_recipe(default_recipe(algo))
    recipe = replace(recipe, timesteps=256, simulations=1, eval_every=256, eval_seeds=(100,),
                     checkpoint_every=256, env={**recipe.env, "end": END},
                     baselines=("fixed",))  # fmt: skip
    if algo == "dqn":
        recipe = replace(recipe, hyperparameters={**recipe.hyperparameters, "learning_starts": 64})
    result = train("mixed", recipe, tmp_path / algo, progress_bar=False)
    assert result.best_model.is_file() and result.evaluations


def test_per_signal_networks_share_no_parameter() -> None:
    import torch as th
    from torch import nn

    from twin_traffic.policies import PerSignalExtractor

    extractor = PerSignalExtractor(
        features_dim=5 + 3, signals=3, net_arch=[4], activation_fn=nn.Tanh
    )
    observation = th.rand(2, 5)
    signal_0 = th.hstack([observation, th.tensor([[1.0, 0, 0]] * 2)])
    before = extractor.forward_actor(signal_0).detach().clone()
    assert before.shape == (2, 12) and bool((before[:, 4:] == 0).all())
    with th.no_grad():  # changing signal 1's network leaves signal 0's outputs alone
        for parameter in extractor.policy_nets[1].parameters():
            parameter.add_(1.0)
    assert th.equal(extractor.forward_actor(signal_0), before)


def test_independent_policies_train_and_evaluate(tmp_path: Path) -> None:
    recipe = replace(small_recipe(), policies="independent", timesteps=256, eval_every=256)
    result = train("mixed", recipe, tmp_path / "independent", seed=1, progress_bar=False)
    reloaded = run_episode(
        RunSpec("mixed", controller="policy", params={"model": str(result.best_model)},
                seed=100, end=END, emissions=False)
    )  # fmt: skip
    assert reloaded.metrics["delay"] == pytest.approx(
        min(row["delay"] for row in result.evaluations), abs=1e-3
    )
    with pytest.raises(ControllerError, match="independent policies belong to the network"):
        run_episode(RunSpec("single", controller="policy",
                            params={"model": str(result.best_model)}, end=10))  # fmt: skip
    with pytest.raises(TwinTrafficError, match="independent policies need algo = ppo"):
        train("mixed", replace(recipe, algo="dqn"), tmp_path / "dqn", progress_bar=False)


def test_default_run_folders_are_new_and_named_after_the_run(tmp_path: Path) -> None:
    from twin_traffic.train import new_run_folder

    first = new_run_folder(tmp_path / "runs", "my net", "ppo", 7)
    second = new_run_folder(tmp_path / "runs", "my net", "ppo", 7)
    assert first != second and first.is_dir() and second.is_dir()
    scenario, algo, seed, stamp = first.name.split("__")
    assert (scenario, algo, seed) == ("my-net", "ppo", "7") and stamp[:2] == "20"
    assert second.name == first.name + "-2" or second.name.split("__")[3] != stamp


def test_baselines_are_reused_only_for_the_same_runs(tmp_path: Path) -> None:
    from twin_traffic.train import baselines_of, env_config

    def config(scenario: str, end: float) -> Any:
        return env_config(scenario, small_recipe(), end=end)

    path = tmp_path / "baselines.json"
    single = baselines_of(tmp_path, config("single", 60.0), (100,), 1)
    assert set(single) == set(CLASSICAL)  # every classical controller, by default
    stored = json.loads(path.read_text())
    assert (stored["scenario"], stored["end"], stored["seeds"]) == ("single", 60.0, [100])
    # Same scenario, window, protocol and seeds (a resume): read back, not measured again.
    stored["delay"]["fixed"] = [1234.0]
    path.write_text(json.dumps(stored))
    assert baselines_of(tmp_path, config("single", 60.0), (100,), 1)["fixed"] == [1234.0]
    # Another window, or another scenario with the same seeds: measured again.
    assert baselines_of(tmp_path, config("single", 80.0), (100,), 1)["fixed"] != [1234.0]
    mixed = baselines_of(tmp_path, config("mixed", 60.0), (100,), 1)
    (tmp_path / "x").mkdir()
    assert json.loads(path.read_text())["scenario"] == "mixed"
    assert mixed != single and mixed == baselines_of(tmp_path / "x", config("mixed", 60.0),
                                                     (100,), 1)  # fmt: skip


def test_resume_refuses_another_scenario_or_algorithm(tmp_path: Path) -> None:
    """--resume continues the run in the folder; another scenario or window is refused
    before anything is written."""
    recipe = replace(small_recipe(), timesteps=64, eval_every=64, checkpoint_every=64)
    folder = train("single", recipe, tmp_path / "run", seed=0, progress_bar=False).folder
    before = _files(folder)
    with pytest.raises(TwinTrafficError, match="trained with scenario = 'single', not 'mixed'"):
        train("mixed", recipe, folder, resume=True, progress_bar=False)
    with pytest.raises(TwinTrafficError, match=r"trained with end = 200\.0, not 100\.0"):
        train("single", replace(recipe, env={**recipe.env, "end": 100.0}), folder, resume=True,
              progress_bar=False)  # fmt: skip
    assert _files(folder) == before


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import twin_traffic.train as training

    folder = tmp_path / "run"
    imitate = training.imitate

    def ctrl_c(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # the user stops the run while it clones its teacher

    monkeypatch.setattr(training, "imitate", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        train("single", small_recipe(), folder, progress_bar=False)
    scores = (folder / "baselines.json").read_bytes()
    assert not (folder / "checkpoints").exists() and not (folder / "evaluations.csv").exists()
    with pytest.raises(TwinTrafficError, match="already holds a run; pass --resume"):
        train("single", small_recipe(), folder, progress_bar=False)
    monkeypatch.setattr(training, "imitate", imitate)
    result = train("single", small_recipe(), folder, resume=True, progress_bar=False)
    assert (folder / "baselines.json").read_bytes() == scores  # not scored again
    assert result.best_model.is_file() and int(result.evaluations[-1]["timesteps"]) >= 512


def test_a_run_stopped_after_its_first_evaluation_or_ended_short_can_resume(
    tmp_path: Path,
) -> None:
    """Neither a run stopped between its first evaluation and its first checkpoint nor a
    finished run that never reached one is a dead end: the first starts again without the
    stopped attempt's scores, the second continues from its last model."""
    folder = tmp_path / "run"
    recipe = replace(small_recipe(), checkpoint_every=10**6)

    def ctrl_c(timesteps: int, delay: float) -> None:
        raise KeyboardInterrupt  # stopped at the first evaluation, before any checkpoint

    with pytest.raises(KeyboardInterrupt):
        train("single", recipe, folder, progress_bar=False, on_evaluation=ctrl_c)
    assert (folder / "evaluations.csv").is_file() and not (folder / "final.zip").exists()
    restarted = train("single", recipe, folder, resume=True, progress_bar=False)
    steps = [int(row["timesteps"]) for row in restarted.evaluations]
    assert steps == sorted(set(steps)) and steps[0] == 0  # one attempt's evaluations only
    assert not list(folder.glob("checkpoints/*.zip")) and (folder / "final.zip").is_file()
    longer = train("single", replace(recipe, timesteps=768), folder, resume=True,
                   progress_bar=False)  # fmt: skip
    assert int(longer.evaluations[-1]["timesteps"]) >= 768
    assert [int(row["timesteps"]) for row in longer.evaluations][: len(steps)] == steps
