"""Voice similarity: Resemblyzer speaker embeddings (GE2E, weights shipped in the package)."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from typing import Any

import numpy as np

from vidchat.eval.metrics.audio import check_audio
from vidchat.eval.metrics.result import MetricResult
from vidchat.eval.metrics.weights import missing_extra


@lru_cache(maxsize=1)
def _encoder() -> Any:
    from resemblyzer import VoiceEncoder

    return VoiceEncoder("cpu", verbose=False)


def speaker_embedding(audio: np.ndarray, sample_rate: int) -> np.ndarray | None:
    """[S] float audio -> unit-norm [256] speaker embedding, or None if no speech is left
    after Resemblyzer's silence trimming."""
    from resemblyzer import preprocess_wav

    wav = preprocess_wav(check_audio(audio, sample_rate, "audio"), source_sr=sample_rate)
    if len(wav) < sample_rate // 10:
        return None
    return np.asarray(_encoder().embed_utterance(wav), dtype=np.float64)


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
