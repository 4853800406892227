"""The depth head: one backbone step per video frame (or audio step), a small causal transformer
for the codes inside it (RQ-Transformer, Moshi's depth transformer).

With a flat layout every code is one backbone step, so the backbone's cost grows with h*w. With
`layout.video_head=depth` (or `audio_head=depth`) a frame's h*w codes (an audio step's K codes)
form one *step* (the token plan's `depth` field numbers the codes inside it). The backbone reads
one summed embedding per step; the depth transformer, conditioned on the backbone's state after
the previous step, predicts the step's codes one after another. Each depth position is told the
slot it predicts, as the flat backbone is.

`TransformerHead` is the block stack that the depth and frame heads share; it also predicts the
single-code steps (special tokens, a flat stream's codes) of a model with a grouped stream.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from vidchat.errors import ConfigError
from vidchat.model.blocks import Block, ModelConfig, RMSNorm, compute_dtype, rope_table
from vidchat.model.heads.base import Head, StepBatch
from vidchat.model.kv_cache import KVCache, decode_step
from vidchat.model.runner import EAGER, StepRunner


@dataclass(frozen=True)
class TransformerSettings:
    layers: int = 2
    """Blocks of the head's transformer."""
    dim: int | None = None
    """Its width; None = the backbone's. Narrower is cheaper per code (its input and output are
    projected from and to the backbone's width)."""

    def __post_init__(self) -> None:
        if self.layers < 0 or (self.dim is not None and self.dim <= 0):
            raise ConfigError(f"a head needs layers >= 0 and dim > 0, got {self}")


def head_config(cfg: ModelConfig, settings: TransformerSettings, size: int) -> ModelConfig:
    """The head transformer's shape: `settings.dim` wide (default the backbone's width) with the
    backbone's heads, `settings.layers` blocks, positions up to the step's size."""
    narrow = settings.dim is not None and settings.dim != cfg.dim
    return replace(
        cfg,
        n_layers=settings.layers,
        max_seq_len=max(size, 2),
        dim=settings.dim if narrow else cfg.dim,
        head_dim=None if narrow else cfg.head_dim,
        ffn_dim=None if narrow else cfg.ffn_dim,
        stream_heads={},
        attn_impl="sdpa",
        partner_summary=False,
    )


class TransformerHead(Head):
    """A transformer over one backbone step's positions, fed the backbone's state before it."""

    grouped = True
    causal = True
    """Each position sees the earlier ones only (the frame head sees the whole frame)."""
    Settings = TransformerSettings

    def __init__(self, cfg: ModelConfig, spec: dict[str, Any]) -> None:
        super().__init__(cfg, spec)
        self.cfg = dc = head_config(cfg, self.settings, self.size)
        self.embed_tokens = nn.Embedding(cfg.vocab_size, dc.dim)
        self.embed_slots = nn.Embedding(max(cfg.num_slots, 1), dc.dim)
        self.context_proj = nn.Linear(cfg.dim, dc.dim, bias=False)
        self.layers = nn.ModuleList(Block(dc) for _ in range(dc.n_layers))
        self.norm = RMSNorm(dc.dim, cfg.norm_eps)
        # back to the backbone's width for the shared output head (none when as wide)
        self.out_proj = nn.Linear(dc.dim, cfg.dim, bias=False) if dc.dim != cfg.dim else None
        cos, sin = rope_table(dc.head_dim, dc.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)  # [G,hd]
        self.register_buffer("rope_sin", sin, persistent=False)

    def inputs(self, context: Tensor, prev_tokens: Tensor, slots: Tensor) -> Tensor:
        """Inputs `[N,n,Dh]`: position 0 the projected context `[N,D]`, position d the
        embedding of the step's code d-1 (`prev_tokens [N,n-1]`); each plus its slot `[N,n]`."""
        first = self.context_proj(context)[:, None]  # [N,1,Dh]
        rest = self.embed_tokens(prev_tokens)  # [N,n-1,Dh]
        return torch.cat([first, rest], 1) + self.embed_slots(slots)

    def forward(self, x: Tensor) -> Tensor:
        """Inputs `[N,n,Dh]` -> hidden `[N,n,D]` (normed, at the backbone's width, for its
        output head)."""
        n = x.shape[1]
        cos, sin = self.rope_cos[:n], self.rope_sin[:n]
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, None, self.causal and n > 1, None, i)
        return self.widen(self.norm(x))

    def widen(self, h: Tensor) -> Tensor:
        return self.out_proj(h) if self.out_proj is not None else h

    def new_cache(self, batch: int) -> KVCache:
        """A cache for one step's codes (`decode_logits`), emptied by `reset`."""
        w = self.embed_tokens.weight
        return KVCache(self.cfg, batch, self.cfg.max_seq_len, w.device, compute_dtype(w))

    def decode_logits(self, lm_head: nn.Linear, x: Tensor, cache: KVCache) -> Tensor:
        """One static step inside a backbone step: input `[B,1,Dh]` -> next code's logits
        `[B,V]`."""
        rope = (self.rope_cos, self.rope_sin)
        return lm_head(self.widen(decode_step(self.layers, self.norm, rope, x, cache)))[:, -1]

    def single_logits(self, lm_head: nn.Linear, context: Tensor, slot: Tensor) -> Tensor:
        x = self.inputs(context, slot.new_zeros(slot.shape[0], 0), slot)
        return lm_head(self(x))[:, 0]

    def begin(
        self,
        lm_head: nn.Linear,
        context: Tensor,
        slot: Tensor,
        state: Any = None,
        run: StepRunner = EAGER,
    ) -> tuple[Tensor, Any]:
        """A single-code step (no state: nothing follows it in the step)."""
        return run(self.single_logits)(lm_head, context, slot), None


class DepthHead(TransformerHead):
    """The step's codes one after another, each from the codes before it."""

    kind = "depth"

    @classmethod
    def check_layout(cls, stream: str, layout: Any) -> None:
        super().check_layout(stream, layout)
        if stream == "audio" and layout.audio_pattern != "time_major":
            raise ConfigError("layout.audio_head=depth needs layout.audio_pattern=time_major")

    def step_logits(
        self, lm_head: nn.Linear, batch: StepBatch, pos: Tensor, context: Tensor
    ) -> Tensor:
        flat_tokens, flat_slots = batch.tokens.reshape(-1), batch.own_slots.reshape(-1)
        x = self.inputs(context, flat_tokens[pos[:, :-1]], flat_slots[pos])
        return lm_head(self(x))  # [N,n,V]: out[:, d] predicts pos[:, d]

    def begin(
        self,
        lm_head: nn.Linear,
        context: Tensor,
        slot: Tensor,
        state: Any = None,
        run: StepRunner = EAGER,
    ) -> tuple[Tensor, Any]:
        """The step's first code from the context; the state is the step's static cache,
        emptied and reused from one step to the next."""
        cache = state
        if cache is None:
            cache = run.cache(
                lambda batch, _: self.new_cache(batch), self, context.shape[0], self.cfg.max_seq_len
            )
        cache.reset()
        return run(self.first_logits)(lm_head, context, slot, cache), cache

    def advance(
        self, lm_head: nn.Linear, state: Any, token: Tensor, slot: Tensor, run: StepRunner = EAGER
    ) -> Tensor:
        return run(self.next_logits)(lm_head, token, slot, state)

    def first_logits(
        self, lm_head: nn.Linear, context: Tensor, slot: Tensor, cache: KVCache
    ) -> Tensor:
        """Static step: the context `[B,D]` and first slot `[B,1]` -> first code's logits."""
        x = self.inputs(context, slot.new_zeros(slot.shape[0], 0), slot)
        return self.decode_logits(lm_head, x, cache)

    def next_logits(
        self, lm_head: nn.Linear, token: Tensor, slot: Tensor, cache: KVCache
    ) -> Tensor:
        """Static step: the last code `[B,1]` and next slot `[B,1]` -> next code's logits."""
        return self.decode_logits(lm_head, self.embed_tokens(token) + self.embed_slots(slot), cache)
