"""Resemblyzer speaker embeddings (GE2E, weights shipped in the package)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from vidchat.perception.audio import check_audio


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
