"""Noise injection touches only context code tokens and keeps each in its own code range."""

import pytest
import torch
from lm_fixtures import make_datasets

from vidchat.errors import ConfigError
from vidchat.model import Modality, Role
from vidchat.training.lm.noise import NoiseConfig, inject_noise, parse_noise


def _batch(layout):
    from vidchat.data.lm_dataset import LMCollator

    train, _ = make_datasets(layout, sft=True)
    return LMCollator("pad")([train[i] for i in range(4)])


def _ranges_ok(tokens, batch, vocab):
    video = batch["modality"] == Modality.VIDEO
    lo, hi = vocab.video_range
    ok = ((tokens >= lo) & (tokens < hi))[video].all()
    for k in range(vocab.audio_num_codebooks):
        sel = (batch["modality"] == Modality.AUDIO) & (batch["codebook"] == k)
        lo, hi = vocab.audio_range(k)
        ok &= ((tokens >= lo) & (tokens < hi))[sel].all()
    return bool(ok)


def test_noise_only_touches_context_codes_and_stays_in_range(layout):
    batch = _batch(layout)
    cfg = NoiseConfig(ratio=0.9, random_ratio=False)
    g = torch.Generator().manual_seed(0)
    args = (
        batch["roles"],
        batch["modality"],
        batch["codebook"],
        batch["valid"],
        layout.vocab,
        cfg,
        g,
    )
    noised, chosen = inject_noise(batch["tokens"], *args)
    changed = noised != batch["tokens"]
    assert changed.sum() > 0.5 * chosen.sum() > 0  # most chosen tokens really changed
    assert not (changed & ~chosen).any()
    eligible = (
        batch["valid"] & (batch["modality"] != Modality.SPECIAL) & (batch["roles"] != Role.REF)
    )
    assert not (chosen & ~eligible).any()  # never specials, the reference or padding
    assert _ranges_ok(noised, batch, layout.vocab)
    assert torch.equal(batch["tokens"], _batch(layout)["tokens"])  # input untouched


def test_noise_respects_roles_and_modalities(layout):
    batch = _batch(layout)
    cfg = NoiseConfig(ratio=1.0, random_ratio=False, roles=("partner",), modalities=("video",))
    g = torch.Generator().manual_seed(1)
    _, chosen = inject_noise(
        batch["tokens"],
        batch["roles"],
        batch["modality"],
        batch["codebook"],
        batch["valid"],
        layout.vocab,
        cfg,
        g,
    )
    expected = (
        batch["valid"] & (batch["roles"] == Role.PARTNER) & (batch["modality"] == Modality.VIDEO)
    )
    assert torch.equal(chosen, expected)


def test_zero_ratio_is_identity_and_bad_config_is_one_clear_error(layout):
    batch = _batch(layout)
    g = torch.Generator().manual_seed(0)
    out, chosen = inject_noise(
        batch["tokens"],
        batch["roles"],
        batch["modality"],
        batch["codebook"],
        batch["valid"],
        layout.vocab,
        NoiseConfig(ratio=0.0),
        g,
    )
    assert torch.equal(out, batch["tokens"]) and not chosen.any()
    with pytest.raises(ConfigError, match=r"stage\.noise\.ratio"):
        NoiseConfig(ratio=1.5)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['ratoi'\]"):
        parse_noise({"ratoi": 0.1})


def test_stranger_partner_replaces_whole_partner_videos_only(layout):
    batch = _batch(layout)
    partner_video = (
        batch["valid"] & (batch["roles"] == Role.PARTNER) & (batch["modality"] == Modality.VIDEO)
    )
    assert partner_video.any(dim=1).all()  # every SFT row has a partner
    g = torch.Generator().manual_seed(0)
    args = (batch["roles"], batch["modality"], batch["codebook"], batch["valid"], layout.vocab)
    _, chosen = inject_noise(batch["tokens"], *args, NoiseConfig(stranger_partner=1.0), g)
    assert torch.equal(chosen, partner_video)  # all of the partner's video, nothing else
    _, chosen = inject_noise(batch["tokens"], *args, NoiseConfig(stranger_partner=0.5), g)
    rows = chosen.any(dim=1)
    assert torch.equal(chosen, partner_video & rows[:, None])  # whole partners, row by row
    with pytest.raises(ConfigError, match=r"stage\.noise\.stranger_partner"):
        NoiseConfig(stranger_partner=-0.1)
