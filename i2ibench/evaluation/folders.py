"""Scoring two folders of images against each other (``i2ibench eval --real DIR --fake DIR``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from i2ibench.errors import I2IError
from i2ibench.metrics import keys as mk


def read_folder_images(folder: str | Path) -> tuple[list[torch.Tensor], list[Path]]:
    """Every image in ``folder`` (recursively, sorted) as uint8 [3, H, W], and their paths."""
    import numpy as np

    from i2ibench.data.images import is_image_file, open_rgb

    folder = Path(folder)
    if not folder.is_dir():
        raise I2IError(f"not a folder: {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p.name))
    if not paths:
        raise I2IError(f"no images (jpg, png, ...) found in {folder}")
    return [torch.from_numpy(np.asarray(open_rgb(p), dtype=np.uint8).copy()).permute(2, 0, 1) for p in paths], paths


def folder_features(folder: str | Path, features: Any, cache: bool = True) -> torch.Tensor:
    """Features of every image of a folder (images of several sizes are batched by size)."""
    images, paths = read_folder_images(folder)

    def compute() -> torch.Tensor:
        out = torch.zeros(len(images), 0, dtype=torch.float64)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            by_size.setdefault(tuple(im.shape[1:]), []).append(i)
        parts = {}
        for ids in by_size.values():
            f = features(torch.stack([images[i] for i in ids]))
            parts.update(zip(ids, f))
        return torch.stack([parts[i] for i in range(len(images))]) if parts else out

    if not cache:
        return compute()
    from i2ibench.features.cache import cached_features, fingerprint_files

    key = {"kind": "folder-features", "folder": str(Path(folder).resolve()), "features": features.name,
           "files": fingerprint_files(paths)}
    return cached_features(key, compute)


def score_folders(real_dir: str | Path, fake_dir: str | Path, k: int = 5, *, features: Any = None,
                  device: str = "cpu", precision: str = "fp32", batch_size: int = 50,
                  cache: bool = True) -> dict[str, float]:
    """FID, density and coverage of the images in ``fake_dir`` against those in ``real_dir``."""
    from i2ibench.metrics.fid import fid
    from i2ibench.metrics.prdc import density_coverage

    if features is None:
        from i2ibench.features.inception import InceptionFeatures

        features = InceptionFeatures(device=device, precision=precision, batch_size=batch_size)
    real_f = folder_features(real_dir, features, cache=cache)
    fake_f = folder_features(fake_dir, features, cache=False)
    out = {mk.FID: float(fid(real_f, fake_f)), "n_real": len(real_f), "n_fake": len(fake_f)}
    if len(real_f) > k and len(fake_f) >= 1:
        out[mk.DENSITY], out[mk.COVERAGE] = (float(v) for v in density_coverage(real_f, fake_f, k=k))
    else:
        out[mk.DENSITY] = out[mk.COVERAGE] = math.nan
    return out
