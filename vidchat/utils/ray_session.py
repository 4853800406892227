"""One way to start or join Ray, for every part of vidchat that runs on it (curation, tokenize)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from vidchat.errors import VidchatError

_OBJECT_STORE_BYTES = 256 * 1024**2  # vidchat passes small rows and results; media stays on disk
# One math thread per worker process: vidchat scales by workers, and BLAS / OpenMP pools of
# every core in every worker only fight each other.
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


@contextmanager
def ray_session(address: str | None, workers: int) -> Iterator[None]:
    """A local Ray of `workers` CPUs (or the cluster at `address`); reuses a running one."""
    try:
        import ray
    except ModuleNotFoundError as exc:
        raise VidchatError("this needs Ray: pip install 'vidchat[curate]'") from exc

    if ray.is_initialized():
        yield
        return
    # Ray's C++ core logs an error-level line about actor restarts for every Ray Data actor
    # pool; the user's own setting wins.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        "runtime_env": {"env_vars": ONE_THREAD},
    }
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=workers, object_store_memory=_OBJECT_STORE_BYTES, **kwargs)
    try:
        yield
    finally:
        ray.shutdown()
