"""FVD: Fréchet distance of clip features (I3D-style network) of generated vs real videos."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidchat.eval.metrics.frechet import frechet_distance_of_features
from vidchat.eval.metrics.result import MetricResult
from vidchat.perception.features import clip_features, load_torchscript
from vidchat.perception.weights import user_weights


def fvd(
    generated: Sequence[np.ndarray],
    real: Sequence[np.ndarray],
    weights: str | Path | None = None,
    clip_length: int = 16,
    input_size: int = 224,
    value_range: Sequence[float] = (-1.0, 1.0),
    call_kwargs: dict[str, Any] | None = None,
) -> MetricResult:
    """generated, real: lists of `[T,H,W,3] uint8` videos; weights: TorchScript video network."""
    path = user_weights(weights, "fvd")
    if path is None:
        return MetricResult.unavailable(
            "fvd", "no video-feature network given (fvd.weights: path to TorchScript I3D)"
        )
    net = load_torchscript(path)
    kw = dict(
        clip_length=clip_length,
        input_size=input_size,
        value_range=value_range,
        call_kwargs=call_kwargs,
    )
    a, b = clip_features(net, generated, **kw), clip_features(net, real, **kw)
    return MetricResult(
        "fvd", frechet_distance_of_features(a, b), {"n_generated": len(a), "n_real": len(b)}
    )
