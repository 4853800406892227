"""MFCCs as `python_speech_features.mfcc` computes them (the features SyncNet was trained on)."""

from __future__ import annotations

import numpy as np

from vidchat.perception.signal import mel_filterbank


def _dct_ortho(x: np.ndarray, n: int) -> np.ndarray:
    """DCT-II with orthonormal scaling along the last axis, first `n` coefficients."""
    m = x.shape[-1]
    k = np.arange(n)[:, None]
    basis = np.cos(np.pi * k * (2 * np.arange(m)[None] + 1) / (2 * m))  # [n,m]
    scale = np.full(n, np.sqrt(2.0 / m))
    scale[0] = np.sqrt(1.0 / m)
    return (x @ basis.T) * scale


def mfcc(
    audio: np.ndarray,
    sample_rate: int = 16000,
    win_s: float = 0.025,
    step_s: float = 0.01,
    n_ceps: int = 13,
    n_filters: int = 26,
    n_fft: int = 512,
    preemph: float = 0.97,
    lifter: int = 22,
) -> np.ndarray:
    """[S] audio -> [N_frames, n_ceps] MFCC at 1/step_s frames per second; c0 = log energy."""
    x = np.asarray(audio, dtype=np.float64)
    x = np.append(x[0], x[1:] - preemph * x[:-1])
    win, step = int(round(win_s * sample_rate)), int(round(step_s * sample_rate))
    n = 1 if len(x) <= win else 1 + int(np.ceil((len(x) - win) / step))
    x = np.pad(x, (0, (n - 1) * step + win - len(x)))
    idx = np.arange(win)[None] + step * np.arange(n)[:, None]
    power = np.abs(np.fft.rfft(x[idx], n_fft)) ** 2 / n_fft  # [N, n_fft//2+1]
    eps = np.finfo(float).eps
    energy = np.maximum(power.sum(1), eps)
    feat = np.log(
        np.maximum(power @ mel_filterbank(sample_rate, n_fft, n_filters, snap_to_bins=True).T, eps)
    )
    feat = _dct_ortho(feat, n_ceps) * (1 + lifter / 2 * np.sin(np.pi * np.arange(n_ceps) / lifter))
    feat[:, 0] = np.log(energy)
    return feat
