"""How generation gets the next token's logits: one backbone step per token (flat), or one per
backbone step with the depth head inside it (`vidchat.model.depth`).

A stepper owns the preallocated sequence (prompt, then the generated tokens the loop writes) and
answers `first()` (the logits after the prompt) and `next(n)` (after generated token n). With
`use_cache=False` it recomputes the whole prefix every time: slow, and the reference that the
cached path must equal (same seed, same tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vidchat.errors import ConfigError
from vidchat.model.depth import code_embedding, prefill
from vidchat.model.frame import decode_frame
from vidchat.model.frame_links import frame_codes, previous_frames
from vidchat.model.grammar import ResponderGrammar
from vidchat.model.vocab import Modality, Role, Vocab


@dataclass
class FrameSampling:
    """How a frame head decodes a frame: `sample(logits [N,n]) -> [N]`, its passes, and with
    guidance `guide(logits [2B,...]) -> [B,...]` (`vidchat.model.generate.guide`)."""

    sample: Any
    refine_steps: int = 8
    guide: Any = None


@dataclass
class Running:
    """The whole sequence being generated, preallocated: prompt `[B,P]`, then `N` new tokens."""

    tokens: Tensor  # [B,P+N]
    roles: Tensor  # [B,P+N]
    slots: Tensor  # [B,P+N] the next slot each position predicts
    depth: Tensor  # [B,P+N] place within the backbone step
    modality: Tensor  # [B,P+N]
    valid: Tensor  # [B,P+N] False on the prompts' left padding
    prompt_len: int
    padded: bool

    @classmethod
    def of(cls, batch: dict[str, Tensor], grammar: ResponderGrammar) -> Running:
        B, P = batch["tokens"].shape
        N, device = len(grammar), batch["tokens"].device
        tokens = torch.full((B, P + N), Vocab.pad, dtype=torch.long, device=device)
        tokens[:, :P] = batch["tokens"]
        roles = torch.full_like(tokens, int(Role.RESPONDER))
        roles[:, :P] = batch["roles"]
        slots = torch.zeros_like(tokens)
        slots[:, :P] = batch["next_slots"]
        slots[:, P:] = torch.tensor(grammar.slots.tolist()[1:] + [0], device=device)
        depth = torch.zeros_like(tokens)
        depth[:, :P] = batch["depth"]
        depth[:, P:] = grammar.depth.to(device)
        modality = torch.zeros_like(tokens)
        modality[:, :P] = batch["modality"]
        modality[:, P:] = grammar.modality.to(device)
        valid = torch.ones_like(tokens, dtype=torch.bool)
        valid[:, :P] = batch["valid"]
        return cls(tokens, roles, slots, depth, modality, valid, P,
                   not bool(batch["valid"].all()))  # fmt: skip

    def upto(self, end: int) -> dict[str, Tensor]:
        s = slice(0, end)
        return {"tokens": self.tokens[:, s], "roles": self.roles[:, s], "slots": self.slots[:, s],
                "valid": self.valid[:, s] if self.padded else None}  # fmt: skip


class FlatStepper:
    """Every token is one backbone step."""

    def forced(self, n: int) -> None:
        return None

    def __init__(self, model: Any, seq: Running, use_cache: bool) -> None:
        self.model, self.seq = model, seq
        B, total = seq.tokens.shape
        self.cache = model.new_cache(B, total) if use_cache else None

    def first(self) -> Tensor:
        return self.model.lm_head(self.model.hidden(**self.seq.upto(self.seq.prompt_len),
                                                    cache=self.cache)[:, -1])  # fmt: skip

    def next(self, n: int) -> Tensor:
        i, s = self.seq.prompt_len + n, self.seq
        if self.cache is not None:
            t = slice(i, i + 1)
            h = self.model.hidden(s.tokens[:, t], s.roles[:, t], s.slots[:, t], cache=self.cache)
        else:
            h = self.model.hidden(**s.upto(i + 1))
        return self.model.lm_head(h[:, -1])


class DepthStepper:
    """One backbone step per group of codes; the depth transformer emits the codes inside it."""

    def __init__(self, model: Any, seq: Running, use_cache: bool, grammar: ResponderGrammar,
                 frames: FrameSampling) -> None:  # fmt: skip
        self.model, self.seq, self.use_cache = model, seq, use_cache
        self.grammar, self.frames = grammar, frames
        self.grammar_depth = seq.depth[0, seq.prompt_len :].tolist()
        self.frame_starts = set()
        if model.frame_head is not None:  # video steps are decoded whole by the frame head
            video = (grammar.modality == int(Modality.VIDEO)) & (grammar.depth == 0)
            self.frame_starts = set(video.nonzero()[:, 0].tolist())
        self.decided: Tensor | None = None  # [B,G] the current frame's codes
        self.decided_at = -1  # grammar position of the frame's first code
        B, total = seq.tokens.shape
        self.cache = model.new_cache(B, total) if use_cache else None
        self.context: Tensor | None = None  # [B,D] backbone state before the current step
        self.step_sum: Tensor | None = None  # [B,D] summed embeddings of the current step
        self.depth_cache = None

    def _full(self, end: int) -> Tensor:
        """Reference path: logits for token `end` from a full teacher-forced forward of the
        prefix plus a placeholder at `end` (whose own value no earlier logit sees)."""
        s = self.seq
        inputs = s.upto(end + 1)
        logits = self.model(**inputs, depth=s.depth[:, : end + 1], modality=s.modality[:, : end + 1])
        return logits[:, end - 1]

    def first(self) -> Tensor | None:
        s, P = self.seq, self.seq.prompt_len
        if self.use_cache:
            self.context = prefill(self.model, **s.upto(P), depth=s.depth[:, :P], cache=self.cache,
                                   modality=s.modality[:, :P])  # fmt: skip
        if 0 in self.frame_starts:
            self._decide_frame(0)
            return None
        return self._depth_logits(0) if self.use_cache else self._full(P)

    def next(self, n: int) -> Tensor | None:
        """Logits for generated token n+1, or None when a frame head has already decided it."""
        s, i, following = self.seq, self.seq.prompt_len + n, n + 1
        if not self._in_frame(n):  # a decided frame's codes were summed when it was decided
            self._accumulate(n)
        if self._in_frame(following):
            return None
        if self.use_cache and self.grammar_depth[following] == 0:  # token n closed its step
            roles = self.model.embed_roles
            x = self.step_sum + (roles(s.roles[:, i]) if roles is not None else 0)
            self.context = self.model.backbone(x[:, None], cache=self.cache)[:, -1]
        if following in self.frame_starts:
            self._decide_frame(following)
            return None
        return self._depth_logits(following) if self.use_cache else self._full(i + 1)

    def forced(self, n: int) -> Tensor | None:
        """Generated token n `[B]` when the frame head has already decided it, else None."""
        return self.decided[:, n - self.decided_at] if self._in_frame(n) else None

    def _in_frame(self, n: int) -> bool:
        return self.decided is not None and 0 <= n - self.decided_at < self.decided.shape[1]

    def _decide_frame(self, n: int) -> None:
        """Decode the whole frame that starts at generated position n with the frame head; with
        a cache, its codes' embeddings are summed into the step at once."""
        s, m, i = self.seq, self.model, self.seq.prompt_len + n
        if not self.use_cache:  # reference: the context from a full backbone pass
            self.context = prefill(m, **s.upto(i), depth=s.depth[:, :i], cache=None,
                                   modality=s.modality[:, :i])  # fmt: skip
        size = next(d for d, v in enumerate(self.grammar_depth[n + 1 :] + [0], 1) if v == 0)
        slots = s.slots[:, i - 1 : i - 1 + size]  # [B,G] the slots the frame's codes take
        lo, hi = int(self.grammar.lo[n]), int(self.grammar.hi[n])
        self.decided = decode_frame(m, self.context, slots, lo, hi, self.frames.sample,
                                    self.frames.refine_steps, self._previous(i, size),
                                    guide=self.frames.guide)  # fmt: skip
        self.decided_at = n
        if self.use_cache:
            self.step_sum = code_embedding(m, self.decided, slots).sum(1)  # [B,D]

    def _previous(self, i: int, size: int) -> Tensor | None:
        """The codes `[B,G]` of the frame that the one starting at position i follows, by the
        rule training uses (`vidchat.model.frame_links`); None without `model.frame_prev`."""
        if self.model.frame_head.embed_prev is None:
            return None
        s, end = self.seq, i + 1
        links = previous_frames(s.roles[:, :end], s.modality[:, :end], s.depth[:, :end],
                                s.valid[:, :end])  # fmt: skip
        return frame_codes(s.tokens[:, :end], links[:, i], size)

    def _accumulate(self, n: int) -> None:
        """Add generated token n (and its own slot) to the running step embedding, as training
        sums it."""
        s, i = self.seq, self.seq.prompt_len + n
        emb = code_embedding(self.model, s.tokens[:, i], s.slots[:, i - 1])
        first = self.grammar_depth[n] == 0  # from the python-side schedule: no device sync
        self.step_sum = emb if first or self.step_sum is None else self.step_sum + emb

    def _depth_logits(self, n: int) -> Tensor:
        """Logits for generated token n from the depth transformer (cached within the step)."""
        s, m, i = self.seq, self.model, self.seq.prompt_len + n
        head = m.step_head
        slot = s.slots[:, i - 1 : i]  # [B,1] the slot token n takes
        if self.grammar_depth[n] == 0:
            self.depth_cache = head.new_cache(s.tokens.shape[0]) if m.depth is not None else None
            x = head.inputs(self.context, s.tokens.new_zeros(s.tokens.shape[0], 0), slot)
        else:
            x = head.embed_tokens(s.tokens[:, i - 1 : i]) + head.embed_slots(slot)
        return m.lm_head(head(x, cache=self.depth_cache)[:, -1])


def make_stepper(model: Any, batch: dict[str, Tensor], grammar: ResponderGrammar,
                 use_cache: bool, frames: FrameSampling) -> FlatStepper | DepthStepper:  # fmt: skip
    """The stepper for `model`, after checking that prompt and answer fit its context."""
    seq = Running.of(batch, grammar)
    P, N = seq.prompt_len, len(grammar)
    if model.grouped:  # the backbone's context counts steps
        steps = int((seq.depth[:, :P] == 0).sum(1).max()) + int((grammar.depth == 0).sum())
        need, unit, stepper = steps, "steps", DepthStepper(model, seq, use_cache, grammar, frames)
    else:
        need, unit, stepper = P + N, "tokens", FlatStepper(model, seq, use_cache)
    if need > model.cfg.max_seq_len:
        raise ConfigError(
            f"prompt + {N} generated tokens need {need} backbone {unit}, more than "
            f"model.max_seq_len={model.cfg.max_seq_len}"
        )
    return stepper
