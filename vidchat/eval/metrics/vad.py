"""Voice activity: the share of 32 ms windows Silero VAD calls speech
(`vidchat.perception.vad`)."""

from __future__ import annotations

import importlib.util

import numpy as np

from vidchat.eval.metrics.result import MetricResult
from vidchat.perception.vad import speech_probabilities
from vidchat.perception.weights import missing_extra


def voice_activity(audio: np.ndarray, sample_rate: int, threshold: float = 0.5) -> MetricResult:
    """Fraction of 32 ms windows that Silero calls speech; details: mean probability."""
    for pkg in ("silero_vad", "onnxruntime"):
        if importlib.util.find_spec(pkg) is None:
            return MetricResult.unavailable("voice_activity", missing_extra(pkg))
    probs = speech_probabilities(audio, sample_rate)
    return MetricResult(
        "voice_activity",
        float((probs > threshold).mean()),
        {"mean_probability": float(probs.mean()), "windows": len(probs)},
    )
