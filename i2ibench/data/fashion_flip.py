"""fashion-inv2plain-skewed: a two-domain task built to provoke semantic flipping, with known answers.

The CLIPTraVeLGAN paper's GTA -> Cityscapes failure: GTA has more sky than Cityscapes, so a
discriminator that matches Cityscapes' statistics pushes the generator to paint vegetation
into the sky. This task builds that pressure from Fashion-MNIST, offline:

- domain A ``inverted``: Fashion-MNIST images with inverted intensities (255 - x), of four
  classes in equal numbers (t-shirt, trouser, sneaker, bag);
- domain B ``plain``: plain images of the same four classes with a skewed mix: every t-shirt
  of its half of the split but only a fifth of each other class (t-shirts 62.5 % of B vs 25 %
  of A).

A generator that makes its outputs' class mix match B's must turn 37.5 % of A into t-shirts:
flipping. The right translation is known for every image: un-inverting it (A -> B), or
inverting it (B -> A). A and B come from disjoint halves of each class (the first half of a
class's images in the split for A, the second for B), so the task is unpaired. Splits follow
fashion10 (train: 2,750 A images per class; val: 250 A per class, B 250 t-shirts and 50 of each
other class). Extras: ``content`` (the fashion10 class index 0-9, for a content classifier),
``source_index`` (the image's position in the official training split).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from i2ibench.data import fashion
from i2ibench.data.base import InMemoryDataset, as_index_tensor
from i2ibench.errors import DataError

CLASSES = (0, 1, 7, 8)            # fashion10: t-shirt, trouser, sneaker, bag
B_SHARE = {0: 1.0, 1: 0.2, 7: 0.2, 8: 0.2}  # share of its half of each class that B keeps
DOMAINS = ["inverted", "plain"]
INVERTED, PLAIN = 0, 1
CONTENT = "content"


def locate(spec, data_root=None):
    return fashion.locate(spec, data_root)


def select(labels: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(positions, domain)`` of the task's images among ``positions`` (one split of the official
    training split, labels ``labels[positions]``): per class, the first half -> A, the first
    ``B_SHARE`` of the second half -> B; sorted by position."""
    pos_out, dom_out = [], []
    for c in CLASSES:
        pos = positions[labels[positions] == c]
        half = len(pos) // 2
        if half < 2:
            raise DataError(f"fashion-inv2plain-skewed: class {c} has only {len(pos)} images in this split")
        b = pos[half:half + max(1, int(round(B_SHARE[c] * (len(pos) - half))))]
        pos_out += [pos[:half], b]
        dom_out += [np.full(half, INVERTED), np.full(len(b), PLAIN)]
    pos_all, dom_all = np.concatenate(pos_out), np.concatenate(dom_out)
    order = np.argsort(pos_all, kind="stable")
    return pos_all[order], dom_all[order]


class InvertedPlainDataset(InMemoryDataset):
    """Plain Fashion-MNIST pixels, inverted on fetch for domain A; ``true_translation`` flips that."""

    def _fetch(self, idx: torch.Tensor) -> torch.Tensor:
        x = super()._fetch(idx)
        inv = (self.labels[idx] == INVERTED).view(-1, 1, 1, 1)
        return torch.where(inv, -x, x)  # in [-1, 1], 255 - v is -x

    def true_translation(self, indices: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, known)``: every image's counterpart in the other domain (inverted <-> plain); all known."""
        idx = as_index_tensor(indices, len(self))
        if idx.numel() == 0:
            return torch.empty(0, 3, self.img_size, self.img_size), torch.zeros(0, dtype=torch.bool)
        return -self._fetch(idx), torch.ones(len(idx), dtype=torch.bool)


def load(spec, split: str, img_size: int, data_root=None) -> InvertedPlainDataset:
    if split not in ("train", "val"):
        raise DataError(f"unknown split '{split}' for dataset {spec.name}; valid splits: train, val")
    try:
        folder = fashion.locate(spec, data_root)
    except DataError as e:
        if data_root is not None:
            raise
        folder = fashion._download(spec, e)
    images, labels = fashion._read_pair(folder, "train")
    pos, dom = select(labels, fashion.split_indices(labels, split))
    return InvertedPlainDataset(
        spec, split, img_size, torch.from_numpy(images[pos].copy()).unsqueeze(1), torch.from_numpy(dom.astype(np.int64)),
        extras={CONTENT: torch.from_numpy(labels[pos].astype(np.int64)), "source_index": torch.from_numpy(pos.astype(np.int64))},
        root=folder)
