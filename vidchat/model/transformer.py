"""`VidChatLM`, the causal transformer: a Llama-style decoder backbone (RMSNorm, SwiGLU, RoPE,
optional GQA) plus one head per stream, and its forward, teacher-forced and decode paths.

Public API
----------
- `VidChatLM(cfg)`: built from a `ModelConfig` (`vidchat.model.build_model` sizes `vocab_size`
  and `num_slots` from the sequence layout); the backbone plus one head per stream,
  `.heads["video"]` and `.heads["audio"]` (`vidchat.model.heads`, kinds from
  `cfg.stream_heads`), and the output head `.lm_head` `[V,D]` that every head ends in:
  - `forward(tokens [B,L], roles [B,L]=None, slots [B,L]=None, *, valid [B,L]=None,
    cache=None, depth=None, modality=None, head_inputs=None, documents=None) -> logits [B,L,V]`
  - `hidden(tokens, roles, slots, *, valid, cache, documents) -> [B,L,D]`: a flat model's
    final hidden states (after the final norm), before `lm_head`
  - `step_outputs(...)`: a stepped model's teacher-forced logits, one group of equal steps at a
    time, never the whole `[B,L,V]`
  - `new_cache(batch, max_len, device=None, dtype=None) -> KVCache` (`vidchat.model.kv_cache`)
  - `prefill(...)` (a stepped model's prompt through the ordinary forward), then
    `decode_token(tokens [B,1], roles, slots, cache) -> [B,V]` (flat) and
    `decode_step(x [B,D], cache) -> [B,D]` (stepped): static-shape decode steps, which
    generation runs eagerly or compiled (`vidchat.model.runner`)
  - `num_params(exclude_embeddings=False) -> int`
- `ModelConfig` lives in `vidchat.model.blocks` (with the decoder block) and `KVCache` in
  `vidchat.model.kv_cache`; both are re-exported here.

Inputs: `roles` and `slots` come from `LaidOutSequence.model_inputs()` (`slots` are the *next*
slots: what each position predicts). `valid` is False on (left) padding; positions restart at 0
on the first valid token, so a left-padded row computes the same as the unpadded one.
With a cache, each forward appends its tokens after the cached ones (a prefill, or more), until
the decode steps take over (`KVCache.start_decoding`). Parameter names follow Hugging Face Llama without the `model.` prefix, so
`vidchat.model.hf` maps checkpoints one to one.

Architecture only: no loading (`vidchat.model.checkpoint`) and no losses. Training computes the
next-token loss (`vidchat.training.lm.losses`) from `hidden` and `lm_head.weight` (flat, where
it may chunk the output head + cross-entropy) or from `step_outputs` (stepped).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from vidchat.errors import ConfigError
from vidchat.model.blocks import Block, ModelConfig, RMSNorm, compute_dtype, rope_table
from vidchat.model.documents import document_attention, step_documents
from vidchat.model.heads.base import STREAMS, Head, StepBatch
from vidchat.model.heads.registry import build_head
from vidchat.model.kv_cache import KVCache, decode_step
from vidchat.model.partner import PartnerSummary
from vidchat.model.steps import Steps, own_slots
from vidchat.model.vocab import Modality

STREAM_OF = {int(Modality.VIDEO): "video", int(Modality.AUDIO): "audio"}


class VidChatLM(nn.Module):
    """Decoder-only LM over the shared audio-visual vocabulary (see the module docstring)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.embed_roles = nn.Embedding(cfg.num_roles, cfg.dim) if cfg.num_roles else None
        self.embed_slots = nn.Embedding(cfg.num_slots, cfg.dim) if cfg.num_slots else None
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        # audio first: the parameter order (and so a fresh model's init) of earlier releases
        specs = {
            s: cfg.stream_heads.get(s, {"kind": "flat", "stream": s, "size": 1})
            for s in reversed(STREAMS)
        }
        self.heads = nn.ModuleDict({s: build_head(cfg, spec) for s, spec in specs.items()})
        if cfg.partner_summary and not self.stepped:
            raise ConfigError(
                "model.partner_summary needs a grouped head "
                "(model.layout.video_head or audio_head other than flat)"
            )
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
            if name.endswith("norm.weight"):  # every RMSNorm, the heads' included
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
        """A KV cache for `batch` rows (`vidchat.model.kv_cache`): the ordinary forward fills it,
        then `decode_token` / `decode_step` continue one step at a time."""
        w = self.embed_tokens.weight
        return KVCache(
            self.cfg,
            batch,
            max_len or self.cfg.max_seq_len,
            device or w.device,
            dtype or compute_dtype(w),
        )

    @property
    def stepped(self) -> bool:
        """Some stream is grouped: the backbone reads one summed input per frame or time step,
        and the heads predict the codes inside it (`vidchat.model.heads`)."""
        return any(h.grouped for h in self.heads.values())

    @property
    def single_head(self) -> Head:
        """The head that predicts single-code steps (special tokens, a flat stream's codes) of a
        stepped model: the audio head when it is grouped, else the video head."""
        return next(self.heads[s] for s in reversed(STREAMS) if self.heads[s].grouped)

    def own_head(self, modality: int) -> Head | None:
        """The grouped head whose steps hold codes of this modality; None for single-code steps
        (special tokens, a flat stream's codes), which `single_head` predicts."""
        stream = STREAM_OF.get(int(modality))
        head = self.heads[stream] if stream is not None else None
        return head if head is not None and head.grouped else None

    def forward(
        self,
        tokens,
        roles=None,
        slots=None,
        *,
        valid=None,
        cache=None,
        depth=None,
        modality=None,
        head_inputs=None,
        documents=None,
    ) -> Tensor:
        """tokens/roles/slots/valid `[B,L]` -> logits `[B,L,V]`.

        A stepped model also needs `depth` and `modality` `[B,L]` (the layout's place of each
        token within its backbone step, and its stream) and runs teacher-forced here, without a
        cache (generation drives its steps itself, `vidchat.model.steppers`); `head_inputs` are
        what the heads' `training_targets` drew (default: a frame head guesses every code).
        `documents` `[B,L]`: packed rows' sequence ids (`vidchat.model.documents`; None: one
        sequence per row).
        """
        if self.stepped:
            B, L = tokens.shape
            logits = None
            for where, out in self.step_outputs(
                tokens, roles, slots, depth, valid, modality, head_inputs, cache, documents
            ):
                if logits is None:
                    logits = out.new_zeros(B * L, out.shape[-1])
                logits[where] = out
            return logits.view(B, L, -1)
        return self.lm_head(
            self.hidden(tokens, roles, slots, valid=valid, cache=cache, documents=documents)
        )

    def step_outputs(
        self,
        tokens,
        roles,
        slots,
        depth,
        valid,
        modality,
        head_inputs=None,
        cache=None,
        documents=None,
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Teacher-forced predictions of a stepped model, one group of equal steps at a time:
        yields (flat logit positions `[M]`, logits `[M,V]`), where logit position i (= b*L + t)
        predicts token t+1 of row b, the flat convention. `forward` scatters them into one
        `[B,L,V]` buffer; training's loss reads them group by group."""
        if depth is None or modality is None or cache is not None:
            raise ValueError(
                "a stepped model's forward needs `depth` and `modality` and takes no cache"
            )
        B, L = tokens.shape
        slots = torch.zeros_like(tokens) if slots is None else slots
        steps = Steps.of(depth)
        if documents is not None:
            documents = step_documents(
                documents, steps.start, steps.row, steps.index, steps.per_row
            )
        hidden = self.backbone(
            self.step_inputs(tokens, roles, slots, steps, modality),
            valid=steps.valid(valid, B),
            documents=documents,
        )
        # the context of step s is the backbone's state after step s-1 (zeros before the first)
        context = torch.cat([hidden.new_zeros(B, 1, hidden.shape[-1]), hidden], 1)  # [B,S+1,D]
        batch = StepBatch(
            tokens, roles, own_slots(slots), depth, modality, valid, dict(head_inputs or {})
        )
        kinds = modality.reshape(-1)[steps.start]  # [M] the modality of each step
        for n, kind in torch.unique(torch.stack([steps.size, kinds]), dim=1).T.tolist():
            pick = ((steps.size == n) & (kinds == kind)).nonzero()[:, 0]
            pos = steps.start[pick, None] + torch.arange(n, device=tokens.device)  # [N,n]
            ctx = context[steps.row[pick], steps.index[pick]]  # [N,D]
            head = self.own_head(kind)
            if head is not None:
                out = head.step_logits(self.lm_head, batch, pos, ctx)  # [N,n,V]
            else:  # single-code steps
                slot = batch.own_slots.reshape(-1)[pos]  # [N,1]
                out = self.single_head.single_logits(self.lm_head, ctx, slot)[:, None]
            keep = (pos % L) > 0  # a row's first token is never predicted
            yield pos[keep] - 1, out[keep]
        # each row's last position predicts the first token of a step that has not begun yet
        last = context[torch.arange(B, device=tokens.device), steps.index[steps.row_last(B)] + 1]
        rows_last = torch.arange(B, device=tokens.device) * L + L - 1
        yield rows_last, self.single_head.single_logits(self.lm_head, last, slots[:, -1:])

    def code_embedding(self, tokens: Tensor, own: Tensor) -> Tensor:
        """What one code adds to its backbone step: its token embedding plus its own slot's, any
        shape `[...]` -> `[..., D]` (training sums these per step; generation adds them as it
        goes)."""
        emb = self.embed_tokens(tokens)
        return emb + self.embed_slots(own) if self.embed_slots is not None else emb

    def step_inputs(
        self, tokens: Tensor, roles: Tensor | None, slots: Tensor, steps: Steps, modality: Tensor
    ) -> Tensor:
        """The backbone's input per step `[B,S,D]`: the sum of its tokens' embeddings, each with
        its own slot, plus the step's role (and, with `partner_summary`, the partner's frames
        summed up at each responder turn's start)."""
        B, L = tokens.shape
        emb = self.code_embedding(tokens, own_slots(slots))
        step_of = torch.repeat_interleave(steps.row * steps.per_row + steps.index, steps.size)
        x = emb.new_zeros(B * steps.per_row, emb.shape[-1])
        x.index_add_(0, step_of, emb.reshape(B * L, -1))
        x = x.view(B, steps.per_row, -1)
        if roles is None:
            return x
        step_roles = torch.zeros(B, steps.per_row, dtype=torch.long, device=tokens.device)
        step_roles[steps.row, steps.index] = roles.reshape(-1)[steps.start]
        if self.partner_summary is not None:
            step_video = torch.zeros_like(step_roles, dtype=torch.bool)
            step_video[steps.row, steps.index] = modality.reshape(-1)[steps.start] == int(
                Modality.VIDEO
            )
            x = x + self.partner_summary(x, step_roles, step_video)
        if self.embed_roles is not None:
            x = x + self.embed_roles(step_roles)
        return x

    @torch.no_grad()
    def prefill(
        self,
        tokens: Tensor,
        roles: Tensor,
        slots: Tensor,
        depth: Tensor,
        valid: Tensor | None,
        modality: Tensor,
        cache: KVCache | None,
    ) -> Tensor:
        """Run a left-padded prompt `[B,P]` of a stepped model through the backbone (into
        `cache`), step by step; -> the context of the step after it `[B,D]`."""
        steps = Steps.of(depth, align_end=True)
        x = self.step_inputs(tokens, roles, slots, steps, modality)
        return self.backbone(x, valid=steps.valid(valid, tokens.shape[0]), cache=cache)[:, -1]

    def hidden(
        self, tokens, roles=None, slots=None, *, valid=None, cache=None, documents=None
    ) -> Tensor:
        """tokens/roles/slots/valid/documents `[B,L]` -> final hidden states `[B,L,D]` of a flat
        model (`lm_head` makes them logits; training's loss applies `lm_head.weight` itself)."""
        return self.backbone(
            self.embed(tokens, roles, slots), valid=valid, cache=cache, documents=documents
        )

    def embed(self, tokens: Tensor, roles: Tensor | None, slots: Tensor | None) -> Tensor:
        """A flat model's input embeddings `[B,L,D]`: token plus role plus (next) slot."""
        x = self.embed_tokens(tokens)  # [B,L,D]
        if roles is not None and self.embed_roles is not None:
            x = x + self.embed_roles(roles)
        if slots is not None and self.embed_slots is not None:
            x = x + self.embed_slots(slots)
        return x

    def decode_token(self, tokens: Tensor, roles: Tensor, slots: Tensor, cache: KVCache) -> Tensor:
        """A flat model's static decode step: one token `[B,1]` (with its role and next slot)
        -> the next token's logits `[B,V]`."""
        rope = (self.rope_cos, self.rope_sin)
        return self.lm_head(
            decode_step(self.layers, self.norm, rope, self.embed(tokens, roles, slots), cache)[
                :, -1
            ]
        )

    def decode_step(self, x: Tensor, cache: KVCache) -> Tensor:
        """A stepped model's static backbone step: the step's input `[B,D]` -> the backbone's
        state after it `[B,D]`."""
        rope = (self.rope_cos, self.rope_sin)
        return decode_step(self.layers, self.norm, rope, x[:, None], cache)[:, 0]

    def backbone(self, x: Tensor, *, valid=None, cache=None, documents=None) -> Tensor:
        """Input embeddings `[B,L,D]` (one per backbone step) -> final hidden states `[B,L,D]`;
        with `documents` (packed rows, no cache) attention is block-causal."""
        if documents is not None:
            if cache is not None:
                raise ValueError("packed rows (documents) are a training input; no cache")
            pos, mask = document_attention(documents, valid)
            cos, sin = self.rope_cos[pos].unsqueeze(1), self.rope_sin[pos].unsqueeze(1)
            is_causal = False
        else:
            if cache is not None and cache.decoding:
                raise ValueError("the cache is decoding: append with decode steps, not a forward")
            cos, sin, mask, is_causal = self._positions(x[..., 0], valid, cache)
        for i, layer in enumerate(self.layers):
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
            cache.next_pos.copy_(base + v.long().sum(-1))  # in place: a compiled step reads it
        cos, sin = self.rope_cos[pos].unsqueeze(1), self.rope_sin[pos].unsqueeze(1)  # [B,1,L,hd]
        keys_valid = v if cache is None else cache.valid[:, :end]  # [B,S]
        causal = torch.ones(L, end, dtype=torch.bool, device=tokens.device).tril(start)  # [L,S]
        diag = torch.zeros_like(causal)
        diag[torch.arange(L), start + torch.arange(L)] = True  # padding queries see themselves
        mask = (causal & keys_valid[:, None, :]) | diag  # [B,L,S]
        return cos, sin, mask[:, None], False  # [B,1,L,S]
