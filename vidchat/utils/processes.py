"""Worker processes die with their parent, also when it is killed with SIGKILL.

Without this, a `kill -9` of a run leaves its DataLoader or pool workers alive, for example
blocked forever putting a result on a queue nobody reads. Call `exit_with_parent()` first thing
in each worker (DataLoader `worker_init_fn`, pool `initializer`): on Linux the kernel delivers
SIGKILL when the parent dies (`prctl(PR_SET_PDEATHSIG)`); elsewhere a watchdog thread polls.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from typing import Any

_PR_SET_PDEATHSIG = 1


def exit_with_parent(*_: Any) -> None:
    """Make this process end when its parent does (usable as `worker_init_fn(worker_id)`)."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()
