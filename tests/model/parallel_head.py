"""A head added from outside the package: one module, one registry line.

The "parallel" head guesses every code of a frame at once from the backbone's state: MaskGIT
with one pass and no masking. It reuses the frame head's transformer and copy path; what it
changes is its training targets (every code hidden, every code a target) and its generation step
(one pass, whatever `sampling.refine_steps` says).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from vidchat.model.heads.base import FrameSampling, History
from vidchat.model.heads.maskgit import MaskGITHead
from vidchat.model.heads.registry import register_head


@register_head
class ParallelHead(MaskGITHead):
    kind = "parallel"

    def training_targets(
        self,
        batch: Mapping[str, Tensor],
        loss_mask: Tensor,
        generator: torch.Generator,
        options: Mapping[str, Any],
    ) -> tuple[dict[str, Tensor], Tensor]:
        return {}, loss_mask  # no frame mask: every code is hidden and is a target

    def decide(
        self,
        lm_head: nn.Linear,
        context: Tensor,
        slots: Tensor,
        lo: int,
        hi: int,
        sampling: FrameSampling,
        history: History,
    ) -> Tensor:
        one_pass = dataclasses.replace(sampling, refine_steps=1)
        return super().decide(lm_head, context, slots, lo, hi, one_pass, history)
