"""PNG sample grids written during training: fixed inputs (rows) x target domains (columns).

Two grids per sampling step, for the modes the method supports:

- latent: ``latent_<step>.png``, column 0 the input, then one column per target domain, each
  row translated with one fixed latent code ``z`` (the same ``z`` across the row, so a row
  shows what only the target domain changes);
- reference: ``reference_<step>.png``, top row the fixed reference image of each domain,
  column 0 the input, cell (i, d) = input i rendered in the style of reference d.

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

from i2ibench.errors import DataError
from i2ibench.fileio import atomic_path

PAD = 2
MAX_ROW_DOMAINS = 10  # at most this many source domains contribute rows
MIN_ROWS = 4


@dataclass
class SampleInputs:
    """Fixed grid inputs: ``x`` [R,3,S,S], ``refs`` [K,3,S,S] (reference of domain d), ``z`` [R,latent]."""

    x: torch.Tensor
    refs: torch.Tensor
    z: torch.Tensor | None


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


def _domain_members(labels: torch.Tensor, d: int) -> torch.Tensor:
    member = labels[:, d] > 0 if labels.dim() == 2 else labels == d
    return member.nonzero().flatten()


def pick_sample_inputs(dataset: Any, num_domains: int, latent_dim: int | None, seed: int) -> SampleInputs:
    """Deterministic grid inputs from ``dataset``: the first images of each domain as rows, the
    next one of each domain as its reference, and ``z`` from a generator seeded with ``seed``
    (the global generators are not touched)."""
    labels = torch.as_tensor(dataset.labels)
    row_domains = min(num_domains, MAX_ROW_DOMAINS)
    per_domain = math.ceil(MIN_ROWS / row_domains)
    rows, refs = [], []
    for d in range(num_domains):
        members = _domain_members(labels, d).tolist()
        if not members:
            raise DataError(f"no image of domain {d} in the split used for sample grids")
        if d < row_domains:
            rows.extend(members[:per_domain])
        refs.append(members[per_domain] if len(members) > per_domain else members[-1])
    x = dataset.images(torch.tensor(rows))
    ref_imgs = dataset.images(torch.tensor(refs))
    z = None
    if latent_dim is not None:
        z = torch.randn(len(rows), latent_dim, generator=torch.Generator().manual_seed(seed))
    return SampleInputs(x=x, refs=ref_imgs, z=z)


@torch.no_grad()
def latent_grid(method: Any, inputs: SampleInputs, num_domains: int) -> np.ndarray:
    dev = method.device
    x, z = inputs.x.to(dev), inputs.z.to(dev)
    columns = [method.translate(x, torch.full((len(x),), d, dtype=torch.long, device=dev), z=z)
               for d in range(num_domains)]
    return tile([[inputs.x[i]] + [c[i] for c in columns] for i in range(len(x))])


@torch.no_grad()
def reference_grid(method: Any, inputs: SampleInputs, num_domains: int) -> np.ndarray:
    dev = method.device
    x = inputs.x.to(dev)
    columns = []
    for d in range(num_domains):
        ref = inputs.refs[d:d + 1].to(dev).expand(len(x), -1, -1, -1)
        columns.append(method.translate(x, torch.full((len(x),), d, dtype=torch.long, device=dev), ref=ref))
    header: list[torch.Tensor | None] = [None] + [inputs.refs[d] for d in range(num_domains)]
    return tile([header] + [[inputs.x[i]] + [c[i] for c in columns] for i in range(len(x))])


def save_sample_grids(method: Any, inputs: SampleInputs, num_domains: int, folder: str | Path,
                      step: int) -> list[Path]:
    """Write the grids of the modes ``method.modes`` supports; returns the paths written."""
    folder = Path(folder)
    written = []
    makers = {"latent": latent_grid, "reference": reference_grid}
    for mode in method.modes:
        if mode not in makers or (mode == "latent" and inputs.z is None):
            continue
        path = folder / f"{mode}_{step:08d}.png"
        save_png(makers[mode](method, inputs, num_domains), path)
        written.append(path)
    return written
