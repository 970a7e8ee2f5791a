"""One progress display for many runs: finished, failed and running counts, and an ETA."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from twin_traffic.cli.app import err

if TYPE_CHECKING:
    from twin_traffic.evaluate import RunSpec
    from twin_traffic.executor import Outcome


class RunsProgress:
    """Where a batch of runs stands: each run's simulated share, and how it ended."""

    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.share: dict[int, float] = {}
        self.finished = 0
        self.failed = 0

    def advance(self, index: int, done: float, total: float) -> None:
        """Record a run's progress report (simulated seconds done of its window)."""
        self.share[index] = min(1.0, done / total) if total > 0 else 1.0

    def end(self, outcome: Outcome) -> None:
        """Record that a run ended, finished or failed."""
        self.share[outcome.index] = 1.0
        if outcome.ok:
            self.finished += 1
        else:
            self.failed += 1

    @property
    def running(self) -> int:
        """Runs that reported progress and have not ended."""
        return sum(1 for share in self.share.values() if share < 1.0)

    @property
    def completed(self) -> float:
        """Runs done, counting each running run by its simulated share."""
        return sum(self.share.values())

    def status(self) -> str:
        """``3/10 finished · 1 failed · 2 running``."""
        text = f"{self.finished}/{self.runs} finished"
        if self.failed:
            text += f" · [red]{self.failed} failed[/red]"
        return f"{text} · {self.running} running"


def run_with_status(specs: list[RunSpec], workers: int, description: str = "runs") -> list[Outcome]:
    """Run the specs in worker processes behind one progress line; outcomes in spec order.

    On a terminal the line shows finished/failed/running runs and the time left; elsewhere
    (logs, pipes) each run that ends is one line.
    """
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from twin_traffic.executor import run_specs

    state = RunsProgress(len(specs))
    progress = Progress(
        TextColumn(escape(description)),
        BarColumn(bar_width=20),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    task = progress.add_task(description, total=len(specs), status=state.status())
    started = time.perf_counter()

    def advance(index: int, done: float, total: float) -> None:
        state.advance(index, done, total)
        progress.update(task, completed=state.completed, status=state.status())

    outcomes = []
    with progress:
        for outcome in run_specs(specs, workers=workers, progress=advance):
            state.end(outcome)
            progress.update(task, completed=state.completed, status=state.status())
            outcomes.append(outcome)
            if not err.is_terminal:
                elapsed = time.perf_counter() - started
                word = "done" if outcome.ok else "failed"
                err.print(f"{word} {escape(outcome.spec.label)} ({len(outcomes)}/{len(specs)} "
                          f"after {elapsed:.1f} s)", highlight=False)  # fmt: skip
    return sorted(outcomes, key=lambda o: o.index)


class PhaseDisplay:
    """The progress of a long command's phases, one at a time: a bar with its count and
    ETA on a terminal, and a line as each phase ends elsewhere (logs, pipes).

    Call it with ``(phase, done, total)``; ``labels`` maps a phase to what it shows and
    its unit (``{"scoring": ("scoring classical controllers", "simulations")}``). A bar
    stops when its phase is done, so another live display (PPO's) may follow it.
    """

    def __init__(self, labels: dict[str, tuple[str, str]]) -> None:
        self.labels = labels
        self.phase: str | None = None
        self.started = 0.0
        self._progress: Any = None
        self._task: Any = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase != self.phase:
            self._begin(phase, total)
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total)
        if done >= total and self.phase is not None:
            self._end(total)

    def _begin(self, phase: str, total: int) -> None:
        self.close()
        self.phase, self.started = phase, time.perf_counter()
        label, unit = self.labels.get(phase, (phase, "steps"))
        if err.is_terminal:
            self._progress = counting_progress()
            self._task = self._progress.add_task(escape(label), total=total, what=unit)
            self._progress.start()

    def _end(self, total: int) -> None:
        label, unit = self.labels.get(self.phase or "", (self.phase or "", "steps"))
        if self._progress is None:
            elapsed = time.perf_counter() - self.started
            err.print(f"{escape(label)}: {total:,} {unit} ({elapsed:.1f} s)", highlight=False)
        self.close()
        self.phase = None

    def close(self) -> None:
        """Stop the bar shown, if any (safe to call at any time)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def counting_progress() -> Any:
    """A display of counted work on the error console: its description, a bar, done/total,
    what is counted (the task's ``what`` field), the time taken and the time left. It shows
    nothing where the console is no terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[what]}"), TimeElapsedColumn(), TextColumn("ETA"),
        TimeRemainingColumn(), console=err, disable=not err.is_terminal,
    )  # fmt: skip
