"""Bring two videos onto the same grid before comparing them pixel by pixel."""

from __future__ import annotations

import numpy as np

from vidchat.errors import VidchatError


def check_frames(frames: np.ndarray, what: str) -> np.ndarray:
    """Validate a `[T,H,W,3] uint8` video (a single `[H,W,3]` image becomes T=1)."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise VidchatError(
            f"{what} must be uint8 frames [T,H,W,3], got dtype {frames.dtype} shape {frames.shape}"
        )
    if frames.shape[0] == 0:
        raise VidchatError(f"{what} has no frames")
    return frames


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """[T,H,W,3] uint8 -> [T,height,width,3] uint8 (antialiased bilinear)."""
    if frames.shape[1:3] == (height, width):
        return frames
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # [T,3,H,W]
    x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def align_frames(generated: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut both to the shorter length and resize `generated` to the target's size.

    Both must already be at the same frame rate (read them with the same `fps`).
    Returns ([T,H,W,3], [T,H,W,3]) uint8 with T = min of the two lengths.
    """
    generated = check_frames(generated, "generated frames")
    target = check_frames(target, "target frames")
    n = min(len(generated), len(target))
    generated = resize_frames(generated[:n], target.shape[1], target.shape[2])
    return generated, target[:n]
