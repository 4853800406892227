"""Oracle scores for the demo world, where the true labels are known.

Generic over callables so that the renderer's own measurements can be plugged in:
- lip sync: `lip_sync` with a pixel mouth-opening measure (cartoon faces defeat dlib);
- identity match: is the nearest gallery identity (by colour statistics) the expected one;
- emotion agreement: does the classified expression (e.g. mouth curvature) match the label
  that the dialogue rule gives for the responder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from vidchat.errors import VidchatError
from vidchat.eval.metrics.result import MetricResult
from vidchat.perception.frames import check_frames

Features = Callable[[np.ndarray], np.ndarray]  # [T,H,W,3] uint8 -> [D]
Classifier = Callable[[np.ndarray], str]  # [T,H,W,3] uint8 -> label


def colour_grid_features(frames: np.ndarray, grid: int = 4) -> np.ndarray:
    """Mean RGB per cell of a `grid` x `grid` layout, averaged over time -> [grid*grid*3].

    In the demo world hair, skin, shirt and background sit in stable regions, so cell colours
    separate identities without any learned network.
    """
    frames = check_frames(frames, "frames").astype(np.float64)
    t, h, w, _ = frames.shape
    ys, xs = np.linspace(0, h, grid + 1).astype(int), np.linspace(0, w, grid + 1).astype(int)
    cells = [
        frames[:, ys[i] : ys[i + 1], xs[j] : xs[j + 1]].mean(axis=(0, 1, 2))
        for i in range(grid)
        for j in range(grid)
    ]
    return np.concatenate(cells) / 255.0


def load_gallery(folder: str | Path) -> dict[str, np.ndarray]:
    """Every `<name>.png` in `folder` (e.g. the demo world's `refs/`) -> {name: [H,W,3] uint8}."""
    from vidchat.media import read_image

    paths = sorted(Path(folder).glob("*.png"))
    if not paths:
        raise VidchatError(f"identity gallery {folder} holds no .png reference images")
    return {p.stem: read_image(p) for p in paths}


def identity_match(
    frames: np.ndarray,
    gallery: Mapping[str, np.ndarray],
    expected: str,
    features: Features = colour_grid_features,
) -> MetricResult:
    """1.0 when the gallery identity nearest to the generated frames is `expected`, else 0.0.

    gallery: identity name -> reference `[H,W,3]` image (or `[T,H,W,3]` frames).
    Details: the nearest name and the feature distance to the expected identity.
    """
    if expected not in gallery:
        return MetricResult.unavailable(
            "demo_identity", f"identity {expected!r} not in the gallery"
        )
    gen = features(check_frames(frames, "generated frames"))
    dists = {
        name: float(np.linalg.norm(features(check_frames(img, name)) - gen))
        for name, img in gallery.items()
    }
    nearest = min(dists, key=dists.__getitem__)
    details = {"nearest": nearest, "distance": dists[expected]}
    return MetricResult("demo_identity", float(nearest == expected), details)


def emotion_agreement(frames: np.ndarray, expected: str, classify: Classifier) -> MetricResult:
    """1.0 when `classify(frames)` equals the expected emotion label, else 0.0."""
    predicted = classify(check_frames(frames, "generated frames"))
    return MetricResult(
        "demo_emotion", float(predicted == expected), {"predicted": predicted, "expected": expected}
    )
