"""Tokenizers: one interface (`TokenizerSpec`, encode/decode) for the video VQ and the audio codec,
their models, and the builders that load them from a config."""

from vidchat.tokenizers.base import AudioTokenizer, TokenizerSpec, VideoTokenizer
from vidchat.tokenizers.build import build_audio_tokenizer, build_video_tokenizer

__all__ = [
    "AudioTokenizer",
    "TokenizerSpec",
    "VideoTokenizer",
    "build_audio_tokenizer",
    "build_video_tokenizer",
]
