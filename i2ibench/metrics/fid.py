"""Fréchet Inception distance between two feature sets.

Same formula and numerics as torch-fidelity 0.4 (``metric_fid.fid_statistics_to_metric``):
``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 * sum(sqrt(eigvals(S1 @ S2)).real)``. The trace of
``sqrtm(S1 S2)`` is taken from the eigenvalues of ``S1 S2`` (complex square roots, real part),
which stays finite when the covariances are singular (fewer samples than 2048 dimensions),
where ``scipy.linalg.sqrtm`` needs an epsilon fix-up.

``fid`` on features takes a faster exact route when a set has fewer samples than dimensions
(the usual case per domain): with centred features X1 [n1, D], X2 [n2, D] and S_i =
X_i^T X_i / (n_i - 1), the non-zero eigenvalues of S1 S2 are those of M M^T with
M = X1 X2^T / sqrt((n1 - 1)(n2 - 1)), so tr sqrtm(S1 S2) is the sum of M's singular values.
That is an n1 x n2 SVD instead of a general 2048 x 2048 eigenproblem (about 20x faster at
500 samples per set); the result agrees with the eigenvalue route to ~1e-8 relative.
"""

from __future__ import annotations

import numpy as np
import torch

from i2ibench.errors import I2IError


def _as_2d_float64(feats) -> np.ndarray:
    arr = feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else np.asarray(feats)
    if arr.ndim != 2:
        raise I2IError(f"features must be a 2-D array [N, D], got shape {arr.shape}")
    return arr.astype(np.float64, copy=False)


def feature_stats(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] (float64) of features [N, D], N >= 2."""
    arr = _as_2d_float64(feats)
    if arr.shape[0] < 2:
        raise I2IError(f"FID needs at least 2 samples per set, got {arr.shape[0]}")
    return arr.mean(axis=0), np.cov(arr, rowvar=False)


def fid_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """FID between two Gaussians given by their means and covariances."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise I2IError(
            f"FID statistics do not match: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    diff = mu1 - mu2
    tr_covmean = np.sum(np.sqrt(np.linalg.eigvals(sigma1.dot(sigma2)).astype(np.complex128)).real)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def fid(real_feats, fake_feats) -> float:
    """FID between two feature sets [N, D] and [M, D]."""
    x1, x2 = _as_2d_float64(real_feats), _as_2d_float64(fake_feats)
    n1, n2, d = x1.shape[0], x2.shape[0], x1.shape[1]
    if min(n1, n2) > d or x2.shape[1] != d or min(n1, n2) < 2:
        return fid_from_stats(*feature_stats(x1), *feature_stats(x2))
    mu1, mu2 = x1.mean(axis=0), x2.mean(axis=0)
    c1, c2 = x1 - mu1, x2 - mu2
    scale = np.sqrt((n1 - 1) * (n2 - 1))
    tr_covmean = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / scale
    diff = mu1 - mu2
    tr1, tr2 = np.einsum("ij,ij->", c1, c1) / (n1 - 1), np.einsum("ij,ij->", c2, c2) / (n2 - 1)
    return float(diff.dot(diff) + tr1 + tr2 - 2 * tr_covmean)
