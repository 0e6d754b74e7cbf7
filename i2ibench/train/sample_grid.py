"""PNG sample grids written during training: fixed inputs (rows) x target classes (columns).

One grid per sampling step and mode the method has:

- latent: ``latent_<step>.png``, column 0 the input, then one column per target class, each
  row translated with one fixed latent code ``z`` (the same ``z`` across the row, so a row
  shows what only the target changes);
- reference: ``reference_<step>.png``, top row the fixed reference image of each class,
  column 0 the input, cell (i, d) = input i rendered in the style of reference d;
- deterministic: ``deterministic_<step>.png``, column 0 the input, then its one translation
  into each target class;
- on datasets that declare uni-modal domains (cmnist), for methods with a latent mode, also
  ``latent_codes_to_<class>_<step>.png`` for every class the method serves in latent mode:
  rows = the inputs of the other classes, column 0 the input, then its translations with
  ``CODES_PER_ROW`` fixed latent codes (the same codes in every row): what the latent code
  changes, e.g. HMU's gray -> colour over several codes beside stargan2's colour -> gray.

Targets are the dataset's classes, mapped to the method's own domains with
``Method.domain_of_class``; a column whose target the method does not serve in that mode (see
``Method.serves``) is left blank.

Inputs, references and ``z`` are fixed for the whole run (chosen deterministically from the
validation split and the run seed), so grids of successive steps are comparable.
"""

from __future__ import annotations

import math
import re
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
CODES_PER_ROW = 6  # latent codes per input in the latent_codes grids


@dataclass
class SampleInputs:
    """Fixed grid inputs: ``x`` [R,3,S,S], ``refs`` [K,3,S,S] (reference of domain d), ``z`` [R,latent],
    ``y`` [R] the rows' classes (for methods that ``needs_source``), ``codes`` [CODES_PER_ROW, latent]
    (the latent_codes grids)."""

    x: torch.Tensor
    refs: torch.Tensor
    z: torch.Tensor | None
    y: torch.Tensor | None = None
    codes: torch.Tensor | None = None


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
    z = codes = None
    if latent_dim is not None:
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(len(rows), latent_dim, generator=gen)
        codes = torch.randn(CODES_PER_ROW, latent_dim, generator=gen)  # drawn after z: z as before
    return SampleInputs(x=x, refs=ref_imgs, z=z, y=torch.tensor(row_classes, dtype=torch.long), codes=codes)


def _served(method: Any, trg: int, mode: str) -> bool:
    num_classes = method.info.num_domains
    return any(method.serves(src, trg, mode) for src in range(num_classes) if src != trg)


def _target(method: Any, trg: int, n: int) -> torch.Tensor | None:
    domain = method.domain_of_class(trg)
    return None if domain is None else torch.full((n,), domain, dtype=torch.long, device=method.device)


def _source_kw(method: Any, inputs: SampleInputs, rows: torch.Tensor, repeat: int = 1) -> dict[str, torch.Tensor]:
    """``{"src": the method's domains of the input rows ``rows`` (each ``repeat`` times)}`` if it ``needs_source``."""
    if not method.needs_source:
        return {}
    if inputs.y is None:
        raise ValueError("sample inputs without their classes (y) for a method that needs the source domain")
    src = torch.tensor([method.domain_of_class(int(c)) for c in inputs.y[rows]], dtype=torch.long, device=method.device)
    return {"src": src.repeat_interleave(repeat)}


@torch.no_grad()
def codes_grid(method: Any, inputs: SampleInputs, trg: int) -> np.ndarray | None:
    """Rows = inputs not of class ``trg``, column 0 the input, then one column per latent code
    of ``inputs.codes`` into ``trg``; ``None`` if there is no such input or no codes."""
    if inputs.codes is None or inputs.y is None:
        return None
    rows = inputs.y != trg
    n, k = int(rows.sum()), inputs.codes.shape[0]
    if n == 0:
        return None
    dev = method.device
    x = inputs.x[rows].to(dev).repeat_interleave(k, dim=0)
    z = inputs.codes.to(dev).repeat(n, 1)
    out = method.translate(x, _target(method, trg, n * k), z=z, **_source_kw(method, inputs, rows, k))
    out = out.reshape(n, k, *out.shape[1:])
    return tile([[xi] + list(out[i]) for i, xi in enumerate(inputs.x[rows])])


@torch.no_grad()
def mode_grid(method: Any, inputs: SampleInputs, mode: str) -> np.ndarray:
    """The grid of one mode: rows = inputs, columns = target classes (blank where not served)."""
    dev = method.device
    x = inputs.x.to(dev)
    n, num_classes = len(x), method.info.num_domains
    columns: list[torch.Tensor | None] = []
    kw = _source_kw(method, inputs, torch.ones(n, dtype=torch.bool))
    for d in range(num_classes):
        if not _served(method, d, mode):
            columns.append(None)
            continue
        if mode == LATENT:
            target = (method.target_of_reference(inputs.refs[d:d + 1].to(dev).expand(n, -1, -1, -1))
                      if method.latent_targets_from_references else _target(method, d, n))
            out = method.translate(x, target, z=inputs.z.to(dev), **kw)
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
    if LATENT in method.modes and inputs.codes is not None and method.info.unimodal:
        for trg, name in enumerate(method.info.domains):
            if not _served(method, trg, LATENT):
                continue
            grid = codes_grid(method, inputs, trg)
            if grid is None:
                continue
            path = folder / f"latent_codes_to_{re.sub(r'[^A-Za-z0-9]+', '-', name)}_{step:08d}.png"
            save_png(grid, path)
            written.append(path)
    return written
