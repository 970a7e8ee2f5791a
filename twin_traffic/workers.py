"""How every simulation worker process behaves towards its parent.

A worker ignores SIGINT: a Ctrl-C reaches the whole process group, and only the parent
decides what to do with it (stop the workers, print one line). A worker ends when its
parent dies, however the parent dies (SIGKILL, the out-of-memory killer): the kernel
signals it on Linux (``PR_SET_PDEATHSIG``), and a thread watching the parent's sentinel
does it elsewhere and as a second line. A TraCI SUMO gets the same signal from the
kernel when the process that started it dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from multiprocessing.connection import wait

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def become_worker() -> None:
    """Call first in a worker process started by ``multiprocessing``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:  # not a multiprocessing child: nothing to follow
        return
    dies_with_parent()
    if os.getppid() != parent.pid:  # the parent died before the line above
        os._exit(1)
    threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


@contextlib.contextmanager
def children_ignore_sigint() -> Iterator[None]:
    """Processes started inside begin life ignoring SIGINT (an ignored signal stays
    ignored through ``exec``, and Python then installs no handler of its own), so a
    Ctrl-C while a worker is still importing cannot print its traceback; the parent
    ignores it only for the instant of the start."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _linux_prctl() -> object | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return None


# Resolved here, before any fork: the child of a fork may not load libraries safely.
_PRCTL = _linux_prctl()


def dies_with_parent() -> None:
    """``preexec_fn`` for a child process (a TraCI SUMO) that must end with the process
    that started it, however that one dies; nothing off Linux."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)  # type: ignore[operator]


def _exit_with(sentinel: int) -> None:
    wait([sentinel])
    os._exit(1)
