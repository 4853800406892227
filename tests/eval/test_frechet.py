"""Fréchet distance on known Gaussians, and FID/FVD with a small TorchScript network."""

import numpy as np
import pytest
import torch

from vidchat.errors import VidchatError
from vidchat.eval.metrics.fid import fid
from vidchat.eval.metrics.frechet import frechet_distance, frechet_distance_of_features
from vidchat.eval.metrics.fvd import fvd


def test_one_dimensional_gaussians():
    # N(0, 1) vs N(1, 4): 1 + 1 + 4 - 2*sqrt(1*4) = 2
    assert frechet_distance(np.zeros(1), np.eye(1), np.ones(1), 4 * np.eye(1)) == pytest.approx(2.0)


def test_equal_covariances_leave_the_mean_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    cov = a @ a.T + np.eye(6)
    mu = rng.normal(size=6)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(mu, cov, mu + 2.0, cov) == pytest.approx(6 * 4.0, rel=1e-8)


def test_non_commuting_covariances_match_the_matrix_square_root():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    # tr((S1 S2)^1/2) via the eigenvalues of S1 S2 (real, non-negative: similar to a PSD matrix)
    tr = np.sqrt(np.linalg.eigvals(s1 @ s2).real.clip(0)).sum()
    expected = np.trace(s1) + np.trace(s2) - 2 * tr
    assert frechet_distance(np.zeros(5), s1, np.zeros(5), s2) == pytest.approx(expected, rel=1e-6)


def test_sampled_features_approach_the_analytic_value():
    rng = np.random.default_rng(2)
    x = rng.normal(0.0, 1.0, size=(20000, 3))
    y = rng.normal(0.5, 2.0, size=(20000, 3))
    # per dim: 0.25 + 1 + 4 - 2*2 = 1.25
    assert frechet_distance_of_features(x, y) == pytest.approx(3 * 1.25, rel=0.05)


def test_mismatched_statistics_are_a_user_error():
    with pytest.raises(VidchatError):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


class _ImageNet(torch.nn.Module):
    """Stand-in for Inception: 8 random conv filters, global-average pooled."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 5, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


class _VideoNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(3, 6, (3, 5, 5), stride=(2, 4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3, 4))


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    d = tmp_path_factory.mktemp("nets")
    torch.jit.script(_ImageNet()).save(str(d / "image.pt"))
    torch.jit.script(_VideoNet()).save(str(d / "video.pt"))
    return d / "image.pt", d / "video.pt"


def _videos(seed: int, n: int = 4, t: int = 8, bright: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        np.clip(rng.integers(0, 200, (t, 24, 24, 3)) + bright, 0, 255).astype(np.uint8)
        for _ in range(n)
    ]


def test_fid_is_zero_on_the_same_set_and_grows_with_a_shift(nets):
    image, _ = nets
    real = _videos(0)
    same = fid(real, real, weights=image, input_size=32)
    assert same.value == pytest.approx(0.0, abs=1e-6) and same.details["n_real"] == 32
    other = fid(_videos(1), real, weights=image, input_size=32).value
    shifted = fid(_videos(1, bright=60), real, weights=image, input_size=32).value
    assert shifted > other + 1e-3


def test_fvd_is_zero_on_the_same_set(nets):
    _, video = nets
    real = _videos(0, t=16)
    res = fvd(real, real, weights=video, clip_length=8, input_size=32)
    assert res.value == pytest.approx(0.0, abs=1e-6) and res.details["n_real"] == 8
    assert (
        fvd(_videos(1, t=16, bright=60), real, weights=video, clip_length=8, input_size=32).value
        > 1e-3
    )


def test_missing_network_is_skipped_with_a_warning_and_a_bad_path_is_an_error(tmp_path):
    with pytest.warns(UserWarning, match="fid"):
        res = fid(_videos(0), _videos(1), weights=None)
    assert not res.available and "TorchScript" in res.reason
    with pytest.warns(UserWarning, match="fvd"):
        assert not fvd(_videos(0), _videos(1)).available
    with pytest.raises(VidchatError, match="not found"):
        fid(_videos(0), _videos(1), weights=tmp_path / "nope.pt")
