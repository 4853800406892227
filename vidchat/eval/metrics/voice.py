"""Voice similarity: the cosine of Resemblyzer speaker embeddings (`vidchat.perception.voice`)."""

from __future__ import annotations

import importlib.util

import numpy as np

from vidchat.eval.metrics.result import MetricResult
from vidchat.perception.voice import speaker_embedding
from vidchat.perception.weights import missing_extra


def speaker_similarity(
    audio: np.ndarray, reference_audio: np.ndarray | None, sample_rate: int
) -> MetricResult:
    """Cosine similarity of the generated voice to the reference voice (same sample rate).

    About 0.85-0.95 for the same speaker, 0.5-0.7 for different ones.
    """
    if importlib.util.find_spec("resemblyzer") is None:
        return MetricResult.unavailable("voice_similarity", missing_extra("resemblyzer"))
    if reference_audio is None:
        return MetricResult.unavailable("voice_similarity", "no reference voice for this sample")
    gen = speaker_embedding(audio, sample_rate)
    ref = speaker_embedding(reference_audio, sample_rate)
    if gen is None or ref is None:
        which = "generated" if gen is None else "reference"
        return MetricResult.unavailable("voice_similarity", f"no speech found in the {which} audio")
    return MetricResult("voice_similarity", float(gen @ ref))
