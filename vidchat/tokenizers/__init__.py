"""Tokenizers: one interface (`TokenizerSpec`, encode/decode) for the video VQ and the audio codec."""

from vidchat.tokenizers.base import (
    AudioTokenizer,
    TokenizerSpec,
    VideoTokenizer,
    build_audio_tokenizer,
    build_video_tokenizer,
)

__all__ = [
    "AudioTokenizer",
    "TokenizerSpec",
    "VideoTokenizer",
    "build_audio_tokenizer",
    "build_video_tokenizer",
]
