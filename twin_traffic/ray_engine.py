"""Run specs as Ray tasks on a local Ray instance or a cluster (the `ray` extra).

Each spec is one task with ``num_cpus=1`` running the very function the local process
pool runs (:func:`twin_traffic.executor.run_in_worker`), so SUMO errors leave the worker as
plain picklable :class:`~twin_traffic.errors.TwinTrafficError` messages and the metrics
are identical to the local engine's. Ray does the scheduling; nothing is retried, since a
failing run fails the same way again. On a cluster, every node needs twin-traffic and the
scenario files at the same paths.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Sequence
from typing import Any

from twin_traffic.errors import TwinTrafficError
from twin_traffic.evaluate import RunSpec
from twin_traffic.executor import Outcome, crash_message, run_in_worker

_CONNECT_TIMEOUT = 10.0


def run_specs_ray(
    specs: Sequence[RunSpec], workers: int = 1, address: str | None = None
) -> Iterator[Outcome]:
    """Run every spec as a Ray task, yielding outcomes as they finish.

    Args:
        specs: what to run.
        workers: CPUs of the local Ray instance this starts (ignored with ``address`` or
            when Ray is already initialised: then the cluster's CPUs decide).
        address: a Ray cluster (``ray://host:10001``, ``host:6379`` or ``auto``).

    Raises:
        TwinTrafficError: Ray is not installed, or the cluster cannot be reached.
    """
    try:
        import ray
    except ModuleNotFoundError:
        raise TwinTrafficError(
            'the Ray engine needs Ray; install it with pip install "twin-traffic[ray]"'
        ) from None
    started_here = not ray.is_initialized()
    if started_here and address is not None:
        _check_reachable(address)
    if started_here:
        options: dict[str, Any] = {
            "address": address,
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.ERROR,
        }
        if address is None:
            options["num_cpus"] = max(1, workers)
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise TwinTrafficError(
                f"cannot reach the Ray cluster at {address}: {error}; start it with "
                "`ray start --head` or fix --address"
            ) from None
    try:
        yield from _run(ray, specs)
    finally:
        if started_here:
            ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail at once on a cluster address nothing answers at (Ray itself waits for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and the like: Ray resolves and reports them itself
    try:
        socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT).close()
    except OSError as error:
        raise TwinTrafficError(
            f"cannot reach the Ray cluster at {address} ({error.strerror or error}); start it "
            "with `ray start --head` or fix --address"
        ) from None


def _run(ray: Any, specs: Sequence[RunSpec]) -> Iterator[Outcome]:
    # No retries: a run that fails or crashes SUMO does the same the next time.
    task = ray.remote(num_cpus=1, max_retries=0)(run_in_worker)
    pending = {task.remote(spec, index, None): index for index, spec in enumerate(specs)}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in done:
                index = pending.pop(ref)
                yield _outcome(ray, ref, index, specs[index])
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def _outcome(ray: Any, ref: Any, index: int, spec: RunSpec) -> Outcome:
    try:
        return Outcome(index, spec, result=ray.get(ref))
    except ray.exceptions.RayTaskError as error:
        # The task raised: its cause is the worker's own TwinTrafficError.
        cause = getattr(error, "cause", None)
        return Outcome(index, spec, error=str(cause) if cause is not None else str(error))
    except ray.exceptions.RayError:
        return Outcome(index, spec, error=crash_message(spec))
