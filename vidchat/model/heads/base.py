"""What a head is: how one stream's codes become backbone steps, and how they are predicted.

`VidChatLM` is a backbone plus one head per stream (`{"video": head, "audio": head}`), each of
the kind `model.layout.video_head` / `audio_head` names in `vidchat.model.heads.registry`. A head
owns, in its own module:
- its settings (`model.heads.<kind>` in the config; the resolved spec is saved per stream in
  `ModelConfig.stream_heads`) and its parameters;
- whether a frame (video) or a time step (audio) is one backbone step (`grouped`), and any layout
  it cannot serve (`check_layout`);
- its teacher-forced logits for the codes of its steps (`step_logits`);
- its training-time masking (`training_targets`);
- its generation step: code by code (`begin` / `advance`) or a whole step at once (`decide`).

A stream with an ungrouped head (`flat`) gives one backbone step per code. In a model where some
stream is grouped, those single-code steps, and the special tokens, are predicted from the
backbone's state by the model's *single-step head* (`single_logits`): the audio head when it is
grouped, else the video head (`VidChatLM.single_head`).

Shapes: a group of N steps of n codes each: positions `pos` `[N,n]` (flat index b*L + t),
contexts `[N,D]` (the backbone state after the step before); logits `[N,n,V]` where entry d
predicts the code at `pos[:, d]`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from vidchat.errors import ConfigError
from vidchat.model.runner import EAGER, StepRunner

STREAMS = ("video", "audio")


@dataclass
class StepBatch:
    """A teacher-forced batch as the heads read it; every tensor `[B,L]`. `own_slots` is each
    token's own slot; `inputs` holds what the heads' `training_targets` drew (e.g. which video
    codes a frame head must guess), by name."""

    tokens: Tensor
    roles: Tensor
    own_slots: Tensor
    depth: Tensor
    modality: Tensor
    valid: Tensor | None
    inputs: Mapping[str, Tensor] = field(default_factory=dict)


@dataclass
class FrameSampling:
    """How a head that decides whole steps samples them: `sample(logits [N,n]) -> [N]`, its
    passes, with classifier-free guidance `guide(logits [2B,...]) -> [B,...]`, and how its
    static-shape passes run (`run`)."""

    sample: Callable[[Tensor], Tensor]
    refine_steps: int = 8
    guide: Callable[[Tensor], Tensor] | None = None
    run: StepRunner = EAGER


@dataclass
class History:
    """The sequence generated so far, up to and including the first position of the step a
    head decides: tokens, roles, modality, depth, valid `[B,T]`; and `follows` `[B]`: the
    column of the first code of the video frame this step follows by `frame_links`' rule (-1:
    none), which generation keeps as it goes instead of searching the history every frame."""

    tokens: Tensor
    roles: Tensor
    modality: Tensor
    depth: Tensor
    valid: Tensor
    follows: Tensor


@dataclass(frozen=True)
class NoSettings:
    """A head without settings."""


class Head(nn.Module):
    """One stream's head (see the module docstring). Subclasses set the class attributes and
    override what their kind does; the defaults are those of a head with no parameters."""

    kind: ClassVar[str] = ""
    """The registry key (`model.layout.<stream>_head`)."""
    grouped: ClassVar[bool] = False
    """A frame (video) or time step (audio) is one backbone step."""
    whole_step: ClassVar[bool] = False
    """Generation decides all codes of a step at once (`decide`), not code by code."""
    streams: ClassVar[tuple[str, ...]] = STREAMS
    """The streams this kind can serve."""
    Settings: ClassVar[type] = NoSettings
    """Dataclass of the kind's settings (`model.heads.<kind>`)."""

    def __init__(self, cfg: Any, spec: Mapping[str, Any]) -> None:
        """cfg: the backbone's `ModelConfig`; spec: `{"kind", "stream", "size"}` (codes per
        step) plus the kind's settings."""
        super().__init__()
        self.stream, self.size = str(spec["stream"]), int(spec["size"])
        self.settings = self.Settings(**{k: spec[k] for k in self.setting_names() if k in spec})

    def input_key(self, name: str) -> str:
        """The key of one of this head's training inputs in `StepBatch.inputs`, by stream, so
        that two heads may draw inputs of the same name."""
        return f"{self.stream}/{name}"

    # ---- configuration ----------------------------------------------------------------------
    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls.Settings))

    @classmethod
    def check_layout(cls, stream: str, layout: Any) -> None:
        """Raise `ConfigError` if this kind cannot serve `stream` under `layout` (a
        `LayoutConfig`)."""
        if stream not in cls.streams:
            raise ConfigError(
                f"layout.{stream}_head={cls.kind!r} serves {' and '.join(cls.streams)} only"
            )

    @classmethod
    def resolve(cls, stream: str, size: int, settings: Mapping[str, Any] | None) -> dict[str, Any]:
        """The spec saved in `ModelConfig.stream_heads[stream]`: kind, stream, size and every
        setting (defaults filled in; an unknown key is a `ConfigError`)."""
        given = dict(settings or {})
        unknown = sorted(set(given) - set(cls.setting_names()))
        if unknown:
            raise ConfigError(
                f"unknown model.heads.{cls.kind} keys {unknown}; known: {list(cls.setting_names())}"
            )
        values = vars(cls.Settings(**given)) if cls.setting_names() else {}
        return {"kind": cls.kind, "stream": stream, "size": int(size), **values}

    # ---- teacher-forced ---------------------------------------------------------------------
    def step_logits(
        self, lm_head: nn.Linear, batch: StepBatch, pos: Tensor, context: Tensor
    ) -> Tensor:
        """Logits `[N,n,V]` for the codes at `pos` `[N,n]` of this head's steps."""
        raise NotImplementedError(f"the {self.kind} head has no steps of its own")

    def single_logits(self, lm_head: nn.Linear, context: Tensor, slot: Tensor) -> Tensor:
        """Logits `[N,V]` of a single-code step (slot `[N,1]`) from the context `[N,D]`."""
        raise NotImplementedError(f"the {self.kind} head cannot predict single-code steps")

    # ---- training ---------------------------------------------------------------------------
    def training_targets(
        self,
        batch: Mapping[str, Tensor],
        loss_mask: Tensor,
        generator: torch.Generator,
        options: Mapping[str, Any],
    ) -> tuple[dict[str, Tensor], Tensor]:
        """(inputs for `StepBatch.inputs`, the loss mask `[B,L]` to use) for one micro-batch;
        `options` are the stage's training options (`stage.noise`, `training`: whether this is
        a training step). Draws only from `generator`, so a resumed run draws the same."""
        return {}, loss_mask

    # ---- generation -------------------------------------------------------------------------
    def begin(
        self,
        lm_head: nn.Linear,
        context: Tensor,
        slot: Tensor,
        state: Any = None,
        run: StepRunner = EAGER,
    ) -> tuple[Tensor, Any]:
        """The first code's logits `[B,V]` of a step decoded code by code, and its state;
        `state`: what the previous step of this head returned, to reuse (None at the first)."""
        raise NotImplementedError(f"the {self.kind} head does not decode code by code")

    def advance(
        self, lm_head: nn.Linear, state: Any, token: Tensor, slot: Tensor, run: StepRunner = EAGER
    ) -> Tensor:
        """The next code's logits `[B,V]` given the last code `[B,1]` and the next slot `[B,1]`."""
        raise NotImplementedError(f"the {self.kind} head does not decode code by code")

    def decide(
        self,
        lm_head: nn.Linear,
        context: Tensor,
        slots: Tensor,
        lo: int,
        hi: int,
        sampling: FrameSampling,
        history: History,
    ) -> Tensor:
        """All codes `[B,n]` (token ids in `[lo, hi)`) of a step, from its context `[N,D]` and
        slots `[N,n]` (N = 2B with guidance)."""
        raise NotImplementedError(f"the {self.kind} head does not decide whole steps")
