"""Where the backbone steps of a batch lie, for a model where some stream is grouped.

A grouped head (`vidchat.model.heads`) makes a whole frame (or audio time step) one backbone
step; the token plan's `depth` field numbers the codes inside a step (0 starts one). Shapes:
tokens, depth, slots `[B,L]` flat as laid out; steps `[B,S]`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Steps:
    """Where the backbone steps of a `[B,L]` batch lie (flattened positions, step order)."""

    start: Tensor  # [M] flat index b*L + j of each step's first token
    size: Tensor  # [M] tokens in the step
    row: Tensor  # [M] batch row
    index: Tensor  # [M] column of the step in the `[B,S]` step tensors
    per_row: int  # S: the most steps of any row

    @classmethod
    def of(cls, depth: Tensor, align_end: bool = False) -> Steps:
        """The steps of a `[B,L]` batch. Rows with fewer steps leave the tail of their step row
        empty, or with `align_end` (left-padded generation prompts) its head, so that every
        row's last step sits in the last column and the next step is appended for all alike."""
        B, L = depth.shape
        first = (depth == 0).clone()
        first[:, 0] = True  # every row starts a step
        flat = first.reshape(-1)
        start = flat.nonzero()[:, 0]  # [M]
        # the next start; each row's first token starts a step, so no step crosses a row end
        ends = torch.cat([start[1:], start.new_tensor([B * L])])
        row = start // L
        row_first = torch.searchsorted(start, row * L)  # index of each row's first step
        index = torch.arange(len(start), device=depth.device) - row_first
        per_row = int(index.max()) + 1
        if align_end:
            counts = torch.bincount(row, minlength=B)  # [B] steps per row
            index = index + (per_row - counts[row])
        return cls(start, ends - start, row, index, per_row)

    def valid(self, valid: Tensor | None, batch: int) -> Tensor | None:
        """`[B,S]` bool: the step exists and its first token is real (None: every step is)."""
        if valid is None and self.row.numel() == batch * self.per_row:
            return None
        out = torch.zeros(batch, self.per_row, dtype=torch.bool, device=self.row.device)
        first_valid = True if valid is None else valid.reshape(-1)[self.start]
        out[self.row, self.index] = first_valid
        return out

    def row_last(self, batch: int) -> Tensor:
        """Index (into the step lists) of each row's last step `[B]`."""
        rows = torch.arange(batch, device=self.row.device)
        return torch.searchsorted(self.row, rows, right=True) - 1


def own_slots(next_slots: Tensor) -> Tensor:
    """Each token's own slot `[B,L]` from the next-slot input (`own[i] = next[i-1]`)."""
    own = torch.zeros_like(next_slots)
    own[:, 1:] = next_slots[:, :-1]
    return own
