"""Training batches as indices: a pure function of (seed, step), so resuming is exact.

``TrainSampler.indices(step)`` gives, for methods that train with ground truth (stargan2), the
source images class-balanced (a domain drawn uniformly, then an image of it, as StarGAN v2's
balanced sampler does) and, for reference-guided training, a target domain ``y_ref`` drawn
uniformly over the domains with two distinct images ``ref``/``ref2`` of it (equal only if
the domain has a single image). Multi-label datasets: a domain is an attribute and its images
are those carrying it.

``UniformSampler`` is for methods that learn without labels (tunit, lanit): every image
uniformly, sources and references alike, as the official TUNIT and LANIT loaders shuffle; it
is built from the number of images only, so it cannot leak a label, and ``y_ref`` is -1.
No state is kept between steps: the generator for step s is seeded with (seed, s).
``domains=(a, b)`` (two-domain methods, ``Method.batch_domains``): every source is drawn from
domain ``a`` and every reference from domain ``b``, so a batch holds ``batch_size`` images of each.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from i2ibench.data.base import domain_members, num_label_domains
from i2ibench.errors import DataError


class StepIndices(NamedTuple):
    """The dataset indices of one step's batch (LongTensors of ``batch_size``)."""

    src: torch.Tensor    # source images
    ref: torch.Tensor    # first reference image of each target
    ref2: torch.Tensor   # second reference image of the same target
    y_ref: torch.Tensor  # the references' domain


def _step_rng(seed: int, step: int) -> np.random.Generator:
    # SeedSequence mixes (seed, step) so nearby seeds and steps give unrelated streams.
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(step)]))


def _as_long(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))


class UniformSampler:
    """Sources and references drawn uniformly over all ``num_images`` images; knows no label."""

    def __init__(self, num_images: int, batch_size: int, seed: int):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if num_images < 1:
            raise DataError("cannot sample training batches from an empty dataset")
        self.num_images, self.batch_size, self.seed = int(num_images), int(batch_size), int(seed)

    def indices(self, step: int) -> StepIndices:
        """The indices of step ``step``'s batch (``y_ref`` all -1: no label is known)."""
        rng = _step_rng(self.seed, step)
        n = self.batch_size
        src, ref, ref2 = (rng.integers(self.num_images, size=n) for _ in range(3))
        return StepIndices(_as_long(src), _as_long(ref), _as_long(ref2), torch.full((n,), -1, dtype=torch.long))


class TrainSampler:
    def __init__(self, labels: torch.Tensor, batch_size: int, seed: int, balanced: bool = True,
                 domains: tuple[int, int] | None = None):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        labels = torch.as_tensor(labels)
        members = [domain_members(labels, k).numpy() for k in range(num_label_domains(labels))]
        self.domains = [k for k, m in enumerate(members) if len(m)]  # domains with images
        if not self.domains:
            raise DataError("cannot sample training batches: no image has a domain label")
        self.members = members
        self.num_images = int(labels.shape[0])
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.balanced = balanced
        if domains is not None:
            empty = [d for d in domains if d >= len(members) or not len(members[d])]
            if empty:
                raise DataError(f"cannot sample two-domain batches: domain {empty[0]} has no images")
        self.fixed = domains

    def _rng(self, step: int) -> np.random.Generator:
        return _step_rng(self.seed, step)

    def _pick(self, rng: np.random.Generator, domains: np.ndarray) -> np.ndarray:
        return np.array([self.members[d][rng.integers(len(self.members[d]))] for d in domains], dtype=np.int64)

    def indices(self, step: int) -> StepIndices:
        """The indices of step ``step``'s batch."""
        rng = self._rng(step)
        n = self.batch_size
        doms = np.asarray(self.domains)
        if self.fixed is not None:
            src = self._pick(rng, np.full(n, self.fixed[0]))
        elif self.balanced:
            src = self._pick(rng, doms[rng.integers(len(doms), size=n)])
        else:
            labelled = np.unique(np.concatenate([self.members[d] for d in self.domains]))
            src = labelled[rng.integers(len(labelled), size=n)]
        y_ref = doms[rng.integers(len(doms), size=n)] if self.fixed is None else np.full(n, self.fixed[1])
        ref, ref2 = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
        for i, d in enumerate(y_ref):
            m = self.members[d]
            if len(m) == 1:
                ref[i] = ref2[i] = m[0]
                continue
            a = rng.integers(len(m))
            b = rng.integers(len(m) - 1)  # uniform over the other images: skip a
            ref[i], ref2[i] = m[a], m[b + (b >= a)]
        return StepIndices(_as_long(src), _as_long(ref), _as_long(ref2), _as_long(y_ref))
