"""`partner_dependence`: does the responder's answer depend on its partner? Teacher-forced, no
sampling.

For each test pair, the LM reads the true answer's first chunk twice: after the true partner's
turn, and after another partner's turn (a partner of another emotion where the data labels
one), with the same reference and the two turns cut to the same length, so that nothing but the
partner's content differs. At the answer's first video frame it compares, code by code, the
distributions over video codes:

- `value`: the mean KL divergence KL(p_true || p_other) in nats per code;
- `details["gain"]`: how often the true answer's code gets more probability after the true
  partner than after the other one (within `box`, the demo face's mouth for example).

A responder that ignores its partner scores 0 on both: the two readings are the same sequence
but for the partner's codes. This is the measure that sampling hides: an answer that does not
mirror may still lean the right way, or not move at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from vidchat.data.lm_dataset import tail_codes
from vidchat.eval.metrics.result import MetricResult
from vidchat.model.layout import Segment, SequenceLayout
from vidchat.model.vocab import Modality, Role

NAME = "partner_dependence"

# (partner turn, answer turn, reference codes) -> (log-probs [n,C] over the C video codes at the
# answer's first frame, the true codes [n]), cells in row-major order
FrameScorer = Callable[[Segment, Segment, Tensor | None], tuple[Tensor, Tensor]]


@dataclass
class Case:
    """One test pair read twice: after its own partner and after `other`."""

    partner: Segment
    other: Segment
    answer: Segment
    ref: Tensor | None  # [h,w]


def same_length(a: Segment, b: Segment, layout: SequenceLayout) -> tuple[Segment, Segment]:
    """Both partner turns cut to the shorter one's duration, keeping their ends (the part
    just before the answer)."""
    cfg = layout.cfg
    seconds = min(
        a.video.shape[0] / cfg.video_frame_rate,
        b.video.shape[0] / cfg.video_frame_rate,
        a.audio.shape[1] / cfg.audio_frame_rate,
        b.audio.shape[1] / cfg.audio_frame_rate,
    )
    return tuple(
        Segment(
            s.role, *tail_codes(torch.as_tensor(s.video), torch.as_tensor(s.audio), seconds, cfg)
        )
        for s in (a, b)
    )


def first_chunk(answer: Segment, layout: SequenceLayout) -> Segment:
    """The answer's first chunk (what the first frame's distribution can depend on is before it)."""
    cfg = layout.cfg
    frames = max(1, int(round(cfg.chunk_seconds * cfg.video_frame_rate)))
    steps = int(round(cfg.chunk_seconds * cfg.audio_frame_rate))
    return Segment(
        answer.role,
        torch.as_tensor(answer.video)[:frames],
        torch.as_tensor(answer.audio)[:, :steps],
    )


def lm_scorer(model: torch.nn.Module, layout: SequenceLayout) -> FrameScorer:
    """The LM's teacher-forced distributions at the answer's first video frame. A frame head
    guesses every code of the frame at once (its first refinement pass, as generation starts);
    a depth or flat head reads each code after the true ones before it."""
    lo, hi = layout.vocab.video_range

    @torch.no_grad()
    def score(partner: Segment, answer: Segment, ref: Tensor | None) -> tuple[Tensor, Tensor]:
        seq = layout.build([partner, answer], ref)
        device = next(model.parameters()).device
        b = {
            k: v[None].to(device)
            for k, v in (
                ("tokens", seq.tokens),
                ("roles", seq.roles),
                ("slots", seq.next_slots),
                ("depth", seq.depth),
                ("modality", seq.modality),
            )
        }
        # no head inputs: a frame head guesses every code, as its first pass does
        logits = model(
            b["tokens"], b["roles"], b["slots"], depth=b["depth"], modality=b["modality"]
        )[0]
        at = (
            (seq.segment == 1)
            & (seq.roles == int(Role.RESPONDER))
            & (seq.frame == 0)
            & (seq.modality == int(Modality.VIDEO))
        ).nonzero()[:, 0]
        at = at[torch.argsort(seq.row[at] * layout.w + seq.col[at])]  # row-major cells
        logp = logits[at.to(device) - 1, lo:hi].float().log_softmax(-1).cpu()  # [n,C]
        return logp, seq.tokens[at] - lo

    return score


def box_cells(h: int, w: int, box: Sequence[Sequence[float]] | None) -> Tensor:
    """`[h*w]` bool: the code cells overlapping `box` ((r0, r1), (c0, c1)) in fractions of the
    frame; every cell without a box."""
    if box is None:
        return torch.ones(h * w, dtype=torch.bool)
    (r0, r1), (c0, c1) = box
    rows, cols = torch.arange(h), torch.arange(w)
    in_rows = (rows + 1 > r0 * h) & (rows < r1 * h)
    in_cols = (cols + 1 > c0 * w) & (cols < c1 * w)
    return (in_rows[:, None] & in_cols[None, :]).reshape(-1)


def partner_dependence(cases: Sequence[Case], score: FrameScorer, cells: Tensor) -> MetricResult:
    """Mean KL per code between the two readings, and the share of `cells` where the true code
    gains probability under the true partner (see the module docstring)."""
    if not cases:
        return MetricResult.unavailable(NAME, "no pair has another partner to compare with")
    kls, gains = [], []
    for case in cases:
        lp_true, codes = score(case.partner, case.answer, case.ref)
        lp_other, _ = score(case.other, case.answer, case.ref)
        kl = (lp_true.exp() * (lp_true - lp_other)).sum(-1)  # [n]
        kls.append(float(kl.clamp_min(0).mean()))
        picked = torch.arange(len(codes))[cells[: len(codes)]]
        gains.append(
            float((lp_true[picked, codes[picked]] > lp_other[picked, codes[picked]]).float().mean())
        )
    return MetricResult(
        NAME,
        sum(kls) / len(kls),
        {"gain": sum(gains) / len(gains), "per_pair": kls, "gain_per_pair": gains},
    )


def pair_cases(pipe, inputs: Sequence, label: str = "emotion") -> list[Case]:
    """A `Case` per test pair (`runner.PairInputs`): its other partner is the next pair's (in
    order, wrapping) whose partner `label` differs, else the next other partner clip."""
    encoded = []
    for item in inputs:
        target = pipe.codec.encode_clip(item.target.frames, item.target.audio)
        encoded.append(
            (
                pipe.encode_partner(item.partner),
                first_chunk(Segment(Role.RESPONDER, target.video, target.audio), pipe.layout),
                pipe.encode_reference(item.reference),
                item.pair.partner.labels.get(label),
                item.pair.partner.clip_id,
            )
        )
    cases = []
    for k, (partner, answer, ref, tag, clip) in enumerate(encoded):
        order = [encoded[(k + j) % len(encoded)] for j in range(1, len(encoded))]
        others = [o for o in order if tag is not None and o[3] != tag] or [
            o for o in order if o[4] != clip
        ]
        if others:
            cases.append(Case(*same_length(partner, others[0][0], pipe.layout), answer, ref))
    return cases


def score_pipeline(
    pipe, inputs: Sequence, box: Sequence | None = None, label: str = "emotion"
) -> MetricResult:
    """The metric for a `ResponderPipeline` on the runner's decoded test pairs."""
    cells = box_cells(pipe.layout.h, pipe.layout.w, box)
    return partner_dependence(
        pair_cases(pipe, inputs, label), lm_scorer(pipe.model, pipe.layout), cells
    )
