"""Precision and recall (Kynkäänniemi et al., NeurIPS 2019, Sec. 2: "Improved precision and
recall metric") and density and coverage (Naeem et al., ICML 2020, Sec. 3), the formulas of the
reference ``prdc`` package (``prdc/prdc.py``, ``compute_prdc``).

With real features X (N of them), fake features Y (M) and NND_k(X_i) the distance from X_i to
its k-th nearest other real sample (the (k+1)-th smallest distance in its row, self included),
NND_k(Y_j) the same within the fake set:

    precision = 1 / M     * sum_j 1[ exists i: d(Y_j, X_i) < NND_k(X_i) ]
    recall    = 1 / N     * sum_i 1[ exists j: d(X_i, Y_j) < NND_k(Y_j) ]
    density   = 1 / (k M) * sum_j sum_i 1[ d(Y_j, X_i) < NND_k(X_i) ]
    coverage  = 1 / N     * sum_i 1[ min_j d(Y_j, X_i) < NND_k(X_i) ]

Comparisons are strict, as in ``prdc``: a real set whose samples coincide (NND_k = 0) is
covered by nothing and gives 0. Distances are Euclidean, in float64.
"""

from __future__ import annotations

import numpy as np
import torch

from i2ibench.errors import I2IError

_ROWS_PER_CHUNK = 1024  # bounds memory to 1024 x (N + M) float64 distances


def _as_2d_float64(feats, what: str) -> np.ndarray:
    arr = feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else np.asarray(feats)
    if arr.ndim != 2:
        raise I2IError(f"{what} features must be a 2-D array [N, D], got shape {arr.shape}")
    return arr.astype(np.float64, copy=False)


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances [len(a), len(b)] via |a|^2 - 2 a.b + |b|^2 (clipped at 0)."""
    sq = (a * a).sum(1)[:, None] - 2.0 * (a @ b.T) + (b * b).sum(1)[None, :]
    return np.sqrt(np.maximum(sq, 0.0))


def density_coverage(real_feats, fake_feats, k: int = 5) -> tuple[float, float]:
    """(density, coverage) of fake features [M, D] against real features [N, D]; needs 1 <= k < N.

    Density is in [0, N / k] (1 when fakes are distributed like reals), coverage in [0, 1].
    Raises ``I2IError`` for non-2-D inputs, mismatched dimensions, no fakes or k out of range.
    """
    out = nearest_neighbour_scores(real_feats, fake_feats, k, with_recall=False)
    return out["density"], out["coverage"]


def precision_recall_density_coverage(real_feats, fake_feats, k: int = 5) -> dict[str, float]:
    """``{"precision", "recall", "density", "coverage"}`` of fake features [M, D] against real
    features [N, D] from one nearest-neighbour pass; needs 1 <= k < min(N, M).

    Precision, recall and coverage are shares in [0, 1]; density is in [0, N / k]. Equal to
    ``prdc.compute_prdc(real, fake, nearest_k=k)`` (tested). Costs (N + M)² D multiply-adds
    (real-real, real-fake and fake-fake distances), in chunks of 1024 rows. Raises ``I2IError``
    for non-2-D inputs, mismatched dimensions or k out of range.
    """
    return nearest_neighbour_scores(real_feats, fake_feats, k, with_recall=True)


def nearest_neighbour_scores(real_feats, fake_feats, k: int = 5, with_recall: bool = True) -> dict[str, float]:
    """The one nearest-neighbour pass: ``precision``, ``density``, ``coverage`` and, with
    ``with_recall`` (which needs k < M and the fake-fake distances), ``recall``. Precision,
    density and coverage need only the real k-NN radii (k < N), so they exist for any M >= 1."""
    real = _as_2d_float64(real_feats, "real")
    fake = _as_2d_float64(fake_feats, "fake")
    n, m = real.shape[0], fake.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise I2IError(f"density/coverage need an integer k >= 1, got {k!r}")
    if k >= n:
        raise I2IError(f"density/coverage with k={k} need more than k real samples, got {n}; use k <= {n - 1}")
    if m == 0:
        raise I2IError("density/coverage need at least one fake sample, got 0")
    if with_recall and k >= m:
        raise I2IError(f"recall with k={k} needs more than k fake samples, got {m}; use k <= {m - 1}")
    if real.shape[1] != fake.shape[1]:
        raise I2IError(f"real and fake features differ in dimension: {real.shape[1]} vs {fake.shape[1]}")
    # Each chunk of real rows gets its distances to real and fake samples from one product, so
    # a fake sample equal to a real one gets bit-identical distances in both blocks.
    both = np.concatenate([real, fake])
    fake_radii = np.zeros(m)
    if with_recall:  # k-NN radii within the fake set (recall's manifold)
        for start in range(0, m, _ROWS_PER_CHUNK):
            fake_radii[start:start + _ROWS_PER_CHUNK] = np.partition(
                pairwise_distances(fake[start:start + _ROWS_PER_CHUNK], fake), k, axis=1)[:, k]
    n_inside, n_covered, n_recalled = 0, 0, 0
    fake_in_real_manifold = np.zeros(m, dtype=bool)
    for start in range(0, n, _ROWS_PER_CHUNK):
        dists = pairwise_distances(real[start:start + _ROWS_PER_CHUNK], both)
        real_real, real_fake = dists[:, :n], dists[:, n:]
        # (k+1)-th smallest in the row: the sample's own zero distance is the first
        radii = np.partition(real_real, k, axis=1)[:, k]
        inside = real_fake < radii[:, None]
        n_inside += int(inside.sum())
        fake_in_real_manifold |= inside.any(axis=0)
        n_covered += int((real_fake.min(axis=1) < radii).sum())
        if with_recall:
            n_recalled += int((real_fake < fake_radii[None, :]).any(axis=1).sum())
    out = {"precision": float(fake_in_real_manifold.mean()), "density": n_inside / (k * m), "coverage": n_covered / n}
    if with_recall:
        out["recall"] = n_recalled / n
    return out
