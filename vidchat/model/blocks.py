"""Transformer building blocks shared by the backbone and the heads: `ModelConfig`, RMSNorm,
RoPE, attention, the SwiGLU MLP and the decoder block (Llama-style; the KV cache attention
writes into is `vidchat.model.kv_cache`). Parameter
names follow Hugging Face Llama, so `vidchat.model.hf` maps checkpoints one to one."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidchat.errors import ConfigError

try:  # optional: pip install vidchat[gpu]
    from flash_attn import flash_attn_func
except ImportError:  # pragma: no cover - not installable on CPU machines
    flash_attn_func = None

ATTN_IMPLS = ("sdpa", "flash")


@dataclass
class ModelConfig:
    vocab_size: int
    """Shared vocabulary size (`SequenceLayout.vocab.size`)."""
    num_slots: int = 0
    """Slot embedding size (`SequenceLayout.num_slots`); 0 disables the slot embedding."""
    num_roles: int = 4
    """Role embedding size (`layout.Role`); 0 disables the role embedding."""
    dim: int = 256
    """Hidden width D."""
    n_layers: int = 4
    """Number of decoder blocks."""
    n_heads: int = 4
    """Query heads."""
    n_kv_heads: int | None = None
    """Key/value heads (grouped-query attention); None = n_heads."""
    head_dim: int | None = None
    """Per-head width; None = dim // n_heads."""
    ffn_dim: int | None = None
    """SwiGLU hidden width; None = 8/3 * dim rounded up to `ffn_multiple_of` (Llama rule)."""
    ffn_multiple_of: int = 64
    """Rounding for the default `ffn_dim`."""
    norm_eps: float = 1e-5
    """RMSNorm epsilon."""
    rope_theta: float = 10000.0
    """RoPE base."""
    max_seq_len: int = 4096
    """Longest sequence (RoPE table size, default KV-cache length)."""
    tie_embeddings: bool = False
    """Share the token embedding with the output head."""
    attn_impl: str = "sdpa"
    """`sdpa` (PyTorch) or `flash` (flash-attn, unpadded training passes; SDPA elsewhere)."""
    init_std: float = 0.02
    """Std of the normal init; residual output projections get std / sqrt(2 * n_layers)."""
    stream_heads: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each stream's head as `{"video": {"kind", "stream", "size", ...settings}, "audio": ...}`
    (`vidchat.model.heads`); filled by `build_model` from `model.layout.<stream>_head` and
    `model.heads.<kind>`, never set in YAML. A stream left out has a flat head."""
    partner_summary: bool = False
    """Each responder turn's first step also reads a projection of the mean input of the
    partner's video frames it answers (`vidchat.model.partner`); needs a grouped head."""

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.head_dim is None:
            if self.dim % self.n_heads:
                raise ConfigError(
                    f"model.dim={self.dim} must be divisible by model.n_heads={self.n_heads} "
                    "(or set model.head_dim)"
                )
            self.head_dim = self.dim // self.n_heads
        if self.ffn_dim is None:
            m = self.ffn_multiple_of
            self.ffn_dim = m * math.ceil(int(8 * self.dim / 3) / m)
        for name in (
            "vocab_size",
            "dim",
            "n_layers",
            "n_heads",
            "n_kv_heads",
            "head_dim",
            "ffn_dim",
            "max_seq_len",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(
                f"model.n_heads={self.n_heads} must be a multiple of model.n_kv_heads={self.n_kv_heads}"
            )
        if self.head_dim % 2:
            raise ConfigError(f"model.head_dim must be even for RoPE, got {self.head_dim}")
        if self.attn_impl not in ATTN_IMPLS:
            raise ConfigError(
                f"model.attn_impl must be one of {ATTN_IMPLS}, got {self.attn_impl!r}"
            )
        if self.attn_impl == "flash" and flash_attn_func is None:
            raise ConfigError("model.attn_impl=flash needs flash-attn (pip install vidchat[gpu])")


def compute_dtype(weight: Tensor) -> torch.dtype:
    """The dtype activations have next to `weight`: autocast's when autocast is on for its
    device, else the weight's own (bf16 weights, as under DeepSpeed's `bf16`, compute in bf16)."""
    kind = weight.device.type
    if torch.is_autocast_enabled(kind) and weight.is_floating_point():
        return torch.get_autocast_dtype(kind)
    return weight.dtype


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # normalise in fp32 (as Hugging Face Llama does), scale in the input dtype
        return self.weight * F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).type_as(x)


def rope_table(head_dim: int, max_len: int, theta: float) -> tuple[Tensor, Tensor]:
    """cos, sin `[max_len, head_dim]` (halves repeated, Hugging Face `rotate_half` convention)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    freqs = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)  # [S, hd/2]
    emb = torch.cat([freqs, freqs], dim=-1)  # [S, hd]
    return emb.cos(), emb.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x `[B,H,L,hd]`; cos/sin (the fp32 tables) broadcastable to it -> `[B,H,L,hd]` in x's dtype.

    The rotation runs in fp32 and the result keeps x's dtype: with bf16 weights (DeepSpeed's
    `bf16`) multiplying by the fp32 tables would otherwise promote q and k to fp32 beside a bf16
    v, which SDPA refuses; under autocast it would silently run attention in fp32."""
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    return (xf * cos + torch.cat([-x2, x1], dim=-1) * sin).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)
        self.use_flash = cfg.attn_impl == "flash"

    def forward(self, x, cos, sin, mask, is_causal, cache, layer) -> Tensor:
        B, L, _ = x.shape
        # [B,L,H*hd] -> [B,H,L,hd]
        q = self.q_proj(x).view(B, L, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, L, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, L, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # [B,Hkv,S,hd]
        if self.use_flash and cache is None and mask is None and q.is_cuda:
            # flash-attn takes [B,L,H,hd] and handles GQA itself
            out = flash_attn_func(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=True
            )
            return self.o_proj(out.reshape(B, L, -1))
        if L == 1:  # one decode step: plain matmuls beat SDPA's kernels for a single query
            return self.o_proj(self._attend_one(q, k, v, mask).reshape(B, 1, -1))
        if self.n_kv_heads != self.n_heads:  # GQA: [B,Hkv,S,hd] -> [B,H,S,hd]
            rep = self.n_heads // self.n_kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
        return self.o_proj(out.transpose(1, 2).reshape(B, L, -1))  # [B,H,L,hd] -> [B,L,D]

    def _attend_one(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        """q `[B,H,1,hd]`, k/v `[B,Hkv,S,hd]`, mask `[B,1,1,S]` bool or None -> `[B,H,hd]`."""
        B, Hkv = k.shape[:2]
        q = q.reshape(B, Hkv, -1, self.head_dim)  # [B,Hkv,rep,hd]: query heads grouped by kv head
        scores = (q @ k.transpose(-1, -2)) * self.head_dim**-0.5  # [B,Hkv,rep,S]
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        probs = scores.float().softmax(-1).to(v.dtype)  # fp32 softmax, as SDPA's kernels do
        return (probs @ v).reshape(B, -1, self.head_dim)  # [B,Hkv,rep,hd] -> [B,H,hd]


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.up_proj = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.down_proj = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask, is_causal, cache=None, layer=0) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, is_causal, cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))
