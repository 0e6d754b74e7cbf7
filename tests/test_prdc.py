"""Density & coverage equal the reference prdc package and a brute-force reading of the formulas."""

import contextlib
import io

import numpy as np
import pytest
import torch
from prdc import compute_prdc

from i2ibench.errors import I2IError
from i2ibench.metrics.prdc import density_coverage


def reference_prdc(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the set sizes
        out = compute_prdc(real, fake, nearest_k=k)
    return float(out["density"]), float(out["coverage"])


def brute_force(real, fake, k):
    """The paper's formulas, one sample at a time, distances by np.linalg.norm."""
    n, m = len(real), len(fake)
    radii = []
    for i in range(n):
        d = sorted(np.linalg.norm(real[i] - real[j]) for j in range(n) if j != i)
        radii.append(d[k - 1])
    inside = np.array([[np.linalg.norm(fake[j] - real[i]) < radii[i] for j in range(m)] for i in range(n)])
    return inside.sum() / (k * m), inside.any(axis=1).mean()


@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("n,m", [(40, 40), (50, 30), (25, 60)])
def test_random_features_match_prdc(n, m, k):
    rng = np.random.default_rng(n * 100 + m + k)
    real = rng.normal(size=(n, 16))
    fake = rng.normal(loc=0.3, scale=1.2, size=(m, 16))
    got = density_coverage(real, fake, k=k)
    assert got == pytest.approx(reference_prdc(real, fake, k), abs=1e-12)
    assert got == pytest.approx(brute_force(real, fake, k), abs=1e-12)
    assert 0.0 <= got[1] <= 1.0


def test_inception_sized_float32_features_match_prdc():
    rng = np.random.default_rng(1)
    real = np.abs(rng.normal(size=(60, 2048))).astype(np.float32)  # pool3 features are >= 0
    fake = np.abs(rng.normal(scale=1.1, size=(55, 2048))).astype(np.float32)
    assert density_coverage(torch.from_numpy(real), torch.from_numpy(fake), k=5) == pytest.approx(
        reference_prdc(real, fake, 5), abs=1e-12
    )


@pytest.mark.parametrize("k", [1, 5])
def test_identical_sets_give_one_as_prdc(k):
    # every fake sample sits on a real one: covered (d = 0 < radius); each real ball holds
    # itself plus its k - 1 strictly nearer neighbours, so density = k / k = 1.
    real = np.random.default_rng(2).normal(size=(30, 8))
    assert density_coverage(real, real.copy(), k=k) == (1.0, 1.0)
    assert reference_prdc(real, real.copy(), k) == (1.0, 1.0)


def test_coinciding_real_samples_give_zero_as_prdc():
    # strict '<' with radius 0: nothing is inside a ball of radius 0, not even the same point
    real = np.ones((10, 4))
    assert density_coverage(real, real.copy(), k=3) == (0.0, 0.0)
    assert reference_prdc(real, real.copy(), 3) == (0.0, 0.0)


def test_k_equal_to_n_minus_one_uses_the_farthest_real_neighbour():
    # prdc itself cannot do k = N - 1 (argpartition out of range), so check the formulas directly
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(12, 5)), rng.normal(size=(9, 5))
    got = density_coverage(real, fake, k=11)
    assert got == pytest.approx(brute_force(real, fake, 11), abs=1e-12)
    with pytest.raises(ValueError):
        reference_prdc(real, fake, 11)


@pytest.mark.parametrize("k", [12, 13, 100])
def test_k_not_below_the_number_of_real_samples_is_a_clear_error(k):
    real, fake = np.zeros((12, 3)), np.zeros((5, 3))
    with pytest.raises(I2IError, match=r"k=\d+ need more than k real samples, got 12; use k <= 11"):
        density_coverage(real, fake, k=k)


@pytest.mark.parametrize("k", [0, -1, 2.0, True])
def test_k_must_be_a_positive_integer(k):
    with pytest.raises(I2IError, match="integer k >= 1"):
        density_coverage(np.zeros((12, 3)), np.zeros((5, 3)), k=k)


def test_bad_shapes_are_clear_errors():
    with pytest.raises(I2IError, match="differ in dimension"):
        density_coverage(np.zeros((12, 3)), np.zeros((5, 4)), k=2)
    with pytest.raises(I2IError, match="at least one fake"):
        density_coverage(np.zeros((12, 3)), np.zeros((0, 3)), k=2)
    with pytest.raises(I2IError, match="2-D"):
        density_coverage(np.zeros(12), np.zeros((5, 3)), k=2)


def test_chunked_rows_equal_one_pass(monkeypatch):
    import i2ibench.metrics.prdc as mp

    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(70, 6)), rng.normal(size=(40, 6))
    whole = density_coverage(real, fake, k=4)
    monkeypatch.setattr(mp, "_ROWS_PER_CHUNK", 16)
    assert density_coverage(real, fake, k=4) == whole


# ------------------------------------------------------------------ precision and recall

def reference_all(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):
        out = compute_prdc(real, fake, nearest_k=k)
    return {name: float(v) for name, v in out.items()}


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("n,m", [(40, 40), (50, 30), (25, 60)])
def test_precision_recall_match_prdc(n, m, k):
    from i2ibench.metrics.prdc import precision_recall_density_coverage

    rng = np.random.default_rng(n * 100 + m + k + 7)
    real = rng.normal(size=(n, 16))
    fake = rng.normal(loc=0.4, scale=1.3, size=(m, 16))  # wider: precision < 1 and recall < 1
    got = precision_recall_density_coverage(real, fake, k=k)
    want = reference_all(real, fake, k)
    assert set(got) == {"precision", "recall", "density", "coverage"}
    for name in want:
        assert got[name] == pytest.approx(want[name], abs=1e-12), name
    assert (got["density"], got["coverage"]) == density_coverage(real, fake, k=k)  # one definition
    assert got["precision"] != got["recall"] or n != m  # the two directions are not swapped copies


def test_precision_and_recall_are_not_swapped():
    # fakes collapsed onto a few real samples: precise but with poor recall
    from i2ibench.metrics.prdc import precision_recall_density_coverage

    rng = np.random.default_rng(8)
    real = rng.normal(size=(60, 8))
    fake = real[:3].repeat(10, axis=0) + 1e-3 * rng.normal(size=(30, 8))  # clusters of 10 > k + 1
    got = precision_recall_density_coverage(real, fake, k=5)
    assert got["precision"] == 1.0 and got["recall"] < 0.3
    assert got == pytest.approx(reference_all(real, fake, 5), abs=1e-12)


def test_inception_sized_precision_recall_and_chunking(monkeypatch):
    import i2ibench.metrics.prdc as mp

    rng = np.random.default_rng(9)
    real = np.abs(rng.normal(size=(70, 2048))).astype(np.float32)
    fake = np.abs(rng.normal(scale=1.05, size=(45, 2048))).astype(np.float32)
    whole = mp.precision_recall_density_coverage(torch.from_numpy(real), torch.from_numpy(fake), k=5)
    assert whole == pytest.approx(reference_all(real, fake, 5), abs=1e-12)
    monkeypatch.setattr(mp, "_ROWS_PER_CHUNK", 16)
    assert mp.precision_recall_density_coverage(real, fake, k=5) == whole


def test_recall_needs_more_than_k_fakes():
    from i2ibench.metrics.prdc import precision_recall_density_coverage

    with pytest.raises(I2IError, match=r"more than k fake samples, got 5; use k <= 4"):
        precision_recall_density_coverage(np.zeros((12, 3)), np.zeros((5, 3)), k=5)
    assert density_coverage(np.random.default_rng(0).normal(size=(12, 3)), np.zeros((5, 3)), k=5)  # still fine
