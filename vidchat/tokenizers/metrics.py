"""Reconstruction and codebook metrics for the tokenizers (pure torch, no downloads)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


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


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """Triangular HTK-mel filters `[n_mels, n_fft//2+1]` (no torchaudio/librosa needed)."""

    def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
        return 2595.0 * torch.log10(1.0 + f / 700.0)

    def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mels = torch.linspace(0, float(hz_to_mel(torch.tensor(sample_rate / 2.0))), n_mels + 2)
    edges = mel_to_hz(mels)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lower) / (center - lower)
    down = (upper - freqs[None]) / (upper - center)
    return torch.clamp(torch.minimum(up, down), min=0.0)


def log_mel(
    audio: torch.Tensor, sample_rate: int, n_fft: int = 1024, n_mels: int = 64
) -> torch.Tensor:
    """audio `[B, S]` -> log-mel spectrogram `[B, n_mels, frames]`."""
    window = torch.hann_window(n_fft, device=audio.device)
    spec = torch.stft(
        audio.float(), n_fft, hop_length=n_fft // 4, window=window, return_complex=True
    )
    fb = mel_filterbank(sample_rate, n_fft, n_mels).to(audio.device)
    return torch.log(fb @ spec.abs().pow(2) + 1e-5)


def log_mel_l1(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float:
    """Mean absolute log-mel difference (spectral distance, lower is better)."""
    return float((log_mel(reference, sample_rate) - log_mel(estimate, sample_rate)).abs().mean())


def envelope(audio: torch.Tensor, sample_rate: int, rate: int = 100) -> torch.Tensor:
    """RMS loudness envelope at `rate` Hz: `[B, S]` -> `[B, S // (sample_rate // rate)]`."""
    hop = sample_rate // rate
    frames = audio[:, : audio.shape[1] // hop * hop].reshape(audio.shape[0], -1, hop)  # [B, F, hop]
    return frames.pow(2).mean(-1).sqrt()


def envelope_correlation(
    reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int
) -> float:
    """Pearson correlation of the loudness envelopes: do the syllables stay where they were?"""
    a = envelope(reference, sample_rate).flatten()
    b = envelope(estimate, sample_rate).flatten()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm() + 1e-8))
