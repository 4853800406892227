"""The turn-start loss weight falls on the responder's first frame after its reference, and on
nothing else; it changes the training mean, never the plain sums that validation reports."""

import torch
from conftest import demo_layout, random_segment

from vidchat.model import Modality, Role, pad_batch
from vidchat.training.lm.losses import nll_loss
from vidchat.training.lm.turn_weight import turn_start_weights


def _batch(gen):
    layout = demo_layout(video_head="maskgit", audio_head="depth")
    ref = torch.randint(0, 1024, (4, 4), generator=gen)
    turns = [
        random_segment(layout, Role.PARTNER, 0.5, gen),
        random_segment(layout, Role.RESPONDER, 1.0, gen),
        random_segment(layout, Role.PARTNER, 0.5, gen),
        random_segment(layout, Role.RESPONDER, 0.5, gen),
    ]
    return pad_batch([layout.build(turns, ref=ref)], loss_mode="responder")


def test_only_the_responders_first_frame_is_weighted(gen):
    batch = _batch(gen)
    weights = turn_start_weights(batch, 5.0)[0]
    video = (batch["modality"][0] == Modality.VIDEO).nonzero()[:, 0]
    responder = video[batch["roles"][0, video] == Role.RESPONDER]
    first = responder[:16]  # 4x4 codes: the responder's first frame, right after the reference
    assert torch.all(weights[first] == 5.0)
    assert torch.all(batch["depth"][0, first] == torch.arange(16))
    rest = torch.ones_like(weights, dtype=torch.bool)
    rest[first] = False
    # later frames, the partner's first frame and the second responder turn keep weight 1
    assert torch.all(weights[rest] == 1.0)


def test_the_weight_moves_the_training_mean_not_the_sums(gen):
    batch = _batch(gen)
    nll = torch.rand(batch["tokens"][:, 1:].shape, generator=gen)
    plain = nll_loss(nll, batch["loss_mask"], batch["modality"])
    weighted = nll_loss(nll, batch["loss_mask"], batch["modality"], turn_start_weights(batch, 5.0))
    for key in ("loss_sum", "count", "video_loss", "audio_loss"):
        torch.testing.assert_close(weighted[key], plain[key])
    mask = batch["loss_mask"][:, 1:].float()
    w = turn_start_weights(batch, 5.0)[:, 1:] * mask
    torch.testing.assert_close(weighted["loss"], (nll * w).sum() / w.sum())
    assert not torch.isclose(weighted["loss"], plain["loss"])
