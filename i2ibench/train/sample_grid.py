"""PNG sample grids written during training: fixed inputs (rows) x target classes (columns).

One grid per sampling step and mode the method has:

- latent: ``latent_<step>.png``, column 0 the input, then one column per target class, each
  row translated with one fixed latent code ``z`` (the same ``z`` across the row, so a row
  shows what only the target changes);
- reference: ``reference_<step>.png``, top row the fixed reference image of each class,
  column 0 the input, cell (i, d) = input i rendered in the style of reference d;
- deterministic: ``deterministic_<step>.png``, column 0 the input, then its one translation
  into each target class.

Targets are the dataset's classes, mapped to the method's own domains with
``Method.domain_of_class``; a column whose target the method does not serve in that mode (see
``Method.serves``) is left blank.

Inputs, references and ``z`` are fixed for the whole run (chosen deterministically from the
validation split and the run seed), so grids of successive steps are comparable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from i2ibench.data.base import domain_members
from i2ibench.errors import DataError
from i2ibench.fileio import atomic_path
from i2ibench.names import DETERMINISTIC, LATENT, REFERENCE

PAD = 2
MAX_ROW_DOMAINS = 10  # at most this many source domains contribute rows
MIN_ROWS = 4


@dataclass
class SampleInputs:
    """Fixed grid inputs: ``x`` [R,3,S,S], ``refs`` [K,3,S,S] (reference of domain d), ``z`` [R,latent],
    ``y`` [R] the rows' classes (for methods that ``needs_source``)."""

    x: torch.Tensor
    refs: torch.Tensor
    z: torch.Tensor | None
    y: torch.Tensor | None = None


def grid_size(rows: int, cols: int, img_size: int, pad: int = PAD) -> tuple[int, int]:
    """(height, width) in pixels of a grid of ``rows`` x ``cols`` tiles with ``pad`` pixels between and around."""
    return rows * img_size + (rows + 1) * pad, cols * img_size + (cols + 1) * pad


def tile(cells: Sequence[Sequence[torch.Tensor | None]], pad: int = PAD) -> np.ndarray:
    """Lay out images in [-1, 1] (``None`` = blank cell) as an HxWx3 uint8 array on a white background."""
    first = next(c for row in cells for c in row if c is not None)
    size = first.shape[-1]
    h, w = grid_size(len(cells), max(len(r) for r in cells), size, pad)
    canvas = np.full((h, w, 3), 255, dtype=np.uint8)
    for i, row in enumerate(cells):
        for j, img in enumerate(row):
            if img is None:
                continue
            arr = ((img.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
            top, left = pad + i * (size + pad), pad + j * (size + pad)
            canvas[top:top + size, left:left + size] = arr.permute(1, 2, 0).numpy()
    return canvas


def save_png(array: np.ndarray, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def pick_sample_inputs(dataset: Any, latent_dim: int | None, seed: int) -> SampleInputs:
    """Deterministic grid inputs from ``dataset``: the first images of each class as rows, the
    next one of each class as its reference, and ``z`` ``[R, latent_dim]`` from a generator
    seeded with ``seed`` (the global generators are not touched)."""
    labels = torch.as_tensor(dataset.labels)
    num_classes = len(dataset.domains)
    row_domains = min(num_classes, MAX_ROW_DOMAINS)
    per_domain = math.ceil(MIN_ROWS / row_domains)
    rows, refs, row_classes = [], [], []
    for d in range(num_classes):
        members = domain_members(labels, d).tolist()
        if not members:
            raise DataError(f"no image of domain {d} in the split used for sample grids")
        if d < row_domains:
            rows.extend(members[:per_domain])
            row_classes.extend([d] * len(members[:per_domain]))
        refs.append(members[per_domain] if len(members) > per_domain else members[-1])
    x = dataset.images(torch.tensor(rows))
    ref_imgs = dataset.images(torch.tensor(refs))
    z = None
    if latent_dim is not None:
        z = torch.randn(len(rows), latent_dim, generator=torch.Generator().manual_seed(seed))
    return SampleInputs(x=x, refs=ref_imgs, z=z, y=torch.tensor(row_classes, dtype=torch.long))


def _served(method: Any, trg: int, mode: str) -> bool:
    num_classes = method.info.num_domains
    return any(method.serves(src, trg, mode) for src in range(num_classes) if src != trg)


def _target(method: Any, trg: int, n: int) -> torch.Tensor | None:
    domain = method.domain_of_class(trg)
    return None if domain is None else torch.full((n,), domain, dtype=torch.long, device=method.device)


@torch.no_grad()
def mode_grid(method: Any, inputs: SampleInputs, mode: str) -> np.ndarray:
    """The grid of one mode: rows = inputs, columns = target classes (blank where not served)."""
    dev = method.device
    x = inputs.x.to(dev)
    n, num_classes = len(x), method.info.num_domains
    columns: list[torch.Tensor | None] = []
    kw = {}
    if method.needs_source:
        if inputs.y is None:
            raise ValueError("sample inputs without their classes (y) for a method that needs the source domain")
        kw = {"src": torch.tensor([method.domain_of_class(int(c)) for c in inputs.y], dtype=torch.long, device=dev)}
    for d in range(num_classes):
        if not _served(method, d, mode):
            columns.append(None)
            continue
        if mode == LATENT:
            out = method.translate(x, _target(method, d, n), z=inputs.z.to(dev), **kw)
        elif mode == REFERENCE:
            ref = inputs.refs[d:d + 1].to(dev).expand(n, -1, -1, -1)
            out = method.translate(x, _target(method, d, n), ref=ref, **kw)
        else:
            out = method.translate(x, _target(method, d, n), **kw)
        columns.append(out)
    body = [[inputs.x[i]] + [None if c is None else c[i] for c in columns] for i in range(n)]
    if mode == REFERENCE:
        header: list[torch.Tensor | None] = [None] + [inputs.refs[d] for d in range(num_classes)]
        body = [header] + body
    return tile(body)


def save_sample_grids(method: Any, inputs: SampleInputs, folder: str | Path, step: int) -> list[Path]:
    """Write ``<mode>_<step>.png`` for every mode of ``method.modes``; returns the paths written."""
    folder = Path(folder)
    written = []
    for mode in method.modes:
        if mode not in (LATENT, REFERENCE, DETERMINISTIC) or (mode == LATENT and inputs.z is None):
            continue
        path = folder / f"{mode}_{step:08d}.png"
        save_png(mode_grid(method, inputs, mode), path)
        written.append(path)
    return written
