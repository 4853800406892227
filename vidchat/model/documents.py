"""Packed rows (`stage.batching=pack`): several sequences one after another in one row, each
attending only to itself (block-causal), its positions restarting at its first token, so a
packed row computes exactly what its sequences would alone (`tests/model/test_packing.py`).

Shapes: documents `[B,L]`, the index of the packed sequence each position belongs to (-1:
padding or, in a stepped model's step rows, no step there).
"""

from __future__ import annotations

import torch
from torch import Tensor


def document_attention(documents: Tensor, valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """documents `[B,L]` (and which positions are real, `[B,L]` or None) -> each position's
    place in its own sequence `[B,L]` and the block-causal mask `[B,1,L,L]` (a query sees the
    earlier real keys of its own sequence, and always itself). An explicit mask: SDPA runs it
    with its flash kernel on a CPU and its memory-efficient one on a GPU, not the math one."""
    B, L = documents.shape
    where = torch.arange(L, device=documents.device)
    starts = torch.ones_like(documents, dtype=torch.bool)
    starts[:, 1:] = documents[:, 1:] != documents[:, :-1]
    first = torch.where(starts, where, 0).cummax(1).values  # [B,L] own sequence's first place
    causal = torch.ones(L, L, dtype=torch.bool, device=documents.device).tril()
    mask = (documents[:, :, None] == documents[:, None, :]) & causal  # [B,L,L]
    if valid is not None:
        mask = (mask & valid[:, None, :]) | torch.eye(L, dtype=torch.bool, device=mask.device)
    return where - first, mask[:, None]


def step_documents(
    documents: Tensor, start: Tensor, row: Tensor, index: Tensor, per_row: int
) -> Tensor:
    """A stepped model's step rows `[B,S]`: each step's sequence is its first token's (`start`,
    `row`, `index` as in `vidchat.model.steps.Steps`); -1 where a row has no step."""
    out = documents.new_full((documents.shape[0], per_row), -1)
    out[row, index] = documents.reshape(-1)[start]
    return out


def pack_documents(lengths: list[int]) -> Tensor:
    """`[sum(lengths)]`: the sequence index of each position of a row packed from sequences of
    these lengths."""
    return torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
