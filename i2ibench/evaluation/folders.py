"""Scoring two folders of images against each other (``i2ibench eval --real DIR --fake DIR``).

A folder is searched recursively: every visible image file in it and in its sub-folders,
symlinked sub-folders included (a link that leads back to a folder above it is an error, not
an endless walk; a folder reached twice through links is read once). Hidden files and folders
(``images.is_hidden``) are skipped.

Images are streamed: decoded and passed through the feature extractor a batch at a time, so
memory holds one batch of decoded images (at most ``batch_size`` images and
``MAX_BATCH_PIXELS`` pixels) plus the features, never the whole folder.
"""

from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from i2ibench.errors import DataError, I2IError
from i2ibench.metrics import keys as mk
from i2ibench.metrics.feature_scores import FEATURE_KEYS, score_features

# Decoded pixels per extractor call: ~48 MB as uint8, ~200 MB as the float copy the Inception
# extractor resizes from; at 2048 px that is 4 images, at 256 px more than any batch_size.
MAX_BATCH_PIXELS = 1 << 24


@dataclass
class FolderImages:
    """The image files found under ``folder`` and how they were found."""

    folder: Path
    paths: list[Path]
    folders_with_images: int = 0          # distinct folders (``folder`` included) holding the images
    linked_folders: list[Path] = field(default_factory=list)  # symlinked sub-folders followed
    repeated_folders: list[Path] = field(default_factory=list)  # reached again through a link, read once

    def describe(self) -> str:
        """One line, e.g. ``20 images from real and 2 of its sub-folders (sub-folders searched; 1 symlinked folder(s) followed)``."""
        sub = self.folders_with_images - (1 if any(p.parent == self.folder for p in self.paths) else 0)
        notes = ["sub-folders searched"]
        if self.linked_folders:
            notes.append(f"{len(self.linked_folders)} symlinked folder(s) followed")
        if self.repeated_folders:
            notes.append(f"{len(self.repeated_folders)} folder(s) reached twice through links, read once")
        where = f"{self.folder}" + (f" and {sub} of its sub-folders" if sub else "")
        return f"{len(self.paths)} images from {where} ({'; '.join(notes)})"


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise DataError(f"symlink loop: {path} points back to itself") from None
        if os.path.islink(path):
            raise DataError(f"broken symlink: {path} -> {os.readlink(path)}") from None
        raise DataError(f"cannot read {path}: {e.strerror}") from None


def find_images(folder: str | Path) -> FolderImages:
    """Every visible image file under ``folder`` (recursively, symlinks followed), sorted by path.

    Raises ``DataError`` if ``folder`` is not a folder, holds no image, or a symlink under it
    loops (to itself or to a folder above it) or dangles with an image name.
    """
    from i2ibench.data.images import is_hidden, is_image_file

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder}")
    found = FolderImages(folder, [])
    seen: set[tuple[int, int]] = set()
    with_images: set[tuple[int, int]] = set()

    def walk(d: Path, here: tuple[int, int], ancestors: dict[tuple[int, int], Path]) -> None:
        with os.scandir(d) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if is_hidden(e.name):
                continue
            st = _stat(e.path)  # follows links; a looping or dangling one is a DataError
            if os.path.isdir(e.path):
                ident = (st.st_dev, st.st_ino)
                if ident in ancestors:
                    raise DataError(f"symlink loop: {e.path} leads back to {ancestors[ident]}")
                if e.is_symlink():
                    found.linked_folders.append(Path(e.path))
                if ident in seen:
                    found.repeated_folders.append(Path(e.path))
                    continue
                seen.add(ident)
                walk(Path(e.path), ident, {**ancestors, ident: Path(e.path)})
            elif is_image_file(e.name):
                found.paths.append(Path(e.path))
                with_images.add(here)

    root_st = folder.stat()
    root = (root_st.st_dev, root_st.st_ino)
    seen.add(root)
    walk(folder, root, {root: folder})
    if not found.paths:
        raise DataError(f"no images (jpg, png, ...) found in {folder} or its sub-folders")
    found.folders_with_images = len(with_images)
    return found


def iter_image_batches(paths: list[Path], batch_size: int,
                       max_pixels: int = MAX_BATCH_PIXELS) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Decode ``paths`` in order, yielding ``(indices, uint8 [B, 3, H, W])`` of same-sized images.

    A batch ends when it holds ``batch_size`` images, ``max_pixels`` pixels, or the next image
    has another size; only one batch of decoded images is alive at a time.
    """
    from i2ibench.data.images import load_uint8

    ids: list[int] = []
    imgs: list[torch.Tensor] = []
    pixels = 0
    for i, p in enumerate(paths):
        im = load_uint8(p)
        n_px = im.shape[1] * im.shape[2]
        if imgs and (len(imgs) >= batch_size or pixels + n_px > max_pixels or im.shape != imgs[0].shape):
            yield ids, torch.stack(imgs)
            ids, imgs, pixels = [], [], 0
        ids.append(i)
        imgs.append(im)
        pixels += n_px
    if imgs:
        yield ids, torch.stack(imgs)


def read_folder_images(folder: str | Path) -> tuple[list[torch.Tensor], list[Path]]:
    """Every image under ``folder`` as uint8 [3, H, W], and their paths (all in memory: for
    small folders and tests; scoring streams with ``folder_features``)."""
    from i2ibench.data.images import load_uint8

    paths = find_images(folder).paths
    return [load_uint8(p) for p in paths], paths


def folder_features(folder: str | Path, features: Any, cache: bool = True, *, batch_size: int = 50,
                    listing: FolderImages | None = None) -> torch.Tensor:
    """Features [N, D] (float64 as ``features`` returns them) of every image under ``folder``,
    in ``find_images`` order, extracted batch by batch (see ``iter_image_batches``)."""
    listing = listing if listing is not None else find_images(folder)
    paths = listing.paths

    def compute() -> torch.Tensor:
        out: torch.Tensor | None = None
        for ids, batch in iter_image_batches(paths, max(1, batch_size)):
            f = features(batch)
            if out is None:
                out = torch.empty(len(paths), f.shape[1], dtype=f.dtype)
            out[ids] = f
            del batch, f  # the next batch is decoded only after this one is gone
        return out

    if not cache:
        return compute()
    from i2ibench.features.cache import cached_features, fingerprint_files

    key = {"kind": "folder-features", "folder": str(Path(folder).resolve()), "features": features.name,
           "files": fingerprint_files(paths)}
    return cached_features(key, compute)


def score_folders(real_dir: str | Path, fake_dir: str | Path, k: int = 5, *, features: Any = None,
                  device: str = "cpu", precision: str = "fp32", batch_size: int = 50,
                  cache: bool = True, log: Callable[[str], None] | None = None) -> dict[str, float]:
    """FID, KID, precision, recall, density and coverage of the images under ``fake_dir``
    against those under ``real_dir``, or FID against a statistics file (``real_dir`` a ``.npz``
    from ``i2ibench stats export``, pytorch-fid or clean-fid: its pooled ``mu``/``sigma``).

    Returns ``{"fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "n_real",
    "n_fake"}``; a metric undefined at these counts (or without real features, against a
    statistics file) is NaN, and so is ``n_real`` of a statistics file that does not record
    its image count (pytorch-fid, clean-fid; i2ibench's files do). ``k`` >= 1, ``batch_size`` >= 1 (``I2IError`` otherwise). ``log``
    gets one line per folder saying how many images were read from where. Raises ``DataError``
    for a missing or empty folder, an unreadable image (naming it) or a symlink loop.
    """
    if batch_size < 1:
        raise I2IError(f"batch size must be >= 1, got {batch_size}")
    if k < 1:
        raise I2IError(f"--k (nearest neighbours for density and coverage) must be >= 1, got {k}")
    stats = Path(real_dir).suffix == ".npz"
    if stats and not Path(real_dir).is_file():
        raise I2IError(f"--real {real_dir}: no such statistics file")
    # List (and check) the folders before the network is loaded or anything is decoded.
    real_list = None if stats else find_images(real_dir)
    fake_list = find_images(fake_dir)
    if log is not None:
        log(f"real: statistics file {real_dir}" if stats else f"real: {real_list.describe()}")
        log(f"fake: {fake_list.describe()}")
    if features is None:
        from i2ibench.features.inception import InceptionFeatures

        features = InceptionFeatures(device=device, precision=precision, batch_size=batch_size)
    fake_f = folder_features(fake_dir, features, cache=False, batch_size=batch_size, listing=fake_list)
    if stats:
        from i2ibench.evaluation.stats_export import fid_against_stats, stats_image_count

        out = {key: math.nan for key in FEATURE_KEYS}
        out[mk.FID] = fid_against_stats(real_dir, fake_f)
        n_real = stats_image_count(real_dir)
        return {**out, "n_real": math.nan if n_real is None else n_real, "n_fake": len(fake_f)}
    real_f = folder_features(real_dir, features, cache=cache, batch_size=batch_size, listing=real_list)
    values, _ = score_features(real_f, fake_f, k)
    return {**values, "n_real": len(real_f), "n_fake": len(fake_f)}
