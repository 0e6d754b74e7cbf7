"""Features of a target's real images, through the statistics cache (``features.cache``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from i2ibench.config import EvalConfig
from i2ibench.evaluation.protocols import generator, subset
from i2ibench.features.cache import dataset_features


def real_features(real: Any, domain: int, features: Any, ev: EvalConfig, cache: bool | str | Path = True) -> torch.Tensor:
    """Features ``[n, D]`` of the real images of class ``domain`` (at most ``ev.max_real_per_domain``, seeded choice).

    ``cache``: True (the default cache root), a folder (that root) or False (compute). One
    computation per dataset, split, domain, image size, extractor and images, reused by every
    method, run and seed.
    """
    idx = subset(real.indices_of(domain), ev.max_real_per_domain, generator(ev.seed, domain, 4))
    return dataset_features(real, domain, idx, features, ev.batch_size, cache)
