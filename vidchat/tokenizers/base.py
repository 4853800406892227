"""The one tokenizer interface the language model depends on, and the builders that load weights.

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
from omegaconf import DictConfig, OmegaConf
from torch import nn

from vidchat.errors import ConfigError


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
    """

    modality: str
    frame_rate: float
    num_codebooks: int
    codebook_size: int
    grid: tuple[int, int] | None = None
    frame_size: tuple[int, int] | None = None
    sample_rate: int | None = None
    hop_length: int | None = None

    @property
    def code_dtype(self) -> np.dtype:
        """Smallest unsigned storage that holds every code: uint16 up to 65536 codes, else int32."""
        return np.dtype(np.uint16) if self.codebook_size <= 2**16 else np.dtype(np.int32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class VideoTokenizer(nn.Module, abc.ABC):
    """Per-frame video tokenizer: frames `[B,T,H,W,3]` uint8 <-> codes `[B,T,h,w]` long."""

    spec: TokenizerSpec
    fingerprint: str = ""  # content hash of the loaded weights ("" when built in memory)

    @abc.abstractmethod
    def encode(self, frames: torch.Tensor) -> torch.Tensor: ...

    @abc.abstractmethod
    def decode(self, codes: torch.Tensor) -> torch.Tensor: ...


class AudioTokenizer(nn.Module, abc.ABC):
    """Audio codec: waveform `[B,S]` float <-> codes `[B,K,Ta]` long, Ta = ceil(S / hop_length)."""

    spec: TokenizerSpec
    fingerprint: str = ""  # content hash of the loaded weights ("" when built in memory)

    @abc.abstractmethod
    def encode(self, audio: torch.Tensor) -> torch.Tensor: ...

    @abc.abstractmethod
    def decode(self, codes: torch.Tensor) -> torch.Tensor: ...


def _plain(cfg: DictConfig | dict | None) -> dict[str, Any]:
    if cfg is None:
        return {}
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def build_video_tokenizer(cfg: DictConfig | dict) -> VideoTokenizer:
    """Load the video tokenizer that `cfg` (= `cfg.tokenizer.video`) names via `checkpoint`."""
    from vidchat.tokenizers.video_vq import VQVideoTokenizer

    cfg = _plain(cfg)
    if not cfg.get("checkpoint"):
        raise ConfigError(
            "tokenizer.video.checkpoint is not set; train one with `python train.py stage=video_tokenizer`"
        )
    return VQVideoTokenizer.load(cfg["checkpoint"]).eval()


def build_audio_tokenizer(cfg: DictConfig | dict) -> AudioTokenizer:
    """Load the audio codec that `cfg` (= `cfg.tokenizer.audio`) names.

    `pretrained_dir` (a local Hugging Face EnCodec folder, e.g. facebook/encodec_24khz on disk) wins
    over `checkpoint` (our safetensors + JSON, e.g. the demo codec); `num_codebooks` picks K.
    """
    from vidchat.tokenizers.audio_codec import EncodecAudioTokenizer

    cfg = _plain(cfg)
    kind = cfg.get("kind", "encodec")
    if kind != "encodec":
        raise ConfigError(f"tokenizer.audio.kind={kind!r} is not supported; use 'encodec'")
    if cfg.get("pretrained_dir"):
        return EncodecAudioTokenizer.from_pretrained_dir(
            cfg["pretrained_dir"], num_codebooks=cfg.get("num_codebooks")
        ).eval()
    if not cfg.get("checkpoint"):
        raise ConfigError(
            "tokenizer.audio needs `pretrained_dir` (local EnCodec folder) or `checkpoint` "
            "(train one with `python train.py stage=audio_codec`)"
        )
    return EncodecAudioTokenizer.load(
        cfg["checkpoint"], num_codebooks=cfg.get("num_codebooks")
    ).eval()
