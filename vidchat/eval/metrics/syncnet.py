"""SyncNet confidence (the paper's Sync-C) with user-given TorchScript weights; the network,
its input contract and the offset search are in `vidchat.perception.syncnet`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidchat.eval.metrics.result import MetricResult
from vidchat.perception.audio import check_audio, resample
from vidchat.perception.frames import check_frames
from vidchat.perception.syncnet import SYNC_FPS, SYNC_RATE, crop_sync, face_crops
from vidchat.perception.weights import user_weights


def syncnet_confidence(
    frames: np.ndarray,
    audio: np.ndarray,
    fps: float,
    sample_rate: int,
    weights: str | Path | None = None,
    vshift: int = 15,
    batch_size: int = 20,
) -> MetricResult:
    """Sync-C of `[T,H,W,3] uint8` frames with `[S]` audio; details: offset (frames), min_dist."""
    path = user_weights(weights, "syncnet")
    if path is None:
        return MetricResult.unavailable(
            "syncnet", "no SyncNet TorchScript weights given (syncnet.weights)"
        )
    from vidchat.perception.features import load_torchscript

    frames = check_frames(frames, "generated frames")
    # resample to 25 fps by nearest frame, audio to 16 kHz
    idx = np.minimum(
        (np.arange(int(len(frames) * SYNC_FPS / fps)) * fps / SYNC_FPS).astype(int), len(frames) - 1
    )
    crops = face_crops(frames[idx])
    if crops is None:
        return MetricResult.unavailable("syncnet", "no face detected in the generated frames")
    wav = resample(check_audio(audio, sample_rate, "audio"), sample_rate, SYNC_RATE)
    scores = crop_sync(load_torchscript(path), crops, wav, vshift, batch_size)
    if scores is None:
        return MetricResult.unavailable("syncnet", "clip shorter than 6 frames")
    offset, conf, min_dist = scores
    return MetricResult("syncnet", conf, {"offset": offset, "min_dist": min_dist})
