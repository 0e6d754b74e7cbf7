"""fashion10: Fashion-MNIST as a 10-domain translation benchmark.

Files: the four IDX files, from ``--data-root``, ``$I2IBENCH_DATA/fashion10``,
``~/data/fashion10``, the Debian package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist/``), or torchvision's download where there is internet.

Splits: ``train`` = the official training split minus its last ``VAL_PER_CLASS`` images of
each class (5,500 per class), ``val`` = those held-out images (500 per class), ``heldout`` =
the official 10,000-image test split, kept apart for pre-training the offline VLM stand-in
and never used by the benchmarks. Images stay uint8 28x28 in memory; fetching upsamples
them (bilinear) to the requested size as 3-channel images in [-1, 1].
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from i2ibench.data.base import InMemoryDataset
from i2ibench.data.idx import find_idx, read_idx
from i2ibench.errors import DataError

VAL_PER_CLASS = 500
NUM_CLASSES = 10
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_ALL_FILES = FILES["train"] + FILES["test"]


def _download_dir() -> Path:
    # Same place as defaults.cache_dir("fashion-mnist"), without creating it just to look.
    return Path(os.environ.get("I2IBENCH_CACHE", Path.home() / ".cache" / "i2ibench")) / "fashion-mnist"


def _search_dirs(spec, data_root) -> list[Path]:
    roots = spec.candidate_roots(data_root)
    if data_root is None and spec.root is None:
        roots.append(_download_dir())
    dirs = []
    for r in roots:
        dirs += [r, r / "FashionMNIST" / "raw"]
    return dirs


def locate(spec, data_root=None) -> Path:
    """The folder holding all four IDX files."""
    dirs = _search_dirs(spec, data_root)
    for d in dirs:
        found = [find_idx(d, stem) for stem in _ALL_FILES]
        if all(found):
            return d
        if any(found):
            lacking = [s for s, f in zip(_ALL_FILES, found) if f is None]
            raise spec.missing([d], f"incomplete Fashion-MNIST files, missing {', '.join(lacking)}")
    raise spec.missing(dirs[::2])


def _download(spec, not_found: DataError) -> Path:
    """torchvision's FashionMNIST download into the cache; the original error if it fails."""
    from torchvision.datasets import FashionMNIST

    from i2ibench.defaults import cache_dir

    target = cache_dir("fashion-mnist")
    try:
        for train in (True, False):
            FashionMNIST(str(target), train=train, download=True)
    except Exception as e:  # no route to the mirrors: any network or HTTP error
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{not_found} (torchvision download failed: {reason}; on Debian/Ubuntu: "
                        f"sudo apt-get install dataset-fashion-mnist)") from None
    return locate(spec, target)


def _read_pair(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    img_path, lab_path = (find_idx(folder, s) for s in FILES[split])
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{img_path}: expected N x 28 x 28 images with N labels, got images {images.shape} "
                        f"and labels {labels.shape}")
    if labels.max(initial=0) >= NUM_CLASSES:
        raise DataError(f"{lab_path}: labels must be 0-{NUM_CLASSES - 1}, found {int(labels.max())}")
    return images, labels


def split_indices(labels: np.ndarray, split: str, val_per_class: int = VAL_PER_CLASS) -> np.ndarray:
    """Positions in the official training split that form ``train`` or ``val``."""
    val = []
    for c in range(NUM_CLASSES):
        pos = np.flatnonzero(labels == c)
        if len(pos) <= val_per_class:
            raise DataError(f"Fashion-MNIST training labels have only {len(pos)} images of class {c}; "
                            f"need more than {val_per_class}")
        val.append(pos[-val_per_class:])
    val_pos = np.sort(np.concatenate(val))
    if split == "val":
        return val_pos
    keep = np.ones(len(labels), dtype=bool)
    keep[val_pos] = False
    return np.flatnonzero(keep)


def load(spec, split: str, img_size: int, data_root=None) -> InMemoryDataset:
    try:
        folder = locate(spec, data_root)
    except DataError as e:
        if data_root is not None or spec.root is not None:
            raise
        folder = _download(spec, e)
    if split == "heldout":
        images, labels = _read_pair(folder, "test")
        pos = np.arange(len(labels))
    else:
        images, labels = _read_pair(folder, "train")
        pos = split_indices(labels, split)
    pixels = torch.from_numpy(images[pos].copy()).unsqueeze(1)
    return InMemoryDataset(
        spec, split, img_size, pixels, torch.from_numpy(labels[pos].astype(np.int64)),
        extras={"source_index": torch.from_numpy(pos.astype(np.int64))}, root=folder)
