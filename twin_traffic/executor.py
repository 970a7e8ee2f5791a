"""Run many episodes, each SUMO in a worker process, so one crash never loses the others.

Workers come from a ``spawn`` process pool (libsumo allows one simulation per process
and must not be forked). A worker turns every failure into a plain, picklable
:class:`~twin_traffic.errors.TwinTrafficError` (libsumo's own exceptions do not pickle).
When a worker process dies outright (SUMO can segfault on some inputs), the pool breaks
and the runs that were in flight are retried one at a time in fresh pools, so the one that
crashes is identified and reported while every other run completes.

Workers ignore SIGINT: a Ctrl-C reaches the whole process group, and only the parent
should decide what to do with it. When the parent stops consuming outcomes for any reason
(Ctrl-C, SIGTERM turned into an exception, a closed generator), the workers are terminated
at once instead of finishing runs nobody will read.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import tempfile
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
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
    # The manager is a process of its own: start it only when progress is wanted.
    with context.Manager() if progress is not None else contextlib.nullcontext() as manager:
        messages: Any = manager.Queue() if manager is not None else None
        lost = list(range(len(specs)))
        # A broken pool fails every run it still held, not only the one that crashed it;
        # they all get one more try together (a worker killed from outside, e.g. by the
        # out-of-memory killer, costs nothing more), then what is lost again runs alone.
        for _ in range(2 if workers > 1 else 1):
            batch_indices, lost = lost, []
            with closing(
                _run_batch(context, specs, batch_indices, workers, messages, progress)
            ) as batch:
                for outcome, index in batch:
                    if outcome is None:
                        lost.append(index)
                    else:
                        yield outcome
            if not lost or len(lost) == 1:
                break
        # Alone, a second crash names the culprit.
        for index in lost:
            with closing(_run_batch(context, specs, [index], 1, messages, progress)) as alone:
                for outcome, _ in alone:
                    yield outcome or Outcome(index, specs[index], error=crash_message(specs[index]))


def _run_batch(
    context: Any,
    specs: Sequence[RunSpec],
    indices: list[int],
    workers: int,
    messages: Any,
    progress: ProgressSink | None,
) -> Generator[tuple[Outcome | None, int], None, None]:
    """Yield (outcome, index) per run; outcome is None for runs lost to a broken pool."""
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(indices))),
        mp_context=context,
        initializer=_ignore_sigint,
    )
    try:
        futures: dict[Future[RunResult], int] = {
            pool.submit(run_in_worker, specs[i], i, messages): i for i in indices
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
    except BaseException:
        _terminate(pool)
        raise
    pool.shutdown(wait=True)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel queued runs and kill the workers mid-run."""
    # The executor has no public way to stop running calls; its process table is the
    # only handle on the workers.
    workers = list((getattr(pool, "_processes", None) or {}).values())
    for process in workers:
        if process.is_alive():
            process.terminate()
    for process in workers:
        process.join(timeout=5)
    pool.shutdown(wait=True, cancel_futures=True)


def _drain(messages: Any, progress: ProgressSink | None) -> None:
    if messages is None or progress is None:
        return
    while True:
        try:
            index, done, total = messages.get_nowait()
        except queue.Empty:
            return
        progress(index, done, total)


def run_in_worker(spec: RunSpec, index: int, messages: Any) -> RunResult:
    """Run one spec inside a worker process; every failure leaves as a TwinTrafficError."""

    def report(done: float, total: float) -> None:
        messages.put((index, done, total))

    with _console_capture() as console:
        try:
            return run_episode(spec, progress=report if messages is not None else None)
        except TwinTrafficError as error:
            raise type(error)(_with_sumo_errors(str(error), console())) from None
        except Exception as error:  # libsumo errors do not pickle; keep their message
            message = f"{spec.label}: {type(error).__name__}: {error}"
            raise SimulationError(_with_sumo_errors(message, console())) from None


@contextlib.contextmanager
def _console_capture() -> Iterator[Callable[[], list[str]]]:
    """Send this worker's stdout and stderr (file descriptors 1 and 2) to a scratch file.

    libsumo reports a failed load as a bare "Process Error" and writes SUMO's own reason
    to the C-level console (its ``--error-log`` is still unflushed at that point), so the
    worker reads the reason back from there. Yields a function returning SUMO's "Error:"
    lines written so far.
    """
    try:
        libc = ctypes.CDLL(None)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, AttributeError):  # no C library handle (Windows): no capture
        yield list
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)

        def errors() -> list[str]:
            libc.fflush(None)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            return [line.strip() for line in text.splitlines() if line.startswith("Error")]

        try:
            yield errors
        finally:
            libc.fflush(None)
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, original in zip((1, 2), saved, strict=True):
                os.dup2(original, fd)
                os.close(original)


def _with_sumo_errors(message: str, errors: list[str]) -> str:
    """The message with SUMO's own error lines in place of libsumo's bare "Process Error"."""
    missing = list(dict.fromkeys(e for e in errors if e not in message))
    if not missing:
        return message
    detail = "; ".join(missing[-3:])
    if message.endswith("Process Error"):
        return message.removesuffix("Process Error") + detail
    return f"{message}; {detail}"


def crash_message(spec: RunSpec) -> str:
    """The message of a run whose worker process died (SUMO crashed outright)."""
    return (
        f"{spec.label}: SUMO crashed and took its process down; run "
        f"`twin-traffic scenario check {spec.scenario}` and retry with --backend traci to see "
        "SUMO's own message"
    )
