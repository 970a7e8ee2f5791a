"""Run many episodes, each SUMO in a worker process, so one crash never loses the others.

Workers come from a ``spawn`` process pool (libsumo allows one simulation per process
and must not be forked). A worker turns every failure into a plain, picklable
:class:`~twin_traffic.errors.TwinTrafficError` (libsumo's own exceptions do not pickle).
When a worker process dies outright (SUMO can segfault on some inputs), the pool breaks
and the runs that were in flight are retried one at a time in fresh pools, so the one that
crashes is identified and reported while every other run completes.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from twin_traffic.errors import SimulationError, TwinTrafficError
from twin_traffic.evaluate import RunResult, RunSpec, run_episode

ProgressSink = Callable[[int, float, float], None]
"""Called with (index of the spec, simulated seconds done, seconds in its window)."""


@dataclass
class Outcome:
    """The result of one spec: a RunResult, or the error message that stopped it."""

    index: int
    spec: RunSpec
    result: RunResult | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the run finished and has metrics."""
        return self.result is not None


def run_specs(
    specs: Sequence[RunSpec],
    workers: int = 1,
    progress: ProgressSink | None = None,
) -> Iterator[Outcome]:
    """Run every spec in worker processes, yielding outcomes as they finish."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        messages: Any = manager.Queue() if progress is not None else None
        lost = []
        everything = list(range(len(specs)))
        for outcome, index in _run_batch(context, specs, everything, workers, messages, progress):
            if outcome is None:
                lost.append(index)
            else:
                yield outcome
        # Runs lost to a crashed pool run again alone: a second crash names the culprit.
        for index in lost:
            for outcome, _ in _run_batch(context, specs, [index], 1, messages, progress):
                yield outcome or Outcome(index, specs[index], error=_crash_message(specs[index]))


def _run_batch(
    context: Any,
    specs: Sequence[RunSpec],
    indices: list[int],
    workers: int,
    messages: Any,
    progress: ProgressSink | None,
) -> Iterator[tuple[Outcome | None, int]]:
    """Yield (outcome, index) per run; outcome is None for runs lost to a broken pool."""
    with ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(indices))), mp_context=context
    ) as pool:
        futures: dict[Future[RunResult], int] = {
            pool.submit(_worker, specs[i], i, messages): i for i in indices
        }
        while futures:
            done, _ = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(messages, progress)
            for future in done:
                index = futures.pop(future)
                try:
                    yield Outcome(index, specs[index], result=future.result()), index
                except BrokenProcessPool:
                    yield None, index
                except TwinTrafficError as error:
                    yield Outcome(index, specs[index], error=str(error)), index
        _drain(messages, progress)


def _drain(messages: Any, progress: ProgressSink | None) -> None:
    if messages is None or progress is None:
        return
    while True:
        try:
            index, done, total = messages.get_nowait()
        except queue.Empty:
            return
        progress(index, done, total)


def _worker(spec: RunSpec, index: int, messages: Any) -> RunResult:
    """Run one spec inside a worker process; every failure leaves as a TwinTrafficError."""

    def report(done: float, total: float) -> None:
        messages.put((index, done, total))

    try:
        return run_episode(spec, progress=report if messages is not None else None)
    except TwinTrafficError:
        raise
    except Exception as error:  # libsumo errors do not pickle; keep their message
        raise SimulationError(f"{spec.label}: {type(error).__name__}: {error}") from None


def _crash_message(spec: RunSpec) -> str:
    return (
        f"{spec.label}: SUMO crashed and took its process down; run "
        f"`twin-traffic scenario check {spec.scenario}` and retry with --backend traci to see "
        "SUMO's own message"
    )
