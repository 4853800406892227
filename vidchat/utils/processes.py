"""Worker processes die with their parent (or with the run that started them through a server),
also when it is killed with SIGKILL.

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
from collections.abc import Callable
from pathlib import Path
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
    _exit_when(lambda: os.getppid() != parent, 1.0, "exit-with-parent")


def _exit_when(gone: Callable[[], bool], poll_s: float, name: str) -> None:
    """A watchdog thread that ends this process once `gone()` is true."""

    def watch() -> None:
        while not gone():
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name=name).start()


def alive(pid: int) -> bool:
    """Process `pid` exists and is not a zombie (a killed run stays one until it is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(0) is all there is
    return state != "Z"


def exit_with(pid: int, poll_s: float = 0.5) -> None:
    """Make this process end when process `pid` does, when `pid` is not its parent: a worker
    started by a forkserver is the server's child, and the server lives on while any of its
    children does, so neither the death signal nor a parent check would ever fire."""
    _exit_when(lambda: not alive(pid), poll_s, f"exit-with-{pid}")
