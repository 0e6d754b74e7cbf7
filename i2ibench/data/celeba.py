"""celebahq: CelebA-HQ faces with multi-hot attribute labels (LANIT's ten attributes).

Layout (as CelebAMask-HQ ships it): ``<root>/CelebA-HQ-img/<n>.jpg`` (or ``<root>/images/``)
and ``<root>/CelebAMask-HQ-attribute-anno.txt``: line 1 the number of images, line 2 the 40
attribute names, then one line per image: file name and +1/-1 per attribute (0/1 accepted).
Split: ``val`` = the last 1/15 of the listed images (2,000 of the 30,000), ``train`` = the rest.
A label row is multi-hot over the spec's domains (1 where the attribute is +1).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from i2ibench.data.folder import FileDataset
from i2ibench.errors import DataError

ANNOTATION_FILE = "CelebAMask-HQ-attribute-anno.txt"
IMAGE_DIRS = ("CelebA-HQ-img", "images")
VAL_FRACTION_DENOMINATOR = 15


def locate(spec, data_root=None) -> Path:
    roots = spec.candidate_roots(data_root)
    for r in roots:
        if (r / ANNOTATION_FILE).is_file() and any((r / d).is_dir() for d in IMAGE_DIRS):
            return r
    raise spec.missing(roots)


def read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(attribute names, file names, values [N, A] in {-1, 1}) of an attribute list."""
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if len(lines) < 2 or len(lines[0]) != 1 or not lines[0][0].isdigit():
        raise DataError(f"{path}: expected the image count on line 1 and the attribute names on line 2")
    declared, names, rows = int(lines[0][0]), lines[1], lines[2:]
    if len(rows) != declared:
        raise DataError(f"{path}: line 1 says {declared} images but {len(rows)} are listed")
    files, values = [], np.empty((len(rows), len(names)), dtype=np.int8)
    for i, row in enumerate(rows):
        if len(row) != len(names) + 1 or not all(v in ("1", "-1", "0") for v in row[1:]):
            raise DataError(f"{path}, line {i + 3}: expected a file name and {len(names)} values of 1/-1")
        files.append(row[0])
        values[i] = [1 if v == "1" else -1 for v in row[1:]]
    return names, files, values


def load(spec, split: str, img_size: int, data_root=None) -> FileDataset:
    root = locate(spec, data_root)
    anno = root / ANNOTATION_FILE
    names, files, values = read_attributes(anno)
    lookup = {n.lower(): j for j, n in enumerate(names)}
    cols = []
    for d in spec.domains:
        col = next((lookup[c.lower()] for c in spec.folder_names.get(d, (d,)) if c.lower() in lookup), None)
        if col is None:
            raise DataError(f"{anno} has no attribute column for '{d}' (expected {spec.folder_names.get(d, (d,))[0]})")
        cols.append(col)
    if len(files) < 2:
        raise DataError(f"{anno} lists {len(files)} image(s); need at least 2 (train and val)")
    n_val = max(1, len(files) // VAL_FRACTION_DENOMINATOR)
    sel = slice(len(files) - n_val, None) if split == "val" else slice(0, len(files) - n_val)
    image_dir = next(root / d for d in IMAGE_DIRS if (root / d).is_dir())
    present = set(os.listdir(image_dir))
    chosen = files[sel]
    missing = [f for f in chosen if f not in present]
    if missing:
        raise DataError(f"{len(missing)} image(s) listed in {anno} are not in {image_dir}, e.g. {missing[0]}")
    labels = torch.from_numpy((values[sel][:, cols] > 0).astype(np.float32))
    return FileDataset(spec, split, img_size, [image_dir / f for f in chosen], labels, root=root)
