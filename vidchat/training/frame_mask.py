"""MaskGIT training masks: which video codes a frame head must guess in this micro-batch.

Each frame hides a share `cos(pi/2 * u)` of its codes (u uniform, at least one code), drawn
from the step's generator, so a resumed run hides the same codes. The loss then falls on the
hidden codes of frames (and on every other target as usual): over training every code is a
target, at every masking level that generation's refinement passes meet.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vidchat.model.depth import Steps
from vidchat.model.vocab import Modality


def sample_frame_mask(depth: Tensor, modality: Tensor, generator: torch.Generator) -> Tensor:
    """`[B,L]` bool: the video codes hidden from the frame head (depth, modality `[B,L]`)."""
    B, L = depth.shape
    steps = Steps.of(depth)
    step_of = torch.repeat_interleave(torch.arange(len(steps.start), device=depth.device),
                                      steps.size)  # [B*L]  # fmt: skip
    u = torch.rand(len(steps.start), generator=generator, device=depth.device)
    ratio = torch.cos(math.pi / 2 * u)  # [M] share hidden per step
    key = torch.rand(B * L, generator=generator, device=depth.device)
    hide = key < ratio[step_of]
    forced = (torch.rand(len(steps.start), generator=generator, device=depth.device)
              * steps.size).long()  # [M] one code per step is always hidden  # fmt: skip
    hide |= depth.reshape(-1) == forced[step_of]
    return hide.view(B, L) & (modality == int(Modality.VIDEO))


def frame_loss_mask(loss_mask: Tensor, modality: Tensor, frame_mask: Tensor) -> Tensor:
    """Targets of a frame-head model: video codes only where hidden, everything else as given."""
    return loss_mask & (frame_mask | (modality != int(Modality.VIDEO)))
