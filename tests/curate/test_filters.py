"""Each filter on a known answer: a blurred copy, a dark copy, broken sources, clarity."""

from __future__ import annotations

import numpy as np
import pytest

from tests.curate.conftest import curate_config
from vidchat.curate.quality import clarity_floor
from vidchat.data.demo_world.raw import RawSourceConfig, generate_raw_sources
from vidchat.media import read_clip, write_clip


def _blur(frames: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of [T,H,W,3] uint8 frames."""
    r = int(3 * sigma)
    k = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * sigma**2))
    k /= k.sum()
    f = frames.astype(np.float32)
    for axis in (1, 2):
        f = sum(w * np.roll(f, i - r, axis=axis) for i, w in enumerate(k))
    return np.clip(f, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def mixed_sources(tmp_path_factory):
    """One good source and its blurred and dark copies, a corrupt file, one without audio and
    one without faces."""
    root = tmp_path_factory.mktemp("mixed")
    generate_raw_sources(
        root, RawSourceConfig(num_sources=1, turns=4, short_shot=False), progress=False
    )
    good = read_clip(root / "raw0000.mp4")
    write_clip(
        root / "blurred.mp4", _blur(good.frames, 3.0), good.audio, good.fps, good.sample_rate
    )
    dark = (good.frames.astype(np.float32) * 0.04).astype(np.uint8)
    write_clip(root / "dark.mp4", dark, good.audio, good.fps, good.sample_rate)
    write_clip(root / "silent.mp4", good.frames, None, good.fps, good.sample_rate)
    plain = np.full_like(good.frames, 120)
    write_clip(root / "noface.mp4", plain, good.audio, good.fps, good.sample_rate)
    (root / "corrupt.mp4").write_bytes((root / "raw0000.mp4").read_bytes()[:3000])
    return root


@pytest.fixture(scope="module")
def mixed_report(mixed_sources, ray_cluster, tmp_path_factory):
    from vidchat.curate.run import curate

    return curate(curate_config(mixed_sources, tmp_path_factory.mktemp("mixed_out")))


def test_broken_sources_are_listed_with_reasons_and_the_run_goes_on(mixed_report):
    bad = {b["source"]: b["reason"] for b in mixed_report["sources"]["bad"]}
    assert set(bad) == {"corrupt", "silent", "noface"}
    assert "unreadable" in bad["corrupt"] or "failed" in bad["corrupt"]
    assert "no audio" in bad["silent"]
    assert "no face" in bad["noface"]
    assert mixed_report["sources"]["ok"] == 3 and mixed_report["clips"] > 0


def test_a_blurred_copy_is_dropped_by_the_face_blur_filter(mixed_report):
    dropped = mixed_report["filters"]["face blur"]["dropped_items"]
    names = {d["item"].split("_full_video_")[0] for d in dropped}
    assert names == {"blurred"}
    assert all("face sharpness" in d["reason"] for d in dropped)


def test_a_dark_copy_is_dropped_by_the_luminance_filter(mixed_report):
    dropped = mixed_report["filters"]["shot luminance and faces"]["dropped_items"]
    dark = [d for d in dropped if d["item"].startswith("dark ")]
    assert dark and all("luminance" in d["reason"] for d in dark)
    assert not [d for d in dropped if d["item"].startswith(("raw0000 ", "blurred "))]


def test_clarity_drops_the_worst_five_percent():
    values = list(range(1, 41))
    floor = clarity_floor(values, 0.05)
    assert sum(v < floor for v in values) == 2  # 5% of 40
    assert clarity_floor(values, 0.0) == -np.inf
