"""`partner_dependence`: does the responder's answer depend on its partner? Teacher-forced, no
sampling.

For each test pair, the LM reads the true answer's first chunk twice: after the true partner's
turn, and after another partner's turn (a partner of another emotion where the data labels
one), with the same reference and the two turns cut to the same length, so that nothing but the
partner's content differs. At the answer's first video frame it compares, code by code, the
distributions over video codes:

- `value`: the mean KL divergence KL(p_true || p_other) in nats per code;
- `details["gain"]`: how often the true answer's code gets more probability after the true
  partner than after the other one, over the codes of `box` (`details["gain_over"]` says which);
- `details["pixel_gain"]`: the share of pairs whose most likely first frame after the true
  partner, decoded on the pair's reference, is closer inside `box` (mean absolute pixel error)
  to the true answer's decoded first frame than the one after the other partner; beside it
  `pixel_moved`, the share where the two differ inside the box at all (a pair the partner does
  not move counts as no gain, so a coin would score half of `pixel_moved`).

What `box` (a region such as the demo face's mouth, in fractions of the frame) selects depends
on the video tokenizer's kind:
- an appearance kind (`vq`: `spatial_codes`, code (r, c) is that cell of the frame): `gain`
  counts the codes whose cells overlap the box, `pixel_gain` the box's pixels;
- the `motion` kind (N codes, each about the whole face): no code is a place in the frame, so
  `gain` counts every code (`gain_over` says so) and only `pixel_gain` is about the box.
`pixel_gain` is the form that reads the same for every kind.

A responder that ignores its partner scores 0 on all three: the two readings are the same
sequence but for the partner's codes, so the same greedy frame (a tie gains nothing). This is
the measure that sampling hides: an answer that does not mirror may still lean the right way, or
not move at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vidchat.data.lm_dataset import tail_codes
from vidchat.eval.metrics.result import MetricResult
from vidchat.model.layout import Segment, SequenceLayout
from vidchat.model.vocab import Modality, Role
from vidchat.tokenizers.codec import decode_frames

NAME = "partner_dependence"
Box = Sequence[Sequence[float]]  # ((r0, r1), (c0, c1)) in fractions of the frame
NOT_PLACES = "frame (this kind's codes are not places in the frame: the box is in pixel_gain only)"

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
    ref_image: np.ndarray | None = None  # [H,W,3] uint8: the face a motion tokenizer renders on


# (first-frame codes [k,n] of one case, row-major; the case) -> the frames [k,H,W,3] uint8 they
# decode to, on the case's reference
FrameRenderer = Callable[[Tensor, Case], np.ndarray]


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


def code_cells(tokenizer, h: int, w: int, box: Box | None) -> Tensor | None:
    """`box_cells` where the tokenizer's codes are places in the frame (`spatial_codes`); None
    when a box is asked of a kind whose codes are not (the motion kind): it selects no codes."""
    if box is not None and not getattr(tokenizer, "spatial_codes", True):
        return None
    return box_cells(h, w, box)


def code_parts(tokenizer, h: int, w: int, box: Box, name: str = "mouth") -> dict[str, Tensor]:
    """`[h*w]` bool masks to report a frame's codes by: where codes are places (the VQ), `box`'s
    cells (`name`) and the rest; where they are not (the motion kind), each code on its own
    (`code0`, `code1`, ...), as no code is the box."""
    cells = code_cells(tokenizer, h, w, box)
    if cells is None:
        return {f"code{k}": torch.arange(h * w) == k for k in range(h * w)}
    return {name: cells, "rest": ~cells}


def box_pixels(frames: np.ndarray, box: Box | None) -> np.ndarray:
    """`frames[..., H, W, 3]` cut to `box` (every pixel a cell of it touches); all without one."""
    if box is None:
        return frames
    (r0, r1), (c0, c1) = box
    h, w = frames.shape[-3:-1]
    rows = slice(int(np.floor(r0 * h)), int(np.ceil(r1 * h)))
    return frames[..., rows, int(np.floor(c0 * w)) : int(np.ceil(c1 * w)), :]


def pixel_gain(
    lp_true: Tensor,
    lp_other: Tensor,
    codes: Tensor,
    case: Case,
    render: FrameRenderer,
    box: Box | None,
) -> tuple[float, float]:
    """(gained, moved): gained is 1.0 when the most likely first frame after the true partner,
    decoded, is closer inside `box` to the decoded true answer than the one after the other
    partner; moved is 1.0 when the two differ inside `box`. Both frames are measured against the
    decoded true codes, so the tokenizer's round-trip error plays no part."""
    greedy_true, greedy_other = lp_true.argmax(-1), lp_other.argmax(-1)
    if torch.equal(greedy_true, greedy_other):
        return 0.0, 0.0  # the partner did not move the frame
    frames = box_pixels(render(torch.stack([codes, greedy_true, greedy_other]), case), box)
    target, a, b = (f.astype(np.float32) for f in frames)
    closer = np.abs(a - target).mean() < np.abs(b - target).mean()
    return float(closer), float(not np.array_equal(a, b))


def pipeline_renderer(pipe) -> FrameRenderer:
    """Decodes a case's first-frame codes with the pipeline's video tokenizer, on its reference."""
    h, w = pipe.layout.h, pipe.layout.w

    def render(codes: Tensor, case: Case) -> np.ndarray:
        k = pipe.video_tokenizer.spec.temporal_stride
        frames = decode_frames(pipe.video_tokenizer, codes.reshape(-1, h, w), case.ref_image)
        return frames[::k]  # the first frame of each code frame

    return render


def partner_dependence(
    cases: Sequence[Case],
    score: FrameScorer,
    cells: Tensor | None,
    render: FrameRenderer | None = None,
    box: Box | None = None,
) -> MetricResult:
    """Mean KL per code between the two readings; the share of `cells` (every code when None:
    a kind without places) where the true code gains probability under the true partner; and,
    given `render`, the pixel gain inside `box` (see the module docstring)."""
    if not cases:
        return MetricResult.unavailable(NAME, "no pair has another partner to compare with")
    kls, gains, pixels = [], [], []
    for case in cases:
        lp_true, codes = score(case.partner, case.answer, case.ref)
        lp_other, _ = score(case.other, case.answer, case.ref)
        kl = (lp_true.exp() * (lp_true - lp_other)).sum(-1)  # [n]
        kls.append(float(kl.clamp_min(0).mean()))
        where = torch.ones(len(codes), dtype=torch.bool) if cells is None else cells[: len(codes)]
        picked = torch.arange(len(codes))[where]
        gains.append(
            float((lp_true[picked, codes[picked]] > lp_other[picked, codes[picked]]).float().mean())
        )
        if render is not None:
            pixels.append(pixel_gain(lp_true, lp_other, codes, case, render, box))
    details = {
        "gain": sum(gains) / len(gains),
        "gain_over": NOT_PLACES if cells is None else "frame" if bool(cells.all()) else "box",
        "per_pair": kls,
        "gain_per_pair": gains,
    }
    if pixels:
        gained, moved = zip(*pixels, strict=True)
        details |= {
            "pixel_gain": sum(gained) / len(gained),
            "pixel_moved": sum(moved) / len(moved),
            "pixel_gain_per_pair": list(gained),
        }
    return MetricResult(NAME, sum(kls) / len(kls), details)


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
                pipe.reference_image(item.reference),
            )
        )
    cases = []
    for k, (partner, answer, ref, tag, clip, image) in enumerate(encoded):
        order = [encoded[(k + j) % len(encoded)] for j in range(1, len(encoded))]
        others = [o for o in order if tag is not None and o[3] != tag] or [
            o for o in order if o[4] != clip
        ]
        if others:
            turns = same_length(partner, others[0][0], pipe.layout)
            cases.append(Case(*turns, answer, ref, image))
    return cases


def score_pipeline(
    pipe, inputs: Sequence, box: Box | None = None, label: str = "emotion"
) -> MetricResult:
    """The metric for a `ResponderPipeline` on the runner's decoded test pairs: codes in `box`
    where the kind has places, pixels in `box` for every kind."""
    cells = code_cells(pipe.video_tokenizer, pipe.layout.h, pipe.layout.w, box)
    return partner_dependence(
        pair_cases(pipe, inputs, label),
        lm_scorer(pipe.model, pipe.layout),
        cells,
        render=pipeline_renderer(pipe),
        box=box,
    )
