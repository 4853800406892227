"""Training losses for the tokenizers: image edge loss, multi-scale STFT and mel losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vidchat.perception.signal import mel_filterbank


def image_gradient_loss(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal/vertical finite differences of `[N, C, H, W]` images.

    Penalises blurred edges (eyes, mouth) that a plain L2 loss tolerates.
    """
    dx = lambda x: x[..., :, 1:] - x[..., :, :-1]  # noqa: E731
    dy = lambda x: x[..., 1:, :] - x[..., :-1, :]  # noqa: E731
    return F.l1_loss(dx(estimate), dx(reference)) + F.l1_loss(dy(estimate), dy(reference))


def multiscale_stft_loss(
    reference: torch.Tensor,
    estimate: torch.Tensor,
    sample_rate: int,
    n_ffts: tuple[int, ...] = (256, 512, 1024),
    n_mels: int = 64,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Sum over FFT sizes of log-magnitude L1 + spectral convergence + log-mel L1, `[B, S]` each."""
    total = reference.new_zeros(())
    for n_fft in n_ffts:
        window = torch.hann_window(n_fft, device=reference.device)
        ref = torch.stft(reference, n_fft, n_fft // 4, window=window, return_complex=True).abs()
        est = torch.stft(estimate, n_fft, n_fft // 4, window=window, return_complex=True).abs()
        total = total + F.l1_loss(torch.log(est + eps), torch.log(ref + eps))
        total = total + (ref - est).norm() / (ref.norm() + eps)
        fb = torch.from_numpy(mel_filterbank(sample_rate, n_fft, min(n_mels, n_fft // 8)))
        fb = fb.float().to(reference.device)
        total = total + F.l1_loss(
            torch.log(fb @ est.pow(2) + eps), torch.log(fb @ ref.pow(2) + eps)
        )
    return total / len(n_ffts)
