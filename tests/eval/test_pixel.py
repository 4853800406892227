"""PSNR, SSIM and frame alignment: known answers on synthetic frames."""

import math

import numpy as np
import pytest

from vidchat.errors import VidchatError
from vidchat.eval.metrics.pixel import PSNR_CAP_DB, psnr, ssim
from vidchat.perception.frames import align_frames


def _video(seed: int = 0, t: int = 3, h: int = 32, w: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_identical_frames_give_ideal_scores():
    v = _video()
    assert psnr(v, v).value == PSNR_CAP_DB
    assert ssim(v, v).value == pytest.approx(1.0, abs=1e-9)


def test_psnr_known_value():
    a = np.zeros((2, 16, 16, 3), np.uint8)
    b = np.full_like(a, 10)  # MSE 100
    assert psnr(a, b).value == pytest.approx(10 * math.log10(255**2 / 100))


def test_ssim_of_constant_images_is_the_luminance_term():
    a, b = np.full((1, 16, 16, 3), 100, np.uint8), np.full((1, 16, 16, 3), 120, np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 120 + c1) / (100**2 + 120**2 + c1)  # variances are 0
    assert ssim(a, b).value == pytest.approx(expected)


def test_ssim_falls_with_noise():
    yy, xx = np.mgrid[0:48, 0:48]
    smooth = 128 + 60 * np.sin(xx / 6.0) * np.cos(yy / 9.0)  # [48,48] structure, low variance
    v = np.repeat(smooth[None, :, :, None], 3, axis=3).repeat(2, axis=0).astype(np.uint8)
    rng = np.random.default_rng(1)
    light = np.clip(v + rng.normal(0, 5, v.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(v + rng.normal(0, 60, v.shape), 0, 255).astype(np.uint8)
    s_light, s_heavy = ssim(light, v).value, ssim(heavy, v).value
    assert 0.8 < s_light < 1.0 and s_heavy < s_light - 0.5
    assert psnr(heavy, v).value < psnr(light, v).value - 15


def test_alignment_cuts_to_shorter_and_resizes_to_target():
    gen, tgt = align_frames(_video(t=5, h=64, w=64), _video(t=3, h=32, w=40))
    assert gen.shape == tgt.shape == (3, 32, 40, 3) and gen.dtype == np.uint8
    # a constant picture survives resizing unchanged, so PSNR stays at the cap
    big = np.full((2, 64, 80, 3), 77, np.uint8)
    assert psnr(big, big[:, ::2, ::2]).value == PSNR_CAP_DB


def test_bad_input_is_a_user_error():
    with pytest.raises(VidchatError, match="uint8 frames"):
        psnr(np.zeros((2, 8, 8, 3), np.float32), _video())
