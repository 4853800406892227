"""The token plan: which code every token of a chunk carries, in sequence order.

A chunk is one `chunk_seconds` span of a turn. Chunk i of a segment holds code frames
`[floor(i*c*r), floor((i+1)*c*r))` of each stream with rate r (c = chunk_seconds), computed with
exact fractions, so video and audio never drift apart however long the turn is.

`TokenPlan.chunk(video_span, audio_span)` lists the chunk's slots explicitly, as audiocraft's
`Pattern` lists codebook steps: for every position its modality, code frame, video row/column or
audio codebook, and slot id. Building a sequence, splitting it back, the generation grammar and
generation's placement of sampled codes all read this one list, so a new chunk order (or a new
head that emits a frame at once) is a new plan, not four edits that a test must keep in step.

Chunk order
-----------
Inside a chunk, `chunk_order` says how the two streams interleave (each video frame row-major):
- `frame_interleaved` (default): for each video frame, first the audio steps that start within
  its time span, then the frame's codes. A mouth shape is predicted right after the sound it
  makes, from audio a few tokens back: the lip-sync dependency is local, and even the tiny demo
  LM learns it. (With video first, a frame's mouth had to be drawn before its sound existed, and
  the same demo LM's mouth ignored its own audio: see the README.)
- `audio_first`: all the chunk's audio steps, then all its video frames.
- `video_first`: all the chunk's video frames, then all its audio steps.
The order is part of the checkpoint's layout: a model is generated with the order it was
trained on.

Audio pattern
-------------
`time_major` (default) writes each audio time step's codebooks 0..K-1 next to each other;
`codebook_major` writes, within each run of audio steps, all of codebook 0's steps, then
codebook 1's, ... A MusicGen-style *delay* pattern pays off only when one decoder step emits K
tokens at once (one head per codebook); here every step emits one token of one shared
vocabulary, so flattening is exact (each codebook is conditioned on the coarser ones of the same
step) and needs no padding tokens at chunk edges, which keeps chunks self-contained.

Slots
-----
0 = a special token, 1 + row*w + col = a video code at (row, col), 1 + h*w + k = audio codebook
k. The model is told the slot of the token it predicts next (see `vidchat.model.layout`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any

import torch
from torch import Tensor

from vidchat.errors import ConfigError
from vidchat.model.heads.registry import head_class
from vidchat.model.vocab import Modality

AUDIO_PATTERNS = ("time_major", "codebook_major")
CHUNK_ORDERS = ("frame_interleaved", "audio_first", "video_first")


def fraction(x: float) -> Fraction:
    """Exact decimal value of a config float (0.5 -> 1/2, 29.97 -> 2997/100)."""
    return Fraction(str(x))


@dataclass(frozen=True)
class LayoutConfig:
    """Token streams and how they are chunked. Sizes come from the tokenizer specs."""

    video_frame_rate: float
    """Video code frames per second (demo: 8)."""
    video_grid: tuple[int, int]
    """Codes per video frame as (h, w) (demo: (4, 4))."""
    video_codebook_size: int
    """Number of video codes (demo: 1024)."""
    audio_frame_rate: float
    """Audio code frames per second (demo: 25)."""
    audio_num_codebooks: int
    """Audio codebooks K per frame (demo: 2)."""
    audio_codebook_size: int
    """Codes per audio codebook (demo: 1024)."""
    chunk_seconds: float = 0.5
    """Duration of one chunk; generation streams one chunk at a time."""
    audio_pattern: str = "time_major"
    """Order of audio codes inside each run of audio steps: `time_major` or `codebook_major`."""
    chunk_order: str = "frame_interleaved"
    """How video frames and audio steps interleave inside a chunk (see the module docstring)."""
    video_head: str = "flat"
    """The video head's kind in `vidchat.model.heads.registry`. `flat`: every video code is one
    backbone step. `depth`: a video frame is one backbone step, and a depth transformer emits its
    h*w codes one by one. The frame head decodes a frame's codes in parallel in a few passes
    (`vidchat.model.heads.maskgit`)."""
    audio_head: str = "flat"
    """The audio head's kind: `flat`, or `depth` (an audio step's K codebooks are one backbone
    step; needs `time_major`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "video_grid", tuple(int(g) for g in self.video_grid))
        checks = {
            "video_frame_rate": self.video_frame_rate > 0,
            "audio_frame_rate": self.audio_frame_rate > 0,
            "chunk_seconds": self.chunk_seconds > 0,
            "video_codebook_size": self.video_codebook_size > 0,
            "audio_codebook_size": self.audio_codebook_size > 0,
            "audio_num_codebooks": self.audio_num_codebooks > 0,
            "video_grid": len(self.video_grid) == 2 and min(self.video_grid) > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"layout.{name} must be positive, got {getattr(self, name)!r}")
        if self.audio_pattern not in AUDIO_PATTERNS:
            raise ConfigError(
                f"layout.audio_pattern must be one of {AUDIO_PATTERNS}, got {self.audio_pattern!r}"
            )
        if self.chunk_order not in CHUNK_ORDERS:
            raise ConfigError(
                f"layout.chunk_order must be one of {CHUNK_ORDERS}, got {self.chunk_order!r}"
            )
        for stream in ("video", "audio"):
            head_class(getattr(self, f"{stream}_head"), stream).check_layout(stream, self)

    def grouped(self, stream: str) -> bool:
        """Whether a frame (video) or time step (audio) of `stream` is one backbone step."""
        return head_class(getattr(self, f"{stream}_head"), stream).grouped

    @classmethod
    def from_specs(cls, video_spec: Any, audio_spec: Any, **layout_cfg: Any) -> LayoutConfig:
        """Build from tokenizer specs (objects with frame_rate, grid, num_codebooks, codebook_size)
        plus the `model.layout` config section (chunk_seconds, audio_pattern, chunk_order)."""
        if video_spec.num_codebooks != 1:
            raise ConfigError(
                f"video tokenizer must have one codebook, got num_codebooks={video_spec.num_codebooks}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(layout_cfg) - known)
        if unknown:
            raise ConfigError(f"unknown model.layout keys {unknown}; known: {sorted(known)}")
        return cls(
            video_frame_rate=float(video_spec.frame_rate),
            video_grid=tuple(video_spec.grid),
            video_codebook_size=int(video_spec.codebook_size),
            audio_frame_rate=float(audio_spec.frame_rate),
            audio_num_codebooks=int(audio_spec.num_codebooks),
            audio_codebook_size=int(audio_spec.codebook_size),
            **layout_cfg,
        )


Span = tuple[int, int]
"""`[start, end)` code frames of one stream within a segment."""


@dataclass(frozen=True)
class ChunkPlan:
    """One chunk's code tokens in sequence order; every field is `[n]` long.

    `frame` is the absolute code frame within the segment's stream; `row`/`col` place a video
    code (-1 for audio), `codebook` an audio code (-1 for video); `slot` is the slot id;
    `depth` is the token's place within its backbone step (0 starts a step: every token with a
    flat head, the first code of a frame or audio step with a depth head).
    """

    modality: Tensor
    frame: Tensor
    row: Tensor
    col: Tensor
    codebook: Tensor
    slot: Tensor
    depth: Tensor

    def __len__(self) -> int:
        return self.modality.numel()

    @property
    def is_video(self) -> Tensor:
        return self.modality == Modality.VIDEO


class TokenPlan:
    """Chunk arithmetic and the slot list of every chunk for one `LayoutConfig`."""

    def __init__(self, cfg: LayoutConfig):
        self.cfg = cfg
        self.h, self.w = cfg.video_grid
        self.K = cfg.audio_num_codebooks
        self._chunk = fraction(cfg.chunk_seconds)
        self.video_rate = fraction(cfg.video_frame_rate)
        self.audio_rate = fraction(cfg.audio_frame_rate)
        self._cache: dict[tuple[Span, Span], ChunkPlan] = {}

    @property
    def num_slots(self) -> int:
        """Size of the slot embedding: special + h*w video positions + K audio codebooks."""
        return 1 + self.h * self.w + self.K

    def step_size(self, stream: str) -> int:
        """Codes in one step of a grouped head of `stream`: h*w (video) or K (audio)."""
        return self.h * self.w if stream == "video" else self.K

    def steps_per_second(self) -> float:
        """Backbone steps per second of media in a segment (one per `<chunk>` too)."""
        c = self.cfg
        video = 1 if c.grouped("video") else self.h * self.w
        audio = 1 if c.grouped("audio") else self.K
        return c.video_frame_rate * video + c.audio_frame_rate * audio + 1.0 / c.chunk_seconds

    @property
    def tokens_per_second(self) -> float:
        """Tokens per second of media in a segment (codes plus one `<chunk>` per chunk)."""
        c = self.cfg
        return (
            c.video_frame_rate * self.h * self.w
            + c.audio_frame_rate * self.K
            + 1.0 / c.chunk_seconds
        )

    # ---- chunk arithmetic --------------------------------------------------------------------
    def num_chunks(self, n_frames: int, rate: Fraction) -> int:
        return math.ceil(Fraction(n_frames) / (self._chunk * rate))

    def chunk_bounds(self, n_frames: int, frame_rate: float, n_chunks: int | None = None):
        """`[(start, end)]` code-frame range of each chunk for a stream of `n_frames` frames."""
        rate = fraction(frame_rate)
        per = self._chunk * rate
        n = self.num_chunks(n_frames, rate) if n_chunks is None else n_chunks
        return [
            (min(math.floor(i * per), n_frames), min(math.floor((i + 1) * per), n_frames))
            for i in range(n)
        ]

    def chunk_span(self, i: int) -> tuple[Span, Span]:
        """((v0, v1), (a0, a1)): code frames of chunk i of an unbounded stream, per stream."""
        pv, pa = self._chunk * self.video_rate, self._chunk * self.audio_rate
        return (
            (math.floor(i * pv), math.floor((i + 1) * pv)),
            (math.floor(i * pa), math.floor((i + 1) * pa)),
        )

    # ---- the plan ----------------------------------------------------------------------------
    def runs(self, video_span: Span, audio_span: Span) -> list[tuple[Modality, int, int]]:
        """The chunk's code frames as `[(modality, start, end)]` runs in sequence order (the
        chunk order); empty runs are left out."""
        (v0, v1), (a0, a1) = video_span, audio_span
        order = self.cfg.chunk_order
        if order == "video_first":
            pieces = [(Modality.VIDEO, v0, v1), (Modality.AUDIO, a0, a1)]
        elif order == "audio_first":
            pieces = [(Modality.AUDIO, a0, a1), (Modality.VIDEO, v0, v1)]
        else:  # frame_interleaved: audio step s goes before the video frame its start falls in
            ratio = self.audio_rate / self.video_rate  # audio steps per video frame
            pieces, a = [], a0
            for f in range(v0, v1):
                end = min(max(math.ceil((f + 1) * ratio), a), a1)
                pieces += [(Modality.AUDIO, a, end), (Modality.VIDEO, f, f + 1)]
                a = end
            pieces.append((Modality.AUDIO, a, a1))  # steps starting after the last frame ends
        return [(m, s, e) for m, s, e in pieces if e > s]

    def chunk(self, video_span: Span, audio_span: Span) -> ChunkPlan:
        """The slot list of the chunk holding these code frames (cached per span pair)."""
        key = (tuple(video_span), tuple(audio_span))
        if key not in self._cache:
            rows: list[tuple[int, ...]] = []
            for modality, f0, f1 in self.runs(video_span, audio_span):
                rows += (
                    self._video_rows(f0, f1)
                    if modality == Modality.VIDEO
                    else (self._audio_rows(f0, f1))
                )
            cols = torch.tensor(rows, dtype=torch.long).reshape(-1, 7).T  # [7,n]
            self._cache[key] = ChunkPlan(*cols)
        return self._cache[key]

    def _video_rows(self, f0: int, f1: int) -> list[tuple[int, ...]]:
        v, grouped = int(Modality.VIDEO), self.cfg.grouped("video")
        return [
            (v, f, r, c, -1, 1 + r * self.w + c, r * self.w + c if grouped else 0)
            for f in range(f0, f1)
            for r in range(self.h)
            for c in range(self.w)
        ]

    def _audio_rows(self, f0: int, f1: int) -> list[tuple[int, ...]]:
        steps = (
            [(f, k) for f in range(f0, f1) for k in range(self.K)]
            if self.cfg.audio_pattern == "time_major"
            else [(f, k) for k in range(self.K) for f in range(f0, f1)]
        )
        a, hw, grouped = int(Modality.AUDIO), self.h * self.w, self.cfg.grouped("audio")
        return [(a, f, -1, -1, k, 1 + hw + k, k if grouped else 0) for f, k in steps]
