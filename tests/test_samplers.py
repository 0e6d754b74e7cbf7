"""TrainSampler: class balance, reference pairs, determinism as a pure function of (seed, step)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from i2ibench.errors import DataError
from i2ibench.data.samplers import TrainSampler

# deliberately unbalanced: 600, 30 and 6 images
LABELS = torch.cat([torch.full((600,), 0), torch.full((30,), 1), torch.full((6,), 2)]).long()
LABELS = LABELS[torch.randperm(len(LABELS), generator=torch.Generator().manual_seed(0))]


def draws(sampler: TrainSampler, steps: int):
    parts = [sampler.indices(s) for s in range(steps)]
    return [torch.cat([p[i] for p in parts]) for i in range(4)]


def within_binomial(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(count - n * p) <= sigmas * np.sqrt(n * p * (1 - p))


def test_sources_are_class_balanced():
    src, _, _, y_ref = draws(TrainSampler(LABELS, batch_size=16, seed=1), 300)
    n = len(src)
    for k in range(3):
        assert within_binomial(int((LABELS[src] == k).sum()), n, 1 / 3)
        assert within_binomial(int((y_ref == k).sum()), n, 1 / 3)
    # within a domain, images are drawn uniformly: all 6 images of domain 2 appear
    assert set(src[LABELS[src] == 2].tolist()) == set((LABELS == 2).nonzero().flatten().tolist())


def test_unbalanced_sources_follow_dataset_frequencies():
    src, _, _, _ = draws(TrainSampler(LABELS, batch_size=16, seed=1, balanced=False), 300)
    for k, size in enumerate((600, 30, 6)):
        assert within_binomial(int((LABELS[src] == k).sum()), len(src), size / len(LABELS))


def test_reference_pairs_same_domain_distinct_images():
    src, ref, ref2, y_ref = draws(TrainSampler(LABELS, batch_size=8, seed=3), 200)
    assert src.dtype == ref.dtype == ref2.dtype == y_ref.dtype == torch.long
    assert torch.equal(LABELS[ref], y_ref) and torch.equal(LABELS[ref2], y_ref)
    assert (ref != ref2).all()


def test_pure_function_of_seed_and_step():
    a = TrainSampler(LABELS, batch_size=8, seed=5)
    b = TrainSampler(LABELS, batch_size=8, seed=5)
    later_first = [b.indices(s) for s in (9, 3, 0)]  # call order must not matter (resume)
    for s, got in zip((9, 3, 0), later_first):
        assert all(torch.equal(x, y) for x, y in zip(a.indices(s), got))
    assert all(torch.equal(x, y) for x, y in zip(a.indices(4), a.indices(4)))
    assert not torch.equal(a.indices(4)[0], a.indices(5)[0])
    other = TrainSampler(LABELS, batch_size=8, seed=6)
    assert not all(torch.equal(x, y) for x, y in zip(a.indices(4), other.indices(4)))


def test_single_image_domain_and_empty_domain():
    labels = torch.tensor([0, 0, 0, 2])  # domain 1 empty, domain 2 has one image
    src, ref, ref2, y_ref = draws(TrainSampler(labels, batch_size=4, seed=0), 50)
    assert set(y_ref.tolist()) == {0, 2}  # the empty domain is never a target; both others are
    assert set(src.tolist()) <= {0, 1, 2, 3}
    one = y_ref == 2
    assert one.any() and (ref[one] == 3).all() and (ref2[one] == 3).all()
    assert (ref[~one] != ref2[~one]).all()


def test_multi_hot_labels():
    g = torch.Generator().manual_seed(0)
    labels = (torch.rand(200, 4, generator=g) < 0.3).float()
    labels[:, 3] = 0
    labels[7, 3] = 1
    labels[9, 3] = 1
    src, ref, ref2, y_ref = draws(TrainSampler(labels, batch_size=8, seed=0), 100)
    assert (labels[ref, y_ref] == 1).all() and (labels[ref2, y_ref] == 1).all() and (ref != ref2).all()
    assert set(ref[y_ref == 3].tolist()) <= {7, 9}
    assert (labels[src].sum(1) > 0).all()


def test_no_labels_is_an_error():
    with pytest.raises(DataError):
        TrainSampler(torch.zeros(5, 3), batch_size=2, seed=0)
