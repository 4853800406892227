"""Loss weight on the frame where a turn's face is decided: its first frame after the reference.

With the frame head's copy path (`vidchat.model.frame_links`) every frame of a turn starts from
the frame before it, so a still face costs almost nothing after its first frame. That first
frame, whose previous frame is the reference image, is where the responder must read the
partner (the demo world's rule: mirror the partner's expression) instead of copying the
reference's neutral face. It is one frame in tens, and within it only the few codes around the
mouth depend on the partner, so under a plain mean its gradient is drowned: the 64 px demo
model answered with the neutral reference mouth on 56 of 60 test pairs. `stage.turn_start_weight`
scales the loss of those codes (training only; validation stays an unweighted mean).
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidchat.model.frame_links import previous_frames
from vidchat.model.vocab import Modality, Role


def turn_start_weights(batch: dict[str, Tensor], weight: float) -> Tensor:
    """`[B,L]` float: `weight` at the video codes of every responder frame that follows the
    reference frame (the responder's first frame in the row), 1 elsewhere. batch: `roles`, `modality`, `depth`, `valid`
    `[B,L]`."""
    roles, modality, valid = batch["roles"], batch["modality"], batch["valid"]
    B, L = roles.shape
    links = previous_frames(roles, modality, batch["depth"], valid)  # [B,L] flat or -1
    linked_role = roles.reshape(-1)[links.clamp(min=0)].view(B, L)
    after_ref = (links >= 0) & (linked_role == int(Role.REF)) & (roles == int(Role.RESPONDER))
    video = modality == int(Modality.VIDEO)
    starts = video & (batch["depth"] == 0) & valid
    index = torch.arange(L, device=roles.device).expand(B, L)
    latest = torch.cummax(torch.where(starts, index, -1), dim=1).values  # [B,L] own frame start
    marked = after_ref.gather(1, latest.clamp(min=0)) & (latest >= 0) & video & valid
    return torch.where(marked, float(weight), 1.0)
