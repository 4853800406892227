"""Cross-entropy through the output head without holding the whole batch's logits.

The `base` model's vocabulary has 73,735 entries: at sequence 4096 and batch 8 its fp32 logits
alone are 9.7 GB, and with their gradient most of a training step's peak memory. Here the
positions go through `lm_head` + cross-entropy a chunk at a time, each chunk under activation
checkpointing, so that only one chunk's logits exist at once, in the forward and again in the
backward (which recomputes them: one more matmul of the head per step).

Written by hand because the maintained fused kernels (liger-kernel's
`LigerFusedLinearCrossEntropyLoss`, Apple's cut-cross-entropy) are Triton/CUDA only, and the
same code must run, and be tested, on CPU. Numerically it is the plain path per position: the
same matmul rows and an fp32 log-softmax; the weight's gradient is a sum over chunks (the same
terms, in another order).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint


def _chunk_nll(hidden: Tensor, weight: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy((hidden @ weight.T).float(), targets, reduction="none")


def linear_cross_entropy(
    hidden: Tensor, weight: Tensor, targets: Tensor, chunk: int | None = None
) -> Tensor:
    """-log softmax(hidden @ weight.T)[targets]: hidden `[..., D]`, weight `[V,D]`, targets
    `[...]` -> fp32 `[...]`. `chunk`: positions per pass (None: all at once, the plain path)."""
    shape = targets.shape
    h, t = hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1)
    if chunk is None or chunk >= len(t):
        return _chunk_nll(h, weight, t).view(shape)
    if chunk < 1:
        raise ValueError(f"loss chunk must be >= 1 positions, got {chunk}")
    grad = torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad)
    parts = [
        checkpoint(_chunk_nll, h[s : s + chunk], weight, t[s : s + chunk], use_reentrant=False)
        if grad
        else _chunk_nll(h[s : s + chunk], weight, t[s : s + chunk])
        for s in range(0, len(t), chunk)
    ]
    return torch.cat(parts).view(shape)
