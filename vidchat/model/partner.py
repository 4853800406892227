"""Turn conditioning: a summary of the partner's video frames at the start of the responder's turn.

With `model.partner_summary`, the backbone input of each responder turn's first step (its
`<responder>` marker) also gets a learned projection of the mean input of the partner's video
frames since the previous responder turn (the partner turn it answers). A frame head model decides
the responder's first frame from the backbone state right after that marker; without this path
the state there must gather the partner's face by attention, which a small LM did not learn from
the few codes per answer that depend on it: on the 64 px demo a linear probe read the partner's
expression from the partner frames' mean input at 0.78 on held-out conversations, but from the
backbone state before the answer's first frame only at 0.49 (chance 0.33; README, "Emotion,
what has been tried"). The summary is causal (earlier partner frames only) and lies in the
prompt, so cached generation computes it in its prefill exactly as training does.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidchat.model.vocab import Role


class PartnerSummary(nn.Module):
    """The projection that turns the partner's mean frame input into a turn-start input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: Tensor, step_roles: Tensor, step_video: Tensor) -> Tensor:
        """Step inputs `x` `[B,S,D]`, each step's role and whether it is a video frame `[B,S]`
        -> what to add to `x` `[B,S,D]`: at each responder turn's first step, the projected mean
        of the partner frames between it and the previous responder turn (or its sequence's
        `<bos>`, so packed sequences never mix); zeros elsewhere."""
        B, S, D = x.shape
        responder = step_roles == int(Role.RESPONDER)
        starts = responder & ~torch.cat([responder.new_zeros(B, 1), responder[:, :-1]], 1)
        opens = step_roles == int(Role.NONE)  # <bos>: a packed row's next sequence (or padding)
        turn = (starts | opens).long().cumsum(1)  # [B,S] partner frames of group k-1 precede k
        partner = (step_roles == int(Role.PARTNER)) & step_video  # [B,S]
        group = (torch.arange(B, device=x.device)[:, None] * (S + 1) + turn)[partner]  # [F]
        # sums and counts in fp32: bf16 counts are inexact past 256 frames
        frames = x[partner].float()  # [F,D]
        sums = frames.new_zeros(B * (S + 1), D).index_add_(0, group, frames)
        counts = frames.new_zeros(B * (S + 1)).index_add_(0, group, frames.new_ones(len(group)))
        mean = (sums / counts.clamp(min=1)[:, None]).to(x.dtype)  # [B*(S+1),D]
        rows, cols = starts.nonzero(as_tuple=True)
        summary = self.proj(mean[rows * (S + 1) + turn[rows, cols] - 1])  # [N,D]
        # the projection's dtype (bf16 under autocast), which the caller's sum promotes
        out = summary.new_zeros(B, S, D)
        out[rows, cols] = summary
        return out
