"""``twin-traffic sweep``: scenarios × controllers × seeds from a TOML file, resumable."""

from __future__ import annotations

import signal
import sys
import time
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from twin_traffic.cli.app import app, err, out

if TYPE_CHECKING:
    from twin_traffic.sweep import RunRecord, SweepRun


class EngineChoice(str, Enum):
    """Where the runs execute."""

    local = "local"
    ray = "ray"


@app.command()
def sweep(
    file: Annotated[Path, typer.Argument(help="Sweep file (TOML), e.g. experiments/quick.toml.")],
    workers: Annotated[int, typer.Option(min=1, help="Simulations run in parallel.")] = 1,
    engine: Annotated[
        EngineChoice, typer.Option(help="local process pool, or ray (the ray extra).")
    ] = EngineChoice.local,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (with --engine ray), e.g. auto.")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Results folder; runs/NAME by default.")
    ] = None,
) -> None:
    """Run every scenario × controller × seed of a sweep file and store each run.

    Finished runs are skipped when the same command runs again, so an interrupted sweep
    resumes where it stopped. A failed run is recorded in the index and the others go on;
    the exit code is 1 when any run failed.
    """
    from twin_traffic.sweep import load_sweep, run_sweep

    loaded = load_sweep(file)
    target = out_dir if out_dir is not None else Path("runs") / loaded.name
    display = _Display(loaded.name)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with display:
            result = run_sweep(
                loaded,
                target,
                workers=workers,
                engine=engine.value,
                address=address,
                on_start=display.start,
                on_run=display.finished,
                on_train=display.training,
            )
    except KeyboardInterrupt:
        kept = (
            f"every finished run is stored in {escape(str(target))}; run the same command "
            "again to resume"
            if target.exists()
            else "nothing was stored"
        )
        err.print(
            f"interrupted after {display.done} of {display.total} runs; {kept}", highlight=False
        )
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    for record in result.failed:
        err.print(f"[red]failed:[/red] {escape(record['run'])}: {escape(record['error'] or '')}")
    out.print(
        f"sweep {escape(loaded.name)}: {len(result.records)} runs, {len(result.ok)} ok "
        f"({result.skipped} already done), {len(result.failed)} failed, "
        f"{result.seconds:.1f} s; results in {escape(str(target))}",
        highlight=False,
    )
    if result.failed:
        raise typer.Exit(1)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM ends a sweep like Ctrl-C: workers stop and nothing half-written stays.
    raise KeyboardInterrupt


class _Display:
    """The progress bar on stderr (a line per run when stderr is not a terminal)."""

    def __init__(self, name: str) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.name = name
        self.total = 0
        self.done = 0
        self.failed = 0
        self.started = time.perf_counter()
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            disable=not err.is_terminal,
        )
        self.task = self.progress.add_task(escape(f"sweep {name}"), total=None, counts="")

    def __enter__(self) -> _Display:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, total: int, skipped: int) -> None:
        """The sweep's size and the runs an earlier invocation finished."""
        self.total, self.done = total, skipped
        self.progress.update(self.task, total=total, completed=skipped, counts=self._counts())
        if not err.is_terminal:
            err.print(f"sweep {escape(self.name)}: {total} runs, {skipped} already done")

    def training(self, message: str) -> None:
        """An agent's training starts or ends (runs wait for it)."""
        self.progress.update(self.task, description=escape(f"sweep {self.name}: {message}"))
        if not err.is_terminal:
            err.print(escape(message), highlight=False)

    def _counts(self) -> str:
        return f"{self.done}/{self.total} runs, {self.failed} failed"

    def finished(self, run: SweepRun, record: RunRecord) -> None:
        """One run stored (or failed)."""
        self.done += 1
        self.failed += record["status"] == "failed"
        self.progress.update(self.task, advance=1, counts=self._counts())
        if not err.is_terminal:
            elapsed = time.perf_counter() - self.started
            print(
                f"{record['status']} {run.key} ({self.done}/{self.total} after {elapsed:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
