"""Small signal tools shared by the demo world, the tokenizer metrics and VidChatBench.

Kept in one place so that "the loudness of a frame" or "a mel filter" means the same thing to
the data that is generated, the tokenizers that are measured and the metrics that score them.
Plain numpy; callers holding torch tensors convert at their edge.
"""

from __future__ import annotations

import numpy as np


def frame_rms(
    audio: np.ndarray,
    sample_rate: int,
    fps: float,
    num_frames: int,
    window: float | None = None,
) -> np.ndarray:
    """RMS loudness of `audio [S]` for each of `num_frames` frames at `fps` -> `[T]`.

    Frame i covers samples `[round(i * sr / fps), + round(window * sr))`, window defaulting to
    one frame period; frames past the end of the audio are 0.
    """
    window = 1.0 / fps if window is None else window
    starts = np.round(np.arange(num_frames) * sample_rate / fps).astype(np.int64)
    length = max(1, round(window * sample_rate))
    audio = np.asarray(audio, np.float64).reshape(-1)
    out = np.zeros(num_frames)
    for i, lo in enumerate(starts):
        seg = audio[lo : lo + length]
        out[i] = np.sqrt((seg**2).mean()) if len(seg) else 0.0
    return out


def pearson(a: np.ndarray, b: np.ndarray, min_points: int = 3) -> float:
    """Pearson r over the entries finite in both; NaN with fewer than `min_points` of them or
    when either side is constant."""
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < min_points:
        return float("nan")
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, snap_to_bins: bool = False
) -> np.ndarray:
    """Triangular HTK-mel filters on the FFT bins -> `[n_mels, n_fft//2+1]`.

    `snap_to_bins=False`: triangles evaluated at each bin's exact frequency (our spectral losses
    and metrics). `snap_to_bins=True`: filter edges rounded down to whole bins, exactly as
    `python_speech_features` computes them (the MFCCs SyncNet was trained on).
    """
    mels = np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2)
    edges = _mel_to_hz(mels)
    n_bins = n_fft // 2 + 1
    if snap_to_bins:
        bins = np.floor((n_fft + 1) * edges / sample_rate).astype(int)
        fb = np.zeros((n_mels, n_bins))
        for j in range(n_mels):
            lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
            fb[j, lo:mid] = (np.arange(lo, mid) - lo) / (mid - lo)
            fb[j, mid:hi] = (hi - np.arange(mid, hi)) / (hi - mid)
        return fb
    freqs = np.linspace(0, sample_rate / 2, n_bins)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lower) / (center - lower)
    down = (upper - freqs[None]) / (upper - center)
    return np.clip(np.minimum(up, down), 0.0, None)
