"""Fréchet distance between Gaussians fitted to feature sets (the core of FID and FVD)."""

from __future__ import annotations

import numpy as np

from vidchat.errors import VidchatError


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N,D] features -> (mean [D], covariance [D,D]); needs N >= 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise VidchatError(
            f"Fréchet distance needs at least 2 feature vectors [N,D], got shape {features.shape}"
        )
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """d² = |mu1 - mu2|² + tr(S1 + S2 - 2 (S1 S2)^½).

    tr((S1 S2)^½) equals the sum of square roots of the eigenvalues of the symmetric PSD
    matrix S1^½ S2 S1^½, which is stabler than a general matrix square root (no scipy).
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = (
        np.atleast_2d(sigma1).astype(np.float64),
        np.atleast_2d(sigma2).astype(np.float64),
    )
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise VidchatError(
            f"Fréchet distance of mismatched statistics: means {mu1.shape} vs {mu2.shape}, "
            f"covariances {sigma1.shape} vs {sigma2.shape}"
        )
    root1 = _sqrt_psd(sigma1)
    eig = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu1 - mu2
    d2 = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean
    return float(max(d2, 0.0))


def frechet_distance_of_features(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between two [N,D] feature sets."""
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))
