"""A KV cache for static-shape decode steps, and the step itself.

A decode step of the eager KV cache (`blocks.KVCache`) changes shape every time: it attends
over the `length` keys cached so far and slices RoPE at a Python-int position. Such a step
cannot be captured once and replayed (a CUDA graph needs fixed shapes and fixed addresses), and
every step pays Python's and the launcher's overhead (about 15 kernels per layer), which on a
GPU is most of the time (see `bench/generate.py`).

`StaticKVCache` keeps the prompt's prefill as it is (one batched forward with the eager
semantics) and then switches to *static* steps: each step writes its key and value at a
device-side slot (`index_copy_`), attends over the whole buffer under a mask of the filled,
valid positions, and reads RoPE at each row's device-side position. Every step then has the same
shapes and reads no Python int that changes, so `torch.compile(fullgraph=True)` captures it
once (`vidchat.model.runner`). The masked keys get probability exactly 0, so the step computes
what the eager one does (`tests/model/test_fast_decode.py` compares tokens).

Shapes: keys/values `[B,Hkv,S,hd]` per layer; `slot` `[]` (the next cache position, the same for
every row); `next_pos` `[B]` (each row's next RoPE position, which left padding makes differ).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidchat.model.blocks import KVCache, ModelConfig


class StaticKVCache(KVCache):
    """`KVCache` that, after `start_static()`, takes one token per call at a device-side slot.
    Each layer's keys and values are a tensor of their own, `k[layer]` `[B,Hkv,S,hd]`: a step
    that wrote into a view of one shared buffer is compiled (functionalised) into a copy of the
    buffer, which made a compiled flat step slower than eager (`bench/generate.py`)."""

    def __init__(self, cfg: ModelConfig, batch: int, max_len: int, device, dtype) -> None:
        shape = (batch, cfg.n_kv_heads, max_len, cfg.head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        self.valid = torch.ones(batch, max_len, dtype=torch.bool, device=device)  # [B,S]
        self.next_pos = torch.zeros(batch, dtype=torch.long, device=device)  # [B] RoPE position
        self.length, self.has_padding, self.max_len = 0, False, max_len
        self.slot = torch.zeros((), dtype=torch.long, device=device)
        self.places = torch.arange(max_len, device=device)  # [S]
        self.static = False

    def start_static(self) -> None:
        """Continue with static steps after whatever the eager calls (a prefill) filled."""
        self.slot.fill_(self.length)
        self.static = True

    def reset(self, static: bool = True) -> None:
        """Empty the cache for reuse, without allocating: static from the first position, or
        (`static=False`) ready for an eager prefill first."""
        self.slot.zero_()
        self.next_pos.zero_()
        self.valid.fill_(True)
        self.length, self.has_padding, self.static = 0, False, static

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if not self.static:  # a prefill: `length` Python-side, as `KVCache` does
            start, end = self.length, self.length + k.shape[2]
            self.k[layer][:, :, start:end] = k
            self.v[layer][:, :, start:end] = v
            return self.k[layer][:, :, :end], self.v[layer][:, :, :end]
        where = self.slot.view(1)  # index_put: compiled, it writes in place
        self.k[layer][:, :, where] = k  # k `[B,Hkv,1,hd]`
        self.v[layer][:, :, where] = v
        return self.k[layer], self.v[layer]  # `[B,Hkv,S,hd]`, masked by `step_mask`  # `[B,Hkv,S,hd]`, masked by `step_mask`

    def step_mask(self) -> Tensor:
        """`[B,1,1,S]` bool: the keys a static step's query sees (filled, valid, itself
        included)."""
        return (self.valid & (self.places <= self.slot))[:, None, None]

    def advance(self) -> None:
        self.slot += 1
        self.next_pos += 1


def static_step(layers: nn.ModuleList, norm: nn.Module, rope: tuple[Tensor, Tensor],
                x: Tensor, cache: StaticKVCache) -> Tensor:  # fmt: skip
    """One static decode step through `layers` then `norm`: input `[B,1,D]` -> `[B,1,D]`, its
    key and value written at `cache.slot`, which then advances. `rope`: the cos/sin tables
    `[S,hd]`."""
    cos = rope[0][cache.next_pos][:, None, None]  # [B,1,1,hd]
    sin = rope[1][cache.next_pos][:, None, None]
    mask = cache.step_mask()
    for i, layer in enumerate(layers):
        x = layer(x, cos, sin, mask, False, cache, i)
    cache.advance()
    return norm(x)
