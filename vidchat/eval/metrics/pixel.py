"""PSNR and SSIM of generated frames against the ground-truth responder."""

from __future__ import annotations

import numpy as np

from vidchat.eval.metrics.result import MetricResult
from vidchat.perception.frames import align_frames
from vidchat.perception.ssim import ssim_frames

PSNR_CAP_DB = 100.0  # reported for identical frames (MSE 0), where PSNR is infinite


def psnr(generated: np.ndarray, target: np.ndarray, max_db: float = PSNR_CAP_DB) -> MetricResult:
    """Mean per-frame PSNR in dB over aligned `[T,H,W,3] uint8` videos, capped at `max_db`."""
    gen, tgt = align_frames(generated, target)
    diff = gen.astype(np.float64) - tgt.astype(np.float64)
    mse = (diff**2).reshape(len(diff), -1).mean(axis=1)  # [T]
    with np.errstate(divide="ignore"):
        per_frame = np.minimum(10.0 * np.log10(255.0**2 / mse), max_db)
    return MetricResult("psnr", float(per_frame.mean()), {"frames": len(per_frame)})


def ssim(
    generated: np.ndarray, target: np.ndarray, window: int = 11, sigma: float = 1.5
) -> MetricResult:
    """Mean SSIM over frames and RGB channels of aligned `[T,H,W,3] uint8` videos."""
    gen, tgt = align_frames(generated, target)
    if min(gen.shape[1:3]) < window:
        return MetricResult.unavailable(
            "ssim", f"frames {gen.shape[1:3]} smaller than window {window}"
        )
    per_frame = ssim_frames(gen, tgt, window, sigma)  # [T]
    return MetricResult("ssim", float(per_frame.mean()), {"frames": len(per_frame)})
