"""A KV cache for static-shape decode steps, and the step itself.

A decode step of the eager KV cache (`blocks.KVCache`) changes shape every time: it attends
over the `length` keys cached so far and slices RoPE at a Python-int position. Such a step
cannot be captured once and replayed (a CUDA graph needs fixed shapes and fixed addresses), and
every step pays Python's and the launcher's overhead (about 15 kernels per layer), which on a
GPU is most of the time (see `bench/generate.py`).

`StaticKVCache` keeps the prompt's prefill as it is (one batched forward with the eager
semantics) and then switches to *static* steps. Compiled, each step writes its key and value
at a device-side slot (an `index_put` that inductor does in place), attends over the whole
buffer under a mask of the filled, valid positions, and reads RoPE at each row's device-side
position: every step has the same shapes and reads no Python int that changes, so
`torch.compile(fullgraph=True)` captures it once (`vidchat.model.runner`). Eager, the same step
writes at the Python-side `length` and reads only the filled positions, which is as cheap as
the dynamic cache was. The keys the compiled step masks get probability exactly 0, so both
compute the same (`tests/model/test_fast_decode.py` compares tokens).

Shapes: keys/values `[B,Hkv,S,hd]` per layer; `slot` `[]` (the next cache position, the same for
every row); `next_pos` `[B]` (each row's next RoPE position, which left padding makes differ).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidchat.model.blocks import KVCache, ModelConfig


class StaticKVCache(KVCache):
    """`KVCache` that, after `start_static()`, takes one token per call at a device-side slot."""

    def __init__(self, cfg: ModelConfig, batch: int, max_len: int, device, dtype) -> None:
        super().__init__(cfg, batch, max_len, device, dtype)
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
        if not self.static:  # a prefill: `length` Python-side
            return super().update(layer, k, v)
        # compiled: an index_put at the device-side slot, which inductor writes in place;
        # eager: a slice at `length` (the same place, kept Python-side), cheaper to launch
        compiling = torch.compiler.is_compiling()
        where = self.slot.view(1) if compiling else slice(self.length, self.length + 1)
        self.k[layer][:, :, where] = k  # k `[B,Hkv,1,hd]`
        self.v[layer][:, :, where] = v
        end = self.visible()
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]  # masked by `step_mask`

    def visible(self) -> int:
        """How many cached positions a static step reads: the whole buffer when compiled (one
        shape for every step), the filled ones when eager (`length` is kept Python-side then;
        the rest would be masked anyway, so both compute the same)."""
        return self.max_len if torch.compiler.is_compiling() else self.length + 1

    def step_mask(self) -> Tensor | None:
        """`[B,1,1,S']` bool: the keys a static step's query sees (filled, valid, itself
        included) among the `visible()` ones; None when eager and no row is padded (every
        visible key is then seen)."""
        if not torch.compiler.is_compiling() and not self.has_padding:
            return None
        end = self.visible()
        return (self.valid[:, :end] & (self.places[:end] <= self.slot))[:, None, None]

    def advance(self) -> None:
        self.slot += 1
        self.next_pos += 1
        if not torch.compiler.is_compiling():  # a compiled step must not read a Python int
            self.length += 1


def static_step(
    layers: nn.ModuleList,
    norm: nn.Module,
    rope: tuple[Tensor, Tensor],
    x: Tensor,
    cache: StaticKVCache,
) -> Tensor:
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
