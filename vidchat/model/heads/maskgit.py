"""The MaskGIT frame head: a video frame's h*w codes decoded in parallel, in a few passes.

A frame is one backbone step, as with the depth head, but its codes are not emitted one after
another: a bidirectional frame transformer sees the backbone's state before the frame, every
position's slot, and the codes decided so far (a learned mask embedding stands for the rest),
and predicts every position at once (MaskGIT, Chang et al. 2022). Training masks a random share
of each frame (cosine schedule, at least one code; the loss falls on the masked codes, so over
training every code is a target at every masking level the passes meet); generation starts fully
masked and, over `sampling.refine_steps` passes, keeps the most confident codes, so a frame
costs a handful of passes instead of h*w sequential steps.

With the `prev` setting each position also reads the code at the same place in the frame this
one follows (`vidchat.model.frame_links`): the same role's previous frame, or for its first frame
the reference frame. The backbone sees a frame as one summed embedding, which for 64 or 256
codes is far too narrow to say what every position held a frame ago; faces change little from
frame to frame, so this copy path carries most of a frame (and, from the reference, identity).
Its logits also get a learned bonus for the previous code (a pointer-generator style copy gate).

Copy dropout (`stage.noise.copy_dropout`) cuts a share of frames off their copy path during
training, so that those frames must come from the backbone's state alone. Measured on the 64 px
demo, a share of 0.5 did not lift emotion mirroring (README, "Emotion, what has been tried"); it
stays an option, off by default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from vidchat.model.frame_links import frame_codes, previous_frames
from vidchat.model.heads.base import FrameSampling, History, StepBatch
from vidchat.model.heads.depth import TransformerHead, TransformerSettings
from vidchat.model.steps import Steps
from vidchat.model.vocab import Modality


@dataclass(frozen=True)
class MaskGITSettings(TransformerSettings):
    prev: bool = True
    """Each position also reads the previous frame's code there (the copy path)."""


class MaskGITHead(TransformerHead):
    """Bidirectional over one frame's positions; decides a whole frame per generation step."""

    kind = "maskgit"
    causal = False
    whole_step = True
    streams = ("video",)
    Settings = MaskGITSettings

    def __init__(self, cfg: Any, spec: dict[str, Any]) -> None:
        super().__init__(cfg, spec)
        prev = self.settings.prev
        self.mask_embedding = nn.Parameter(torch.zeros(self.cfg.dim))
        self.embed_prev = nn.Embedding(cfg.vocab_size, self.cfg.dim) if prev else None
        # per position, how much to favour the code the previous frame had there
        self.copy_gate = nn.Linear(cfg.dim, 1) if prev else None

    def frame_inputs(
        self,
        context: Tensor,
        tokens: Tensor,
        slots: Tensor,
        masked: Tensor,
        prev: Tensor | None = None,
    ) -> Tensor:
        """context `[N,D]`, the frame's tokens/slots/masked `[N,G]` -> inputs `[N,G,Dh]`;
        `prev` `[N,G]`: the codes of the frame this one follows (-1 rows: none)."""
        known = self.embed_tokens(tokens)
        hidden = torch.where(masked[..., None], self.mask_embedding.to(known.dtype), known)
        x = self.context_proj(context)[:, None] + self.embed_slots(slots) + hidden
        if self.embed_prev is not None and prev is not None:
            x = x + self.embed_prev(prev.clamp(min=0)) * (prev >= 0)[..., None].to(x.dtype)
        return x

    def frame_logits(
        self,
        lm_head: nn.Linear,
        hidden: Tensor,
        prev: Tensor | None,
        lo: int = 0,
        hi: int | None = None,
    ) -> Tensor:
        """Output `[N,G,D]` -> logits `[N,G,V]` over token ids `[lo, hi)` (default all), the
        previous frame's code at each position raised by the copy gate's bonus."""
        weight = lm_head.weight if hi is None else lm_head.weight[lo:hi]
        logits = hidden @ weight.T
        if self.copy_gate is None or prev is None:
            return logits
        bonus = self.copy_gate(hidden)[..., 0] * (prev >= 0).to(hidden.dtype)  # [N,G]
        where = (prev - lo).clamp(0, logits.shape[-1] - 1)[..., None]
        return logits.scatter_add(-1, where, bonus[..., None].to(logits.dtype))

    # ---- teacher-forced ---------------------------------------------------------------------
    def step_logits(
        self, lm_head: nn.Linear, batch: StepBatch, pos: Tensor, context: Tensor
    ) -> Tensor:
        hidden_codes = batch.inputs.get(self.input_key("frame_mask"))
        masked = (
            torch.ones_like(pos, dtype=torch.bool)
            if hidden_codes is None
            else (hidden_codes.reshape(-1)[pos])
        )
        prev = None
        if self.embed_prev is not None:
            who = torch.zeros_like(batch.tokens) if batch.roles is None else batch.roles
            links = previous_frames(who, batch.modality, batch.depth, batch.valid).reshape(-1)
            cut = batch.inputs.get(self.input_key("prev_cut"))
            if cut is not None:
                links = torch.where(cut.reshape(-1), -1, links)
            prev = frame_codes(batch.tokens, links[pos[:, 0]], pos.shape[1])
        flat_tokens, flat_slots = batch.tokens.reshape(-1), batch.own_slots.reshape(-1)
        x = self.frame_inputs(context, flat_tokens[pos], flat_slots[pos], masked, prev)
        return self.frame_logits(lm_head, self(x), prev)  # [N,n,V]: guesses pos[:, d]

    # ---- training ---------------------------------------------------------------------------
    def training_targets(
        self,
        batch: Mapping[str, Tensor],
        loss_mask: Tensor,
        generator: torch.Generator,
        options: Mapping[str, Any],
    ) -> tuple[dict[str, Tensor], Tensor]:
        """Hide a share of every frame (the loss falls on the hidden codes) and, in training
        steps, cut `copy_dropout` of the frames off their copy path."""
        depth, modality = batch["depth"], batch["modality"]
        hidden = sample_frame_mask(depth, modality, generator)
        mask = loss_mask & (hidden | (modality != int(Modality.VIDEO)))
        share = float(options.get("copy_dropout", 0.0)) if options.get("training") else 0.0
        inputs = {self.input_key("frame_mask"): hidden}
        cut = sample_copy_cut(depth, modality, share, generator)
        if cut is not None:
            inputs[self.input_key("prev_cut")] = cut
        return inputs, mask

    # ---- generation -------------------------------------------------------------------------
    @torch.no_grad()
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
        """`sampling.refine_steps` passes, each sampling every masked position and keeping the
        most probable; with guidance the rows are B conditional then B unconditional ones,
        which see the same decided codes."""
        N, G = slots.shape
        B = N // 2 if sampling.guide is not None else N
        prev = self.previous(history, G)
        tokens = torch.full((B, G), lo, dtype=torch.long, device=slots.device)
        masked = torch.ones(B, G, dtype=torch.bool, device=slots.device)
        rows = N // B
        step_logits = sampling.run(self.pass_logits)
        for step in range(sampling.refine_steps):
            # [N,G,n]: only the video codes' rows of the output head
            logits = step_logits(
                lm_head,
                context,
                tokens.repeat(rows, 1),
                slots,
                masked.repeat(rows, 1),
                prev,
                lo,
                hi,
            )
            if sampling.guide is not None:
                logits = sampling.guide(logits)  # [B,G,n]
            picked = sampling.sample(logits.reshape(B * G, -1)).view(B, G)  # [B,G]
            prob = logits.softmax(-1).gather(-1, picked[..., None])[..., 0]
            confidence = torch.where(masked, prob, torch.full_like(prob, math.inf))
            keep = still_masked(step, sampling.refine_steps, G)
            remask = torch.zeros_like(masked)
            if keep:
                remask.scatter_(1, confidence.topk(keep, dim=1, largest=False).indices, True)
            tokens = torch.where(masked & ~remask, picked + lo, tokens)
            masked = remask
        return tokens.repeat(rows, 1)

    def pass_logits(
        self,
        lm_head: nn.Linear,
        context: Tensor,
        tokens: Tensor,
        slots: Tensor,
        masked: Tensor,
        prev: Tensor | None,
        lo: int,
        hi: int,
    ) -> Tensor:
        """One refinement pass (static shapes): the frame's inputs `[N,G]` -> fp32 logits
        `[N,G,hi-lo]`."""
        x = self.frame_inputs(context, tokens, slots, masked, prev)
        return self.frame_logits(lm_head, self(x), prev, lo, hi).float()

    def previous(self, history: History, size: int) -> Tensor | None:
        """The codes `[B,G]` of the frame that the one starting at the history's last position
        follows (`history.follows`, by the rule training uses); None without the copy path."""
        if self.embed_prev is None:
            return None
        B, T = history.tokens.shape
        rows = torch.arange(B, device=history.tokens.device) * T
        starts = torch.where(history.follows >= 0, rows + history.follows, -1)
        return frame_codes(history.tokens, starts, size)


def still_masked(step: int, steps: int, size: int) -> int:
    """How many of a frame's `size` codes stay masked after refinement pass `step` (0-based) of
    `steps`: the cosine schedule, reaching 0 after the last pass."""
    return int(math.floor(size * math.cos(math.pi / 2 * (step + 1) / steps)))


def sample_frame_mask(depth: Tensor, modality: Tensor, generator: torch.Generator) -> Tensor:
    """`[B,L]` bool: the video codes hidden from the frame head (depth, modality `[B,L]`): each
    frame hides a share `cos(pi/2 * u)` (u uniform) and at least one code."""
    B, L = depth.shape
    steps = Steps.of(depth)
    step_of = torch.repeat_interleave(
        torch.arange(len(steps.start), device=depth.device), steps.size
    )  # [B*L]
    u = torch.rand(len(steps.start), generator=generator, device=depth.device)
    ratio = torch.cos(math.pi / 2 * u)  # [M] share hidden per step
    key = torch.rand(B * L, generator=generator, device=depth.device)
    hide = key < ratio[step_of]
    forced = (
        torch.rand(len(steps.start), generator=generator, device=depth.device) * steps.size
    ).long()  # [M] one code per step is always hidden
    hide |= depth.reshape(-1) == forced[step_of]
    return hide.view(B, L) & (modality == int(Modality.VIDEO))


def sample_copy_cut(
    depth: Tensor, modality: Tensor, share: float, generator: torch.Generator
) -> Tensor | None:
    """`[B,L]` bool at the first code of each video frame whose copy path is cut (each with
    probability `share`); None when `share` is 0, drawing nothing, so that runs without copy
    dropout keep their random stream."""
    if share <= 0:
        return None
    starts = (modality == int(Modality.VIDEO)) & (depth == 0)
    draw = torch.rand(depth.shape, generator=generator, device=depth.device) < share
    return starts & draw
