"""MaskGIT training masks: which video codes a frame head must guess in this micro-batch.

Each frame hides a share `cos(pi/2 * u)` of its codes (u uniform, at least one code), drawn
from the step's generator, so a resumed run hides the same codes. The loss then falls on the
hidden codes of frames (and on every other target as usual): over training every code is a
target, at every masking level that generation's refinement passes meet.

Copy dropout (`stage.noise.copy_dropout`) cuts a share of frames off their copy path (the
previous frame's codes, `vidchat.model.frame_links`), so that those frames must come from the
backbone's state alone. Without it the copy path carries nearly every code and the backbone is
never made to know what a face shows: on the 64 px demo a linear probe read the partner's
expression from its codes at 0.97 but from the backbone's state at the responder's first frame
only at 0.65, on the very pairs it was fitted to. Measured there, a share of 0.5 did not lift
the demo's emotion mirroring (README, "Emotion, what has been tried"); it stays an option, off by
default.
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


def sample_copy_cut(depth: Tensor, modality: Tensor, share: float,
                    generator: torch.Generator) -> Tensor | None:  # fmt: skip
    """`[B,L]` bool at the first code of each video frame whose copy path is cut (each with
    probability `share`, from the step's generator); None when `share` is 0, drawing nothing,
    so that runs without copy dropout keep their random stream."""
    if share <= 0:
        return None
    starts = (modality == int(Modality.VIDEO)) & (depth == 0)
    draw = torch.rand(depth.shape, generator=generator, device=depth.device) < share
    return starts & draw
