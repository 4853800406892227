"""The LM's training losses, computed from what the architecture-only `VidChatLM` exposes.

- `next_token_nll(model, tokens, targets, ...) -> [B,L-1]`: teacher-forced per-position NLL. A
  flat model: its final hidden states (`VidChatLM.hidden`) through its output head's weight
  (`lm_head.weight`) and cross-entropy, `chunk` positions at a time (`model.loss_chunk`). A
  stepped model: cross-entropy of each group of steps' logits (`VidChatLM.step_outputs`).
- `linear_cross_entropy(hidden, weight, targets, chunk)`: the chunked output head +
  cross-entropy.
- `nll_loss(nll, loss_mask, modality, weight)`: the masked mean, in total and per modality.

Chunked cross-entropy: the `base` model's vocabulary has 73,735 entries; at sequence 4096 and
batch 8 its fp32 logits alone are 9.7 GB, and with their gradient most of a training step's peak
memory. With a chunk the positions go through the output head + cross-entropy a chunk at a
time, each chunk under activation checkpointing, so that only one chunk's logits exist at once,
in the forward and again in the backward (which recomputes them: one more matmul of the head
per step). Written by hand because the maintained fused kernels (liger-kernel's
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

from vidchat.model.transformer import VidChatLM
from vidchat.model.vocab import Modality


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


def next_token_nll(
    model: VidChatLM,
    tokens: Tensor,
    targets: Tensor,
    roles: Tensor | None = None,
    slots: Tensor | None = None,
    *,
    valid: Tensor | None = None,
    depth: Tensor | None = None,
    modality: Tensor | None = None,
    head_inputs: dict[str, Tensor] | None = None,
    documents: Tensor | None = None,
    chunk: int | None = None,
) -> Tensor:
    """Teacher-forced next-token NLL `[B,L-1]`: position i scores `targets[:, i+1]` given
    input `tokens` `[B,L]` up to i (inputs may be noised, targets are clean). The other
    arguments are `VidChatLM.forward`'s; `chunk`: a flat model's positions per pass of the
    output head + cross-entropy (None: all at once). A stepped model never holds `[B,L,V]`
    logits here: the full-vocabulary logits of a 256-code frame at every position are most of a
    training step's memory and, scattered into one buffer, a third of its CPU time."""
    if not model.stepped:
        hidden = model.hidden(tokens, roles, slots, valid=valid, documents=documents)
        return linear_cross_entropy(hidden[:, :-1], model.lm_head.weight, targets[:, 1:], chunk)
    B, L = tokens.shape
    nll = torch.zeros(B * L, device=tokens.device)
    flat_targets = targets.reshape(-1)
    for where, out in model.step_outputs(
        tokens, roles, slots, depth, valid, modality, head_inputs, documents=documents
    ):
        inside = (where % L) < L - 1  # a row's last position has no target in the row
        where = where[inside]
        nll[where] = F.cross_entropy(out[inside].float(), flat_targets[where + 1], reduction="none")
    return nll.view(B, L)[:, :-1]


def nll_loss(
    nll: Tensor, loss_mask: Tensor, modality: Tensor, weight: Tensor | None = None
) -> dict[str, Tensor]:
    """The masked next-token loss, in total and per modality, from per-position NLL `[B,L-1]`
    (position i scores token i+1, `next_token_nll`); loss_mask, modality `[B,L]` (loss_mask[i] =
    token i is a target). Returns mean losses (`loss`, `video_loss`, `audio_loss`,
    `special_loss`) and summed nats/counts (`*_sum`, `*_count`) for exact averages across
    batches. weight `[B,L]` (per target token) makes `loss` a weighted mean; the others stay
    plain."""
    mask = loss_mask[:, 1:]
    out: dict[str, Tensor] = {}
    groups = {
        "": mask,
        "video_": mask & (modality[:, 1:] == int(Modality.VIDEO)),
        "audio_": mask & (modality[:, 1:] == int(Modality.AUDIO)),
        "special_": mask & (modality[:, 1:] == int(Modality.SPECIAL)),
    }
    for prefix, m in groups.items():
        total = (nll * m).sum()
        count = m.sum()
        out[f"{prefix}loss_sum"] = total.detach()
        out[f"{prefix}count"] = count.detach()
        out[f"{prefix}loss"] = total / count.clamp(min=1)
    if weight is not None:
        w = weight[:, 1:] * mask
        out["loss"] = (nll * w).sum() / w.sum().clamp(min=1e-6)
    return out
