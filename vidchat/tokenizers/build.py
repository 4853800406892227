"""Builders: load the tokenizers a config names (`cfg.tokenizer.video` / `cfg.tokenizer.audio`)."""

from __future__ import annotations

from typing import Any

from vidchat.errors import ConfigError
from vidchat.tokenizers.audio_codec import EncodecAudioTokenizer
from vidchat.tokenizers.base import AudioTokenizer, VideoTokenizer
from vidchat.tokenizers.video_vq import VQVideoTokenizer
from vidchat.utils.config import to_plain


def build_video_tokenizer(cfg: Any) -> VideoTokenizer:
    """Load the video tokenizer that `cfg` (= `cfg.tokenizer.video`) names via `checkpoint`."""
    cfg = to_plain(cfg)
    if not cfg.get("checkpoint"):
        raise ConfigError(
            "tokenizer.video.checkpoint is not set; train one with `python train.py stage=video_tokenizer`"
        )
    return VQVideoTokenizer.load(cfg["checkpoint"]).eval()


def build_audio_tokenizer(cfg: Any) -> AudioTokenizer:
    """Load the audio codec that `cfg` (= `cfg.tokenizer.audio`) names.

    `pretrained_dir` (a local Hugging Face EnCodec folder, e.g. facebook/encodec_24khz on disk) wins
    over `checkpoint` (our safetensors + JSON, e.g. the demo codec); `num_codebooks` picks K.
    """
    cfg = to_plain(cfg)
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
