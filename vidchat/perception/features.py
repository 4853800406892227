"""Features from user-provided TorchScript networks (Inception for FID, I3D for FVD).

Contract for the file at the configured path: a TorchScript module whose forward takes a float
tensor — images `[N,3,H,W]` for FID, clips `[N,3,T,H,W]` for FVD — scaled to `value_range`, and
returns features `[N,D]` (extra trailing dims are flattened). `call_kwargs` are passed through
(e.g. `{return_features: true}` for the common StyleGAN-V I3D export).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from vidchat.errors import VidchatError
from vidchat.perception.frames import check_frames, resize_frames


@lru_cache(maxsize=4)
def load_torchscript(path: Path) -> Any:
    import torch

    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise VidchatError(
            f"cannot load TorchScript weights {path}: {exc}".replace("\n", " ")
        ) from exc
    return module.eval()


def _scale(x: Any, value_range: Sequence[float]) -> Any:
    lo, hi = float(value_range[0]), float(value_range[1])
    return x / 255.0 * (hi - lo) + lo


def _batches(items: list[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _run(net: Any, x: Any, call_kwargs: dict[str, Any]) -> np.ndarray:
    import torch

    with torch.inference_mode():
        out = net(x, **call_kwargs)
    return out.reshape(out.shape[0], -1).double().numpy()


def image_features(
    net: Any,
    videos: Sequence[np.ndarray],
    input_size: int = 299,
    value_range: Sequence[float] = (0.0, 1.0),
    batch_size: int = 32,
    call_kwargs: dict[str, Any] | None = None,
) -> np.ndarray:
    """Every frame of every `[T,H,W,3] uint8` video -> features [sum(T), D]."""
    import torch

    frames = [
        f for v in videos for f in resize_frames(check_frames(v, "video"), input_size, input_size)
    ]
    out = []
    for batch in _batches(frames, batch_size):
        x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float()  # [N,3,H,W]
        out.append(_run(net, _scale(x, value_range), call_kwargs or {}))
    return np.concatenate(out)


def video_clips(videos: Sequence[np.ndarray], clip_length: int) -> list[np.ndarray]:
    """Non-overlapping `clip_length`-frame windows of each video (a shorter video: none)."""
    clips = []
    for v in videos:
        v = check_frames(v, "video")
        clips += [v[i : i + clip_length] for i in range(0, len(v) - clip_length + 1, clip_length)]
    return clips


def clip_features(
    net: Any,
    videos: Sequence[np.ndarray],
    clip_length: int = 16,
    input_size: int = 224,
    value_range: Sequence[float] = (-1.0, 1.0),
    batch_size: int = 8,
    call_kwargs: dict[str, Any] | None = None,
) -> np.ndarray:
    """Each video's `clip_length`-frame windows -> features [N_clips, D]."""
    import torch

    clips = [resize_frames(c, input_size, input_size) for c in video_clips(videos, clip_length)]
    if not clips:
        raise VidchatError(f"FVD needs videos of at least {clip_length} frames")
    out = []
    for batch in _batches(clips, batch_size):
        x = torch.from_numpy(np.stack(batch)).permute(0, 4, 1, 2, 3).float()  # [N,3,T,H,W]
        out.append(_run(net, _scale(x, value_range), call_kwargs or {}))
    return np.concatenate(out)
