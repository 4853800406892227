"""The motion tokenizer's training pairs, driver jitter (whole-image or per region), jitter
consistency and change-weighted loss (#40): a reference is always the same person, drawn from
any of that person's clips, so a driver whose expression differs from its reference's makes the
codes carry the expression."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidchat.errors import ConfigError
from vidchat.tokenizers.motion import MotionConfig, MotionTokenizer
from vidchat.training.config import TokenizerStageConfig
from vidchat.training.tokenizers.motion import (
    MotionTokenizerModule,
    ReenactmentPairs,
    change_weighted_losses,
    colour_jitter,
)

pytestmark = pytest.mark.timeout(60)


def _clips() -> list[np.ndarray]:
    """Four clips `[T,2,2,3]` whose every pixel is the clip's number, frame t adding 10 * t."""
    return [
        np.full((3, 2, 2, 3), 100 + 40 * c, np.uint8)
        + 10 * np.arange(3, dtype=np.uint8)[:, None, None, None]
        for c in range(4)
    ]


def _clip_of(frame: torch.Tensor) -> int:
    return (int(frame[0, 0, 0]) - 100) // 40


def test_training_references_come_from_every_clip_of_the_same_person_only():
    torch.manual_seed(0)
    pairs = ReenactmentPairs(_clips(), ["ann", "bob", "ann", "ann"], random=True)
    seen: dict[int, set[int]] = {c: set() for c in range(4)}
    for _ in range(20):
        for i in range(len(pairs)):
            reference, driver = pairs[i]
            seen[_clip_of(driver)].add(_clip_of(reference))
    assert seen == {0: {0, 2, 3}, 1: {1}, 2: {0, 2, 3}, 3: {0, 2, 3}}


def test_validation_references_are_fixed_and_from_another_clip_when_there_is_one():
    pairs = ReenactmentPairs(_clips(), ["ann", "bob", "ann", ""], random=False)
    first = [pairs[i][0] for i in range(len(pairs))]
    assert all(torch.equal(a, pairs[i][0]) for i, a in enumerate(first))  # the same each time
    by_driver = {_clip_of(pairs[i][1]): _clip_of(pairs[i][0]) for i in range(len(pairs))}
    assert by_driver == {0: 2, 1: 1, 2: 0, 3: 3}  # "" (unknown): the clip is its own person
    assert all(int(pairs[i][0][0, 0, 0]) % 40 == 100 % 40 for i in range(len(pairs)))  # frame 0


def test_driver_jitter_changes_each_image_its_own_way_and_stays_in_range():
    torch.manual_seed(0)
    images = torch.zeros(4, 3, 8, 8)
    assert torch.equal(colour_jitter(images, 0.0), images)
    jittered = colour_jitter(images, 0.2)
    per_image = jittered.mean(dim=(2, 3))  # [N,3]
    assert per_image.abs().max() <= 0.2 + 1e-6 and per_image.abs().max() > 0.01
    assert not torch.allclose(per_image[0], per_image[1])
    assert colour_jitter(torch.ones(2, 3, 4, 4), 0.5).max() <= 1.0


def test_a_jitter_grid_gives_regions_apart_their_own_colour_and_keeps_a_region_smooth():
    """With `grid` > 1, two corners of a uniform image get different colours (one gain for the
    image cannot do that), neighbouring pixels nearly the same one; `grid` = 1 is the
    whole-image jitter, draw for draw."""
    images = torch.zeros(8, 3, 32, 32)
    torch.manual_seed(0)
    whole = colour_jitter(images, 0.3)
    torch.manual_seed(0)
    assert torch.equal(colour_jitter(images, 0.3, grid=1), whole)
    assert torch.equal(whole, whole[..., :1, :1].expand_as(whole))  # one colour per image
    torch.manual_seed(0)
    field = colour_jitter(images, 0.3, grid=4)
    corners = (field[..., 0, 0] - field[..., -1, -1]).abs()  # [N,3]
    assert corners.mean() > 0.05
    neighbours = (field[..., 1:, :] - field[..., :-1, :]).abs().max()
    assert neighbours < 0.3 * 2 * 3 / 31 + 1e-6  # a cell's swing spread over its pixels
    assert field.abs().max() <= 0.3 + 1e-6


def test_the_change_weight_makes_an_error_where_the_face_moved_cost_more():
    """Two renders with the same error, one on a pixel where the driver differs from the
    reference (the mouth moved), one where it does not: with `change_weight` the first costs
    more; without it they cost the same, and the losses are the plain L1 and L2."""
    reference = torch.zeros(1, 3, 4, 4)
    driver = reference.clone()
    driver[..., 0, 0] = 1.0  # the pixel that moved
    wrong_where_moved, wrong_elsewhere = driver.clone(), driver.clone()
    wrong_where_moved[..., 0, 0] -= 0.5
    wrong_elsewhere[..., 3, 3] += 0.5
    plain = change_weighted_losses(wrong_where_moved, driver, reference, 0.0)
    assert torch.equal(plain[0], F.l1_loss(wrong_where_moved, driver))
    assert torch.equal(plain[1], F.mse_loss(wrong_where_moved, driver))
    assert torch.equal(plain[0], change_weighted_losses(wrong_elsewhere, driver, reference, 0.0)[0])
    moved = change_weighted_losses(wrong_where_moved, driver, reference, 10.0)
    elsewhere = change_weighted_losses(wrong_elsewhere, driver, reference, 10.0)
    assert moved[0] > 5 * elsewhere[0] and moved[1] > 5 * elsewhere[1]
    assert torch.equal(
        change_weighted_losses(driver, driver, reference, 10.0)[0], torch.tensor(0.0)
    )


def test_the_jitter_consistency_asks_two_jitters_of_one_driver_for_the_same_codes():
    """`jitter_consistency` reads each driver twice, under two jitters, and penalises the
    distance between the two quantised motions: it is positive where the jitters move the
    codes, its gradient reaches every part of the motion encoder, it is exactly 0 without a
    jitter (one view), and it is not computed at weight 0."""
    torch.manual_seed(0)
    cfg = MotionConfig(frame_size=32, channels=[8, 16, 16, 32], hidden=64, motion_channels=8)
    tokenizer = MotionTokenizer(cfg)
    module = MotionTokenizerModule(tokenizer)
    module.driver_jitter, module.driver_jitter_grid, module.jitter_consistency = 0.4, 4, 1.0
    pairs = torch.randint(0, 256, (4, 2, 32, 32, 3), dtype=torch.uint8)  # (reference, driver)
    consistency = module.loss(pairs)[1]["train/consistency"]
    assert consistency > 0
    encoder = list(tokenizer.motion_encoder.parameters())
    assert all(g.abs().sum() > 0 for g in torch.autograd.grad(consistency, encoder))
    module.driver_jitter = 0.0
    assert module.loss(pairs)[1]["train/consistency"] == 0
    module.jitter_consistency = 0.0
    assert "train/consistency" not in module.loss(pairs)[1]


@pytest.mark.parametrize(
    "bad", [{"driver_jitter_grid": 0}, {"jitter_consistency": -1.0}, {"driver_jitter": 1.0}]
)
def test_a_bad_jitter_option_is_one_config_error(bad):
    with pytest.raises(ConfigError, match=f"stage.{next(iter(bad))}"):
        TokenizerStageConfig(name="video_tokenizer", **bad)
