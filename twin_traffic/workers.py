"""How every simulation worker process behaves towards its parent.

A worker ignores SIGINT: a Ctrl-C reaches the whole process group, and only the parent
decides what to do with it (stop the workers, print one line). A worker ends when its
parent dies, however the parent dies (SIGKILL, the out-of-memory killer): the kernel
signals it on Linux (``PR_SET_PDEATHSIG``), and a thread watching the parent's sentinel
does it elsewhere and as a second line. A TraCI SUMO exits when its worker's socket closes.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from multiprocessing.connection import wait

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def become_worker() -> None:
    """Call first in a worker process started by ``multiprocessing``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:  # not a multiprocessing child: nothing to follow
        return
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent.pid:  # the parent died before the line above
        os._exit(1)
    threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(sentinel: int) -> None:
    wait([sentinel])
    os._exit(1)
