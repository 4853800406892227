"""Pixel helpers: luma, and image similarity shared by the tokenizers' reports and the
evaluation suite."""

from __future__ import annotations

import numpy as np

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of `[..., 3]` RGB pixels (any dtype) -> float32 `[...]`."""
    return np.asarray(rgb, np.float32)[..., :3] @ LUMA_WEIGHTS


def _gaussian_window(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_map(
    x: np.ndarray, y: np.ndarray, window: int = 11, sigma: float = 1.5, data_range: float = 255.0
) -> np.ndarray:
    """SSIM (Wang et al. 2004) with a Gaussian window, valid region only (torch is imported here,
    so that importing the metrics stays cheap).

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


def ssim_frames(a: np.ndarray, b: np.ndarray, window: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Per-frame SSIM, mean over RGB channels, of two `[T,H,W,3]` uint8 videos -> `[T]`."""
    x = a.transpose(0, 3, 1, 2).reshape(-1, *a.shape[1:3]).astype(np.float64)  # [T*3,H,W]
    y = b.transpose(0, 3, 1, 2).reshape(-1, *b.shape[1:3]).astype(np.float64)
    return ssim_map(x, y, window, sigma).reshape(len(a), -1).mean(axis=1)
