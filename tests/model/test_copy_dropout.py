"""Copy dropout: a cut frame's head reads no previous frame, exactly as if there were none; only
training cuts frames, and a share of 0 leaves a run's random stream untouched."""

import pytest
import torch
from conftest import demo_layout, random_segment

from vidchat.errors import ConfigError
from vidchat.model import Modality, Role, build_model, pad_batch
from vidchat.model.heads.maskgit import sample_copy_cut, sample_frame_mask
from vidchat.training.lm.losses import next_token_nll
from vidchat.training.lm.module import LMTrainingModule
from vidchat.training.lm.noise import NoiseConfig
from vidchat.training.optim import OptimConfig


def _setup(gen):
    layout = demo_layout(video_head="maskgit", audio_head="depth")
    torch.manual_seed(0)
    model = build_model(
        {
            "dim": 64,
            "n_layers": 2,
            "n_heads": 4,
            "max_seq_len": 2048,
            "heads": {"maskgit": {"prev": True}},
        },
        layout,
    )
    ref = torch.randint(0, 1024, (4, 4), generator=gen)
    turns = [
        random_segment(layout, Role.PARTNER, 0.5, gen),
        random_segment(layout, Role.RESPONDER, 1.0, gen),
    ]
    return layout, model, pad_batch([layout.build(turns, ref=ref)], loss_mode="responder")


def _nll(model, batch, hidden, cut=None):
    inputs = {"video/frame_mask": hidden, **({} if cut is None else {"video/prev_cut": cut})}
    return next_token_nll(
        model,
        batch["tokens"],
        batch["tokens"],
        batch["roles"],
        batch["next_slots"],
        depth=batch["depth"],
        modality=batch["modality"],
        head_inputs=inputs,
    )


def test_cut_marks_frame_starts_only_and_zero_draws_nothing(gen):
    _, _, batch = _setup(gen)
    starts = (batch["modality"] == Modality.VIDEO) & (batch["depth"] == 0)
    g = torch.Generator().manual_seed(3)
    assert sample_copy_cut(batch["depth"], batch["modality"], 0.0, g) is None
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(3).get_state())
    assert torch.equal(sample_copy_cut(batch["depth"], batch["modality"], 1.0, g), starts)
    half = sample_copy_cut(batch["depth"], batch["modality"], 0.5, g)
    assert not (half & ~starts).any() and 0 < half.sum() < starts.sum()


def test_a_cut_frame_is_decoded_as_one_without_a_copy_path(gen):
    _, model, batch = _setup(gen)
    hidden = sample_frame_mask(batch["depth"], batch["modality"], torch.Generator().manual_seed(1))
    starts = (batch["modality"] == Modality.VIDEO) & (batch["depth"] == 0)
    with torch.no_grad():
        cut = _nll(model, batch, hidden, cut=starts)
        kept = _nll(model, batch, hidden)
        model.heads["video"].embed_prev, model.heads["video"].copy_gate = None, None
        without = _nll(model, batch, hidden)
    torch.testing.assert_close(cut, without)
    assert not torch.allclose(kept, without)  # the copy path does change the prediction


def test_only_training_losses_cut_copies(gen):
    layout, model, batch = _setup(gen)
    module = LMTrainingModule(
        model, layout, optim=OptimConfig(), noise=NoiseConfig(copy_dropout=0.9), total_steps=10
    )
    plain = LMTrainingModule(
        model, layout, optim=OptimConfig(), noise=NoiseConfig(), total_steps=10
    )

    def loss(m, training):
        with torch.no_grad():
            return m.losses(batch, None, torch.Generator().manual_seed(0), training)["loss"]

    assert torch.equal(loss(module, False), loss(plain, False))
    assert not torch.isclose(loss(module, True), loss(plain, True))
    with pytest.raises(ConfigError, match=r"stage\.noise\.copy_dropout"):
        NoiseConfig(copy_dropout=1.5)
