"""The one tokenizer interface the language model depends on.

A tokenizer turns one modality into integer codes and back:
- `VideoTokenizer.encode(frames [B,T,H,W,3] uint8) -> codes [B,T,h,w] long`; `.decode` inverts it.
- `AudioTokenizer.encode(audio [B,S] float in [-1,1]) -> codes [B,K,Ta] long`; `.decode` inverts it.
`.spec` (a `TokenizerSpec`) says everything the sequence layout needs (rate, codebooks, grid) and
what input the tokenizer expects (frame size / sample rate), so callers resample to match.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class TokenizerSpec:
    """What one tokenizer produces and expects.

    modality: "video" or "audio".
    frame_rate: code frames per second (video: frames/s it expects; audio: sample_rate / hop).
    num_codebooks: K parallel codebooks per code frame (video: 1).
    codebook_size: codes per codebook (ids in [0, codebook_size)).
    grid: (h, w) codes per video frame; None for audio.
    frame_size: (H, W) pixels the video tokenizer expects; None for audio.
    sample_rate: samples/s the audio tokenizer expects; None for video.
    hop_length: audio samples per code frame; None for video.
    temporal_stride: video frames per code frame (1: per-frame codes). The tokenizer expects
        frames at `frame_rate * temporal_stride` per second.
    """

    modality: str
    frame_rate: float
    num_codebooks: int
    codebook_size: int
    grid: tuple[int, int] | None = None
    frame_size: tuple[int, int] | None = None
    sample_rate: int | None = None
    hop_length: int | None = None
    temporal_stride: int = 1

    @property
    def pixel_frame_rate(self) -> float:
        """Video frames per second in and out of the tokenizer (`frame_rate` counts code frames)."""
        return float(self.frame_rate) * self.temporal_stride

    @property
    def code_dtype(self) -> np.dtype:
        """Smallest unsigned storage that holds every code: uint16 up to 65536 codes, else int32."""
        return np.dtype(np.uint16) if self.codebook_size <= 2**16 else np.dtype(np.int32)

    def to_dict(self) -> dict[str, Any]:
        """As a dict; temporal_stride only when > 1, so that token shards written before the
        field existed keep the same identity."""
        out = asdict(self)
        if out["temporal_stride"] == 1:
            del out["temporal_stride"]
        return out


class VideoTokenizer(nn.Module, abc.ABC):
    """Video tokenizer: frames `[B,T,H,W,3]` uint8 <-> codes `[B,T/k,h,w]` long
    (k = `spec.temporal_stride`, 1 for per-frame codes).

    `decode` takes the responder's reference image `[B,H,W,3]` (or `[H,W,3]`) uint8: a motion
    tokenizer (`needs_reference`) renders its codes on it; an appearance tokenizer ignores it."""

    spec: TokenizerSpec
    fingerprint: str = ""  # content hash of the loaded weights ("" when built in memory)
    needs_reference: bool = False
    spatial_codes: bool = True
    """Code (r, c) of the `[h,w]` grid stands for that cell of the frame (an appearance
    tokenizer), so a region of the frame is a set of codes; False where every code describes the
    whole frame (the motion kind), and a region exists only in the decoded pixels."""

    @abc.abstractmethod
    def encode(self, frames: torch.Tensor) -> torch.Tensor: ...

    @abc.abstractmethod
    def decode(
        self, codes: torch.Tensor, reference: torch.Tensor | None = None
    ) -> torch.Tensor: ...


class AudioTokenizer(nn.Module, abc.ABC):
    """Audio codec: waveform `[B,S]` float <-> codes `[B,K,Ta]` long, Ta = ceil(S / hop_length)."""

    spec: TokenizerSpec
    fingerprint: str = ""  # content hash of the loaded weights ("" when built in memory)

    @abc.abstractmethod
    def encode(self, audio: torch.Tensor) -> torch.Tensor: ...

    @abc.abstractmethod
    def decode(self, codes: torch.Tensor) -> torch.Tensor: ...
