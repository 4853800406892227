"""Reconstruction quality of a tokenizer through its discrete interface (encode -> decode)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vidchat.perception.ssim import ssim_frames
from vidchat.tokenizers.base import AudioTokenizer, VideoTokenizer
from vidchat.tokenizers.codec import decode_audio, decode_frames, encode_audio, encode_frames
from vidchat.training.tokenizers.metrics import (
    codebook_usage,
    envelope_correlation,
    log_mel_l1,
    psnr,
    si_snr,
)


@torch.no_grad()
def evaluate_video_tokenizer(tokenizer: VideoTokenizer, frames: np.ndarray) -> dict[str, float]:
    """frames `[N,H,W,3]` uint8 (consecutive, N a multiple of the temporal stride) ->
    {psnr_db, ssim, perplexity, codes_used, num_frames}. For appearance tokenizers: the frames
    may come from many clips, so there is no one reference to render on (a motion tokenizer is
    measured clip by clip, `vidchat.training.tokenizers.motion.evaluate_motion_tokenizer`)."""
    x = torch.from_numpy(np.ascontiguousarray(frames))
    codes = encode_frames(tokenizer, x)  # [N/k,h,w]
    rec_u8 = decode_frames(tokenizer, codes)[: len(x)]
    rec = torch.from_numpy(rec_u8).float() / 255
    perplexity, used = codebook_usage(codes.flatten(), tokenizer.spec.codebook_size)
    window = min(11, *x.shape[1:3])
    return {
        "psnr_db": round(psnr(x.float() / 255, rec), 3),
        "ssim": round(float(ssim_frames(x.numpy(), rec_u8, window).mean()), 4),
        "perplexity": round(perplexity, 2),
        "codes_used": round(used, 4),
        "num_frames": len(x),
    }


@torch.no_grad()
def evaluate_audio_codec(
    tokenizer: AudioTokenizer, waves: Sequence[np.ndarray]
) -> dict[str, float]:
    """Each waveform `[S]` is coded and decoded on its own; metrics averaged over waveforms."""
    sr = tokenizer.spec.sample_rate
    scores: dict[str, list[float]] = {"si_snr_db": [], "log_mel_l1": [], "envelope_corr": []}
    codes_all = []
    for wave in waves:
        ref = torch.from_numpy(np.asarray(wave, np.float32))[None]  # [1,S]
        codes = encode_audio(tokenizer, ref[0])  # [K,Ta]
        codes_all.append(codes[0])
        est = torch.from_numpy(decode_audio(tokenizer, codes))[None, : ref.shape[1]]
        scores["si_snr_db"].append(si_snr(ref, est))
        scores["log_mel_l1"].append(log_mel_l1(ref, est, sr))
        scores["envelope_corr"].append(envelope_correlation(ref, est, sr))
    perplexity, used = codebook_usage(torch.cat(codes_all), tokenizer.spec.codebook_size)
    out = {k: round(float(np.mean(v)), 4) for k, v in scores.items()}
    out.update(
        perplexity_cb0=round(perplexity, 2), codes_used_cb0=round(used, 4), num_clips=len(waves)
    )
    return out
