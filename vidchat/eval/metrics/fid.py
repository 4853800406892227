"""FID: Fréchet distance of per-frame features of generated vs real videos (dataset level)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidchat.eval.metrics.frechet import frechet_distance_of_features
from vidchat.eval.metrics.result import MetricResult
from vidchat.perception.features import image_features, load_torchscript
from vidchat.perception.weights import user_weights


def fid(
    generated: Sequence[np.ndarray],
    real: Sequence[np.ndarray],
    weights: str | Path | None = None,
    input_size: int = 299,
    value_range: Sequence[float] = (0.0, 1.0),
    call_kwargs: dict[str, Any] | None = None,
) -> MetricResult:
    """generated, real: lists of `[T,H,W,3] uint8` videos; weights: TorchScript image network."""
    path = user_weights(weights, "fid")
    if path is None:
        return MetricResult.unavailable(
            "fid", "no image-feature network given (fid.weights: path to TorchScript Inception)"
        )
    net = load_torchscript(path)
    kw = dict(input_size=input_size, value_range=value_range, call_kwargs=call_kwargs)
    a, b = image_features(net, generated, **kw), image_features(net, real, **kw)
    return MetricResult(
        "fid", frechet_distance_of_features(a, b), {"n_generated": len(a), "n_real": len(b)}
    )
