"""Builders: load the tokenizers a config names (`cfg.tokenizer.video` / `cfg.tokenizer.audio`).

Each stream has a kind -> builder registry, read from `tokenizer.<stream>.kind`. A new
tokenizer is one builder registered under a new kind, from any module imported before the run
(`@register_video_tokenizer("mykind")`); nothing here changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from vidchat.errors import ConfigError
from vidchat.tokenizers.audio_codec import EncodecAudioTokenizer
from vidchat.tokenizers.base import AudioTokenizer, VideoTokenizer
from vidchat.tokenizers.motion import MotionTokenizer
from vidchat.tokenizers.video_vq import VQVideoTokenizer
from vidchat.utils.config import to_plain

T = TypeVar("T")
VIDEO_TOKENIZERS: dict[str, Callable[[dict[str, Any]], VideoTokenizer]] = {}
AUDIO_TOKENIZERS: dict[str, Callable[[dict[str, Any]], AudioTokenizer]] = {}


def register_video_tokenizer(kind: str) -> Callable[[T], T]:
    """Register `builder(cfg: dict) -> VideoTokenizer` as `tokenizer.video.kind=<kind>`."""

    def add(builder: T) -> T:
        VIDEO_TOKENIZERS[kind] = builder  # type: ignore[assignment]
        return builder

    return add


def register_audio_tokenizer(kind: str) -> Callable[[T], T]:
    """Register `builder(cfg: dict) -> AudioTokenizer` as `tokenizer.audio.kind=<kind>`."""

    def add(builder: T) -> T:
        AUDIO_TOKENIZERS[kind] = builder  # type: ignore[assignment]
        return builder

    return add


def _builder(table: dict[str, Callable], stream: str, kind: str) -> Callable:
    if kind not in table:
        raise ConfigError(
            f"tokenizer.{stream}.kind={kind!r} is not registered; known: {sorted(table)}"
        )
    return table[kind]


def build_video_tokenizer(cfg: Any) -> VideoTokenizer:
    """The video tokenizer `cfg` (= `cfg.tokenizer.video`) names by `kind` (default `vq`)."""
    cfg = to_plain(cfg)
    return _builder(VIDEO_TOKENIZERS, "video", cfg.get("kind", "vq"))(cfg)


def build_audio_tokenizer(cfg: Any) -> AudioTokenizer:
    """The audio codec `cfg` (= `cfg.tokenizer.audio`) names by `kind` (default `encodec`)."""
    cfg = to_plain(cfg)
    return _builder(AUDIO_TOKENIZERS, "audio", cfg.get("kind", "encodec"))(cfg)


@register_video_tokenizer("vq")
def _vq(cfg: dict[str, Any]) -> VideoTokenizer:
    """Our conv tokenizer (VQ, FSQ or LFQ codes) from `checkpoint`."""
    if not cfg.get("checkpoint"):
        raise ConfigError(
            "tokenizer.video.checkpoint is not set; train one with `python train.py stage=video_tokenizer`"
        )
    return VQVideoTokenizer.load(cfg["checkpoint"]).eval()


@register_video_tokenizer("motion")
def _motion(cfg: dict[str, Any]) -> VideoTokenizer:
    """The motion tokenizer (N codes per frame, rendered on a reference) from `checkpoint`."""
    if not cfg.get("checkpoint"):
        raise ConfigError(
            "tokenizer.video.checkpoint is not set; train one with `python train.py "
            "stage=video_tokenizer tokenizer.video.kind=motion`"
        )
    return MotionTokenizer.load(cfg["checkpoint"]).eval()


@register_audio_tokenizer("encodec")
def _encodec(cfg: dict[str, Any]) -> AudioTokenizer:
    """EnCodec: `pretrained_dir` (a local Hugging Face EnCodec folder, e.g. facebook/encodec_24khz
    on disk) wins over `checkpoint` (our safetensors + JSON, e.g. the demo codec);
    `num_codebooks` picks K."""
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
