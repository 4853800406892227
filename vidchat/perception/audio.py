"""Audio input checks and resampling shared by the voice metrics."""

from __future__ import annotations

from math import gcd

import numpy as np

from vidchat.errors import VidchatError


def check_audio(audio: np.ndarray, sample_rate: int, what: str) -> np.ndarray:
    """Validate mono `[S]` float audio; returns float32 clipped to [-1, 1]."""
    audio = np.asarray(audio)
    if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
        raise VidchatError(
            f"{what} must be mono float audio [S], got dtype {audio.dtype} shape {audio.shape}"
        )
    if sample_rate <= 0:
        raise VidchatError(f"{what} has an invalid sample rate {sample_rate}")
    if len(audio) == 0:
        raise VidchatError(f"{what} is empty")
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def resample(audio: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """[S] at sample_rate -> [S'] at target_rate (polyphase, scipy from the eval extra)."""
    if sample_rate == target_rate:
        return audio
    from scipy.signal import resample_poly

    g = gcd(int(sample_rate), int(target_rate))
    out = resample_poly(audio.astype(np.float64), target_rate // g, sample_rate // g)
    return np.clip(out, -1.0, 1.0).astype(np.float32)
