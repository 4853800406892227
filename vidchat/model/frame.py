"""The MaskGIT frame head: a video frame's h*w codes decoded in parallel, in a few passes.

With `layout.video_head=maskgit` a frame is one backbone step, as with the depth head, but its
codes are not emitted one after another: a bidirectional frame transformer sees the backbone's
state before the frame, every position's slot, and the codes decided so far (a learned mask
embedding stands for the rest), and predicts every position at once (MaskGIT, Chang et al.
2022). Training masks a random share of each frame (cosine schedule; the loss falls on the
masked codes); generation starts fully masked and, over `refine_steps` passes, keeps the most
confident codes, so a frame costs a handful of passes instead of h*w sequential steps.

With `model.frame_prev` each position also reads the code at the same place in the frame this
one follows: the same role's previous frame, or for its first frame the reference frame. The
backbone sees a frame as one summed embedding, which for 64 or 256 codes is far too narrow to
say what every position held a frame ago; faces change little from frame to frame, so this
copy path carries most of a frame (and, from the reference, the responder's identity).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vidchat.model.blocks import ModelConfig
from vidchat.model.depth import DepthTransformer
from vidchat.model.frame_links import frame_logits


class FrameTransformer(DepthTransformer):
    """Bidirectional over one frame's positions; the depth head's blocks and embeddings."""

    causal = False

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.mask_embedding = nn.Parameter(torch.zeros(self.cfg.dim))
        self.embed_prev = nn.Embedding(cfg.vocab_size, self.cfg.dim) if cfg.frame_prev else None
        # per position, how much to favour the code the previous frame had there
        self.copy_gate = nn.Linear(cfg.dim, 1) if cfg.frame_prev else None

    def frame_inputs(self, context: Tensor, tokens: Tensor, slots: Tensor, masked: Tensor,
                     prev: Tensor | None = None) -> Tensor:  # fmt: skip
        """context `[N,D]`, the frame's tokens/slots/masked `[N,G]` -> inputs `[N,G,D]`; `prev`
        `[N,G]`: the codes of the frame this one follows (-1 rows: none), read with
        `frame_prev`."""
        known = self.embed_tokens(tokens)
        hidden = torch.where(masked[..., None], self.mask_embedding.to(known.dtype), known)
        x = self.context_proj(context)[:, None] + self.embed_slots(slots) + hidden
        if self.embed_prev is not None and prev is not None:
            x = x + self.embed_prev(prev.clamp(min=0)) * (prev >= 0)[..., None].to(x.dtype)
        return x


def still_masked(step: int, steps: int, size: int) -> int:
    """How many of a frame's `size` codes stay masked after refinement pass `step` (0-based) of
    `steps`: the cosine schedule, reaching 0 after the last pass."""
    return int(math.floor(size * math.cos(math.pi / 2 * (step + 1) / steps)))


@torch.no_grad()
def decode_frame(model, context: Tensor, slots: Tensor, lo: int, hi: int, sample_fn,
                 steps: int, prev: Tensor | None = None, guide=None) -> Tensor:  # fmt: skip
    """A frame's codes `[N,G]` (token ids in `[lo, hi)`) from the context `[N,D]` and the
    positions' slots `[N,G]` (and the codes `prev` `[N,G]` of the frame it follows): `steps`
    passes, each sampling every masked position (`sample_fn(logits [B*G,n]) -> [B*G]`
    indices) and keeping the most probable. With `guide` (classifier-free guidance) the rows
    are `B` conditional then `B` unconditional ones (N = 2B): both see the same decided codes,
    and each pass samples from `guide(logits [2B,G,n]) -> [B,G,n]`."""
    N, G = slots.shape
    B = N // 2 if guide is not None else N
    tokens = torch.full((B, G), lo, dtype=torch.long, device=slots.device)
    masked = torch.ones(B, G, dtype=torch.bool, device=slots.device)
    rows = N // B
    for step in range(steps):
        x = model.frame_head.frame_inputs(context, tokens.repeat(rows, 1), slots,
                                          masked.repeat(rows, 1), prev)  # fmt: skip
        # only the video codes' rows of the output head: [N,G,D] @ [D,n] -> [N,G,n]
        logits = frame_logits(model, model.frame_head(x), prev, lo, hi).float()
        if guide is not None:
            logits = guide(logits)  # [B,G,n]
        picked = sample_fn(logits.reshape(B * G, -1)).view(B, G)  # [B,G]
        prob = logits.softmax(-1).gather(-1, picked[..., None])[..., 0]
        confidence = torch.where(masked, prob, torch.full_like(prob, math.inf))
        keep = still_masked(step, steps, G)
        remask = torch.zeros_like(masked)
        if keep:
            remask.scatter_(1, confidence.topk(keep, dim=1, largest=False).indices, True)
        newly = masked & ~remask
        tokens = torch.where(newly, picked + lo, tokens)
        masked = remask
    return tokens.repeat(rows, 1)
