"""The shared vocabulary: special tokens, then video codes, then audio codebook 0..K-1; and the
role and modality tags every token carries."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    """Who a token belongs to."""

    NONE = 0  # <bos>, padding
    REF = 1  # the responder's reference frame
    PARTNER = 2
    RESPONDER = 3


class Modality(IntEnum):
    SPECIAL = 0
    VIDEO = 1
    AUDIO = 2


@dataclass(frozen=True)
class Vocab:
    """One shared vocabulary: special tokens, then video codes, then audio codebook 0..K-1."""

    video_codebook_size: int
    audio_codebook_size: int
    audio_num_codebooks: int

    SPECIALS = ("<pad>", "<bos>", "<ref>", "<partner>", "<responder>", "<eot>", "<chunk>")
    pad = 0
    bos = 1
    ref = 2
    partner = 3
    responder = 4
    eot = 5  # eot and chunk are adjacent: a chunk boundary allows the range [eot, chunk]
    chunk = 6
    num_special = 7

    @property
    def video_offset(self) -> int:
        return self.num_special

    def audio_offset(self, k: int) -> int:
        return self.num_special + self.video_codebook_size + k * self.audio_codebook_size

    @property
    def video_range(self) -> tuple[int, int]:
        """Half-open [lo, hi) of video code tokens."""
        return self.video_offset, self.video_offset + self.video_codebook_size

    def audio_range(self, k: int) -> tuple[int, int]:
        """Half-open [lo, hi) of audio codebook k's tokens."""
        return self.audio_offset(k), self.audio_offset(k) + self.audio_codebook_size

    @property
    def size(self) -> int:
        return self.audio_offset(self.audio_num_codebooks)
