"""Light, importable helpers for the decode-worker tests: a worker process imports this module
(to unpickle its dataset), so it imports nothing heavier than `vidchat.data.decode`."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from vidchat.data.decode import DecodeDataset
from vidchat.data.records import ClipRecord
from vidchat.media import write_clip


def light_records(root: Path, n: int) -> list[ClipRecord]:
    """n real 0.5 s clips (24 px, random frames, a tone)."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        frames = rng.integers(0, 256, (12, 24, 24, 3), dtype=np.uint8)
        audio = (0.3 * np.sin(np.arange(8000) * 0.05 * (i + 1))).astype(np.float32)
        write_clip(root / f"clip{i}.mp4", frames, audio, fps=24, sample_rate=16000)
        out.append(ClipRecord(f"clip{i}", str(root / f"clip{i}.mp4")))
    return out


class WorkerFacts(DecodeDataset):
    """Reports, from inside a worker, what the worker was started with."""

    def __getitem__(self, i: int):
        import vidchat.media.read as read

        facts = {
            "parent": os.getppid(),
            "decode_threads": read._decode_threads,
            "torch_threads": torch.get_num_threads(),
        }
        return i, None, None, repr(facts)


class StallsOnClip2(DecodeDataset):
    """Decodes like the real one, except that clip 2 never finishes (a hung decoder)."""

    def __getitem__(self, i: int):
        if i == 2:
            time.sleep(3600)
        return super().__getitem__(i)
