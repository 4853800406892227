"""Training data for the tokenizers: decoded frames and audio segments from a manifest's clips."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from vidchat.data.records import read_record
from vidchat.media import MediaError
from vidchat.media.clip import Clip

log = logging.getLogger("vidchat")


def is_held_out(clip_id: str, val_fraction: float) -> bool:
    """Deterministic clip-level split (a hash of the id), so train and val never share a clip."""
    return (zlib.crc32(clip_id.encode()) % 1000) < val_fraction * 1000


def split_records(records: Sequence[Any], val_fraction: float) -> tuple[list[Any], list[Any]]:
    """(train, val) records; val gets at least one clip when there are two or more."""
    val = [r for r in records if is_held_out(r.clip_id, val_fraction)]
    train = [r for r in records if not is_held_out(r.clip_id, val_fraction)]
    if not val and len(train) > 1 and val_fraction > 0:
        val, train = train[-1:], train[:-1]
    return train, val


def decode_records(
    records: Sequence[Any],
    *,
    fps: float | None = None,
    size: int | None = None,
    sample_rate: int | None = None,
    desc: str = "decode clips",
) -> list[Clip]:
    """Decode each record's window (crop, resample); clips that fail are skipped with a warning."""
    kept = decode_records_kept(records, fps=fps, size=size, sample_rate=sample_rate, desc=desc)
    return [clip for _, clip in kept]


def decode_records_kept(
    records: Sequence[Any],
    *,
    fps: float | None = None,
    size: int | None = None,
    sample_rate: int | None = None,
    desc: str = "decode clips",
) -> list[tuple[Any, Clip]]:
    """`decode_records` with each decoded clip's record beside it (record, clip), for callers
    that need a record's fields (its speaker) once failed clips are gone."""
    kept, failed = [], 0
    for rec in tqdm(records, desc=desc, unit="clip"):
        try:
            kept.append((rec, read_record(rec, fps=fps, size=size, sample_rate=sample_rate)))
        except MediaError as exc:
            failed += 1
            log.warning("skipping clip %s: %s", rec.clip_id, exc)
    if failed:
        log.warning("%d of %d clips failed to decode", failed, len(records))
    return kept


class FrameDataset(Dataset):
    """Every frame of the given clips: item = `[H,W,3]` uint8 tensor; with `group` k > 1, every
    aligned run of k consecutive frames of one clip: item = `[k,H,W,3]` (a clip's last, shorter
    run is dropped)."""

    def __init__(self, frames: np.ndarray) -> None:
        self.frames = torch.from_numpy(np.ascontiguousarray(frames))  # [N,H,W,3] or [N,k,H,W,3]

    @classmethod
    def from_clips(cls, clips: Sequence[Clip], group: int = 1) -> FrameDataset:
        runs = [c.frames[: c.num_frames // group * group] for c in clips]
        frames = np.concatenate([r for r in runs if len(r)])
        if group > 1:
            frames = frames.reshape(-1, group, *frames.shape[1:])
        return cls(frames)

    @property
    def flat_frames(self) -> np.ndarray:
        """All frames in order `[N*k,H,W,3]` uint8."""
        return self.frames.reshape(-1, *self.frames.shape[-3:]).numpy()

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.frames[i]


class AudioSegmentDataset(Dataset):
    """Fixed-length segments `[S]` float of the given waveforms.

    Training (`random=True`): item i is a random window of waveform i % n (`repeats` passes per
    epoch). Validation: consecutive windows, so the metrics see the same audio every time.
    """

    def __init__(
        self, waves: Sequence[np.ndarray], segment: int, random: bool = True, repeats: int = 1
    ) -> None:
        self.segment, self.random = segment, random
        padded = [np.pad(w, (0, max(0, segment - len(w)))).astype(np.float32) for w in waves]
        self.waves = [torch.from_numpy(w) for w in padded]
        if random:
            self.index = [(i, -1) for _ in range(repeats) for i in range(len(self.waves))]
        else:
            self.index = [
                (i, off)
                for i, w in enumerate(self.waves)
                for off in range(0, len(w) - segment + 1, segment)
            ]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> torch.Tensor:
        wave_idx, offset = self.index[i]
        wave = self.waves[wave_idx]
        if offset < 0:
            offset = int(torch.randint(0, len(wave) - self.segment + 1, ()))
        return wave[offset : offset + self.segment]
