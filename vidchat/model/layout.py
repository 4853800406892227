"""Sequence layout: how a conversation's codes become one token sequence, and back.

Public API
----------
- `LayoutConfig(video_frame_rate, video_grid, video_codebook_size, audio_frame_rate,
  audio_num_codebooks, audio_codebook_size, chunk_seconds=0.5, audio_pattern="time_major",
  chunk_order="frame_interleaved")`,
  `LayoutConfig.from_specs(video_spec, audio_spec, **layout_cfg)` (duck-typed tokenizer specs).
- `Vocab`: special token ids, `video_range`, `audio_range(k)`, `size`.
- `Role`, `Modality` (IntEnum), `Segment(role, video [T,h,w], audio [K,Ta])`.
- `SequenceLayout(cfg)`:
  - `.build(segments, ref=None, open_responder=False) -> LaidOutSequence`
  - `.prompt(segments, ref=None) -> LaidOutSequence` (ends with an open `<responder>` marker)
  - `.split(tokens [L]) -> SplitSequence(ref [h,w] | None, segments)` (inverse of build)
  - `.responder_grammar(max_chunks) -> ResponderGrammar` (allowed range + metadata per position)
  - `.chunk_bounds(n_frames, frame_rate)`, `.chunk_span(i)`, `.chunk_frames(i)`,
    `.chunk_pieces(video_span, audio_span)`, `.num_slots`, `.tokens_per_second`
- `LaidOutSequence`: per-token `[L]` tensors (tokens, roles, modality, slots, next_slots, segment,
  chunk, frame, row, col, codebook) and `.loss_mask("responder" | "after_ref")`.
- `pad_batch(seqs, side="right"|"left") -> dict` of `[B, L]` tensors (+ `valid` bool).

Sequence grammar
----------------
    <bos> [<ref> ref codes (h*w)] (<partner> chunk…)* … <responder> chunk… <eot> …

Segments (partner or responder turns, history first, the current turn last) follow the optional
reference frame; every responder segment is closed by `<eot>`, a partner segment ends where the
next role marker starts. A chunk is `<chunk>` followed by its code frames. Chunk i of a segment
holds code frames `[floor(i*c*r), floor((i+1)*c*r))` of each stream with rate r
(c = chunk_seconds), computed with exact fractions, so video and audio never drift apart however
long the turn is.

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

A listening-branch turn (partner speaks, the listener stays silent) is an ordinary responder
segment whose audio codes are the codec's codes for silence: the grammar stays one shape, and the
model learns "silent listener" as an audio outcome instead of a missing stream.

Audio pattern
-------------
`time_major` (default) writes each audio time step's codebooks 0..K-1 next to each other;
`codebook_major` writes, within a chunk, all of codebook 0's steps, then codebook 1's, ...
A MusicGen-style *delay* pattern pays off only when one decoder step emits K tokens at once (one
head per codebook); here every step emits one token of one shared vocabulary, so flattening is
exact (each codebook is conditioned on the coarser ones of the same step) and needs no padding
tokens at chunk edges, which keeps chunks self-contained and streamable.

Positions and slots
-------------------
The model uses RoPE over the sequence index (which keeps a Hugging Face Llama initialisation exact)
plus two learned embeddings: the token's role, and the *slot of the token it predicts next*
(`next_slots`): 0 = a special token, 1 + row*w + col = a video code at (row, col),
1 + h*w + k = audio codebook k. The next slot is known from the grammar, so telling the model
"predict the code at row 2, col 3" costs nothing and removes any need to count tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import IntEnum
from fractions import Fraction
from typing import Any

import torch
from torch import Tensor

from vidchat.errors import ConfigError

AUDIO_PATTERNS = ("time_major", "codebook_major")
CHUNK_ORDERS = ("frame_interleaved", "audio_first", "video_first")
LOSS_MODES = ("responder", "after_ref")


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


def _fraction(x: float) -> Fraction:
    """Exact decimal value of a config float (0.5 -> 1/2, 29.97 -> 2997/100)."""
    return Fraction(str(x))


def _long(codes: Any) -> Tensor:
    """Codes from shards (uint16 numpy or torch) or models as a long tensor."""
    if not isinstance(codes, Tensor):
        codes = torch.from_numpy(codes.astype("int64", copy=False))
    return codes.long()


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


@dataclass
class Segment:
    """One turn of one speaker: video codes `[T,h,w]` and audio codes `[K,Ta]` (raw code ids)."""

    role: Role
    video: Tensor  # [T,h,w] (torch or numpy, any integer dtype, e.g. uint16 from shards)
    audio: Tensor  # [K,Ta]


@dataclass
class SplitSequence:
    ref: Tensor | None  # [h,w]
    segments: list[Segment]


_META = ("roles", "modality", "slots", "segment", "chunk", "frame", "row", "col", "codebook")


@dataclass
class LaidOutSequence:
    """A laid-out sequence: tokens and per-token metadata, all `[L]` long tensors.

    -1 marks "not applicable" in segment/chunk/frame/row/col/codebook. `frame` is the code
    frame index within its segment's stream (video frame or audio step); `chunk` the chunk index
    within the segment; `segment` the segment index (-1 for <bos> and the reference).
    `next_slots[i] = slots[i+1]` (0 at the end, or the grammar's first slot for an open prompt)
    is the model's slot input: the slot of the token position i predicts.
    """

    tokens: Tensor
    roles: Tensor
    modality: Tensor
    slots: Tensor
    next_slots: Tensor
    segment: Tensor
    chunk: Tensor
    frame: Tensor
    row: Tensor
    col: Tensor
    codebook: Tensor
    ref_end: int
    """Index one past the last reference token (1 when there is no reference)."""

    def __len__(self) -> int:
        return self.tokens.numel()

    def loss_mask(self, mode: str) -> Tensor:
        """`[L]` bool, True where token i is a training target (predicted from position i-1).

        `responder` (SFT): every token after a `<responder>` marker up to and including its
        `<eot>`. `after_ref` (pretraining): every token after the reference frame.
        """
        if mode == "responder":
            return (self.roles == Role.RESPONDER) & (self.tokens != Vocab.responder)
        if mode == "after_ref":
            mask = torch.zeros(len(self), dtype=torch.bool)
            mask[self.ref_end :] = True
            return mask & (self.tokens != Vocab.pad)
        raise ConfigError(f"loss mode must be one of {LOSS_MODES}, got {mode!r}")

    def model_inputs(self) -> dict[str, Tensor]:
        """What `VidChatLM.forward` takes: tokens, roles, slots (the next slots), `[L]` each."""
        return {"tokens": self.tokens, "roles": self.roles, "slots": self.next_slots}


@dataclass
class ResponderGrammar:
    """Allowed next token and metadata for every position n of a generated responder segment.

    Position 0 is the token right after `<responder>`. All `[N]` long tensors, N = the longest
    responder segment (`max_chunks` full chunks plus `<eot>`). Token n must lie in
    `[lo[n], hi[n])`; `slots[n]` is its slot (so the model input at position n-1 is `slots[n]`);
    `modality[n]` picks the sampling settings; `frame[n]` / `codebook[n]` place a code in its
    stream (-1 where not applicable, as in `LaidOutSequence`); `chunk_starts[i]` is the position
    of chunk i's `<chunk>` marker (`chunk_starts[max_chunks]` the closing `<eot>`).
    """

    lo: Tensor
    hi: Tensor
    slots: Tensor
    modality: Tensor
    frame: Tensor
    codebook: Tensor
    chunk_starts: list[int]

    def __len__(self) -> int:
        return self.lo.numel()


class SequenceLayout:
    """Builds and splits sequences for one `LayoutConfig` (see the module docstring)."""

    def __init__(self, cfg: LayoutConfig):
        self.cfg = cfg
        self.vocab = Vocab(
            cfg.video_codebook_size, cfg.audio_codebook_size, cfg.audio_num_codebooks
        )
        self.h, self.w = cfg.video_grid
        self.K = cfg.audio_num_codebooks
        self._chunk = _fraction(cfg.chunk_seconds)
        self._video_rate = _fraction(cfg.video_frame_rate)
        self._audio_rate = _fraction(cfg.audio_frame_rate)

    # ---- slots -------------------------------------------------------------------------------
    @property
    def num_slots(self) -> int:
        """Size of the slot embedding: special + h*w video positions + K audio codebooks."""
        return 1 + self.h * self.w + self.K

    @property
    def tokens_per_second(self) -> float:
        """Tokens per second of media in a segment (codes plus one `<chunk>` per chunk)."""
        c = self.cfg
        return (
            c.video_frame_rate * self.h * self.w
            + c.audio_frame_rate * self.K
            + 1.0 / c.chunk_seconds
        )

    # ---- chunking ----------------------------------------------------------------------------
    def _frames_per_chunk(self, rate: Fraction) -> Fraction:
        return self._chunk * rate

    def _num_chunks(self, n_frames: int, rate: Fraction) -> int:
        return math.ceil(Fraction(n_frames) / self._frames_per_chunk(rate))

    def chunk_bounds(self, n_frames: int, frame_rate: float, n_chunks: int | None = None):
        """`[(start, end)]` code-frame range of each chunk for a stream of `n_frames` frames."""
        rate = _fraction(frame_rate)
        per = self._frames_per_chunk(rate)
        n = self._num_chunks(n_frames, rate) if n_chunks is None else n_chunks
        return [
            (min(math.floor(i * per), n_frames), min(math.floor((i + 1) * per), n_frames))
            for i in range(n)
        ]

    def chunk_span(self, i: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """((v0, v1), (a0, a1)): code frames of chunk i of an unbounded stream, per stream."""
        pv, pa = self._frames_per_chunk(self._video_rate), self._frames_per_chunk(self._audio_rate)
        return (
            (math.floor(i * pv), math.floor((i + 1) * pv)),
            (math.floor(i * pa), math.floor((i + 1) * pa)),
        )

    def chunk_frames(self, i: int) -> tuple[int, int]:
        """(video frames, audio steps) of chunk i of an unbounded stream."""
        (v0, v1), (a0, a1) = self.chunk_span(i)
        return v1 - v0, a1 - a0

    def chunk_pieces(
        self, video_span: tuple[int, int], audio_span: tuple[int, int]
    ) -> list[tuple[Modality, int, int]]:
        """One chunk's code frames in sequence order: `[(modality, start, end)]` runs.

        video_span / audio_span: the chunk's `[start, end)` code frames of each stream
        (absolute indices within the segment). Empty runs are left out.
        """
        (v0, v1), (a0, a1) = video_span, audio_span
        order = self.cfg.chunk_order
        if order == "video_first":
            pieces = [(Modality.VIDEO, v0, v1), (Modality.AUDIO, a0, a1)]
        elif order == "audio_first":
            pieces = [(Modality.AUDIO, a0, a1), (Modality.VIDEO, v0, v1)]
        else:  # frame_interleaved: audio step s goes before the video frame its start falls in
            ratio = self._audio_rate / self._video_rate  # audio steps per video frame
            pieces, a = [], a0
            for f in range(v0, v1):
                end = min(max(math.ceil((f + 1) * ratio), a), a1)
                pieces += [(Modality.AUDIO, a, end), (Modality.VIDEO, f, f + 1)]
                a = end
            pieces.append((Modality.AUDIO, a, a1))  # steps starting after the last frame ends
        return [(m, s, e) for m, s, e in pieces if e > s]

    # ---- build -------------------------------------------------------------------------------
    def build(
        self,
        segments: Sequence[Segment],
        ref: Tensor | None = None,
        open_responder: bool = False,
    ) -> LaidOutSequence:
        """Lay out `[<bos>] [<ref> ref] segments… [<responder>]` as one sequence.

        ref: `[h,w]` codes of the responder's reference frame, or None.
        open_responder: append an open `<responder>` marker (a generation prompt).
        """
        parts: list[dict[str, Tensor]] = [self._specials([Vocab.bos], Role.NONE)]
        if ref is not None:
            parts.append(self._specials([Vocab.ref], Role.REF))
            parts.append(self._video(_long(ref).reshape(1, self.h, self.w), Role.REF, -1, -1, 0))
        ref_end = sum(p["tokens"].numel() for p in parts)
        for s, seg in enumerate(segments):
            parts.extend(self._segment(seg, s))
        if open_responder:
            parts.append(self._specials([Vocab.responder], Role.RESPONDER, segment=len(segments)))
        cat = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        next_slots = torch.zeros_like(cat["slots"])
        next_slots[:-1] = cat["slots"][1:]  # an open prompt's next token is <chunk>: slot 0
        return LaidOutSequence(next_slots=next_slots, ref_end=ref_end, **cat)

    def prompt(self, segments: Sequence[Segment], ref: Tensor | None = None) -> LaidOutSequence:
        """A generation prompt: the context followed by an open `<responder>` marker."""
        return self.build(segments, ref, open_responder=True)

    def _piece(self, tokens: Tensor, role: Role, modality: Modality, slots: Tensor, **meta):
        n = tokens.numel()
        out = {"tokens": tokens.long().reshape(-1)}
        out["roles"] = torch.full((n,), int(role), dtype=torch.long)
        out["modality"] = torch.full((n,), int(modality), dtype=torch.long)
        out["slots"] = slots.reshape(-1)
        for key in ("segment", "chunk", "frame", "row", "col", "codebook"):
            value = meta.get(key, -1)
            out[key] = (
                value.reshape(-1).long()
                if isinstance(value, Tensor)
                else torch.full((n,), int(value), dtype=torch.long)
            )
        return out

    def _specials(self, ids: list[int], role: Role, segment: int = -1, chunk: int = -1):
        t = torch.tensor(ids, dtype=torch.long)
        return self._piece(
            t, role, Modality.SPECIAL, torch.zeros_like(t), segment=segment, chunk=chunk
        )

    def _video(self, codes: Tensor, role: Role, segment: int, chunk: int, frame0: int):
        # codes [t,h,w] -> tokens [t*h*w], row-major per frame
        t = codes.shape[0]
        if t and tuple(codes.shape[1:]) != (self.h, self.w):
            raise ValueError(f"video codes must be [T,{self.h},{self.w}], got {list(codes.shape)}")
        self._check_range(codes, self.cfg.video_codebook_size, "video")
        row = torch.arange(self.h).view(1, self.h, 1).expand(t, self.h, self.w)
        col = torch.arange(self.w).view(1, 1, self.w).expand(t, self.h, self.w)
        frame = (frame0 + torch.arange(t)).view(t, 1, 1).expand(t, self.h, self.w)
        return self._piece(
            codes.long() + self.vocab.video_offset,
            role,
            Modality.VIDEO,
            1 + row * self.w + col,
            segment=segment,
            chunk=chunk,
            frame=frame,
            row=row,
            col=col,
        )

    def _audio(self, codes: Tensor, role: Role, segment: int, chunk: int, frame0: int):
        # codes [K,ta] -> tokens [ta*K] (time_major) or [K*ta] (codebook_major)
        K, ta = codes.shape
        self._check_range(codes, self.cfg.audio_codebook_size, "audio")
        book = torch.arange(K).view(K, 1).expand(K, ta)
        frame = (frame0 + torch.arange(ta)).view(1, ta).expand(K, ta)
        tokens = codes.long() + self.vocab.audio_offset(0) + book * self.cfg.audio_codebook_size
        if self.cfg.audio_pattern == "time_major":  # [K,ta] -> [ta,K]
            tokens, book, frame = tokens.T, book.T, frame.T
        return self._piece(
            tokens,
            role,
            Modality.AUDIO,
            1 + self.h * self.w + book,
            segment=segment,
            chunk=chunk,
            frame=frame,
            codebook=book,
        )

    @staticmethod
    def _check_range(codes: Tensor, size: int, what: str) -> None:
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= size):
            raise ValueError(
                f"{what} codes must lie in [0, {size}), got [{int(codes.min())}, {int(codes.max())}]"
            )

    def _segment(self, seg: Segment, s: int) -> list[dict[str, Tensor]]:
        if seg.role not in (Role.PARTNER, Role.RESPONDER):
            raise ValueError(f"segment role must be PARTNER or RESPONDER, got {seg.role!r}")
        video, audio = _long(seg.video), _long(seg.audio)  # [T,h,w], [K,Ta]
        if audio.dim() != 2 or audio.shape[0] != self.K:
            raise ValueError(f"audio codes must be [{self.K},Ta], got {list(audio.shape)}")
        nv = self._num_chunks(video.shape[0], self._video_rate)
        na = self._num_chunks(audio.shape[1], self._audio_rate)
        if abs(nv - na) > 1:
            raise ValueError(
                f"video ({video.shape[0]} frames at {self.cfg.video_frame_rate} fps) and audio "
                f"({audio.shape[1]} steps at {self.cfg.audio_frame_rate} Hz) differ by more than one chunk"
            )
        n = max(nv, na)
        marker = Vocab.partner if seg.role == Role.PARTNER else Vocab.responder
        parts = [self._specials([marker], seg.role, segment=s)]
        vb = self.chunk_bounds(video.shape[0], self.cfg.video_frame_rate, n)
        ab = self.chunk_bounds(audio.shape[1], self.cfg.audio_frame_rate, n)
        for i, spans in enumerate(zip(vb, ab)):
            parts.append(self._specials([Vocab.chunk], seg.role, segment=s, chunk=i))
            for modality, f0, f1 in self.chunk_pieces(*spans):
                if modality == Modality.VIDEO:
                    parts.append(self._video(video[f0:f1], seg.role, s, i, f0))
                else:
                    parts.append(self._audio(audio[:, f0:f1], seg.role, s, i, f0))
        if seg.role == Role.RESPONDER:
            parts.append(self._specials([Vocab.eot], seg.role, segment=s))
        return parts

    # ---- split -------------------------------------------------------------------------------
    def split(self, tokens: Tensor) -> SplitSequence:
        """Inverse of `build`: `[L]` tokens -> reference codes and per-segment codes.

        Padding is skipped; an open final responder segment (a generation) is returned as is.
        Raises ValueError on a malformed sequence (e.g. a chunk with a partial frame).
        """
        toks = tokens.reshape(-1).tolist()
        toks = [t for t in toks if t != Vocab.pad]
        i = 0
        if i < len(toks) and toks[i] == Vocab.bos:
            i += 1
        ref = None
        hw = self.h * self.w
        if i < len(toks) and toks[i] == Vocab.ref:
            ref = torch.tensor(toks[i + 1 : i + 1 + hw]) - self.vocab.video_offset
            if ref.numel() != hw:
                raise ValueError("reference frame is truncated")
            ref = ref.view(self.h, self.w)
            i += 1 + hw
        segments: list[Segment] = []
        while i < len(toks):
            t = toks[i]
            if t not in (Vocab.partner, Vocab.responder):
                raise ValueError(f"expected a role marker at position {i}, got token {t}")
            role = Role.PARTNER if t == Vocab.partner else Role.RESPONDER
            i += 1
            videos, audios = [], []
            while i < len(toks) and toks[i] == Vocab.chunk:
                j = i + 1
                while j < len(toks) and toks[j] >= Vocab.num_special:
                    j += 1
                v, a = self._split_chunk(torch.tensor(toks[i + 1 : j], dtype=torch.long))
                videos.append(v)
                audios.append(a)
                i = j
            if i < len(toks) and toks[i] == Vocab.eot:
                i += 1
            video = (
                torch.cat(videos) if videos else torch.zeros(0, self.h, self.w, dtype=torch.long)
            )
            audio = torch.cat(audios, 1) if audios else torch.zeros(self.K, 0, dtype=torch.long)
            segments.append(Segment(role, video, audio))
        return SplitSequence(ref, segments)

    def _split_chunk(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """One chunk's code tokens `[n]` -> video `[t,h,w]`, audio `[K,ta]` (raw codes).

        The chunk is cut into runs of one modality (whatever the chunk order): video runs are
        whole frames in time order, each audio run whole audio steps in `audio_pattern` order.
        """
        vlo, vhi = self.vocab.video_range
        is_video = (t >= vlo) & (t < vhi)
        change = (is_video[1:] != is_video[:-1]).nonzero()[:, 0] + 1
        edges = [0, *change.tolist(), t.numel()]
        videos, audios = [], []
        for r0, r1 in zip(edges[:-1], edges[1:]):
            run = t[r0:r1]
            if bool(is_video[r0]):
                if run.numel() % (self.h * self.w):
                    raise ValueError("malformed chunk: video codes must come in whole frames")
                videos.append((run - vlo).view(-1, self.h, self.w))
            else:
                audios.append(self._split_audio_run(run))
        video = torch.cat(videos) if videos else t.new_zeros(0, self.h, self.w)
        audio = torch.cat(audios, 1) if audios else t.new_zeros(self.K, 0)
        return video, audio

    def _split_audio_run(self, t: Tensor) -> Tensor:
        """A run of audio code tokens `[ta*K]` -> raw codes `[K,ta]`."""
        a = t - self.vocab.audio_offset(0)
        book = torch.div(a, self.cfg.audio_codebook_size, rounding_mode="floor")
        if a.numel() % self.K:
            raise ValueError("malformed chunk: partial audio frame")
        if self.cfg.audio_pattern == "time_major":  # [ta*K] -> [ta,K] -> [K,ta]
            a, book = a.view(-1, self.K).T, book.view(-1, self.K).T
        else:  # [K*ta] -> [K,ta]
            a, book = a.view(self.K, -1), book.view(self.K, -1)
        if not bool((book == torch.arange(self.K).view(-1, 1)).all()):
            raise ValueError("malformed chunk: audio codebooks out of order")
        return a - book * self.cfg.audio_codebook_size

    # ---- generation grammar ------------------------------------------------------------------
    def responder_grammar(self, max_chunks: int) -> ResponderGrammar:
        """Allowed token range and slot for each position of a generated responder segment."""
        if max_chunks < 1:
            raise ConfigError(f"max_chunks must be >= 1, got {max_chunks}")
        v = self.vocab
        rows: list[tuple[int, int, int, int, int, int]] = []  # lo, hi, slot, modality, frame, book
        starts = []
        for i in range(max_chunks + 1):
            starts.append(len(rows))
            if i == 0:
                rng = (Vocab.chunk, Vocab.chunk + 1)  # at least one chunk
            elif i == max_chunks:
                rng = (Vocab.eot, Vocab.eot + 1)  # budget spent: close the turn
            else:
                rng = (Vocab.eot, Vocab.chunk + 1)  # <eot> or another <chunk>
            rows.append((*rng, 0, int(Modality.SPECIAL), -1, -1))
            if i == max_chunks:
                break
            for modality, f0, f1 in self.chunk_pieces(*self.chunk_span(i)):
                if modality == Modality.VIDEO:
                    rows += [
                        (*v.video_range, 1 + r * self.w + c, int(Modality.VIDEO), f, -1)
                        for f in range(f0, f1)
                        for r in range(self.h)
                        for c in range(self.w)
                    ]
                    continue
                steps = (
                    [(f, k) for f in range(f0, f1) for k in range(self.K)]
                    if self.cfg.audio_pattern == "time_major"
                    else [(f, k) for k in range(self.K) for f in range(f0, f1)]
                )
                rows += [
                    (*v.audio_range(k), 1 + self.h * self.w + k, int(Modality.AUDIO), f, k)
                    for f, k in steps
                ]
        cols = torch.tensor(rows, dtype=torch.long).T  # [6,N]
        return ResponderGrammar(*cols, chunk_starts=starts)


def pad_batch(
    seqs: Sequence[LaidOutSequence], side: str = "right", loss_mode: str | None = None
) -> dict[str, Tensor]:
    """Stack sequences into `[B, L]` tensors, padding with `<pad>` (metadata 0 / -1).

    Returns every `LaidOutSequence` tensor field plus `valid` (`[B,L]` bool, False on padding)
    and, given `loss_mode`, `loss_mask` (`[B,L]` bool, see `LaidOutSequence.loss_mask`).
    Use `side="left"` for generation prompts, `"right"` for training.
    """
    if side not in ("left", "right"):
        raise ConfigError(f"pad side must be 'left' or 'right', got {side!r}")
    L = max(len(s) for s in seqs)
    out: dict[str, Tensor] = {}
    keys = ("tokens", "next_slots", *_META, "valid") + (("loss_mask",) if loss_mode else ())
    for key in keys:
        fill = -1 if key in ("segment", "chunk", "frame", "row", "col", "codebook") else 0
        dtype = torch.bool if key in ("valid", "loss_mask") else torch.long
        batch = torch.full((len(seqs), L), fill, dtype=dtype)
        for b, s in enumerate(seqs):
            if key == "valid":
                value = torch.ones(len(s), dtype=torch.bool)
            elif key == "loss_mask":
                value = s.loss_mask(loss_mode)
            else:
                value = getattr(s, key)
            if side == "right":
                batch[b, : len(s)] = value
            else:
                batch[b, L - len(s) :] = value
        out[key] = batch
    return out
