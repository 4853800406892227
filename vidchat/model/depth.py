"""The depth head: one backbone step per video frame (or audio step), a small transformer for the
codes inside it.

With a flat layout every code is one backbone step, so the backbone's cost grows with h*w. With
`layout.video_head=depth` (or `audio_head=depth`) a frame's h*w codes (an audio step's K codes)
form one *step* (the token plan's `depth` field numbers the codes inside it). The backbone reads
one summed embedding per step; a depth transformer, conditioned on the backbone's state after
the previous step, predicts the step's codes one after another (RQ-Transformer, Moshi's depth
transformer). Each depth position is told the slot it predicts, as the flat backbone is.

Shapes: tokens, depth, slots `[B,L]` flat as laid out; steps `[B,S]`; a size-n group of steps
`[N,n]`. The logits keep the flat convention (position i predicts token i+1), so losses, masks
and the grammar are those of the flat model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidchat.model.blocks import Block, KVCache, ModelConfig, RMSNorm, compute_dtype, rope_table
from vidchat.model.frame_links import frame_codes, frame_logits, previous_frames
from vidchat.model.vocab import Modality


def depth_config(cfg: ModelConfig) -> ModelConfig:
    """The depth transformer's shape: `depth_dim` wide (default the backbone's width) with the
    backbone's heads, `depth_layers` blocks, positions up to the largest step."""
    narrow = cfg.depth_dim is not None and cfg.depth_dim != cfg.dim
    return replace(cfg, n_layers=cfg.depth_layers, max_seq_len=max(cfg.max_group, 2),
                   dim=cfg.depth_dim if narrow else cfg.dim,
                   head_dim=None if narrow else cfg.head_dim,
                   ffn_dim=None if narrow else cfg.ffn_dim, depth_layers=0, max_group=1,
                   depth_dim=None, attn_impl="sdpa", partner_summary=False)  # fmt: skip


class DepthTransformer(nn.Module):
    """Predicts the codes of one backbone step, given the backbone's hidden state before it."""

    causal = True
    """Each position sees the earlier ones only (the frame head sees the whole frame)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = dc = depth_config(cfg)
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
        """Depth inputs `[N,n,D]`: position 0 the projected context `[N,D]`, position d the
        embedding of the step's code d-1 (`prev_tokens [N,n-1]`); each plus its slot `[N,n]`."""
        first = self.context_proj(context)[:, None]  # [N,1,D]
        rest = self.embed_tokens(prev_tokens)  # [N,n-1,D]
        return torch.cat([first, rest], 1) + self.embed_slots(slots)

    def forward(self, x: Tensor, cache: KVCache | None = None) -> Tensor:
        """Depth inputs `[N,n,Dd]` (or the next one with a cache) -> hidden `[N,n,D]` (normed,
        at the backbone's width, for its output head)."""
        start = 0 if cache is None else cache.length
        n = x.shape[1]
        cos, sin = self.rope_cos[start : start + n], self.rope_sin[start : start + n]
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, None, self.causal and cache is None and n > 1, cache, i)
        if cache is not None:
            cache.length += n
        return self.project(self.norm(x))

    def project(self, h: Tensor) -> Tensor:
        return self.out_proj(h) if self.out_proj is not None else h

    def new_cache(self, batch: int) -> KVCache:
        w = self.embed_tokens.weight
        return KVCache(self.cfg, batch, self.cfg.max_seq_len, w.device, compute_dtype(w))


@dataclass
class Steps:
    """Where the backbone steps of a `[B,L]` batch lie (flattened positions, step order)."""

    start: Tensor  # [M] flat index b*L + j of each step's first token
    size: Tensor  # [M] tokens in the step
    row: Tensor  # [M] batch row
    index: Tensor  # [M] column of the step in the `[B,S]` step tensors
    per_row: int  # S: the most steps of any row

    @classmethod
    def of(cls, depth: Tensor, align_end: bool = False) -> Steps:
        """The steps of a `[B,L]` batch. Rows with fewer steps leave the tail of their step row
        empty, or with `align_end` (left-padded generation prompts) its head, so that every
        row's last step sits in the last column and the next step is appended for all alike."""
        B, L = depth.shape
        first = (depth == 0).clone()
        first[:, 0] = True  # every row starts a step
        flat = first.reshape(-1)
        start = flat.nonzero()[:, 0]  # [M]
        # the next start; each row's first token starts a step, so no step crosses a row end
        ends = torch.cat([start[1:], start.new_tensor([B * L])])
        row = start // L
        row_first = torch.searchsorted(start, row * L)  # index of each row's first step
        index = torch.arange(len(start), device=depth.device) - row_first
        per_row = int(index.max()) + 1
        if align_end:
            counts = torch.bincount(row, minlength=B)  # [B] steps per row
            index = index + (per_row - counts[row])
        return cls(start, ends - start, row, index, per_row)

    def valid(self, valid: Tensor | None, batch: int) -> Tensor | None:
        """`[B,S]` bool: the step exists and its first token is real (None: every step is)."""
        if valid is None and self.row.numel() == batch * self.per_row:
            return None
        out = torch.zeros(batch, self.per_row, dtype=torch.bool, device=self.row.device)
        first_valid = True if valid is None else valid.reshape(-1)[self.start]
        out[self.row, self.index] = first_valid
        return out

    def row_last(self, batch: int) -> Tensor:
        """Index (into the step lists) of each row's last step `[B]`."""
        rows = torch.arange(batch, device=self.row.device)
        return torch.searchsorted(self.row, rows, right=True) - 1


def own_slots(next_slots: Tensor) -> Tensor:
    """Each token's own slot `[B,L]` from the next-slot input (`own[i] = next[i-1]`)."""
    own = torch.zeros_like(next_slots)
    own[:, 1:] = next_slots[:, :-1]
    return own


def code_embedding(model, tokens: Tensor, own: Tensor) -> Tensor:
    """What one code adds to its backbone step: its token embedding plus its own slot's, any
    shape `[...]` -> `[..., D]` (training sums these per step; generation adds them as it goes)."""
    emb = model.embed_tokens(tokens)
    return emb + model.embed_slots(own) if model.embed_slots is not None else emb


def step_inputs(model, tokens: Tensor, roles: Tensor | None, slots: Tensor, steps: Steps,
                modality: Tensor | None = None) -> Tensor:  # fmt: skip
    """The backbone's input per step `[B,S,D]`: the sum of its tokens' embeddings, each with its
    own slot, plus the step's role (and, with `model.partner_summary`, which needs `modality`
    `[B,L]`, the partner's frames summed up at each responder turn's start)."""
    B, L = tokens.shape
    emb = code_embedding(model, tokens, own_slots(slots))
    step_of = torch.repeat_interleave(steps.row * steps.per_row + steps.index, steps.size)  # [B*L]
    x = emb.new_zeros(B * steps.per_row, emb.shape[-1])
    x.index_add_(0, step_of, emb.reshape(B * L, -1))
    x = x.view(B, steps.per_row, -1)
    if roles is None:
        return x
    step_roles = torch.zeros(B, steps.per_row, dtype=torch.long, device=tokens.device)
    step_roles[steps.row, steps.index] = roles.reshape(-1)[steps.start]
    if model.partner_summary is not None:
        if modality is None:
            raise ValueError("a model with partner_summary needs `modality` for its step inputs")
        step_video = torch.zeros_like(step_roles, dtype=torch.bool)
        step_video[steps.row, steps.index] = modality.reshape(-1)[steps.start] == int(
            Modality.VIDEO)  # fmt: skip
        x = x + model.partner_summary(x, step_roles, step_video)
    if model.embed_roles is not None:
        x = x + model.embed_roles(step_roles)
    return x


def _grouped_outputs(model, tokens: Tensor, roles: Tensor | None, slots: Tensor, depth: Tensor,
                     valid: Tensor | None, modality: Tensor | None, frame_mask: Tensor | None,
                     prev_cut: Tensor | None = None) -> Iterator[tuple[Tensor, Tensor]]:  # fmt: skip
    """Teacher-forced predictions of a model with a depth or frame head, one group of equal
    steps at a time: yields (flat logit positions `[M]`, logits `[M,V]`), where logit position
    i (= b*L + t) predicts token t+1 of row b, the flat convention. Video steps go to the frame
    head when there is one (codes in `frame_mask` hidden, default all), other steps of several
    codes to the depth head. Frames marked in `prev_cut` read no previous frame."""
    B, L = tokens.shape
    steps = Steps.of(depth)
    x = step_inputs(model, tokens, roles, slots, steps, modality)
    hidden = model.backbone(x, valid=steps.valid(valid, B))
    # the context of step s is the backbone's state after step s-1 (zeros before the first)
    context = torch.cat([hidden.new_zeros(B, 1, hidden.shape[-1]), hidden], 1)  # [B,S+1,D]
    flat_tokens, flat_slots = tokens.reshape(-1), own_slots(slots).reshape(-1)
    frames = torch.zeros_like(steps.size, dtype=torch.bool)
    hidden_codes = None if frame_mask is None else frame_mask.reshape(-1)
    links = None
    if model.frame_head is not None:
        frames = modality.reshape(-1)[steps.start] == int(Modality.VIDEO)
        if model.frame_head.embed_prev is not None:
            who = torch.zeros_like(tokens) if roles is None else roles
            links = previous_frames(who, modality, depth, valid).reshape(-1)  # [B*L]
            if prev_cut is not None:
                links = torch.where(prev_cut.reshape(-1), -1, links)
    for n, is_frame in torch.unique(torch.stack([steps.size, frames.long()]), dim=1).T.tolist():
        pick = ((steps.size == n) & (frames == bool(is_frame))).nonzero()[:, 0]
        pos = steps.start[pick, None] + torch.arange(n, device=tokens.device)  # [N,n]
        ctx = context[steps.row[pick], steps.index[pick]]  # [N,D]
        if is_frame:
            masked = torch.ones_like(pos, dtype=torch.bool) if hidden_codes is None else (
                hidden_codes[pos])  # fmt: skip
            prev = None if links is None else frame_codes(tokens, links[steps.start[pick]], n)
            x = model.frame_head.frame_inputs(ctx, flat_tokens[pos], flat_slots[pos], masked,
                                              prev)  # fmt: skip
            out = frame_logits(model, model.frame_head(x), prev)  # [N,n,V]: guesses pos[:, d]
        else:
            x = model.step_head.inputs(ctx, flat_tokens[pos[:, :-1]], flat_slots[pos])
            out = model.lm_head(model.step_head(x))  # [N,n,V]: out[:, d] predicts pos[:, d]
        keep = (pos % L) > 0  # a row's first token is never predicted
        yield pos[keep] - 1, out[keep]
    # each row's last position predicts the first token of a step that has not begun yet
    last = context[torch.arange(B, device=tokens.device), steps.index[steps.row_last(B)] + 1]
    first = model.step_head.inputs(last, tokens.new_zeros(B, 0), slots[:, -1:])
    rows_last = torch.arange(B, device=tokens.device) * L + L - 1
    yield rows_last, model.lm_head(model.step_head(first))[:, 0]


def grouped_logits(model, tokens: Tensor, roles: Tensor | None, slots: Tensor, depth: Tensor,
                   valid: Tensor | None = None, modality: Tensor | None = None,
                   frame_mask: Tensor | None = None) -> Tensor:  # fmt: skip
    """Teacher-forced logits `[B,L,V]` of a model with a depth or frame head (flat convention)."""
    B, L = tokens.shape
    logits = None
    for where, out in _grouped_outputs(model, tokens, roles, slots, depth, valid, modality,
                                       frame_mask):  # fmt: skip
        if logits is None:
            logits = out.new_zeros(B * L, out.shape[-1])
        logits[where] = out
    return logits.view(B, L, -1)


def grouped_nll(model, tokens: Tensor, targets: Tensor, roles: Tensor | None, slots: Tensor,
                depth: Tensor, valid: Tensor | None = None, modality: Tensor | None = None,
                frame_mask: Tensor | None = None, prev_cut: Tensor | None = None) -> Tensor:  # fmt: skip
    """Next-token NLL `[B,L-1]` (position i: -log p(targets[:, i+1])) of a depth- or frame-head
    model, given input `tokens` `[B,L]` (maybe noised) and clean `targets` `[B,L]`.

    Equals the cross-entropy of `grouped_logits`, without ever holding `[B,L,V]` logits: the
    full-vocabulary logits of a 256-code frame at every position are most of a training step's
    memory and, scattered into one buffer, a third of its CPU time."""
    B, L = tokens.shape
    nll = torch.zeros(B * L, device=tokens.device)
    flat_targets = targets.reshape(-1)
    for where, out in _grouped_outputs(model, tokens, roles, slots, depth, valid, modality,
                                       frame_mask, prev_cut):  # fmt: skip
        inside = (where % L) < L - 1  # a row's last position has no target in the row
        where = where[inside]
        nll[where] = F.cross_entropy(out[inside].float(), flat_targets[where + 1],
                                     reduction="none")  # fmt: skip
    return nll.view(B, L)[:, :-1]


@torch.no_grad()
def prefill(model, tokens: Tensor, roles: Tensor, slots: Tensor, depth: Tensor,
            valid: Tensor | None, cache: KVCache, modality: Tensor | None = None) -> Tensor:  # fmt: skip
    """Run a left-padded prompt `[B,P]` through the backbone into `cache`, step by step;
    -> the context of the step after it `[B,D]`."""
    steps = Steps.of(depth, align_end=True)
    x = step_inputs(model, tokens, roles, slots, steps, modality)
    return model.backbone(x, valid=steps.valid(valid, tokens.shape[0]), cache=cache)[:, -1]

