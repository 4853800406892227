"""Shots: scene cuts with PySceneDetect, then the 3-14 s rule and the luminance filter.

PySceneDetect's `ContentDetector` (HSV frame differences) reads the file through its PyAV
backend, so no system ffmpeg is needed. Shots shorter than `min_seconds` are dropped; longer
than `max_seconds` are split into equal parts no longer than that (a long interview shot still
yields clips). A shot whose mean luma lies outside `luminance` (the paper's [10, 210]) is
dropped as too dark or too bright.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vidchat.perception.ssim import luma


@dataclass(frozen=True)
class ShotOptions:
    threshold: float = 27.0  # ContentDetector's
    min_seconds: float = 3.0
    max_seconds: float = 14.0
    luminance: tuple[float, float] = (10.0, 210.0)


def detect_cuts(path: str, opts: ShotOptions) -> list[tuple[int, int]]:
    """[(first frame, end frame)] of each shot of the video (one shot when there is no cut)."""
    from scenedetect import ContentDetector, detect

    scenes = detect(path, ContentDetector(threshold=opts.threshold), backend="pyav")
    return [(a.frame_num, b.frame_num) for a, b in scenes]


def select_shots(
    scenes: list[tuple[int, int]], num_frames: int, fps: float, opts: ShotOptions
) -> tuple[list[dict], list[dict]]:
    """-> (kept shots [{index, start, end}], dropped [{start, end, reason}]) by the length rule."""
    if not scenes:
        scenes = [(0, num_frames)]
    kept, dropped = [], []
    for start, end in scenes:
        seconds = (end - start) / fps
        if seconds < opts.min_seconds:
            dropped.append({"start": start, "end": end, "reason": "shot shorter than min_seconds"})
            continue
        parts = max(1, math.ceil(seconds / opts.max_seconds))
        bounds = np.linspace(start, end, parts + 1).round().astype(int)
        for a, b in zip(bounds[:-1], bounds[1:]):
            kept.append({"index": len(kept), "start": int(a), "end": int(b)})
    return kept, dropped


def mean_luma(frames: np.ndarray) -> float:
    """Mean BT.601 luma of `[T,H,W,3]` uint8 frames."""
    return float(luma(frames).mean())
