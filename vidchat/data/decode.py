"""Decoding clips in worker processes, with a bound on how long a worker may make no progress.

`stage=tokenize` decodes every clip once in DataLoader workers. On a 16-core GPU machine those
workers once hung forever (the run sat at 0 clips). Three things keep that from coming back:

- The workers start from a *forkserver*, not by `fork()` of the run: the run has by then
  started thread pools (torch's intra-op OpenMP threads, FFmpeg's decode threads, tqdm's
  monitor, a CUDA context with `stage.device=cuda`), and a forked child inherits their locks
  but not their threads. The server is a fresh process that preloads this module only, so a
  worker costs a fork, not an interpreter start.
- Each worker decodes with one FFmpeg thread (`vidchat.media.set_decode_threads`): the workers
  are the parallelism, and N workers each running one thread per core oversubscribed the CPU.
- `decode_in_workers` raises `DecodeStalled`, naming the clip it waited for, when no clip
  arrives for `timeout` seconds, instead of waiting forever.

This module imports no tokenizer or model code, so that a worker starts quickly.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset

from vidchat.data.records import read_record
from vidchat.errors import VidchatError
from vidchat.media import set_decode_threads
from vidchat.utils.processes import exit_with

DecodedClip = tuple[int, np.ndarray | None, np.ndarray | None, str | None]
"""(index, frames `[T,H,W,3]` uint8, audio `[S]` float32, error or None)."""


class DecodeStalled(VidchatError):
    """No decoded clip arrived within the bound; `index` is the clip that was awaited."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class DecodeDataset(Dataset):
    """Decodes clip i in a worker: (i, frames `[T,H,W,3]`, audio `[S]`, error or None)."""

    def __init__(
        self, records: Sequence[Any], fps: float, size: tuple[int, int], sample_rate: int
    ) -> None:
        self.records, self.fps, self.size, self.sample_rate = records, fps, size, sample_rate

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> DecodedClip:
        rec = self.records[i]
        try:
            clip = read_record(rec, fps=self.fps, size=self.size, sample_rate=self.sample_rate)
            if clip.num_frames == 0:
                raise ValueError("no video frames decoded")
            return i, clip.frames, clip.audio, None
        except Exception as exc:  # any bad clip is skipped and listed, never fatal
            return i, None, None, f"{type(exc).__name__}: {exc}"


def worker_context() -> multiprocessing.context.BaseContext:
    """Forkserver where the platform has it (Linux, macOS), else spawn; never plain fork."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":  # ignored once the server runs: it then has this module already
        ctx.set_forkserver_preload([__name__])
    return ctx


def _init_worker(run_pid: int, worker_id: int) -> None:
    exit_with(run_pid)  # a kill -9 of the run must not leave workers behind (nor the server)
    set_decode_threads(1)


def _as_is(item: DecodedClip) -> DecodedClip:
    return item


def decode_in_workers(dataset: Dataset, workers: int, timeout: float) -> Iterator[DecodedClip]:
    """Yield `dataset[0]`, `dataset[1]`, ... in order, decoded by `workers` processes (0: in
    this one). Raises `DecodeStalled` when no item arrives for `timeout` seconds."""
    if not workers:
        yield from (dataset[i] for i in range(len(dataset)))
        return
    loader = DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        collate_fn=_as_is,
        prefetch_factor=4,
        worker_init_fn=partial(_init_worker, os.getpid()),
        timeout=timeout,
        multiprocessing_context=worker_context(),
    )
    done = 0
    batches = iter(loader)
    while done < len(dataset):
        try:
            item = next(batches)
        except RuntimeError as exc:
            if "timed out" not in str(exc):
                raise
            raise DecodeStalled(f"no clip decoded for {timeout:g} s", done) from None
        done += 1
        yield item
