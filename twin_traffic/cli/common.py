"""Pieces several commands share: running specs with a progress display, parameters."""

from __future__ import annotations

import time
from enum import Enum
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from twin_traffic.cli.app import err
from twin_traffic.errors import TwinTrafficError

if TYPE_CHECKING:
    from twin_traffic.evaluate import RunSpec
    from twin_traffic.executor import Outcome


class OutputFormat(str, Enum):
    """How ``evaluate`` prints its figures."""

    table = "table"
    json = "json"


class BackendChoice(str, Enum):
    """The simulation backends."""

    libsumo = "libsumo"
    traci = "traci"


def run_with_progress(specs: list[RunSpec], workers: int) -> list[Outcome]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from twin_traffic.executor import run_specs

    outcomes = []
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[clock]}"),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    tasks = [
        progress.add_task(escape(spec.label), total=1.0, clock="waiting", start=False)
        for spec in specs
    ]
    started = time.perf_counter()

    def advance(index: int, done: float, total: float) -> None:
        progress.start_task(tasks[index])
        progress.update(tasks[index], completed=done / total, clock=f"t={done:,.0f}/{total:,.0f}s")

    with progress:
        for outcome in run_specs(specs, workers=workers, progress=advance):
            status = "done" if outcome.ok else "failed"
            progress.update(tasks[outcome.index], completed=1.0, clock=status)
            outcomes.append(outcome)
            if not err.is_terminal:
                elapsed = time.perf_counter() - started
                err.print(f"{status} {escape(outcome.spec.label)} ({elapsed:.1f} s)")
    return sorted(outcomes, key=lambda o: o.index)


def controller_params(items: list[str], controllers: list[str]) -> dict[str, dict[str, Any]]:
    """Parse ``KEY=VALUE`` / ``CONTROLLER.KEY=VALUE`` into parameters per controller."""
    params: dict[str, dict[str, Any]] = {name: {} for name in controllers}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TwinTrafficError(f"--param '{item}': write KEY=VALUE, e.g. min_green=5")
        target, dot, key = key.rpartition(".")
        if dot and target not in params:
            raise TwinTrafficError(
                f"--param '{item}': '{target}' is not one of the chosen controllers "
                f"({', '.join(controllers)})"
            )
        if not dot and len(controllers) > 1:
            raise TwinTrafficError(
                f"--param '{item}': several controllers are compared; name one, "
                f"e.g. {controllers[-1]}.{key}={value}"
            )
        params[target or controllers[0]][key] = parse_value(value)
    return params


def parse_value(text: str) -> Any:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    lowered = text.lower()
    return {"true": True, "false": False}.get(lowered, text)
