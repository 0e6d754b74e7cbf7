"""Bootstrap intervals over fake images: exact fast routes, coverage of 0, shrinkage, seeding."""

import numpy as np
import pytest
import torch

from i2ibench.errors import I2IError
from i2ibench.metrics.bootstrap import (DEFAULT_METHOD, N_RESAMPLES, _FidGroup, _KidGroup, bootstrap_interval,
                                        bootstrap_mean_interval)
from i2ibench.metrics.fid import fid
from i2ibench.metrics.kid import kid


def pool3_like(rng, n, d=128, scale=1.0, shift=0.0):
    """Correlated, non-negative features (a low-rank mix, rectified) like Inception pool3 ones."""
    mix = np.random.default_rng(99).normal(size=(16, d))
    return np.maximum(rng.normal(size=(n, 16)) @ mix * scale + shift, 0.0)


def test_fast_fid_and_kid_replicates_equal_recomputing_on_the_resample():
    rng = np.random.default_rng(0)
    real, fake = pool3_like(rng, 120), pool3_like(rng, 70, scale=1.1)
    f, k = _FidGroup(real, fake), _KidGroup(real, fake)
    assert f.fast
    for _ in range(5):
        idx = rng.integers(0, 70, 70)
        assert f(idx) == pytest.approx(fid(real, fake[idx]), rel=1e-9)
    perm = rng.permutation(70)  # no repeats: copies-as-diagonal changes nothing, KID is order-free
    assert k(perm) == pytest.approx(kid(real, fake)[0], abs=1e-12)
    assert k(np.arange(70)) == pytest.approx(kid(real, fake)[0], abs=1e-12)


def test_kid_replicates_are_centred_on_the_point_and_fid_replicates_are_not():
    rng = np.random.default_rng(1)
    real, fake = pool3_like(rng, 150), pool3_like(rng, 90)
    k = bootstrap_interval("kid", real, fake)
    f = bootstrap_interval("fid", real, fake)
    assert abs(k.bias) < 0.25 * k.std      # unbiased replicates (copies counted as the diagonal)
    assert f.bias > 2 * f.std              # a resample's FID is biased upward
    assert k.low <= k.point <= k.high


def test_same_distribution_kid_interval_contains_zero_fid_interval_does_not():
    # Two samples of one distribution ("a set against itself"): KID is unbiased, so its interval
    # holds the true value 0; FID's sample-size bias (plus the resampling's) keeps its interval
    # above 0 although the distributions are equal.
    rng = np.random.default_rng(2)
    real, fake = pool3_like(rng, 200), pool3_like(rng, 100)
    for seed in (0, 1, 2):
        k = bootstrap_interval("kid", real, fake, seed=seed)
        assert k.low < 0.0 < k.high
        assert bootstrap_interval("fid", real, fake, seed=seed).low > 0.0
    # and a real difference is not covered
    other = pool3_like(rng, 100, scale=1.5)
    assert bootstrap_interval("kid", real, other).low > 0.0


def test_mean_over_groups_contains_zero_for_kid():
    rng = np.random.default_rng(3)
    groups = [(pool3_like(rng, 120), pool3_like(rng, 60)) for _ in range(3)]
    k = bootstrap_mean_interval("kid", groups)
    assert k.low < 0.0 < k.high
    assert k.point == pytest.approx(np.mean([kid(r, f)[0] for r, f in groups]), abs=1e-12)
    f = bootstrap_mean_interval("fid", groups)
    assert f.point == pytest.approx(np.mean([fid(r, f_) for r, f_ in groups]), rel=1e-12)


@pytest.mark.parametrize("metric", ["fid", "kid"])
def test_intervals_shrink_as_n_grows(metric):
    rng = np.random.default_rng(4)
    real = pool3_like(rng, 400)
    widths = []
    for n in (40, 160, 640):
        iv = bootstrap_interval(metric, real, pool3_like(rng, n, scale=1.1), n_resamples=100)
        widths.append(iv.high - iv.low)
    assert widths[0] > 1.5 * widths[1] > 1.5 * 1.5 * widths[2], widths


def test_mean_interval_shrinks_with_more_fakes_per_group():
    rng = np.random.default_rng(5)
    reals = [pool3_like(rng, 200) for _ in range(2)]
    small = bootstrap_mean_interval("fid", [(r, pool3_like(rng, 40, scale=1.1)) for r in reals], n_resamples=100)
    large = bootstrap_mean_interval("fid", [(r, pool3_like(rng, 320, scale=1.1)) for r in reals], n_resamples=100)
    assert small.high - small.low > 2 * (large.high - large.low)


def test_same_seed_same_interval_other_seed_other_interval():
    rng = np.random.default_rng(6)
    real, fake = torch.from_numpy(pool3_like(rng, 80)), torch.from_numpy(pool3_like(rng, 50)).float()
    a = bootstrap_interval("fid", real, fake, seed=3)
    assert a == bootstrap_interval("fid", real, fake, seed=3)
    assert a != bootstrap_interval("fid", real, fake, seed=4)
    assert (a.n_resamples, a.level, a.method, a.seed) == (N_RESAMPLES, 0.95, DEFAULT_METHOD, 3)


def test_basic_interval_reflects_the_percentile_one_and_callables_work():
    rng = np.random.default_rng(7)
    real, fake = pool3_like(rng, 80), pool3_like(rng, 50)
    p = bootstrap_interval("fid", real, fake, n_resamples=50)
    b = bootstrap_interval("fid", real, fake, n_resamples=50, method="basic")
    assert b.low == pytest.approx(2 * p.point - p.high) and b.high == pytest.approx(2 * p.point - p.low)
    c = bootstrap_interval(fid, real, fake, n_resamples=50)  # generic route: recompute per resample
    assert (c.low, c.high) == pytest.approx((p.low, p.high), rel=1e-9)


@pytest.mark.parametrize("kwargs,match", [({"n_resamples": 1}, "n_resamples"), ({"level": 1.0}, "level"),
                                          ({"method": "bca"}, "percentile, basic")])
def test_bad_arguments_are_one_line_errors(kwargs, match):
    rng = np.random.default_rng(8)
    with pytest.raises(I2IError, match=match) as e:
        bootstrap_interval("fid", pool3_like(rng, 20), pool3_like(rng, 20), **kwargs)
    assert "\n" not in str(e.value)
    with pytest.raises(I2IError, match="unknown bootstrap metric"):
        bootstrap_interval("fdi", pool3_like(rng, 20), pool3_like(rng, 20))
    with pytest.raises(I2IError, match="at least one group"):
        bootstrap_mean_interval("kid", [])
