"""The KV cache: one class for the ordinary forward and for the static-shape decode steps.

Generation fills the cache in two ways, as gpt-fast does:

- **The ordinary forward** (`VidChatLM.backbone` with `cache=`: the prompt's prefill, or any
  append before decoding) writes its `L` tokens after the `length` already there and attends
  over the filled keys, with the forward's own causal fast path.
- **Decode steps** (`decode_step`, one token each: `VidChatLM.decode_token` / `decode_step`, a
  depth head's code steps) write their key and value at the device-side position `pos`, attend
  over the whole buffer under `step_mask` (the filled, valid positions) and read RoPE at each
  row's device-side `next_pos`. Every step has the same shapes and reads no Python number that
  changes, so the same function runs eagerly or compiled once and replayed
  (`torch.compile(fullgraph=True)`, CUDA graphs on a GPU: `vidchat.model.runner`). Masked keys
  get probability exactly 0, so a step computes what attention over the filled keys computes
  (`tests/model/test_fast_decode.py`, `tests/model/test_transformer.py`).

`start_decoding()` hands over from the first to the second: `pos` continues at `length`. After
it, the ordinary forward may not append (its Python-side `length` no longer follows `pos`).

Shapes: keys/values `[B,Hkv,S,hd]`, a tensor of its own per layer (a compiled step writing into
a view of one shared buffer would copy the whole buffer); `valid` `[B,S]` (which positions are
real tokens); `pos` `[]` (the next decode position, the same for every row); `next_pos` `[B]`
(each row's next RoPE position, which left padding makes differ).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class KVCache:
    """Preallocated keys and values of every layer (see the module docstring). `dtype` must be
    the keys' compute dtype (`blocks.compute_dtype`): attention reads them beside the queries,
    and SDPA wants one dtype for both."""

    def __init__(self, cfg: Any, batch: int, max_len: int, device, dtype) -> None:
        shape = (batch, cfg.n_kv_heads, max_len, cfg.head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        self.valid = torch.ones(batch, max_len, dtype=torch.bool, device=device)  # [B,S]
        self.next_pos = torch.zeros(batch, dtype=torch.long, device=device)  # [B] RoPE position
        self.pos = torch.zeros((), dtype=torch.long, device=device)  # the next decode position
        self.places = torch.arange(max_len, device=device)  # [S]
        self.max_len = max_len
        self.length = 0  # positions the ordinary forward filled (same for every row)
        self.has_padding = False
        self.decoding = False

    def buffers(self) -> tuple[Tensor, ...]:
        """Every tensor a decode step reads or writes (a compiled runner pins their addresses)."""
        return (*self.k, *self.v, self.valid, self.next_pos, self.pos)

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store keys/values `[B,Hkv,L,hd]` and return the ones attention reads: the filled
        `[B,Hkv,end,hd]` for the ordinary forward, the whole buffer for a decode step."""
        if not self.decoding:
            start, end = self.length, self.length + k.shape[2]
            self.k[layer][:, :, start:end] = k
            self.v[layer][:, :, start:end] = v
            return self.k[layer][:, :, :end], self.v[layer][:, :, :end]
        where = self.pos.view(1)  # an index_put at a device-side position, in place
        self.k[layer][:, :, where] = k
        self.v[layer][:, :, where] = v
        return self.k[layer], self.v[layer]

    def start_decoding(self) -> None:
        """Continue with decode steps after what the ordinary forward filled."""
        self.pos.fill_(self.length)
        self.decoding = True

    def reset(self, decoding: bool = True) -> None:
        """Empty the cache for reuse, without allocating: decode steps from the first position,
        or (`decoding=False`) ready for the ordinary forward (a prefill) first."""
        self.pos.zero_()
        self.next_pos.zero_()
        self.valid.fill_(True)
        self.length, self.has_padding, self.decoding = 0, False, decoding

    def step_mask(self) -> Tensor:
        """`[B,1,1,S]` bool: the keys a decode step's query sees (filled, valid, itself
        included)."""
        return (self.valid & (self.places <= self.pos))[:, None, None]

    def advance(self) -> None:
        self.pos += 1
        self.next_pos += 1


def decode_step(
    layers: nn.ModuleList, norm: nn.Module, rope: tuple[Tensor, Tensor], x: Tensor, cache: KVCache
) -> Tensor:
    """One decode step through `layers` then `norm`: input `[B,1,D]` -> `[B,1,D]`, its key and
    value written at `cache.pos`, which then advances. `rope`: the cos/sin tables `[S,hd]`."""
    cos = rope[0][cache.next_pos][:, None, None]  # [B,1,1,hd]
    sin = rope[1][cache.next_pos][:, None, None]
    mask = cache.step_mask()
    for i, layer in enumerate(layers):
        x = layer(x, cos, sin, mask, False, cache, i)
    cache.advance()
    return norm(x)
