"""Reconstruction and codebook metrics for the tokenizers (no downloads)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from vidchat.perception.signal import frame_rms, mel_filterbank, pearson


def psnr(reference: torch.Tensor, estimate: torch.Tensor, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over the whole batch (both in [0, peak])."""
    mse = F.mse_loss(estimate.float(), reference.float()).item()
    return float("inf") if mse == 0 else 10 * math.log10(peak**2 / mse)


def codebook_usage(codes: torch.Tensor, codebook_size: int) -> tuple[float, float]:
    """(perplexity, fraction of codes used) of a batch of codes (any shape)."""
    counts = torch.bincount(codes.flatten().long(), minlength=codebook_size).float()
    probs = counts / counts.sum().clamp(min=1)
    entropy = -(probs * torch.log(probs.clamp(min=1e-12))).sum()
    return float(entropy.exp()), float((counts > 0).float().mean())


def si_snr(reference: torch.Tensor, estimate: torch.Tensor, eps: float = 1e-8) -> float:
    """Scale-invariant SNR in dB, averaged over the batch: `[B, S]` each."""
    ref = reference - reference.mean(-1, keepdim=True)
    est = estimate - estimate.mean(-1, keepdim=True)
    proj = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps) * ref
    noise = est - proj
    ratio = proj.pow(2).sum(-1) / (noise.pow(2).sum(-1) + eps)
    return float((10 * torch.log10(ratio + eps)).mean())


def log_mel(
    audio: torch.Tensor, sample_rate: int, n_fft: int = 1024, n_mels: int = 64
) -> torch.Tensor:
    """audio `[B, S]` -> log-mel spectrogram `[B, n_mels, frames]`."""
    window = torch.hann_window(n_fft, device=audio.device)
    spec = torch.stft(
        audio.float(), n_fft, hop_length=n_fft // 4, window=window, return_complex=True
    )
    fb = torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels)).float().to(audio.device)
    return torch.log(fb @ spec.abs().pow(2) + 1e-5)


def log_mel_l1(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float:
    """Mean absolute log-mel difference (spectral distance, lower is better)."""
    return float((log_mel(reference, sample_rate) - log_mel(estimate, sample_rate)).abs().mean())


def envelope(audio: torch.Tensor, sample_rate: int, rate: int = 100) -> np.ndarray:
    """RMS loudness envelope at `rate` Hz: `[B, S]` -> `[B, S // (sample_rate // rate)]`."""
    hop = sample_rate // rate
    rows = audio.detach().float().cpu().numpy()
    n = rows.shape[1] // hop
    return np.stack([frame_rms(row, sample_rate, sample_rate / hop, n) for row in rows])


def envelope_correlation(
    reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int
) -> float:
    """Pearson correlation of the loudness envelopes: do the syllables stay where they were?
    (0 when either envelope is flat.)"""
    r = pearson(envelope(reference, sample_rate), envelope(estimate, sample_rate))
    return 0.0 if r != r else r
