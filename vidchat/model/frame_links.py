"""Which frame a video frame follows, and the frame head's copy path from it.

`model.frame_prev` lets the frame head read, at each position, the code of the frame before
(`vidchat.model.frame`) and favour it in its logits. Training (teacher-forced,
`vidchat.model.depth`) and generation (`vidchat.model.steppers`) find that frame with the same
rule, here: the latest earlier frame of the same role in the row, else the row's reference frame.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidchat.model.vocab import Modality, Role


def previous_frames(roles: Tensor, modality: Tensor, depth: Tensor,
                    valid: Tensor | None = None) -> Tensor:  # fmt: skip
    """`[B,L]` -> `[B,L]`: at each video frame's first code, the flat position (b*L + t) of the
    first code of the frame it follows; -1 elsewhere and where there is none."""
    B, L = roles.shape
    starts = (modality == int(Modality.VIDEO)) & (depth == 0)
    opens = roles == int(Role.NONE)  # <bos> (and padding, which no frame follows)
    if valid is not None:
        starts &= valid
        opens &= valid
    sequence = opens.long().cumsum(1)  # [B,L] which packed sequence of the row
    rows, cols = starts.nonzero(as_tuple=True)
    last: dict[tuple[int, int, int], int] = {}
    ref = int(Role.REF)
    links = []
    for b, t, role, k in zip(rows.tolist(), cols.tolist(), roles[rows, cols].tolist(),
                             sequence[rows, cols].tolist(), strict=True):  # fmt: skip
        links.append(last.get((b, k, role), last.get((b, k, ref), -1)))
        last[(b, k, role)] = b * L + t
    out = torch.full((B, L), -1, dtype=torch.long, device=roles.device)
    out[rows, cols] = torch.tensor(links, dtype=torch.long, device=roles.device)
    return out


def frame_codes(tokens: Tensor, starts: Tensor, size: int) -> Tensor:
    """tokens `[B,L]`, frame starts `[N]` (flat positions, -1: none) -> their codes `[N,G]`
    (rows of -1 where there is none)."""
    pos = starts.clamp(min=0)[:, None] + torch.arange(size, device=tokens.device)
    codes = tokens.reshape(-1)[pos.clamp(max=tokens.numel() - 1)]
    return torch.where(starts[:, None] >= 0, codes, torch.full_like(codes, -1))


def frame_logits(model, hidden: Tensor, prev: Tensor | None, lo: int = 0,
                 hi: int | None = None) -> Tensor:  # fmt: skip
    """The frame head's output `[N,G,D]` -> logits `[N,G,V]` over token ids `[lo, hi)` (default
    all). With `frame_prev` the code the previous frame had at a position gets a learned,
    position-dependent bonus: a copy path that a still face needs from its first step, which an
    embedding alone would take many steps to learn (as in pointer-generator networks)."""
    weight = model.lm_head.weight if hi is None else model.lm_head.weight[lo:hi]
    logits = hidden @ weight.T
    gate = model.frame_head.copy_gate
    if gate is None or prev is None:
        return logits
    bonus = gate(hidden)[..., 0] * (prev >= 0).to(hidden.dtype)  # [N,G]
    where = (prev - lo).clamp(0, logits.shape[-1] - 1)[..., None]
    return logits.scatter_add(-1, where, bonus[..., None].to(logits.dtype))
