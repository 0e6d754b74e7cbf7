"""KID equals torch-fidelity's (``kid_features_to_metric``) on the same features, capped subsets included."""

import numpy as np
import pytest
import torch
from torch_fidelity.metric_kid import kid_features_to_metric

from i2ibench.errors import I2IError
from i2ibench.metrics.kid import KID_SUBSET_SIZE, kid, kid_subset_size


def reference_kid(real, fake, **kwargs):
    out = kid_features_to_metric(torch.as_tensor(real), torch.as_tensor(fake), verbose=False, **kwargs)
    return out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"]


def pool3_like(rng, n, scale=1.0, d=2048):
    return np.abs(rng.normal(scale=scale, size=(n, d)))  # pool3 features are >= 0


@pytest.mark.parametrize("n,m", [(2, 2), (30, 45), (200, 90), (90, 200)])
def test_small_sets_match_torch_fidelity_with_capped_subset(n, m):
    # below the default subset size torch-fidelity refuses; given the capped size it must agree
    rng = np.random.default_rng(n * 1000 + m)
    real, fake = pool3_like(rng, n), pool3_like(rng, m, scale=1.15)
    assert kid_subset_size(n, m) == min(n, m) < KID_SUBSET_SIZE
    got = kid(real, fake)
    want = reference_kid(real, fake, kid_subset_size=min(n, m))
    assert got[0] == pytest.approx(want[0], abs=1e-6, rel=0)
    assert got[1] == pytest.approx(want[1], abs=1e-6, rel=0)
    assert abs(got[0] - want[0]) < 1e-12  # in fact equal to float rounding
    assert got[0] > 0.01  # the sets differ: a real signal, not two zeros agreeing


def test_uncapped_subsets_match_torch_fidelity():
    # sets larger than the subset size: real subsampling on both sides (the default path at scale)
    rng = np.random.default_rng(7)
    real, fake = pool3_like(rng, 160, d=64), pool3_like(rng, 130, scale=1.05, d=64)
    got = kid(real, fake, subsets=20, subset_size=100, seed=3)
    want = reference_kid(real, fake, kid_subsets=20, kid_subset_size=100, rng_seed=3)
    assert got == pytest.approx(want, abs=1e-12)
    assert got[1] > 0  # subsets differ


def test_float32_torch_inputs_and_default_seed():
    rng = np.random.default_rng(11)
    real = torch.from_numpy(pool3_like(rng, 60)).float()
    fake = torch.from_numpy(pool3_like(rng, 70, scale=1.2)).float()
    want = reference_kid(real.double(), fake.double(), kid_subset_size=60)  # same seed 2020 default
    assert kid(real, fake) == pytest.approx(want, abs=1e-6)
    assert kid(real, fake, seed=1) != pytest.approx(want, abs=1e-9)  # the seed matters


def test_same_distribution_is_near_zero_and_different_is_not():
    rng = np.random.default_rng(5)
    a, b, c = pool3_like(rng, 300, d=256), pool3_like(rng, 300, d=256), pool3_like(rng, 300, scale=1.3, d=256)
    same, _ = kid(a, b)
    diff, _ = kid(a, c)
    assert abs(same) < 0.1 * diff


@pytest.mark.parametrize("real,fake", [(np.zeros((5, 4)), np.zeros((5, 3))), (np.zeros((1, 4)), np.zeros((5, 4))),
                                       (np.zeros(4), np.zeros((5, 4)))])
def test_bad_input_raises_one_line_error(real, fake):
    with pytest.raises(I2IError) as e:
        kid(real, fake)
    assert "\n" not in str(e.value)


def test_large_set_route_equals_the_kernel_matrix_route(monkeypatch):
    import i2ibench.metrics.kid as mk
    from i2ibench.metrics.kid import subset_draws

    rng = np.random.default_rng(12)
    real, fake = pool3_like(rng, 90, d=32), pool3_like(rng, 70, scale=1.1, d=32)
    whole = kid(real, fake, subsets=15, subset_size=50)
    idx = rng.integers(0, 70, 70)  # a resample, with copies
    draws = subset_draws(90, 70, 15, 50, 2020)
    small = mk.subset_sums(real, fake, draws).values(idx, copies_as_diagonal=True)
    monkeypatch.setattr(mk, "MAX_KERNEL_ROWS", 100)  # force the per-subset (torch-fidelity) route
    assert isinstance(mk.subset_sums(real, fake, draws), mk.SubsetKernelBlocks)
    assert kid(real, fake, subsets=15, subset_size=50) == pytest.approx(whole, abs=1e-12)
    assert kid(real, fake, subsets=15, subset_size=50) == pytest.approx(
        reference_kid(real, fake, kid_subsets=15, kid_subset_size=50), abs=1e-12)
    large = mk.subset_sums(real, fake, draws).values(idx, copies_as_diagonal=True)
    np.testing.assert_allclose(large, small, rtol=0, atol=1e-12)
