"""The causal transformer: a Llama-style decoder (RMSNorm, SwiGLU, RoPE, optional GQA).

Public API
----------
- `ModelConfig` (dataclass, one docstring per field; build it with `vidchat.model.build_model`
  so that `vocab_size`/`num_slots` come from the sequence layout).
- `VidChatLM(cfg)`:
  - `forward(tokens [B,L], roles [B,L]=None, slots [B,L]=None, *, valid [B,L]=None,
    cache=None) -> logits [B,L,V]`
  - `hidden(...)` same arguments `-> [B,L,D]` (after the final norm; for losses on a subset)
  - `new_cache(batch, max_len, device=None, dtype=None) -> KVCache`
  - `num_params(exclude_embeddings=False) -> int`
- `KVCache`: preallocated keys/values `[n_layers, B, n_kv_heads, max_len, head_dim]`.

Inputs: `roles` and `slots` come from `LaidOutSequence.model_inputs()` (`slots` are the *next*
slots: what each position predicts). `valid` is False on (left) padding; positions restart at 0
on the first valid token, so a left-padded row computes the same as the unpadded one.
With a cache, each call appends its tokens after the cached ones (prefill, then one token at a
time). Parameter names follow Hugging Face Llama without the `model.` prefix, so
`vidchat.model.hf` maps checkpoints one to one. Architecture only: no loading, no losses.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from vidchat.model.blocks import Block, KVCache, ModelConfig, RMSNorm, compute_dtype, rope_table
from vidchat.model.depth import DepthTransformer, grouped_logits, grouped_nll
from vidchat.model.frame import FrameTransformer
from vidchat.model.partner import PartnerSummary


class VidChatLM(nn.Module):
    """Decoder-only LM over the shared audio-visual vocabulary (see the module docstring)."""

    grad_checkpointing: bool = False
    """Recompute each block in the backward pass (saves activation memory). A runtime switch,
    not architecture: training sets it from `model.grad_checkpointing`; it is never saved."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.embed_roles = nn.Embedding(cfg.num_roles, cfg.dim) if cfg.num_roles else None
        self.embed_slots = nn.Embedding(cfg.num_slots, cfg.dim) if cfg.num_slots else None
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.depth = DepthTransformer(cfg) if cfg.depth_head else None
        self.frame_head = FrameTransformer(cfg) if cfg.frame_head else None
        self.partner_summary = PartnerSummary(cfg.dim) if cfg.partner_summary else None
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        cos, sin = rope_table(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)  # [S,hd]
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = self.cfg.init_std
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):  # every RMSNorm, the depth head's included
                nn.init.ones_(p)
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, std=std / math.sqrt(2 * self.cfg.n_layers))
            else:
                nn.init.normal_(p, std=std)

    def num_params(self, exclude_embeddings: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            n -= self.embed_tokens.weight.numel()
        return n

    def new_cache(self, batch: int, max_len: int | None = None, device=None, dtype=None) -> KVCache:
        w = self.embed_tokens.weight
        return KVCache(self.cfg, batch, max_len or self.cfg.max_seq_len, device or w.device,
                       dtype or compute_dtype(w))  # fmt: skip

    @property
    def step_head(self):
        """The head that predicts codes of steps other than video frames of a frame head: the
        depth transformer, or the frame head's blocks when only single-code steps are left."""
        return self.depth if self.depth is not None else self.frame_head

    @property
    def grouped(self) -> bool:
        """Some backbone steps hold several codes (a depth or a frame head)."""
        return self.depth is not None or self.frame_head is not None

    def forward(self, tokens, roles=None, slots=None, *, valid=None, cache=None, depth=None,
                modality=None, frame_mask=None) -> Tensor:  # fmt: skip
        """tokens/roles/slots/valid `[B,L]` -> logits `[B,L,V]`.

        `depth` `[B,L]` (the layout's place of each token within its backbone step) is needed by
        a model with a depth head; such a model runs teacher-forced here, without a cache
        (generation drives its steps itself, see `vidchat.model.steppers`). A frame head also
        reads `modality` `[B,L]` (which steps are video frames) and `frame_mask` `[B,L]` (which
        video codes it must guess; default all).
        """
        if self.grouped:
            self._check_grouped(depth, cache, modality)
            slots = torch.zeros_like(tokens) if slots is None else slots
            return grouped_logits(self, tokens, roles, slots, depth, valid, modality, frame_mask)
        return self.lm_head(self.hidden(tokens, roles, slots, valid=valid, cache=cache))

    def nll(self, tokens, targets, roles=None, slots=None, *, valid=None, depth=None,
            modality=None, frame_mask=None, prev_cut=None) -> Tensor:  # fmt: skip
        """Teacher-forced next-token NLL `[B,L-1]`: position i scores `targets[:, i+1]` given
        input `tokens` `[B,L]` up to i (inputs may be noised, targets are clean). Arguments as
        `forward`, and `prev_cut` `[B,L]` (True at a frame's first code: that frame's head runs
        without its copy path, as for a frame that follows none); a model with a head never
        holds `[B,L,V]` logits here."""
        if self.grouped:
            self._check_grouped(depth, None, modality)
            slots = torch.zeros_like(tokens) if slots is None else slots
            return grouped_nll(self, tokens, targets, roles, slots, depth, valid, modality,
                               frame_mask, prev_cut)  # fmt: skip
        logits = self.lm_head(self.hidden(tokens, roles, slots, valid=valid))  # [B,L,V]
        return F.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets[:, 1:],
                               reduction="none")  # fmt: skip

    def _check_grouped(self, depth, cache, modality) -> None:
        if depth is None or cache is not None:
            raise ValueError("a depth-head model's forward needs `depth` and takes no cache")
        if self.frame_head is not None and modality is None:
            raise ValueError("a frame-head model's forward needs `modality`")

    def hidden(self, tokens, roles=None, slots=None, *, valid=None, cache=None) -> Tensor:
        """tokens/roles/slots/valid `[B,L]` -> final hidden states `[B,L,D]` (normed)."""
        x = self.embed_tokens(tokens)  # [B,L,D]
        if roles is not None and self.embed_roles is not None:
            x = x + self.embed_roles(roles)
        if slots is not None and self.embed_slots is not None:
            x = x + self.embed_slots(slots)
        return self.backbone(x, valid=valid, cache=cache)

    def backbone(self, x: Tensor, *, valid=None, cache=None) -> Tensor:
        """Input embeddings `[B,L,D]` (one per backbone step) -> final hidden states `[B,L,D]`."""
        cos, sin, mask, is_causal = self._positions(x[..., 0], valid, cache)
        checkpointing = self.grad_checkpointing and self.training and torch.is_grad_enabled()
        for i, layer in enumerate(self.layers):
            if checkpointing:
                x = checkpoint(layer, x, cos, sin, mask, is_causal, cache, i, use_reentrant=False)
            else:
                x = layer(x, cos, sin, mask, is_causal, cache, i)
        if cache is not None:
            cache.length += x.shape[1]
        return self.norm(x)

    def _positions(self, tokens: Tensor, valid: Tensor | None, cache: KVCache | None):
        """RoPE cos/sin (broadcastable to `[B,H,L,hd]`) and the attention mask for this call."""
        B, L = tokens.shape
        start = 0 if cache is None else cache.length
        end = start + L
        if end > self.rope_cos.shape[0] or (cache is not None and end > cache.max_len):
            raise ValueError(f"sequence of {end} tokens exceeds max_seq_len / cache length")
        padded = valid is not None and not bool(valid.all())
        if cache is not None and valid is not None:
            cache.valid[:, start:end] = valid
        if cache is not None:
            cache.has_padding = cache.has_padding or padded
        any_padding = padded or (cache is not None and cache.has_padding)

        if not any_padding:  # every row at the same positions: slice the table, causal fast path
            if cache is not None:
                cache.next_pos += L
            cos, sin = self.rope_cos[start:end], self.rope_sin[start:end]  # [L,hd]
            if start == 0:
                return cos, sin, None, L > 1
            if L == 1:
                return cos, sin, None, False
            causal = torch.ones(L, end, dtype=torch.bool, device=tokens.device).tril(start)
            return cos, sin, causal, False

        # per-row positions: count only valid tokens, continue from the cached ones
        v = torch.ones_like(tokens, dtype=torch.bool) if valid is None else valid
        base = (
            torch.zeros(B, dtype=torch.long, device=tokens.device)
            if cache is None
            else cache.next_pos
        )
        pos = (base[:, None] + v.long().cumsum(-1) - 1).clamp(min=0)  # [B,L]
        if cache is not None:
            cache.next_pos = base + v.long().sum(-1)
        cos, sin = self.rope_cos[pos].unsqueeze(1), self.rope_sin[pos].unsqueeze(1)  # [B,1,L,hd]
        keys_valid = v if cache is None else cache.valid[:, :end]  # [B,S]
        causal = torch.ones(L, end, dtype=torch.bool, device=tokens.device).tril(start)  # [L,S]
        diag = torch.zeros_like(causal)
        diag[torch.arange(L), start + torch.arange(L)] = True  # padding queries see themselves
        mask = (causal & keys_valid[:, None, :]) | diag  # [B,L,S]
        return cos, sin, mask[:, None], False  # [B,1,L,S]
