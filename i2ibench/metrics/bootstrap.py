"""Bootstrap intervals over fake images for FID, KID and their means over groups (mFID, mKID).

What is resampled: the fake (translated) images of each group, with replacement, B times
(default 200, seeded); the real features stay fixed (they are the same for every method, so
they are not a source of difference between rows of a table). For a mean over groups (mFID
over tasks or targets), each replicate resamples every group's fakes independently and
recomputes the mean. This is the nonparametric bootstrap of Efron & Tibshirani, *An
Introduction to the Bootstrap* (1993), Ch. 13 (percentile interval) and Davison & Hinkley,
*Bootstrap Methods and their Application* (1997), Sec. 5.2 (basic interval).

Which interval (``DEFAULT_METHOD`` = ``"percentile"``), and what it means:

- *percentile*: the 2.5 % and 97.5 % quantiles of the replicate values;
- *basic*: ``2 * point - those quantiles``, reversed (it assumes ``replicate - point`` is
  distributed like ``point - truth`` and so corrects a shift of the replicates).

KID: a resample of n fakes holds only ~63 % distinct images, and the plain unbiased MMD²
counts pairs of copies of one image as off-diagonal pairs, which biases a resample's KID
upward by about (mean diagonal - mean off-diagonal kernel) / m (measured: 0.094 -> 0.15 on
synthetic pool3-like features). The replicates here count such pairs with the diagonal
(``kid.SubsetKernelSums.values(copies_as_diagonal=True)``), so a replicate has the same
expectation as the unresampled KID: replicates are centred on the point and the percentile
and basic intervals agree to ~1e-3 (fashion10 Inception features, KID ~0.2). For two samples
of one distribution (a domain's real images against other real images of it, or against a
subset of its own reals) the KID interval contains 0, because KID is unbiased (tested;
measured on fashion10 features: [-0.0017, 0.0038] at 90 fakes). The *identical* set as reals
and fakes is not two samples: with whole-set subsets KID(X, X) = -2 (mean diagonal - mean
off-diagonal kernel) / m < 0 exactly, and its interval lies below 0 (fashion10, 90 images:
point -0.0057, interval [-0.0071, -0.0037]).

FID: FID is biased upward by sample size, and a resample (fewer distinct images, repeated
rows in the covariance) is biased further: on fashion10 Inception features the replicates sit
~5 to 22 above the point at 300 down to 90 fakes, so *neither* interval contains the point
(percentile above, basic below). The percentile interval is the default because it stays in
FID's range (>= 0), it is what the replicates say without a symmetry assumption that FID's
bias does not satisfy (``replicate - point`` is much smaller than ``point - truth``: for two
samples of one distribution at n = 90 the point is ~70 and the truth 0), and it is computed
by the same rule as KID's. Read it as the spread of FID at this n over fake sets, shifted by
the resampling bias (``BootstrapInterval.bias`` reports that shift), for comparing methods
scored at the same n, not as an interval for the infinite-sample FID. For two samples of one
distribution the FID interval does not contain 0 (tested): FID's bias, not the method, keeps
it above 0, which is why KID is reported beside it.

Cost: FID and KID by name use exact fast routes that reuse one Gram matrix per group (real x
fake and fake x fake products computed once), so a replicate costs an n_real x n_fake SVD (FID)
or 100 subset sums over its fakes (KID) instead of new D-dimensional products. Any other
callable is recomputed on the resampled features.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from i2ibench.errors import I2IError
from i2ibench.metrics.fid import fid
from i2ibench.metrics.kid import KID_SEED, KID_SUBSET_SIZE, KID_SUBSETS, kid, subset_draws, subset_sums

N_RESAMPLES = 200
LEVEL = 0.95
METHODS = ("percentile", "basic")
DEFAULT_METHOD = "percentile"


@dataclass(frozen=True)
class BootstrapInterval:
    """A bootstrap interval: ``low <= high``; ``point`` is the metric on the unresampled sets."""

    point: float
    low: float
    high: float
    level: float
    n_resamples: int
    method: str
    seed: int
    bias: float  # mean of the replicates - point (the resampling's shift)
    std: float   # std of the replicates (ddof 1)

    def as_dict(self) -> dict:
        return asdict(self)


def _as_2d_float64(feats, what: str) -> np.ndarray:
    arr = feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else np.asarray(feats)
    if arr.ndim != 2:
        raise I2IError(f"{what} features must be a 2-D array [N, D], got shape {arr.shape}")
    return arr.astype(np.float64, copy=False)


class _FidGroup:
    """FID of (real, fake[idx]) for many resamples ``idx``, exactly, from products computed once.

    With c1 = real - mu1, fake rows y_j, resample multiplicities w (sum M) and mu_w = Y^T w / M:
    the centred cross product is ``c1 Y^T - (c1 Y^T w / M) 1^T`` and a row repeated w_j times
    contributes like one row scaled by sqrt(w_j), so tr sqrtm(S1 S2) is the sum of the singular
    values of ``(c1 Y^T - ...) diag(sqrt w) / sqrt((n1 - 1)(M - 1))`` (``fid``'s SVD route);
    |mu1 - mu_w|^2 and tr S2 come from ``Y Y^T`` and ``Y mu1``.
    """

    def __init__(self, real: np.ndarray, fake: np.ndarray):
        self.real, self.fake = real, fake
        n1, self.m = real.shape[0], fake.shape[0]
        self.fast = min(n1, self.m) <= real.shape[1] and min(n1, self.m) >= 2
        if not self.fast:
            return
        mu1 = real.mean(axis=0)
        c1 = real - mu1
        self.n1 = n1
        self.tr1 = np.einsum("ij,ij->", c1, c1) / (n1 - 1)
        self.cross = c1 @ fake.T          # [n1, M]
        self.gram = fake @ fake.T         # [M, M]
        self.fake_mu1 = fake @ mu1        # [M]
        self.mu1_sq = mu1 @ mu1

    def __call__(self, idx: np.ndarray) -> float:
        if not self.fast:
            return fid(self.real, self.fake[idx])
        m = self.m
        w = np.bincount(idx, minlength=m).astype(np.float64)
        used = w > 0
        w_u = w[used]
        cross = self.cross[:, used]
        centred = (cross - (cross @ w_u / m)[:, None]) * np.sqrt(w_u)[None, :]
        tr_covmean = np.linalg.svd(centred, compute_uv=False).sum() / np.sqrt((self.n1 - 1) * (m - 1))
        gram = self.gram[np.ix_(used, used)]
        mu_w_sq = w_u @ gram @ w_u / (m * m)
        diff_sq = self.mu1_sq - 2.0 * (self.fake_mu1[used] @ w_u) / m + mu_w_sq
        tr2 = (w_u @ np.diag(gram) - m * mu_w_sq) / (m - 1)
        return float(diff_sq + self.tr1 + tr2 - 2.0 * tr_covmean)


class _KidGroup:
    """KID of (real, fake[idx]) for many resamples from one kernel matrix over real + fake."""

    def __init__(self, real: np.ndarray, fake: np.ndarray, **kid_kwargs):
        self.n, self.m = real.shape[0], fake.shape[0]
        if real.shape[1] != fake.shape[1]:
            raise I2IError(f"real and fake features differ in dimension: {real.shape[1]} vs {fake.shape[1]}")
        kid(real[:2], fake[:2], subsets=1)  # the same input checks as kid itself
        kwargs = {"subsets": KID_SUBSETS, "subset_size": KID_SUBSET_SIZE, "seed": KID_SEED, **kid_kwargs}
        # the subset draws depend on the set sizes only: the same for every replicate
        self.sums = subset_sums(real, fake, subset_draws(self.n, self.m, **kwargs))

    def __call__(self, idx: np.ndarray) -> float:
        with np.errstate(invalid="ignore"):  # inf - inf of degenerate subsets: a NaN interval (below), no warning
            return float(self.sums.values(idx, copies_as_diagonal=True).mean())


class _CallableGroup:
    def __init__(self, metric: Callable, real: np.ndarray, fake: np.ndarray):
        self.metric, self.real, self.fake = metric, real, fake

    def __call__(self, idx: np.ndarray) -> float:
        return float(self.metric(self.real, self.fake[idx]))


def _group(metric, real_feats, fake_feats, kid_kwargs: dict | None):
    real, fake = _as_2d_float64(real_feats, "real"), _as_2d_float64(fake_feats, "fake")
    if fake.shape[0] < 2:
        raise I2IError(f"a bootstrap over fake images needs at least 2 of them, got {fake.shape[0]}")
    if metric == "fid":
        if real.shape[1] != fake.shape[1]:
            raise I2IError(f"real and fake features differ in dimension: {real.shape[1]} vs {fake.shape[1]}")
        return _FidGroup(real, fake)
    if metric == "kid":
        return _KidGroup(real, fake, **(kid_kwargs or {}))
    if callable(metric):
        return _CallableGroup(metric, real, fake)
    raise I2IError(f"unknown bootstrap metric {metric!r}. Valid: 'fid', 'kid' or a callable (real, fake) -> float")


def _check(n_resamples: int, level: float, method: str) -> None:
    if isinstance(n_resamples, bool) or int(n_resamples) < 2:
        raise I2IError(f"a bootstrap needs n_resamples >= 2, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise I2IError(f"interval level must be in (0, 1), got {level}")
    if method not in METHODS:
        raise I2IError(f"unknown bootstrap interval '{method}'. Valid: {', '.join(METHODS)}")


def _interval(point: float, replicates: np.ndarray, level: float, method: str, seed: int) -> BootstrapInterval:
    if not np.isfinite(replicates).all():  # e.g. KID of a resample that repeats one image (2 fakes)
        nan = float("nan")
        return BootstrapInterval(float(point), nan, nan, float(level), len(replicates), method, int(seed), nan, nan)
    alpha = (1.0 - level) / 2.0
    lo_q, hi_q = np.quantile(replicates, [alpha, 1.0 - alpha])
    low, high = (lo_q, hi_q) if method == "percentile" else (2.0 * point - hi_q, 2.0 * point - lo_q)
    return BootstrapInterval(float(point), float(low), float(high), float(level), len(replicates), method, int(seed),
                             float(replicates.mean() - point), float(replicates.std(ddof=1)))


def bootstrap_mean_interval(metric: str | Callable, groups: Sequence[tuple], *, n_resamples: int = N_RESAMPLES,
                            seed: int = 0, level: float = LEVEL, method: str = DEFAULT_METHOD,
                            kid_kwargs: dict | None = None, blas_threads: int | None = 1) -> BootstrapInterval:
    """Bootstrap interval of the mean over groups of ``metric`` (mFID, mKID).

    ``groups``: a sequence of (real_feats [N_g, D], fake_feats [M_g, D]) pairs (tensors or arrays),
    one per task or target; the same real features may appear in several groups. ``metric``:
    ``"fid"``, ``"kid"`` (KID mean; ``kid_kwargs`` are passed to ``kid``) or a callable
    (real, fake) -> float. Each of ``n_resamples`` replicates draws, for every group in order,
    M_g row numbers uniformly with replacement from ``numpy.random.default_rng(seed)`` and
    averages the groups' metrics. ``point`` is the mean over the unresampled groups.
    Returns a ``BootstrapInterval`` in the metric's units. Raises ``I2IError`` for no groups,
    a group with fewer than 2 fakes, fewer than 2 resamples, a level outside (0, 1) or an
    unknown metric or method. Cost: one Gram matrix per group, then per replicate and group an
    N_g x M_g SVD (FID) or 100 subset sums over M_g fakes (KID); at the cpu preset's sizes
    (200 reals; 10 groups of 90 fakes, or 90 groups of 10) 0.3 to 1.6 s per interval on one
    thread. Large sets are costly: FID with N_g and M_g above D recomputes FID per replicate
    (a D x D eigenproblem), KID with N_g + M_g > ``kid.MAX_KERNEL_ROWS`` recomputes kernel
    blocks per subset. ``blas_threads``: BLAS threads during the replicates (threadpoolctl;
    1 by default: the products are small and extra threads only contend, 26 s -> 1.4 s measured
    on two shared cores; None leaves BLAS as it is).
    """
    if blas_threads is None:
        return _bootstrap_mean_interval(metric, groups, n_resamples, seed, level, method, kid_kwargs)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(blas_threads), user_api="blas"):
        return _bootstrap_mean_interval(metric, groups, n_resamples, seed, level, method, kid_kwargs)


def _bootstrap_mean_interval(metric, groups, n_resamples, seed, level, method, kid_kwargs) -> BootstrapInterval:
    _check(n_resamples, level, method)
    if len(groups) == 0:
        raise I2IError("a bootstrap over groups needs at least one group")
    evaluators = [_group(metric, real, fake, kid_kwargs) for real, fake in groups]
    sizes = [len(_as_2d_float64(fake, "fake")) for _, fake in groups]
    point = float(np.mean([ev(np.arange(m)) for ev, m in zip(evaluators, sizes)]))
    rng = np.random.default_rng(seed)
    replicates = np.empty(int(n_resamples))
    for b in range(int(n_resamples)):
        replicates[b] = np.mean([ev(rng.integers(0, m, m)) for ev, m in zip(evaluators, sizes)])
    return _interval(point, replicates, level, method, seed)


def bootstrap_interval(metric: str | Callable, real_feats, fake_feats, *, n_resamples: int = N_RESAMPLES,
                       seed: int = 0, level: float = LEVEL, method: str = DEFAULT_METHOD,
                       kid_kwargs: dict | None = None, blas_threads: int | None = 1) -> BootstrapInterval:
    """Bootstrap interval of ``metric`` of fake features [M, D] against real features [N, D],
    resampling the fakes (one group of ``bootstrap_mean_interval``; same arguments, errors and
    draws)."""
    return bootstrap_mean_interval(metric, [(real_feats, fake_feats)], n_resamples=n_resamples, seed=seed,
                                   level=level, method=method, kid_kwargs=kid_kwargs, blas_threads=blas_threads)
