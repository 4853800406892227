"""Which frame a video frame follows (the frame head's copy path reads it).

A frame head's copy path (`vidchat.model.heads.maskgit`) reads, at each position, the code of
the frame before and favours it in its logits. Training (teacher-forced) and generation
(`vidchat.model.steppers`) find that frame with the same rule, here: the latest earlier frame
of the same role in the row, else the row's reference frame.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidchat.model.vocab import Modality, Role


def previous_frames(
    roles: Tensor, modality: Tensor, depth: Tensor, valid: Tensor | None = None
) -> Tensor:
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
    for b, t, role, k in zip(
        rows.tolist(),
        cols.tolist(),
        roles[rows, cols].tolist(),
        sequence[rows, cols].tolist(),
        strict=True,
    ):
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
