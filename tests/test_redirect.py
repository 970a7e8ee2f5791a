"""A scenario's own declared outputs go to the run's folder, never the scenario's."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from twin_traffic.redirect import OUTPUTS_DIR, declared_outputs, scenario_args
from twin_traffic.scenario import builtin_scenarios, load_scenario

DETECTORS = """<additional>
    <e1Detector id="north" lane="A0N_A0_0" pos="50" freq="60" file="e1_output.xml"/>
    <inductionLoop id="south" lane="A0S_A0_0" pos="50" period="60" file="e1_output.xml"/>
    <edgeData id="flows" period="60" file="out/edges.xml"/>
    <inductionLoop id="quiet" lane="A0S_A0_0" pos="10" period="60" file="NUL"/>
</additional>
"""
CONFIG = """<configuration>
    <input>
        <net-file value="arterial.net.xml"/>
        <route-files value="arterial.rou.xml"/>
        <additional-files value="detectors.add.xml"/>
    </input>
    <time><begin value="0"/><end value="3600"/></time>
    <output>
        <tripinfo-output value="tripinfos.xml"/>
        <summary-output value="summary.xml"/>
        <output-prefix value="run-"/>
    </output>
    <report>
        <log value="sumo_log.txt"/>
        <no-step-log value="true"/>
    </report>
</configuration>
"""


@pytest.fixture
def declaring(tmp_path: Path) -> Path:
    """The arterial scenario with a .sumocfg and detectors that declare their own outputs."""
    folder = tmp_path / "scenario"
    folder.mkdir()
    source = builtin_scenarios()["arterial"].parent
    for name in ("arterial.net.xml", "arterial.rou.xml"):
        shutil.copy(source / name, folder / name)
    (folder / "detectors.add.xml").write_text(DETECTORS)
    (folder / "out").mkdir()
    config = folder / "arterial.sumocfg"
    config.write_text(CONFIG)
    return config


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its content."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_declared_outputs_are_read_from_the_config(declaring: Path) -> None:
    assert declared_outputs(declaring) == {
        "tripinfo-output": "tripinfos.xml",
        "summary-output": "summary.xml",
        "output-prefix": "run-",
        "log": "sumo_log.txt",
    }


def test_arguments_point_every_output_into_the_run_folder(declaring: Path, tmp_path: Path) -> None:
    scenario = load_scenario(declaring)
    run = tmp_path / "run"
    args = scenario_args(scenario, (), run, given=["--tripinfo-output", "mine.xml"])
    options = dict(zip(args[::2], args[1::2], strict=False))
    assert "--tripinfo-output" not in options  # the caller's own option is left alone
    assert options["--summary-output"] == str(run / OUTPUTS_DIR / "summary.xml")
    assert options["--log"] == str(run / OUTPUTS_DIR / "sumo_log.txt")
    assert options["--output-prefix"] == ""
    (copy,) = [Path(p) for p in options["--additional-files"].split(",")]
    assert copy.parent.parent == run
    files = {e.get("id"): e.get("file") for e in ET.parse(copy).getroot()}
    assert files == {
        "north": str(run / OUTPUTS_DIR / "e1_output.xml"),
        "south": str(run / OUTPUTS_DIR / "e1_output.xml"),  # shared, as declared
        "flows": str(run / OUTPUTS_DIR / "edges.xml"),
        "quiet": "NUL",
    }
    omitted = scenario_args(scenario, (), tmp_path / "other", omit_ids=["north"])
    (copy,) = [Path(p) for p in omitted[omitted.index("--additional-files") + 1].split(",")]
    assert [e.get("id") for e in ET.parse(copy).getroot()] == ["south", "flows", "quiet"]


def test_files_without_outputs_load_in_place(tmp_path: Path) -> None:
    scenario = load_scenario("arterial")
    args = scenario_args(scenario, (), tmp_path)
    assert args == scenario.sumo_args(())
    assert not any(tmp_path.iterdir())


def test_parallel_runs_leave_the_scenario_folder_unchanged(declaring: Path) -> None:
    before = snapshot(declaring.parent)

    def evaluate(*options: str) -> dict[str, dict[str, float]]:
        done = subprocess.run(
            [sys.executable, "-m", "twin_traffic.cli", "evaluate", str(declaring),
             "--end", "300", "--format", "json", *options],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        metrics = report["controllers"]["fixed"]
        return {
            str(seed): {name: m["per_seed"][str(seed)] for name, m in metrics.items()}
            for seed in report["seeds"]
        }

    together = evaluate("--seeds", "0", "1", "--workers", "2")
    alone = {**evaluate("--seeds", "0"), **evaluate("--seeds", "1")}
    assert snapshot(declaring.parent) == before
    assert together == alone
    assert all(metrics["vehicles"] > 0 for metrics in together.values())
