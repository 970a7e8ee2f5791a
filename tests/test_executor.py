"""The executor on a real SUMO: workers killed at any moment, parents killed outright."""

from __future__ import annotations

import contextlib
import faulthandler
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import write_scenario

from twin_traffic.errors import TwinTrafficError
from twin_traffic.evaluate import RunSpec
from twin_traffic.executor import ATTEMPTS, Outcome, WorkerPool, run_specs

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

BOUND_SECONDS = 60.0  # one round of twelve tiny runs, kills and restarts included


def _comparable(outcome: Outcome) -> dict[str, float]:
    """A run's measured metrics (the emissions, not measured, are NaN)."""
    assert outcome.result is not None
    return {k: v for k, v in outcome.result.metrics.items() if not math.isnan(v)}


def _children() -> list[int]:
    """This process's live workers, read from /proc (reaping none of them).

    multiprocessing's resource tracker, a child of its own that lives as long as this
    process, is left out.
    """
    pids = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            pids += [int(pid) for pid in (task / "children").read_text().split()]
    return [pid for pid in pids if _state(pid) not in ("Z", None) and not _is_tracker(pid)]


def _is_tracker(pid: int) -> bool:
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


class Killer:
    """SIGKILLs workers of the running executor at moments drawn from a seeded generator.

    ``start``: a worker is killed 0-0.4 s after it appears (while it imports, before SUMO
    starts); ``run``: at a run's first progress report (SUMO running); ``send``: 0-20 ms
    after a run's last progress report (reading its outputs and sending its result; with
    one worker, the reporting worker is the only child).
    """

    def __init__(self, rng: random.Random, per_phase: int) -> None:
        self.rng = rng
        self.per_phase = per_phase
        self.kills: dict[str, int] = {"start": 0, "run": 0, "send": 0}
        self.phase = "start"
        self.seen: set[int] = set()
        self.last_report: dict[int, float] = {}
        self.stop = threading.Event()

    def _chance(self) -> bool:
        odds = 1.0 if self.phase == "start" else 0.8
        return self.kills[self.phase] < self.per_phase and self.rng.random() < odds

    def watch_starts(self) -> None:
        while not self.stop.is_set():
            for child in _children():
                if child not in self.seen:
                    self.seen.add(child)
                    if self.phase == "start" and self._chance():
                        time.sleep(self.rng.uniform(0.0, 0.4))
                        self.kills["start"] += _kill(child)
            time.sleep(0.005)

    def progress(self, index: int, done: float, total: float) -> None:
        children = _children()
        # A report no later than the last one is the first of a new try of that run.
        first = done <= self.last_report.get(index, math.inf)
        self.last_report[index] = done
        if self.phase == "run" and first and children and self._chance():
            self.kills["run"] += _kill(self.rng.choice(children))
        elif self.phase == "send" and done >= total and len(children) == 1 and self._chance():
            time.sleep(self.rng.uniform(0.0, 0.02))
            self.kills["send"] += _kill(children[0])


def test_workers_killed_at_random_moments_never_hang_nor_lose_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))  # the workers' temporary folder too
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    config = write_scenario(
        tmp_path, [(f"v{i}", 2 * i) for i in range(20)], [(20, "G"), (3, "y"), (20, "r")], 90
    )
    specs = [RunSpec(str(config), controller="fixed", seed=seed) for seed in range(24)]
    reference = {o.index: _comparable(o) for o in run_specs(specs, workers=2)}
    killer = Killer(random.Random(15), per_phase=14)
    watcher = threading.Thread(target=killer.watch_starts, daemon=True)
    watcher.start()
    # A hang fails the test (and the session) with every thread's stack instead of waiting.
    faulthandler.dump_traceback_later(3 * BOUND_SECONDS, exit=True)
    try:
        reported = 0
        for phase in ("start", "run", "send"):
            killer.phase = phase
            killer.last_report.clear()
            began = time.monotonic()
            workers = 1 if phase == "send" else 2
            outcomes = list(run_specs(specs, workers, progress=killer.progress))
            assert time.monotonic() - began < BOUND_SECONDS
            assert sorted(o.index for o in outcomes) == list(range(len(specs)))
            for outcome in outcomes:
                if outcome.ok:
                    assert _comparable(outcome) == reference[outcome.index]
                else:
                    assert f"killed (SIGKILL) on each of {ATTEMPTS} tries" in (outcome.error or "")
                    reported += 1
            assert _children() == []
            # Workers killed mid-run leave no scratch files (SUMO outputs, logs) behind.
            assert list(temporary.iterdir()) == []
    finally:
        faulthandler.cancel_dump_traceback_later()
        killer.stop.set()
        watcher.join()
    assert sum(killer.kills.values()) >= 30, killer.kills
    # A run is reported only once its worker died on each try: every other kill was retried.
    assert reported * ATTEMPTS <= sum(killer.kills.values()), (reported, killer.kills)


def test_a_pool_serves_batch_after_batch_with_the_same_workers(tmp_path: Path) -> None:
    config = write_scenario(
        tmp_path, [(f"v{i}", 2 * i) for i in range(20)], [(20, "G"), (3, "y"), (20, "r")], 90
    )
    specs = [RunSpec(str(config), controller="fixed", seed=seed) for seed in range(4)]
    reference = {o.index: _comparable(o) for o in run_specs(specs, workers=2)}
    with WorkerPool(2) as pool:
        first = {o.index: _comparable(o) for o in pool.run(specs[:2])}
        workers = sorted(_children())
        assert len(workers) == 2
        second = {o.index + 2: _comparable(o) for o in pool.run(specs[2:])}
        assert sorted(_children()) == workers  # no new processes for the second batch
        assert {**first, **second} == reference
        # A batch the caller stops reading: the worker still holding one of its runs is
        # killed, the one that delivered stays, and the next batch completes.
        abandoned = pool.run(specs)
        next(abandoned)
        abandoned.close()
        remaining = _children()
        assert len(remaining) == 1 and remaining[0] in workers
        assert {o.index: _comparable(o) for o in pool.run(specs)} == reference
        busy = pool.run(specs)
        next(busy)
        with pytest.raises(TwinTrafficError, match="one batch at a time"):
            next(pool.run(specs))
        busy.close()
    assert _children() == []
    with pytest.raises(TwinTrafficError, match="closed; make a new one"):
        next(pool.run(specs))
    with pytest.raises(TwinTrafficError, match="at least one worker"):
        WorkerPool(0)


def _live_processes_of_group(group: int) -> list[int]:
    """Processes of a process group that still run (zombies waiting to be reaped excluded)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


@pytest.mark.parametrize("backend", ["libsumo", "traci"])
def test_workers_and_their_sumo_end_when_the_parent_is_killed(tmp_path: Path, backend: str) -> None:
    config = write_scenario(
        tmp_path, [(f"v{i}", 2 * i) for i in range(600)], [(20, "G"), (3, "y"), (20, "r")], 7200
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "twin_traffic.cli", "evaluate", str(config), "--seeds", "0-3",
         "--workers", "2", "--backend", backend],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        # Two workers and, with TraCI, their SUMO processes: wait until they all run.
        expected = 1 + 2 * (2 if backend == "traci" else 1)
        while len(_live_processes_of_group(process.pid)) < expected:
            assert time.monotonic() < deadline, "the workers never started"
            assert process.poll() is None
            time.sleep(0.1)
        time.sleep(0.5)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 10
        while _live_processes_of_group(process.pid):
            assert time.monotonic() < deadline, "a worker outlived its parent by 10 s"
            time.sleep(0.1)
    finally:
        for pid in _live_processes_of_group(process.pid):
            _kill(pid)


def test_a_script_without_a_main_guard_gets_told_how_to_fix_it(tmp_path: Path) -> None:
    """Spawned workers import the main script again; one that starts runs at import time
    makes each of them fail at start-up, which must not read as a SUMO crash."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from twin_traffic.evaluate import RunSpec\n"
        "from twin_traffic.executor import run_specs\n"
        "for outcome in run_specs([RunSpec('single', seed=0, end=10)], workers=1):\n"
        "    print('outcome', outcome.ok)\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0
    assert "outcome" not in done.stdout
    assert 'if __name__ == "__main__":' in done.stderr
    assert "SUMO crashed" not in done.stderr
