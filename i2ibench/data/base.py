"""The dataset object every loader returns: images in [-1, 1] with domain labels.

``ImageDataset`` is what methods, samplers and the evaluation harness see. Loaders differ
only in how they fetch pixels (``_fetch``): in-memory uint8 arrays (Fashion-MNIST, digits),
image files decoded on demand (folders), or another dataset restricted to some domains.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from i2ibench.data.spec import DatasetSpec


PAIR_INDEX = "pair_index"  # extras key: index of an image's aligned pair in another domain (-1: none)


def domain_members(labels: torch.Tensor, d: int) -> torch.Tensor:
    """Indices (LongTensor) of the images of domain ``d``: ``labels`` LongTensor ``[N]`` of
    domain indices, or multi-hot ``[N, K]`` (an image is a member of every active domain)."""
    labels = torch.as_tensor(labels)
    member = labels[:, d] > 0 if labels.dim() == 2 else labels == d
    return member.nonzero().flatten()


def num_label_domains(labels: torch.Tensor) -> int:
    """The number of domains ``labels`` (``[N]`` indices or ``[N, K]`` multi-hot) can name."""
    labels = torch.as_tensor(labels)
    if labels.dim() == 2:
        return int(labels.shape[1])
    return int(labels.max()) + 1 if labels.numel() else 0


def as_index_tensor(indices: Sequence[int] | torch.Tensor, length: int) -> torch.Tensor:
    """Indices as a 1-D LongTensor, negatives wrapped; out of range raises IndexError."""
    idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
    idx = torch.where(idx < 0, idx + length, idx)
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= length):
        raise IndexError(f"index out of range for a dataset of {length} images")
    return idx


class ImageDataset(Dataset, abc.ABC):
    """Images of one split of one dataset, with their domain labels.

    ``labels``: LongTensor [N] (domain index) or, for multi-label datasets, FloatTensor
    [N, K] multi-hot. ``extras``: per-image ground truth beyond the domain (e.g. the digit
    and palette colour of Colorized MNIST), each a tensor with N rows.
    """

    def __init__(self, spec: "DatasetSpec", split: str, img_size: int, labels: torch.Tensor,
                 extras: dict[str, torch.Tensor] | None = None, root: Path | None = None,
                 domains: list[str] | None = None):
        self.spec = spec
        self.domains = list(domains if domains is not None else spec.domains)
        self.split = split
        self.img_size = int(img_size)
        # How file images become squares (data.images.load_image); in-memory data is square already.
        self.resize_rule = "crop"
        self.multi_label = spec.multi_label
        self.labels = labels
        self.extras = dict(extras or {})
        self.root = root  # where the files were read from (recorded with results)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def num_domains(self) -> int:
        return len(self.domains)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = as_index_tensor([int(i)], len(self))
        return self._fetch(idx)[0], self.labels[idx[0]]

    def images(self, indices: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Images ``[n, 3, S, S]`` in [-1, 1] for the given indices, in that order."""
        idx = as_index_tensor(indices, len(self))
        if idx.numel() == 0:
            return torch.empty(0, 3, self.img_size, self.img_size)
        return self._fetch(idx)

    @abc.abstractmethod
    def _fetch(self, idx: torch.Tensor) -> torch.Tensor:
        """Images for a non-empty LongTensor of valid indices."""

    def counts(self) -> dict[str, int]:
        """Images per domain (for multi-label datasets: images carrying each attribute)."""
        if self.multi_label:
            per = self.labels.sum(0).long().tolist() if len(self) else [0] * self.num_domains
        else:
            per = torch.bincount(self.labels, minlength=self.num_domains).tolist()
        return {d: int(c) for d, c in zip(self.domains, per)}

    @property
    def pairs(self) -> torch.Tensor | None:
        """LongTensor ``[N]``: the index of each image's aligned pair in another domain (-1: none);
        ``None`` for datasets without pairs."""
        return self.extras.get(PAIR_INDEX)

    def true_translation(self, indices: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images [n, 3, S, S] in [-1, 1], known bool [n])``: each image's true translation into
        the other domain, where the dataset knows it (``spec.truth``; rows not known are zeros).

        ``"pair"``: the aligned pair (``pairs``), for images of the domains ``spec.truth_sources``
        (all if empty). Loaders with ``"own"`` override this. Raises ``ValueError`` for a dataset
        that knows no true translation.
        """
        idx = as_index_tensor(indices, len(self))
        if self.spec.truth == "pair" and self.pairs is not None:
            pair = self.pairs[idx]
            known = pair >= 0
            if self.spec.truth_sources:
                sources = torch.tensor([self.domains.index(d) for d in self.spec.truth_sources])
                known &= torch.isin(torch.as_tensor(self.labels)[idx], sources)
            out = torch.zeros(len(idx), 3, self.img_size, self.img_size)
            if bool(known.any()):
                out[known] = self.images(pair[known])
            return out, known
        raise ValueError(f"{self.name} knows no true translation of its images")

    def indices_of(self, domain: int) -> torch.Tensor:
        """Indices of the images in ``domain`` (carrying the attribute, if multi-label)."""
        return domain_members(self.labels, domain)

    def restrict(self, domains: list[str], spec: "DatasetSpec | None" = None) -> "ImageDataset":
        """The images of some domains only, relabelled 0..len(domains)-1 in the given order."""
        if self.multi_label:
            raise ValueError("restrict() needs a single-label dataset")
        keep = [self.domains.index(d) for d in domains]
        parts = [self.indices_of(k) for k in keep]
        new_labels = torch.cat([torch.full((len(p),), j, dtype=torch.long) for j, p in enumerate(parts)])
        parent_idx = torch.cat(parts)
        order = torch.argsort(parent_idx)  # keep the parent's order
        return SubsetDataset(self, parent_idx[order], new_labels[order], domains, spec or self.spec)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, split={self.split!r}, n={len(self)}, "
                f"img_size={self.img_size}, domains={self.domains})")


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear (antialiased) resize of a float batch [n, c, h, w] to size x size."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class InMemoryDataset(ImageDataset):
    """Small images kept as uint8 ``pixels`` [N, C, h, w] (C = 1 or 3); resized on fetch.

    Gray images (C = 1) become 3 channels; with ``tint`` [N, 3] (values in [0, 1]) each gray
    image is multiplied by its own colour. Bilinear resizing is linear, so tinting after the
    resize equals tinting the small image first.
    """

    def __init__(self, spec: "DatasetSpec", split: str, img_size: int, pixels: torch.Tensor,
                 labels: torch.Tensor, tint: torch.Tensor | None = None, **kwargs):
        super().__init__(spec, split, img_size, labels, **kwargs)
        if pixels.dtype != torch.uint8 or pixels.dim() != 4:
            raise ValueError("pixels must be a uint8 tensor [N, C, h, w]")
        self.pixels = pixels
        self.tint = tint

    def _fetch(self, idx: torch.Tensor) -> torch.Tensor:
        x = resize_batch(self.pixels[idx].float().div_(255.0), self.img_size)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
            if self.tint is not None:
                x = x * self.tint[idx][:, :, None, None]
        return x.clamp(0.0, 1.0).mul(2.0).sub(1.0)


class SubsetDataset(ImageDataset):
    """Some images of a parent dataset, relabelled (two-domain tasks from embedded data)."""

    def __init__(self, parent: ImageDataset, parent_indices: torch.Tensor, labels: torch.Tensor,
                 domains: list[str], spec: "DatasetSpec"):
        extras = {k: v[parent_indices] for k, v in parent.extras.items()}
        if PAIR_INDEX in extras:  # parent indices -> our indices (-1 if the pair was left out)
            ours = torch.full((len(parent),), -1, dtype=torch.long)
            ours[parent_indices] = torch.arange(len(parent_indices))
            pair = extras[PAIR_INDEX]
            extras[PAIR_INDEX] = torch.where(pair >= 0, ours[pair.clamp(min=0)], pair)
        extras["parent_index"] = parent_indices
        super().__init__(spec, parent.split, parent.img_size, labels, extras=extras,
                         root=parent.root, domains=domains)
        self.parent = parent
        self.parent_indices = parent_indices

    def _fetch(self, idx: torch.Tensor) -> torch.Tensor:
        return self.parent.images(self.parent_indices[idx])
