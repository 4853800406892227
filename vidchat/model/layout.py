"""Sequence layout: how a conversation's codes become one token sequence, and back.

Public API
----------
- `SequenceLayout(cfg: LayoutConfig)`:
  - `.build(segments, ref=None, open_responder=False) -> LaidOutSequence`
  - `.prompt(segments, ref=None) -> LaidOutSequence` (ends with an open `<responder>` marker)
  - `.split(tokens [L]) -> SplitSequence(ref [h,w] | None, segments)` (inverse of build)
  - `.responder_grammar(max_chunks) -> ResponderGrammar` (allowed range + metadata per position)
  - `.plan` (the `TokenPlan`: chunk arithmetic and each chunk's slots), `.vocab`, `.num_slots`,
    `.tokens_per_second`, `.chunk_bounds(n_frames, frame_rate)`, `.chunk_span(i)`
- `Segment(role, video [T,h,w], audio [K,Ta])`; `LaidOutSequence`: per-token `[L]` tensors
  (tokens, roles, modality, slots, next_slots, segment, chunk, frame, row, col, codebook) and
  `.loss_mask("responder" | "after_ref")`.
- `pad_batch(seqs, side="right"|"left") -> dict` of `[B, L]` tensors (+ `valid` bool).

The vocabulary lives in `vidchat.model.vocab`, the chunk arithmetic and the order of a chunk's
codes in `vidchat.model.plan`, the generation grammar in `vidchat.model.grammar`. This module
only walks a conversation through the plan.

Sequence grammar
----------------
    <bos> [<ref> ref codes (h*w)] (<partner> chunk…)* … <responder> chunk… <eot> …

Segments (partner or responder turns, history first, the current turn last) follow the optional
reference frame; every responder segment is closed by `<eot>`, a partner segment ends where the
next role marker starts. A chunk is `<chunk>` followed by its codes in plan order.

A listening-branch turn (partner speaks, the listener stays silent) is an ordinary responder
segment whose audio codes are the codec's codes for silence: the grammar stays one shape, and the
model learns "silent listener" as an audio outcome instead of a missing stream.

Positions and slots
-------------------
The model uses RoPE over the sequence index (which keeps a Hugging Face Llama initialisation exact)
plus two learned embeddings: the token's role, and the *slot of the token it predicts next*
(`next_slots`, see `vidchat.model.plan`). The next slot is known from the plan, so telling the
model "predict the code at row 2, col 3" costs nothing and removes any need to count tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vidchat.errors import ConfigError
from vidchat.model.grammar import ResponderGrammar, responder_grammar
from vidchat.model.plan import ChunkPlan, LayoutConfig, TokenPlan
from vidchat.model.vocab import Modality, Role, Vocab

LOSS_MODES = ("responder", "after_ref")
_META = (
    "roles",
    "modality",
    "slots",
    "segment",
    "chunk",
    "frame",
    "row",
    "col",
    "codebook",
    "depth",
)
_PLAN_META = ("frame", "row", "col", "codebook")


def _long(codes: Any) -> Tensor:
    """Codes from shards (uint16 numpy or torch) or models as a long tensor."""
    if not isinstance(codes, Tensor):
        codes = torch.from_numpy(codes.astype("int64", copy=False))
    return codes.long()


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
    depth: Tensor
    """The token's place within its backbone step (0 starts a step; see `ChunkPlan.depth`)."""
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
        """What `VidChatLM.forward` takes: tokens, roles, slots (the next slots), depth, `[L]`."""
        return {
            "tokens": self.tokens,
            "roles": self.roles,
            "slots": self.next_slots,
            "depth": self.depth,
        }


class SequenceLayout:
    """Builds and splits sequences for one `LayoutConfig` (see the module docstring)."""

    def __init__(self, cfg: LayoutConfig):
        self.cfg = cfg
        self.plan = TokenPlan(cfg)
        self.vocab = Vocab(
            cfg.video_codebook_size, cfg.audio_codebook_size, cfg.audio_num_codebooks
        )
        self.h, self.w = cfg.video_grid
        self.K = cfg.audio_num_codebooks

    @property
    def num_slots(self) -> int:
        return self.plan.num_slots

    @property
    def tokens_per_second(self) -> float:
        return self.plan.tokens_per_second

    def chunk_bounds(self, n_frames: int, frame_rate: float, n_chunks: int | None = None):
        return self.plan.chunk_bounds(n_frames, frame_rate, n_chunks)

    def chunk_span(self, i: int) -> tuple[tuple[int, int], tuple[int, int]]:
        return self.plan.chunk_span(i)

    def responder_grammar(self, max_chunks: int) -> ResponderGrammar:
        """Allowed token range and slot for each position of a generated responder segment."""
        return responder_grammar(self.plan, self.vocab, max_chunks)

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
            parts.append(self._reference(_long(ref)))
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

    def _piece(self, tokens: Tensor, role: Role, modality: Tensor | int, slots: Tensor, **meta):
        n = tokens.numel()
        out = {"tokens": tokens.long().reshape(-1)}
        out["roles"] = torch.full((n,), int(role), dtype=torch.long)
        out["modality"] = (
            modality if isinstance(modality, Tensor) else torch.full((n,), int(modality))
        ).long()
        out["slots"] = slots.reshape(-1)
        for key in ("segment", "chunk", *_PLAN_META, "depth"):
            value = meta.get(key, 0 if key == "depth" else -1)
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

    def _reference(self, ref: Tensor) -> dict[str, Tensor]:
        """The reference frame's codes `[h,w]`, row-major (the plan of one video frame)."""
        codes = ref.reshape(1, self.h, self.w)
        self._check_range(codes, self.cfg.video_codebook_size, "video")
        plan = self.plan.chunk((0, 1), (0, 0))
        return self._codes(plan, codes, codes.new_zeros(self.K, 0), Role.REF, -1, -1)

    def _codes(
        self, plan: ChunkPlan, video: Tensor, audio: Tensor, role: Role, segment: int, chunk: int
    ) -> dict[str, Tensor]:
        """Gather one chunk's codes in plan order: video `[T,h,w]`, audio `[K,Ta]` -> a piece."""
        v = plan.is_video
        tokens = torch.empty(len(plan), dtype=torch.long)
        tokens[v] = video[plan.frame[v], plan.row[v], plan.col[v]] + self.vocab.video_offset
        a, book = ~v, plan.codebook[~v]
        tokens[a] = (
            audio[book, plan.frame[a]]
            + self.vocab.audio_offset(0)
            + book * self.cfg.audio_codebook_size
        )
        meta = {k: getattr(plan, k) for k in (*_PLAN_META, "depth")}
        return self._piece(
            tokens, role, plan.modality, plan.slot, segment=segment, chunk=chunk, **meta
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
        if video.numel() == 0:
            video = video.reshape(0, self.h, self.w)
        if audio.dim() != 2 or audio.shape[0] != self.K:
            raise ValueError(f"audio codes must be [{self.K},Ta], got {list(audio.shape)}")
        if video.shape[0] and tuple(video.shape[1:]) != (self.h, self.w):
            raise ValueError(f"video codes must be [T,{self.h},{self.w}], got {list(video.shape)}")
        self._check_range(video, self.cfg.video_codebook_size, "video")
        self._check_range(audio, self.cfg.audio_codebook_size, "audio")
        nv = self.plan.num_chunks(video.shape[0], self.plan.video_rate)
        na = self.plan.num_chunks(audio.shape[1], self.plan.audio_rate)
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
            parts.append(self._codes(self.plan.chunk(*spans), video, audio, seg.role, s, i))
        if seg.role == Role.RESPONDER:
            parts.append(self._specials([Vocab.eot], seg.role, segment=s))
        return parts

    # ---- split -------------------------------------------------------------------------------
    def split(self, tokens: Tensor) -> SplitSequence:
        """Inverse of `build`: `[L]` tokens -> reference codes and per-segment codes.

        Padding is skipped; an open final responder segment (a generation) is returned as is.
        Raises ValueError on a malformed sequence (e.g. a chunk with a partial frame).
        """
        toks = tokens.reshape(-1)
        toks = toks[toks != Vocab.pad].tolist()
        i = 1 if toks[:1] == [Vocab.bos] else 0
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
            chunks, i = self._chunk_runs(toks, i + 1)
            if i < len(toks) and toks[i] == Vocab.eot:
                i += 1
            segments.append(Segment(role, *self._split_segment(chunks)))
        return SplitSequence(ref, segments)

    @staticmethod
    def _chunk_runs(toks: list[int], i: int) -> tuple[list[Tensor], int]:
        """The code tokens of each `<chunk>` starting at position i -> (chunks, next position)."""
        chunks = []
        while i < len(toks) and toks[i] == Vocab.chunk:
            j = i + 1
            while j < len(toks) and toks[j] >= Vocab.num_special:
                j += 1
            chunks.append(torch.tensor(toks[i + 1 : j], dtype=torch.long))
            i = j
        return chunks, i

    def _split_segment(self, chunks: list[Tensor]) -> tuple[Tensor, Tensor]:
        """One segment's chunks of code tokens -> video `[T,h,w]`, audio `[K,Ta]` (raw codes).

        Each chunk's spans follow from how many codes of each stream it holds, and its plan then
        says where every token goes; a chunk that does not match its plan is malformed.
        """
        vlo, vhi = self.vocab.video_range
        videos, audios, v0, a0 = [], [], 0, 0
        for t in chunks:
            is_video = (t >= vlo) & (t < vhi)
            n_video, n_audio = int(is_video.sum()), int((~is_video).sum())
            if n_video % (self.h * self.w):
                raise ValueError("malformed chunk: video codes must come in whole frames")
            if n_audio % self.K:
                raise ValueError("malformed chunk: partial audio frame")
            nv, na = n_video // (self.h * self.w), n_audio // self.K
            plan = self.plan.chunk((v0, v0 + nv), (a0, a0 + na))
            video, audio = self._scatter(plan, t, is_video, v0, a0, nv, na)
            videos.append(video)
            audios.append(audio)
            v0, a0 = v0 + nv, a0 + na
        video = torch.cat(videos) if videos else torch.zeros(0, self.h, self.w, dtype=torch.long)
        audio = torch.cat(audios, 1) if audios else torch.zeros(self.K, 0, dtype=torch.long)
        return video, audio

    def _scatter(
        self, plan: ChunkPlan, t: Tensor, is_video: Tensor, v0: int, a0: int, nv: int, na: int
    ) -> tuple[Tensor, Tensor]:
        """Place one chunk's tokens `[n]` by its plan -> video `[nv,h,w]`, audio `[K,na]`."""
        if not torch.equal(is_video, plan.is_video):
            raise ValueError("malformed chunk: video and audio codes out of the plan's order")
        v, a = plan.is_video, ~plan.is_video
        raw = t[a] - self.vocab.audio_offset(0)
        book = torch.div(raw, self.cfg.audio_codebook_size, rounding_mode="floor")
        if not torch.equal(book, plan.codebook[a]):
            raise ValueError("malformed chunk: audio codebooks out of order")
        video = t.new_zeros(nv, self.h, self.w)
        video[plan.frame[v] - v0, plan.row[v], plan.col[v]] = t[v] - self.vocab.video_offset
        audio = t.new_zeros(self.K, na)
        audio[book, plan.frame[a] - a0] = raw - book * self.cfg.audio_codebook_size
        return video, audio


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
