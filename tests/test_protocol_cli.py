"""The options that describe a scenario and its protocol, the same on every command, and
train's up-front checks: exit code, stdout and stderr, as users see them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from twin_traffic.evaluate import RunSpec, run_episode
from twin_traffic.scenario import builtin_scenarios
from twin_traffic.sweep import SweepError, load_sweep

SINGLE = builtin_scenarios()["single"].parent


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twin_traffic.cli", *args],
        capture_output=True, text=True, timeout=300, cwd=cwd,
    )  # fmt: skip


@pytest.mark.parametrize("command", ["check", "info"])
def test_scenario_commands_take_a_network_with_routes(command: str) -> None:
    net, routes = SINGLE / "single.net.xml", SINGLE / "single.rou.xml"
    result = cli("scenario", command, str(net), "--routes", str(routes), "--end", "300")
    assert result.returncode == 0, result.stderr
    assert "0–300" in result.stdout and result.stderr == ""


def test_protocol_is_applied_and_recorded_in_every_spec(tmp_path: Path) -> None:
    result = cli(
        "evaluate", "single", "--end", "60", "-c", "max-pressure", "--protocol", "resco",
        "--sumo-option", "--max-depart-delay 900", "--out", str(tmp_path), "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (spec_file,) = tmp_path.glob("*/*/seed0/spec.json")
    spec = RunSpec.from_dict(json.loads(spec_file.read_text()))
    assert spec.protocol == "resco" and spec.time_to_teleport == -1
    assert spec.sumo_options == ("--max-depart-delay", "900")
    assert spec.params == {"decision_interval": 10.0, "yellow": 3.0}
    assert spec.sumo_args() == ("--max-depart-delay", "900", "--time-to-teleport", "-1")


def test_explicit_timings_win_over_the_preset(tmp_path: Path) -> None:
    result = cli(
        "evaluate", "single", "--end", "30", "-c", "greedy", "-p", "decision_interval=4",
        "--protocol", "resco", "--time-to-teleport", "120", "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (spec_file,) = tmp_path.glob("*/*/seed0/spec.json")
    spec = json.loads(spec_file.read_text())
    assert spec["params"] == {"decision_interval": 4, "yellow": 3.0}
    assert spec["time_to_teleport"] == 120


def test_a_sweep_file_takes_the_same_protocol(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'scenarios = ["single"]\nseeds = "0-1"\nprotocol = "resco"\n'
        'sumo_options = ["--max-depart-delay 900"]\n[[controllers]]\nname = "sotl"\n'
    )
    (run, _) = load_sweep(path).runs()
    assert run.spec.protocol == "resco" and run.spec.time_to_teleport == -1
    assert run.spec.sumo_options == ("--max-depart-delay", "900")
    assert run.spec.params == {"decision_interval": 10.0, "yellow": 3.0}
    path.write_text(path.read_text().replace("--max-depart-delay", "--no-such-thing"))
    with pytest.raises(SweepError, match="sumo_options: --sumo-option '--no-such-thing 900'"):
        load_sweep(path)


@pytest.mark.parametrize(
    ("recipe", "args", "message"),
    [
        ("", ("nosuch",), "error: unknown scenario 'nosuch'"),
        ("", (str(SINGLE / "single.net.xml"),), "a network alone has no traffic; add --routes"),
        ('[env]\nreward = "waits"\n', ("single",),
         "r.toml: env: unknown reward 'waits'; choose from: wait,"),
        ("[hyperparameters]\nlearning_rat = 0.1\n", ("single",),
         "r.toml: [hyperparameters]: MaskablePPO takes no 'learning_rat'; it takes: learning_"),
        ("[policy]\nnet_arc = [8]\n", ("single",),
         "r.toml: [policy]: MaskableActorCriticPolicy takes no 'net_arc'; it takes: net_arch,"),
        ('timesteps = "many"\n', ("single",), "r.toml: timesteps: 'many' is not a whole number"),
        ("", ("single", "--holdout-seeds", "5-2"), "error: --holdout-seeds '5-2': not a range"),
        ("", ("single", "--confirm-seeds", "100"),
         "confirm_seeds: seed 100 is a validation seed too; choose new seeds"),
        ("", ("single", "--eval-seeds", "200", "201"),
         "error: seeds 200, 201 would both choose the model and judge it; choose --holdout"),
        ("", ("single", "--confirm-seeds", "204"),
         "error: seeds 204 would both choose the model and judge it"),
    ],
)  # fmt: skip
def test_train_checks_everything_before_it_starts(
    tmp_path: Path, recipe: str, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "r.toml").write_text('algo = "ppo"\n' + recipe)
    result = cli("train", *args, "--recipe", "r.toml", "--out", "runs/agent", cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "runs").exists()  # nothing left behind


def test_builtin_scenarios_are_named_by_name() -> None:
    result = cli("evaluate", "single", "--begin", "100", "--end", "50")
    assert result.returncode == 1
    assert result.stderr.startswith("error: built-in scenario 'single': time window")
    assert ".venv" not in result.stderr and "networks" not in result.stderr


def test_gui_without_a_display_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = cli("evaluate", "single", "--end", "30", "--gui")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == (
        "error: sumo-gui cannot open: no display is available (DISPLAY is not set); run "
        "without the GUI (no --gui, gui=False), or under a virtual display (xvfb-run ...)"
    )


def test_sumo_stderr_reaches_the_user_under_traci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":nonexistent-display-99")
    result = cli("evaluate", "single", "--end", "30", "--gui")
    assert result.returncode == 1
    assert "SUMO did not start: FXApp::openDisplay: unable to open display" in result.stderr


def test_time_to_teleport_reaches_sumo(tmp_path: Path) -> None:
    from conftest import write_scenario

    from twin_traffic.evaluate import run_episode

    # A red that never ends: SUMO teleports the waiting car after time_to_teleport s.
    config = write_scenario(tmp_path, [("v0", 0)], [(500, "r")], end=200)
    teleports = {
        ttt: run_episode(RunSpec(str(config), time_to_teleport=ttt)).metrics["teleports"]
        for ttt in (30.0, -1.0)
    }
    assert teleports == {30.0: 1, -1.0: 0}


def test_scenario_check_checks_the_protocol_options_too() -> None:
    good = cli("scenario", "check", "single", "--protocol", "resco", "--sumo-option",
               "--max-depart-delay 600")  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip().endswith("SUMO options --max-depart-delay 600 --time-to-teleport -1")
    bad = cli("scenario", "check", "single", "--sumo-option", "--nope 1")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("error: --sumo-option '--nope 1': SUMO has no option --nope")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--scale", "--scale takes a value (float); write it after the option"),
        ("--output-prefix PFX_", "--output-prefix cannot be passed here; it would move"),
    ],
)
def test_sumo_options_that_would_break_every_run_are_refused_by_check(
    option: str, message: str
) -> None:
    result = cli("scenario", "check", "single", "--sumo-option", option)
    assert result.returncode == 1 and result.stdout == ""
    assert message in result.stderr
    assert (
        cli("scenario", "check", "single", "--sumo-option", "--ignore-route-errors").returncode == 0
    )


def test_the_python_api_applies_a_preset_and_refuses_an_unknown_one() -> None:
    from twin_traffic.envs import SignalEnv
    from twin_traffic.protocol import ProtocolError

    assert RunSpec("single", protocol="resco").sumo_args() == ("--time-to-teleport", "-1")
    assert RunSpec("single", protocol="resco", time_to_teleport=30).sumo_args() == (
        "--time-to-teleport", "30",
    )  # fmt: skip
    with pytest.raises(ProtocolError, match="protocol 'foo': unknown protocol"):
        run_episode(RunSpec("single", protocol="foo", end=30))
    with pytest.raises(ProtocolError, match="--time-to-teleport -5: give seconds >= 0"):
        run_episode(RunSpec("single", time_to_teleport=-5, end=30))
    with pytest.raises(ProtocolError, match="protocol 'foo': unknown protocol"):
        SignalEnv("single", end=30, protocol="foo")
