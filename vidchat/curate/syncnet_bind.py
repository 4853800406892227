"""Voice-to-face binding scores from SyncNet, when the user gives its weights (`sync.syncnet`).

The default binding (`vidchat.curate.bind.correlations`) follows each face's mouth opening
against the loudness envelope. With a TorchScript SyncNet (the evaluation's contract,
`vidchat.perception.syncnet`), the score of speaker X and face k is instead SyncNet's
confidence (median minus minimum mean distance over audio offsets of ±`vshift` frames) on the
stretches where X talks, from face k's crops around its stable box, as the paper's pipeline
binds a diarised voice to a face. Features are computed once per face and shot at SyncNet's
25 fps; every stretch of at least `min_frames` windows is scored alone (an offset search must not
span a stretch where the other person talks) and the confidences are averaged, weighted by length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vidchat.perception.syncnet import SYNC_FPS, box_crops, sync_features, sync_offsets


@dataclass(frozen=True)
class SyncOptions:
    syncnet: str | None = None  # TorchScript SyncNet weights; None: mouth-envelope correlation
    vshift: int = 15  # audio offsets searched, in 25 fps frames either way
    min_conf: float = 1.0  # with SyncNet, a voice binds to a face only above this confidence
    min_frames: int = 10  # shortest talking stretch scored, in 25 fps windows


def syncnet_scores(
    net: Any,
    frames: np.ndarray,
    audio: np.ndarray,
    fps: float,
    boxes: list[list[float]],
    talk: dict[str, np.ndarray],
    opts: SyncOptions,
) -> dict[str, list[float]]:
    """r[X][k]: SyncNet confidence of face k (pixel box) while speaker X talks (`talk`: frame
    indices of the shot, at `fps`); frames `[T,H,W,3]`, audio `[S]` at 16 kHz from the shot start."""
    idx = np.minimum(
        (np.arange(int(len(frames) * SYNC_FPS / fps)) * fps / SYNC_FPS).astype(int), len(frames) - 1
    )
    feats = [sync_features(net, box_crops(frames[idx], [box] * len(idx)), audio) for box in boxes]
    out: dict[str, list[float]] = {}
    for speaker, shot_frames in talk.items():
        out[speaker] = [round(_speaker_conf(f, idx, shot_frames, opts), 4) for f in feats]
    return out


def _speaker_conf(
    feats: tuple | None, idx: np.ndarray, shot_frames: np.ndarray, opts: SyncOptions
) -> float:
    """Length-weighted mean confidence over the stretches where the speaker talks."""
    if feats is None:
        return 0.0
    lip, aud = feats  # [n,D] each: window j covers 25 fps frames j..j+4
    centre = idx[np.minimum(np.arange(len(lip)) + 2, len(idx) - 1)]  # shot frame of each window
    inside = np.isin(centre, shot_frames)
    total, weight = 0.0, 0
    for run in _runs(inside):
        if len(run) >= opts.min_frames:
            _, conf, _ = sync_offsets(lip[run], aud[run], opts.vshift)
            total, weight = total + conf * len(run), weight + len(run)
    return total / weight if weight else 0.0


def _runs(mask: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the consecutive True stretches of `mask` `[n]`."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [np.arange(a, b) for a, b in zip(starts, ends)]
