"""The uncached reference that KV-cache generation must equal: steppers that recompute the whole
prefix with the ordinary forward at every token, and `generate_uncached`, which is `generate`
with them. Same seed, same tokens (`test_generate.py`, `test_depth.py`, `test_guidance.py`,
...). It lives here, not in `vidchat`, because nothing but the tests needs it: slow, and only a
reference.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

import torch
from torch import Tensor

import vidchat.model.generate as generation
from vidchat.model.steppers import FlatStepper, StepStepper, make_stepper


class UncachedFlat(FlatStepper):
    """Each token's logits from a full forward of the prefix."""

    def first(self) -> Tensor:
        return self.next(-1)

    def next(self, n: int) -> Tensor:
        end = self.seq.prompt_len + n + 1
        return self.model.lm_head(self.model.hidden(**self.seq.upto(end))[:, -1])


class UncachedSteps(StepStepper):
    """Each code's logits from a full teacher-forced forward, and each step a head decides at
    once from the backbone's context after a full pass over the prefix."""

    def first(self) -> Tensor | None:
        return self._start(0)

    def next(self, n: int) -> Tensor | None:
        following = n + 1
        if self._in_step(following):
            return None
        if following in self.heads:
            return self._start(following)
        return self._full(self.seq.prompt_len + following)

    def _start(self, n: int) -> Tensor | None:
        head, whole = self.heads[n]
        i = self.seq.prompt_len + n
        self.current = head
        logits = None
        if whole:
            s = self.seq
            self.context = self.model.prefill(
                **s.upto(i), depth=s.depth[:, :i], modality=s.modality[:, :i], cache=None
            )
            self._decide(head, n)
        else:
            logits = self._full(i)
        if self.grammar_video[n]:  # the next video frame follows this one
            self.follows = torch.full_like(self.follows, i)
        return logits

    def _full(self, end: int) -> Tensor:
        """Logits for token `end` from a full teacher-forced forward of the prefix plus a
        placeholder at `end` (whose own value no earlier logit sees)."""
        s = self.seq
        logits = self.model(
            **s.upto(end + 1), depth=s.depth[:, : end + 1], modality=s.modality[:, : end + 1]
        )
        return logits[:, end - 1]


def _uncached_stepper(model: Any, batch: dict, grammar: Any, frames: Any):
    stepper = make_stepper(model, batch, grammar, frames)  # checks the context, sizes the cache
    kind = UncachedSteps if isinstance(stepper, StepStepper) else UncachedFlat
    stepper.__class__ = kind  # the same state, the uncached steps
    stepper.cache = None
    return stepper


@contextlib.contextmanager
def uncached() -> Iterator[None]:
    """`generate` / `stream_chunks` with the uncached steppers inside the block."""
    with mock.patch.object(generation, "make_stepper", _uncached_stepper):
        yield


def generate_uncached(*args: Any, **kwargs: Any) -> generation.GenerationResult:
    """`vidchat.model.generate.generate`, every token from a full forward."""
    with uncached():
        return generation.generate(*args, **kwargs)
