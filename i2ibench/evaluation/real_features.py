"""Features of a target's real images, through the statistics cache.

One computation per (dataset, split, domain, image size, extractor, images), reused by every
method, run and seed; the key includes a fingerprint of the files (or of the pixels of
in-memory datasets), so changed images are recomputed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from i2ibench.config import EvalConfig
from i2ibench.evaluation.protocols import generator, subset
from i2ibench.features.cache import cached_features, fingerprint_files, fingerprint_tensor


def _fingerprint_dataset_images(ds: Any, idx: torch.Tensor, batch: int) -> str:
    """What the cached real features of ``ds[idx]`` depend on: the files, or the pixels."""
    parent = getattr(ds, "parent", None)
    if parent is not None:  # a subset of another dataset: its parent's images
        return _fingerprint_dataset_images(parent, ds.parent_indices[idx], batch)
    paths = getattr(ds, "paths", None)  # file-backed datasets only
    if paths is not None:
        return f"files:{fingerprint_files([paths[i] for i in idx.tolist()])}"
    h = hashlib.sha256()
    for start in range(0, len(idx), batch):
        h.update(str(fingerprint_tensor(ds.images(idx[start:start + batch]))).encode())
    return f"pixels:{h.hexdigest()}"


def real_features(real: Any, domain: int, features: Any, ev: EvalConfig, cache: bool | str | Path = True) -> torch.Tensor:
    """Features ``[n, D]`` of the real images of class ``domain`` (at most ``ev.max_real_per_domain``, seeded choice).

    ``cache``: True (the default cache root), a folder (that root) or False (compute).
    """
    idx = subset(real.indices_of(domain), ev.max_real_per_domain, generator(ev.seed, domain, 4))
    batch = max(1, ev.batch_size)

    def compute() -> torch.Tensor:
        parts = [features(real.images(idx[s:s + batch])) for s in range(0, len(idx), batch)]
        return torch.cat(parts) if parts else torch.zeros(0, 0, dtype=torch.float64)

    if not cache:
        return compute()
    key = {"kind": "real-features", "dataset": real.name, "split": real.split, "domain": real.domains[domain],
           "img_size": real.img_size, "features": features.name, "n": len(idx),
           "images": _fingerprint_dataset_images(real, idx, batch)}
    return cached_features(key, compute, cache_root=None if cache is True else cache)
