"""Run many episodes, each SUMO in a worker process, so one crash never loses the others.

Workers are ``spawn`` processes (libsumo allows one simulation per process and must not be
forked), each with a pipe of its own to the parent and nothing shared with the others: no
common task or result queue, no lock a dying worker could take with it. The parent waits
on every pipe and every process sentinel at once, so it sees a worker die whatever it was
doing (starting up, running SUMO, sending its result) the moment it dies, knows which run
that worker held, and runs it again in a fresh worker; a run whose worker dies twice is
reported (SUMO can segfault on some inputs) while every other run completes.
Progress reports travel up the same pipes. (``concurrent.futures.ProcessPoolExecutor``
shares one call queue and one result queue among its workers, guarded by locks and fed by
a thread, and progress through it needs a manager process of its own: state a worker or
the manager can take down with it when killed at the wrong moment.)

A worker turns every failure into a plain message (libsumo's own exceptions do not
pickle). Workers ignore SIGINT and die with their parent
(:func:`twin_traffic.workers.become_worker`). When the parent stops consuming outcomes for
any reason (Ctrl-C, SIGTERM turned into an exception, a closed generator), the workers are
killed at once instead of finishing runs nobody will read.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from twin_traffic.errors import SimulationError, TwinTrafficError
from twin_traffic.evaluate import RunResult, RunSpec, run_episode
from twin_traffic.workers import become_worker, children_ignore_sigint

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
    """Run every spec in worker processes, yielding outcomes as they finish.

    Every spec yields exactly one outcome: its result, its error, or the report that its
    worker died on each of :data:`ATTEMPTS` tries.
    """
    with WorkerPool(max(1, workers)) as pool:
        yield from pool.run(specs, progress)


ATTEMPTS = 2
"""Tries of a run whose worker process dies under it (the first death may come from
outside, e.g. the out-of-memory killer; a second one is the run's own)."""

_POLL_SECONDS = 1.0  # how often a quiet wait looks again (nothing is missed meanwhile)
_STOP_SECONDS = 5.0  # grace for a worker asked to stop before it is killed


@dataclass
class _Worker:
    """One worker process, its end of the pipe, and the run it holds."""

    process: Any
    connection: Connection
    index: int | None = None
    started: bool = False  # it said it is ready: its Python start-up succeeded


class WorkerPool:
    """Worker processes serving batches of runs, one batch after another, one run at a
    time each. A caller with many small batches (the tuner's races) starts its workers
    once instead of once per batch: a start costs about half a second (a fresh Python,
    twin-traffic and libsumo imported).

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise TwinTrafficError(f"a worker pool needs at least one worker, not {workers}")
        self.size = workers
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []
        self.specs: Sequence[RunSpec] = ()
        self.progress: ProgressSink | None = None
        self.todo: deque[int] = deque()
        self.deaths: dict[int, int] = {}
        self._running = False
        self._closed = False
        # The workers' temporary files live here, so a worker killed mid-run (a crash, an
        # early stop) leaves nothing behind once the pool closes.
        self.scratch = tempfile.TemporaryDirectory(
            prefix="twin-traffic-workers-", ignore_cleanup_errors=True
        )

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def run(
        self, specs: Sequence[RunSpec], progress: ProgressSink | None = None
    ) -> Iterator[Outcome]:
        """Run every spec, yielding outcomes as they finish (see :func:`run_specs`).

        The workers stay for the next batch. If the caller stops reading before every
        spec has its outcome, the workers still holding runs are killed at once.
        """
        if self._running:
            raise TwinTrafficError("a worker pool runs one batch at a time")
        if self._closed:
            raise TwinTrafficError("this worker pool is closed; make a new one")
        self.specs, self.progress = specs, progress
        self.todo, self.deaths = deque(range(len(specs))), {}
        self._running = True
        try:
            yield from self._outcomes()
        finally:
            self._running = False
            for worker in [w for w in self.workers if w.index is not None]:
                worker.process.kill()  # an abandoned batch: nobody reads what it runs
                _stop(worker.process)
                worker.connection.close()
                self.workers.remove(worker)

    def _outcomes(self) -> Iterator[Outcome]:
        """Yield each spec's outcome as it comes, until every spec has one."""
        while self.todo or any(w.index is not None for w in self.workers):
            self._staff()
            handles = [w.connection for w in self.workers] + [
                w.process.sentinel for w in self.workers
            ]
            ready = set(wait(handles, timeout=_POLL_SECONDS))
            for worker in list(self.workers):
                if worker.connection in ready or worker.process.sentinel in ready:
                    yield from self._serve(worker)

    def _staff(self) -> None:
        """Hand waiting runs to idle workers, starting workers up to the pool's size."""
        while self.todo:
            idle = next((w for w in self.workers if w.index is None), None)
            if idle is None:
                if len(self.workers) >= self.size:
                    return
                idle = self._start()
            index = self.todo.popleft()
            idle.index = index
            with contextlib.suppress(OSError):  # died already: its sentinel says so next
                idle.connection.send((index, self.specs[index], self.progress is not None))

    def _start(self) -> _Worker:
        parent_end, child_end = self.context.Pipe(duplex=True)
        process = self.context.Process(
            target=_serve_runs, args=(child_end, self.scratch.name), daemon=True
        )
        with children_ignore_sigint():
            process.start()
        child_end.close()  # the worker's death must close the pipe's last write end
        worker = _Worker(process, parent_end)
        self.workers.append(worker)
        return worker

    def _serve(self, worker: _Worker) -> Iterator[Outcome]:
        """Read what a worker sent; when it died, retry or report the run it held."""
        try:
            while worker.connection.poll():
                kind, index, *payload = worker.connection.recv()
                if kind == "ready":
                    worker.started = True
                    continue
                if kind == "progress":
                    if self.progress is not None:
                        self.progress(index, *payload)
                    continue
                worker.index = None
                if kind == "result":
                    yield Outcome(index, self.specs[index], result=payload[0])
                else:
                    yield Outcome(index, self.specs[index], error=payload[0])
            if worker.process.is_alive():
                return
        except (EOFError, OSError):  # the pipe closed, part of a message with it
            pass
        _stop(worker.process, grace=1.0)  # dying already, or of no use with a broken pipe
        self.workers.remove(worker)
        worker.connection.close()
        index, exitcode = worker.index, worker.process.exitcode
        if not worker.started and exitcode is not None and exitcode > 0:
            # A Python error before the worker's loop began: every worker will meet it.
            raise TwinTrafficError(_start_failure_message(exitcode))
        if index is None:
            return
        self.deaths[index] = self.deaths.get(index, 0) + 1
        if self.deaths[index] < ATTEMPTS:
            self.todo.appendleft(index)
        else:
            yield Outcome(
                index, self.specs[index], error=crash_message(self.specs[index], exitcode)
            )

    def close(self) -> None:
        """Stop every worker: at once when runs are still held, politely otherwise. Safe
        to call twice."""
        self._closed = True
        busy = any(w.index is not None for w in self.workers)
        for worker in self.workers:
            if busy:
                worker.process.kill()
            else:
                with contextlib.suppress(OSError):
                    worker.connection.send(None)
        for worker in self.workers:
            _stop(worker.process, grace=_STOP_SECONDS)
            worker.connection.close()
        self.workers.clear()
        self.scratch.cleanup()


def _stop(process: Any, grace: float = 0.0) -> None:
    """Wait up to ``grace`` seconds for a worker to end, then kill it; never wait for ever."""
    process.join(timeout=grace)
    if process.is_alive():
        process.kill()
        process.join(timeout=_STOP_SECONDS)


def _serve_runs(connection: Connection, scratch: str) -> None:
    """A worker's life: run the specs the parent sends until it sends None or goes away,
    its temporary files in the pool's ``scratch`` folder."""
    become_worker()
    tempfile.tempdir = scratch
    sink = _PipeSink(connection)
    connection.send(("ready", None))
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        index, spec, report = request
        try:
            reply: tuple[Any, ...] = (
                "result",
                index,
                run_in_worker(spec, index, sink if report else None),
            )
        except TwinTrafficError as error:
            reply = ("error", index, str(error))
        try:
            connection.send(reply)
        except (EOFError, OSError):
            return
        except Exception as error:  # a result that does not pickle
            connection.send(("error", index, f"{spec.label}: {type(error).__name__}: {error}"))


class _PipeSink:
    """The ``messages`` of :func:`run_in_worker`, sent up the worker's pipe."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def put(self, item: tuple[int, float, float]) -> None:
        self.connection.send(("progress", *item))


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


def _start_failure_message(exitcode: int) -> str:
    """The message when a worker process fails before it could run anything.

    Worker processes are started by Python's ``spawn`` method, which imports the main
    script again in every worker; a script that starts runs at import time (no
    ``if __name__ == "__main__":`` guard) makes every worker fail that way, and no run
    could ever succeed, so this is raised rather than charged to the runs.
    """
    return (
        f"twin-traffic's worker processes fail before they can run anything (exit code "
        f"{exitcode}). Python starts them by importing your main script again: in a script "
        "that runs evaluations, sweeps or tuning, put that code under "
        '`if __name__ == "__main__":` (the multiprocessing guide\'s "Safe importing of main '
        'module"). Otherwise `python -c "import twin_traffic.executor"` shows what breaks '
        "the import"
    )


def crash_message(spec: RunSpec, exitcode: int | None = None) -> str:
    """The message of a run whose worker process died under it (on each of its tries)."""
    if exitcode is not None and -exitcode in (signal.SIGKILL, signal.SIGTERM):
        name = signal.Signals(-exitcode).name
        return (
            f"{spec.label}: its worker process was killed ({name}) on each of {ATTEMPTS} "
            "tries, by something outside twin-traffic (the out-of-memory killer?); free "
            "memory or use fewer --workers and run it again"
        )
    return (
        f"{spec.label}: SUMO crashed and took its process down; run "
        f"`twin-traffic scenario check {spec.scenario}` and retry with --backend traci to see "
        "SUMO's own message"
    )
