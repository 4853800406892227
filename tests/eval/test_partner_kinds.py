"""`partner_dependence` for any video kind (#40 item 4), with known answers.

The code gain counts a box's codes only where codes are places in the frame (the VQ's grid); for
the motion kind every code, and `gain_over` says so. The pixel gain reads the box in decoded
frames, so it means the same for both: 1 for a responder that copies its partner's last frame
into a mirroring answer, 0 for one blind to its partner and for one that leans the wrong way.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.tiny_responder import tiny_tokenizers
from vidchat.data.demo_world.face import MOUTH_BOX
from vidchat.eval.metrics.partner import (
    NOT_PLACES,
    Case,
    FrameScorer,
    box_cells,
    code_cells,
    code_parts,
    partner_dependence,
    pipeline_renderer,
)
from vidchat.model.layout import Segment
from vidchat.model.vocab import Role
from vidchat.tokenizers.motion import MotionConfig, MotionTokenizer

pytestmark = pytest.mark.timeout(120)
H = W = 4  # the painted kind's grid
CELL = 8  # pixels per cell side
LOWER_MIDDLE = ((0.5, 1.0), (0.25, 0.75))  # rows 2-3, columns 1-2: 4 of the 16 cells


def _cases(h: int, w: int, codebook: int, n: int = 3) -> list[Case]:
    """Pairs whose true answer starts with its partner's last frame (a mirroring answer); the
    other partner differs from it in every code."""
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        partner = torch.randint(0, codebook, (2, h, w), generator=g)
        other = (partner + torch.randint(1, codebook, (2, h, w), generator=g)) % codebook
        answer = partner[-1:].clone()
        out.append(
            Case(
                Segment(Role.PARTNER, partner, torch.zeros(1, 0)),
                Segment(Role.PARTNER, other, torch.zeros(1, 0)),
                Segment(Role.RESPONDER, answer, torch.zeros(1, 0)),
                None,
                np.full((32, 32, 3), 128, np.uint8),
            )
        )
    return out


def _peaked(frame: torch.Tensor, codebook: int) -> torch.Tensor:
    logp = torch.full((frame.numel(), codebook), -20.0)
    logp[torch.arange(frame.numel()), frame.reshape(-1)] = 0.0
    return logp.log_softmax(-1)


def _scorer(guess, codebook: int) -> FrameScorer:
    """A responder whose first frame is `guess(partner, answer)` `[h,w]` with certainty."""

    def score(partner: Segment, answer: Segment, ref) -> tuple[torch.Tensor, torch.Tensor]:
        first = torch.as_tensor(answer.video)[0]
        return _peaked(guess(partner, first), codebook), first.reshape(-1)

    return score


def _paint(codes: torch.Tensor, case: Case) -> np.ndarray:
    """A kind whose codes are places: code (r, c) paints its 8x8 cell grey level 16 * code."""
    grid = (codes.reshape(-1, H, W).numpy() * 16).astype(np.uint8)
    frames = grid.repeat(CELL, axis=1).repeat(CELL, axis=2)
    return np.repeat(frames[..., None], 3, axis=-1)


def copier(partner: Segment, first: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(partner.video)[-1]


def test_copier_gains_blind_and_contrary_responders_do_not():
    cases = _cases(H, W, 16)
    true_partners = {id(c.partner) for c in cases}

    def blind(partner, first):
        return torch.zeros(H, W, dtype=torch.long)

    def contrary(partner, first):  # the answer after the other partner, noise after its own
        return first if id(partner) not in true_partners else (first + 5) % 16

    scores = {}
    for name, guess in (("copier", copier), ("blind", blind), ("contrary", contrary)):
        result = partner_dependence(cases, _scorer(guess, 16), box_cells(H, W, None), render=_paint)
        details = result.details
        scores[name] = (details["gain"], details["pixel_gain"], details["pixel_moved"])
    assert scores == {
        "copier": (1.0, 1.0, 1.0),
        "blind": (0.0, 0.0, 0.0),
        "contrary": (0.0, 0.0, 1.0),  # it moves the frame, the wrong way
    }


def test_the_box_picks_what_is_measured_in_codes_and_in_pixels():
    """After its own partner the answer's lower middle is right and the rest far off; after the
    other partner the rest is right and the lower middle a little off. Inside the box the true
    partner wins; over the frame it loses."""
    cases = _cases(H, W, 16)
    inside = box_cells(H, W, LOWER_MIDDLE).reshape(H, W)
    true_partners = {id(c.partner) for c in cases}

    def guess(partner, first):
        if id(partner) in true_partners:
            return torch.where(inside, first, (first + 8) % 16)
        return torch.where(inside, (first + 1) % 16, first)

    score = _scorer(guess, 16)
    box = partner_dependence(cases, score, box_cells(H, W, LOWER_MIDDLE), _paint, LOWER_MIDDLE)
    frame = partner_dependence(cases, score, box_cells(H, W, None), _paint, None)
    assert (box.details["gain"], box.details["pixel_gain"], box.details["gain_over"]) == (
        1.0,
        1.0,
        "box",
    )
    assert (frame.details["gain"], frame.details["pixel_gain"]) == (0.25, 0.0)
    assert frame.details["gain_over"] == "frame"


def test_a_box_selects_vq_cells_but_no_motion_codes():
    vq = tiny_tokenizers()[0]
    h, w = vq.spec.grid
    assert torch.equal(code_cells(vq, h, w, MOUTH_BOX), box_cells(h, w, MOUTH_BOX))
    assert not bool(code_cells(vq, h, w, MOUTH_BOX).all())
    motion = MotionTokenizer(MotionConfig(frame_size=32, channels=[8, 8, 8], hidden=16))
    assert code_cells(motion, 1, 4, MOUTH_BOX) is None
    assert code_cells(motion, 1, 4, None).all()  # the whole frame is every code, for any kind
    # bench/copy_probe.py's parts: the mouth's cells and the rest, or each motion code alone
    vq_parts = code_parts(vq, h, w, MOUTH_BOX)
    assert list(vq_parts) == ["mouth", "rest"] and not bool(
        (vq_parts["mouth"] & vq_parts["rest"]).any()
    )
    assert bool((vq_parts["mouth"] | vq_parts["rest"]).all())
    motion_parts = code_parts(motion, 1, 4, MOUTH_BOX)
    assert list(motion_parts) == ["code0", "code1", "code2", "code3"]
    assert torch.equal(torch.stack(list(motion_parts.values())), torch.eye(4, dtype=torch.bool))


def test_motion_codes_are_measured_in_their_rendered_pixels():
    """The real motion renderer: a copier's greedy frame renders exactly as the true answer, a
    blind responder's does not move; the code gain then counts all four codes. (A whole-frame
    renderer with random weights: an untrained residual one draws the reference whatever the
    codes, so no code would move a pixel.)"""
    torch.manual_seed(0)
    cfg = MotionConfig(
        frame_size=32, channels=[8, 8, 8], hidden=16, motion_channels=8, residual=False
    )
    motion = MotionTokenizer(cfg).eval()
    pipe = SimpleNamespace(layout=SimpleNamespace(h=1, w=4), video_tokenizer=motion)
    size = motion.spec.codebook_size
    cases = _cases(1, 4, size)
    cells = code_cells(motion, 1, 4, MOUTH_BOX)
    render = pipeline_renderer(pipe)
    seeing = partner_dependence(cases, _scorer(copier, size), cells, render, MOUTH_BOX)
    assert seeing.details["pixel_gain"] == 1.0 and seeing.details["gain"] == 1.0
    assert seeing.details["gain_over"] == NOT_PLACES
    blind = partner_dependence(
        cases, _scorer(lambda p, f: torch.zeros(1, 4, dtype=torch.long), size), cells, render
    )
    assert blind.details["pixel_gain"] == blind.details["pixel_moved"] == blind.value == 0.0
