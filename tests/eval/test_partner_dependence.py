"""`partner_dependence` has known answers: a responder blind to its partner scores exactly 0,
one that copies its partner's last frame scores high with every code gaining; and the runner
reports it for the LM systems only, without generating anything when it is the only metric."""

from __future__ import annotations

import json

import pytest
import torch

from tests.tiny_responder import tiny_pipeline
from vidchat.eval.metrics.partner import (
    Case,
    box_cells,
    first_chunk,
    lm_scorer,
    partner_dependence,
    same_length,
)
from vidchat.model.layout import Segment
from vidchat.model.vocab import Role

pytestmark = pytest.mark.timeout(120)


def _turn(layout, seconds: float, seed: int, role: Role = Role.PARTNER) -> Segment:
    g = torch.Generator().manual_seed(seed)
    cfg = layout.cfg
    frames, steps = int(seconds * cfg.video_frame_rate), int(seconds * cfg.audio_frame_rate)
    video = torch.randint(0, cfg.video_codebook_size, (frames, layout.h, layout.w), generator=g)
    audio = torch.randint(0, cfg.audio_codebook_size, (layout.K, steps), generator=g)
    return Segment(role, video, audio)


def _cases(layout, n: int = 3) -> list[Case]:
    ref = torch.zeros(layout.h, layout.w, dtype=torch.long)
    out = []
    for i in range(n):
        partner, other = same_length(_turn(layout, 1.5, i), _turn(layout, 2.0, 100 + i), layout)
        answer = first_chunk(_turn(layout, 1.0, 200 + i, Role.RESPONDER), layout)
        out.append(Case(partner, other, answer, ref))
    return out


def _pipeline(head: str):
    """The tiny responder with `head` for video (a MaskGIT frame head takes depth audio)."""
    if head != "maskgit":
        return tiny_pipeline(head)
    from tests.tiny_responder import tiny_tokenizers
    from vidchat.inference.pipeline import ResponderPipeline
    from vidchat.model.build import build_layout, build_model

    video, audio = tiny_tokenizers()
    layout = build_layout(
        video.spec,
        audio.spec,
        {"chunk_seconds": 0.5, "video_head": "maskgit", "audio_head": "depth"},
    )
    torch.manual_seed(0)
    model = build_model({"dim": 32, "n_layers": 2, "n_heads": 2, "max_seq_len": 1024}, layout)
    return ResponderPipeline(model, layout, video, audio)


@pytest.mark.parametrize("head", ["flat", "depth", "maskgit"])
def test_a_responder_blind_to_its_partner_scores_zero(head):
    pipe = _pipeline(head)
    score = lm_scorer(pipe.model, pipe.layout)
    cells = box_cells(pipe.layout.h, pipe.layout.w, None)
    seeing = partner_dependence(_cases(pipe.layout), score, cells)
    assert seeing.value > 0  # random weights read the partner's codes, if a little
    vocab = pipe.model.cfg.vocab_size
    tables = [
        m
        for m in pipe.model.modules()
        if isinstance(m, torch.nn.Embedding) and m.num_embeddings == vocab
    ]
    assert tables
    for emb in tables:
        with torch.no_grad():  # every code looks the same: the content is invisible
            emb.weight[pipe.layout.vocab.video_offset :] = emb.weight[
                pipe.layout.vocab.video_offset
            ]
    blind = partner_dependence(_cases(pipe.layout), score, cells)
    assert blind.value == 0.0 and blind.details["gain"] == 0.0


def test_a_responder_that_copies_its_partner_scores_high():
    layout = tiny_pipeline().layout
    size = layout.cfg.video_codebook_size

    def copy_last_frame(partner, answer, ref):  # peaked on the partner's last frame
        codes = torch.as_tensor(partner.video)[-1].reshape(-1)
        logp = torch.full((len(codes), size), -20.0)
        logp[torch.arange(len(codes)), codes] = 0.0
        return logp.log_softmax(-1), torch.as_tensor(answer.video)[0].reshape(-1)

    cases = _cases(layout)
    for case in cases:  # the true answer mirrors the partner
        case.answer.video[0] = case.partner.video[-1]
    result = partner_dependence(cases, copy_last_frame, box_cells(layout.h, layout.w, None))
    assert result.value > 10 and result.details["gain"] == 1.0
    mouth = box_cells(layout.h, layout.w, ((0.5, 1.0), (0.0, 0.5)))
    assert mouth.sum() == (layout.h // 2) * (layout.w // 2)


def test_turns_are_cut_to_the_same_length_keeping_their_ends():
    layout = tiny_pipeline().layout
    long, short = _turn(layout, 2.0, 0), _turn(layout, 1.0, 1)
    a, b = same_length(long, short, layout)
    assert a.video.shape == b.video.shape and a.audio.shape == b.audio.shape
    assert torch.equal(a.video, long.video[-b.video.shape[0] :])


@pytest.mark.slow
def test_the_runner_reports_it_for_lm_systems_only(demo_world, saved_responder, tmp_path):
    from tests.eval_runner.test_runner import eval_cfg
    from vidchat.eval.runner import run

    cfg = eval_cfg(
        demo_world,
        saved_responder,
        tmp_path,
        "metrics=[partner_dependence]",
        "systems=[model,tokenized]",
        "max_pairs=3",
    )
    report = run(cfg)
    model, tokenized = report["systems"]["model"], report["systems"]["tokenized"]
    assert model["overall"]["partner_dependence"]["n"] == 3
    assert model["overall"]["partner_dependence"]["mean"] > 0
    details = model["details"]["partner_dependence"]
    assert 0 <= details["gain"] <= 1 and 0 <= details["pixel_gain"] <= 1
    assert details["gain_over"] == "frame"  # no box: every code of the VQ's grid
    assert "needs an LM" in tokenized["unavailable"]["partner_dependence"]
    assert not model["samples"]  # nothing generated: the metric reads the LM only
    assert json.loads((tmp_path / "eval" / "report.json").read_text())["systems"]["model"]


@pytest.mark.slow
def test_a_model_metric_that_fails_is_listed_not_fatal(
    demo_world, saved_responder, tmp_path, monkeypatch
):
    import vidchat.eval.metrics.partner as partner
    from tests.eval_runner.test_runner import eval_cfg
    from vidchat.eval.runner import run

    def broken(*_, **__):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(partner, "score_pipeline", broken)
    report = run(
        eval_cfg(
            demo_world,
            saved_responder,
            tmp_path,
            "metrics=[partner_dependence]",
            "systems=[model]",
            "max_pairs=2",
        )
    )
    assert "out of memory" in report["systems"]["model"]["unavailable"]["partner_dependence"]
    assert report["failures"][0]["metric"] == "partner_dependence"
