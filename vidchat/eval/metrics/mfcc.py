"""MFCCs as `python_speech_features.mfcc` computes them (the features SyncNet was trained on)."""

from __future__ import annotations

import numpy as np


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_filters: int, n_fft: int, sample_rate: int) -> np.ndarray:
    """Triangular filters on FFT bins -> [n_filters, n_fft//2+1]."""
    mels = np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_filters + 2)
    bins = np.floor((n_fft + 1) * _mel_to_hz(mels) / sample_rate).astype(int)
    fb = np.zeros((n_filters, n_fft // 2 + 1))
    for j in range(n_filters):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        for i in range(lo, mid):
            fb[j, i] = (i - lo) / (mid - lo)
        for i in range(mid, hi):
            fb[j, i] = (hi - i) / (hi - mid)
    return fb


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
    feat = np.log(np.maximum(power @ mel_filterbank(n_filters, n_fft, sample_rate).T, eps))
    feat = _dct_ortho(feat, n_ceps) * (1 + lifter / 2 * np.sin(np.pi * np.arange(n_ceps) / lifter))
    feat[:, 0] = np.log(energy)
    return feat
