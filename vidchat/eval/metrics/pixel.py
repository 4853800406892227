"""PSNR and SSIM of generated frames against the ground-truth responder."""

from __future__ import annotations

import numpy as np

from vidchat.eval.metrics.frames import align_frames
from vidchat.eval.metrics.result import MetricResult

PSNR_CAP_DB = 100.0  # reported for identical frames (MSE 0), where PSNR is infinite


def psnr(generated: np.ndarray, target: np.ndarray, max_db: float = PSNR_CAP_DB) -> MetricResult:
    """Mean per-frame PSNR in dB over aligned `[T,H,W,3] uint8` videos, capped at `max_db`."""
    gen, tgt = align_frames(generated, target)
    diff = gen.astype(np.float64) - tgt.astype(np.float64)
    mse = (diff**2).reshape(len(diff), -1).mean(axis=1)  # [T]
    with np.errstate(divide="ignore"):
        per_frame = np.minimum(10.0 * np.log10(255.0**2 / mse), max_db)
    return MetricResult("psnr", float(per_frame.mean()), {"frames": len(per_frame)})


def _gaussian_window(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_map(
    x: np.ndarray, y: np.ndarray, window: int = 11, sigma: float = 1.5, data_range: float = 255.0
) -> np.ndarray:
    """SSIM (Wang et al. 2004) with a Gaussian window, valid region only.

    x, y: [N,H,W] float images (N = frames x channels). Returns [N,H-window+1,W-window+1].
    """
    import torch
    import torch.nn.functional as F

    g = torch.from_numpy(_gaussian_window(window, sigma))
    kernel_h, kernel_w = g.view(1, 1, -1, 1), g.view(1, 1, 1, -1)

    def blur(a: torch.Tensor) -> torch.Tensor:  # [N,1,H,W] -> valid-filtered
        return F.conv2d(F.conv2d(a, kernel_h), kernel_w)

    a = torch.from_numpy(x).double().unsqueeze(1)
    b = torch.from_numpy(y).double().unsqueeze(1)
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return s.squeeze(1).numpy()


def ssim(
    generated: np.ndarray, target: np.ndarray, window: int = 11, sigma: float = 1.5
) -> MetricResult:
    """Mean SSIM over frames and RGB channels of aligned `[T,H,W,3] uint8` videos."""
    gen, tgt = align_frames(generated, target)
    if min(gen.shape[1:3]) < window:
        return MetricResult.unavailable(
            "ssim", f"frames {gen.shape[1:3]} smaller than window {window}"
        )
    # [T,H,W,3] -> [T*3,H,W]
    a = gen.transpose(0, 3, 1, 2).reshape(-1, *gen.shape[1:3]).astype(np.float64)
    b = tgt.transpose(0, 3, 1, 2).reshape(-1, *tgt.shape[1:3]).astype(np.float64)
    per_frame = ssim_map(a, b, window, sigma).reshape(len(gen), -1).mean(axis=1)  # [T]
    return MetricResult("ssim", float(per_frame.mean()), {"frames": len(per_frame)})
