"""How generation gets the next token's logits: one backbone step per token (flat), or one per
frame or time step of a grouped stream, its head inside it (`vidchat.model.heads`).

A stepper owns the preallocated sequence (prompt, then the generated tokens the loop writes) and
answers `first()` (the logits after the prompt) and `next(n)` (after generated token n). The
prompt is prefilled by the ordinary forward into the KV cache (`vidchat.model.kv_cache`); every
later step is a static-shape decode step, run as `frames.run` says: eagerly, or compiled once
and replayed (`vidchat.model.runner`). The tests hold the reference that this must equal (same
seed, same tokens): steppers that recompute the whole prefix at every token
(`tests/model/uncached.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vidchat.errors import ConfigError
from vidchat.model.frame_links import previous_frames
from vidchat.model.grammar import ResponderGrammar
from vidchat.model.heads.base import FrameSampling, Head, History
from vidchat.model.runner import StepRunner, cache_length
from vidchat.model.transformer import VidChatLM
from vidchat.model.vocab import Modality, Role, Vocab

__all__ = ["FlatStepper", "FrameSampling", "Running", "StepStepper", "make_stepper"]


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
        return cls(tokens, roles, slots, depth, modality, valid, P, not bool(batch["valid"].all()))

    def upto(self, end: int) -> dict[str, Tensor]:
        s = slice(0, end)
        return {
            "tokens": self.tokens[:, s],
            "roles": self.roles[:, s],
            "slots": self.slots[:, s],
            "valid": self.valid[:, s] if self.padded else None,
        }


class FlatStepper:
    """Every token is one backbone step."""

    def forced(self, n: int) -> None:
        return None

    def __init__(self, model: Any, seq: Running, run: StepRunner, length: int) -> None:
        self.model, self.seq, self.run = model, seq, run
        self.cache = run.cache(model.new_cache, model, seq.tokens.shape[0], length)

    def first(self) -> Tensor:
        h = self.model.hidden(**self.seq.upto(self.seq.prompt_len), cache=self.cache)
        self.cache.start_decoding()
        return self.model.lm_head(h[:, -1])

    def next(self, n: int) -> Tensor:
        i, s = self.seq.prompt_len + n, self.seq
        t = slice(i, i + 1)
        step = (self.run.dense(x[:, t]) for x in (s.tokens, s.roles, s.slots))
        return self.run(self.model.decode_token)(*step, self.cache)


class StepStepper:
    """One backbone step per frame or time step of a grouped stream; each step's head emits its
    codes: code by code (`Head.begin` / `advance`) or all at once (`Head.decide`)."""

    def __init__(
        self,
        model: VidChatLM,
        seq: Running,
        grammar: ResponderGrammar,
        frames: FrameSampling,
        length: int,
    ) -> None:
        self.model, self.seq = model, seq
        self.grammar, self.frames, self.run = grammar, frames, frames.run
        self.grammar_depth = seq.depth[0, seq.prompt_len :].tolist()
        self.grammar_video = (grammar.modality == int(Modality.VIDEO)).tolist()
        self.ranges = list(zip(grammar.lo.tolist(), grammar.hi.tolist(), strict=True))
        # python-side schedule: at each generated position that starts a step, its head
        self.heads: dict[int, tuple[Head, bool]] = {}
        for n, (d, m) in enumerate(zip(self.grammar_depth, grammar.modality.tolist(), strict=True)):
            if d == 0:
                own = model.own_head(m)
                whole = own is not None and own.whole_step
                self.heads[n] = (own if own is not None else model.single_head, whole)
        self.decided: Tensor | None = None  # [B,G] the current step's codes, decided at once
        self.decided_at = -1  # grammar position of that step's first code
        self.cache = self.run.cache(model.new_cache, model, seq.tokens.shape[0], length)
        self.context: Tensor | None = None  # [B,D] backbone state before the current step
        self.step_sum: Tensor | None = None  # [B,D] summed embeddings of the current step
        self.current: Head | None = None  # the current step's head
        self.head_states: dict[str, Any] = {}  # code-by-code heads' states, by stream
        self.follows = self._first_follows()  # [B] the frame the next video frame follows

    def _first_follows(self) -> Tensor:
        """`[B]`: the column of the frame the first generated video frame follows (-1: none),
        by `frame_links`' rule; later frames follow the frame generated before them."""
        s = self.seq
        first = next(
            (
                n
                for n, (d, v) in enumerate(zip(self.grammar_depth, self.grammar_video, strict=True))
                if d == 0 and v
            ),
            None,
        )
        if first is None:
            return torch.full_like(s.tokens[:, 0], -1)
        end = s.prompt_len + first + 1
        links = previous_frames(
            s.roles[:, :end], s.modality[:, :end], s.depth[:, :end], s.valid[:, :end]
        )[:, -1]
        return torch.where(links >= 0, links % end, -1)

    def first(self) -> Tensor | None:
        s, P = self.seq, self.seq.prompt_len
        self.context = self.model.prefill(
            **s.upto(P), depth=s.depth[:, :P], modality=s.modality[:, :P], cache=self.cache
        )
        self.context = self.run.dense(self.context)
        self.cache.start_decoding()
        return self._start(0)

    def next(self, n: int) -> Tensor | None:
        """Logits for generated token n+1, or None when its step's head has already decided it."""
        s, i, following = self.seq, self.seq.prompt_len + n, n + 1
        if not self._in_step(n):  # a decided step's codes were summed when it was decided
            self._accumulate(n)
        if self._in_step(following):
            return None
        if self.grammar_depth[following] == 0:  # token n closed its step
            roles = self.model.embed_roles
            x = self.step_sum + (roles(s.roles[:, i]) if roles is not None else 0)
            self.context = self.run(self.model.decode_step)(x, self.cache)
        if following in self.heads:
            return self._start(following)
        token, slot = (self.run.dense(x[:, i : i + 1]) for x in (s.tokens, s.slots))
        return self.current.advance(
            self.model.lm_head, self.head_states[self.current.stream], token, slot, run=self.run
        )

    def forced(self, n: int) -> Tensor | None:
        """Generated token n `[B]` when its step's head has already decided it, else None."""
        return self.decided[:, n - self.decided_at] if self._in_step(n) else None

    def _in_step(self, n: int) -> bool:
        return self.decided is not None and 0 <= n - self.decided_at < self.decided.shape[1]

    def _start(self, n: int) -> Tensor | None:
        """Begin the step at generated position n: its first code's logits, or None when its
        head decided the whole step."""
        head, whole = self.heads[n]
        s, i = self.seq, self.seq.prompt_len + n
        self.current = head
        logits = None
        if whole:
            self._decide(head, n)
        else:
            logits, self.head_states[head.stream] = head.begin(
                self.model.lm_head,
                self.context,
                self.run.dense(s.slots[:, i - 1 : i]),
                self.head_states.get(head.stream),
                run=self.run,
            )
        if self.grammar_video[n]:  # the next video frame follows this one
            self.follows = torch.full_like(self.follows, i)
        return logits

    def _decide(self, head: Head, n: int) -> None:
        """Decide the whole step that starts at generated position n; its codes' embeddings are
        summed into the step at once."""
        s, m, i = self.seq, self.model, self.seq.prompt_len + n
        size = next(d for d, v in enumerate(self.grammar_depth[n + 1 :] + [0], 1) if v == 0)
        slots = self.run.dense(s.slots[:, i - 1 : i - 1 + size])  # [B,G] its codes' slots
        lo, hi = self.ranges[n]
        end = i + 1
        history = History(
            s.tokens[:, :end],
            s.roles[:, :end],
            s.modality[:, :end],
            s.depth[:, :end],
            s.valid[:, :end],
            self.follows,
        )
        self.decided = head.decide(m.lm_head, self.context, slots, lo, hi, self.frames, history)
        self.decided_at = n
        self.step_sum = m.code_embedding(self.decided, slots).sum(1)  # [B,D]

    def _accumulate(self, n: int) -> None:
        """Add generated token n (and its own slot) to the running step embedding, as training
        sums it."""
        s, i = self.seq, self.seq.prompt_len + n
        emb = self.model.code_embedding(s.tokens[:, i], s.slots[:, i - 1])
        first = self.grammar_depth[n] == 0  # from the python-side schedule: no device sync
        self.step_sum = emb if first or self.step_sum is None else self.step_sum + emb


def make_stepper(
    model: Any,
    batch: dict[str, Tensor],
    grammar: ResponderGrammar,
    frames: FrameSampling,
) -> FlatStepper | StepStepper:
    """The stepper for `model`, after checking that prompt and answer fit its context."""
    seq = Running.of(batch, grammar)
    P, N = seq.prompt_len, len(grammar)
    if model.stepped:  # the backbone's context counts steps
        need = int((seq.depth[:, :P] == 0).sum(1).max()) + int((grammar.depth == 0).sum())
        unit = "steps"
    else:
        need, unit = P + N, "tokens"
    if need > model.cfg.max_seq_len:
        raise ConfigError(
            f"prompt + {N} generated tokens need {need} backbone {unit}, more than "
            f"model.max_seq_len={model.cfg.max_seq_len}"
        )
    length = cache_length(need, model.cfg.max_seq_len)
    if model.stepped:
        return StepStepper(model, seq, grammar, frames, length)
    return FlatStepper(model, seq, frames.run, length)
