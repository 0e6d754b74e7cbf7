"""Training batches: the sampler's indices of each step, decoded into a ``Batch``."""

from __future__ import annotations

from typing import Any, Iterator

import torch

from i2ibench.data.base import domain_members, num_label_domains
from i2ibench.errors import ConfigError
from i2ibench.method import Batch
from i2ibench.train.augment import augment, step_generator


class _StepIndexLists(torch.utils.data.Sampler):
    """For a DataLoader: the concatenated (src, ref, ref2) indices of each step."""

    def __init__(self, sampler: Any, start: int, stop: int):
        self.sampler, self.start, self.stop = sampler, start, stop

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            s = self.sampler.indices(step)
            yield torch.cat([s.src, s.ref, s.ref2]).tolist()

    def __len__(self) -> int:
        return self.stop - self.start


def _stack_images(items: list[tuple[torch.Tensor, Any]]) -> torch.Tensor:
    return torch.stack([img for img, _ in items])


def hidden_labels(labels: torch.Tensor, labelled: torch.Tensor | None) -> torch.Tensor:
    """What a method that learns without labels sees of ``labels`` (``[n]`` or ``[n, K]``):
    -1 everywhere, except the rows ``labelled`` marks (semi-supervised)."""
    unknown = torch.full_like(labels, -1)
    if labelled is None:
        return unknown
    keep = labelled if labels.dim() == 1 else labelled[:, None]
    return torch.where(keep, labels, unknown)


def iterate_batches(dataset: Any, sampler: Any, start: int, stop: int, num_workers: int,
                    pin_memory: bool = False, labelled: torch.Tensor | None = None,
                    pairs: torch.Tensor | None = None, augmentation: str = "none", seed: int = 0,
                    hide_labels: bool = False) -> Iterator[tuple[int, Batch]]:
    """``(step, Batch)`` for steps ``start..stop-1`` (CPU tensors).

    With ``num_workers`` > 0 images are decoded by DataLoader workers over a per-step batch
    sampler (folder datasets), else by ``dataset.images`` in this process. Either way the
    images of step ``s`` are those of ``sampler.indices(s)``, augmented (``augmentation``, see
    ``i2ibench.train.augment``) with the generator of ``(seed, s)``. ``labelled``: a bool mask
    ``[N]`` (semi-supervised methods) that becomes ``Batch.labelled``. ``hide_labels``: the
    batch's labels are -1 except where ``labelled`` (methods that learn without labels).
    ``pairs``: LongTensor ``[N]``, the index of each image's aligned pair (-1: none), which
    fills ``Batch.x_pair``/``has_pair``.
    """
    labels = torch.as_tensor(dataset.labels)
    if num_workers > 0:
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=_StepIndexLists(sampler, start, stop), num_workers=num_workers,
            collate_fn=_stack_images, pin_memory=pin_memory,
            # Its own generator: creating the loader iterator must not draw from the global one.
            generator=torch.Generator().manual_seed(0))
        images: Iterator[torch.Tensor] = iter(loader)
    else:
        images = (dataset.images(torch.cat(sampler.indices(s)[:3])) for s in range(start, stop))
    for step, x in zip(range(start, stop), images):
        idx = sampler.indices(step)
        n, m = len(idx.src), len(idx.ref)
        x = augment(x, augmentation, step_generator(seed, step))
        mask = None if labelled is None else labelled[idx.src]
        y_src = hidden_labels(labels[idx.src], mask) if hide_labels else labels[idx.src]
        batch = Batch(x_src=x[:n], y_src=y_src, x_ref=x[n:n + m], x_ref2=x[n + m:],
                      y_ref=torch.as_tensor(idx.y_ref), labelled=mask)
        if pairs is not None:
            pair = pairs[idx.src]
            batch.has_pair = pair >= 0
            # A source without a pair stands in for its own: has_pair marks which rows are real pairs.
            batch.x_pair = dataset.images(torch.where(batch.has_pair, pair, idx.src))
            # The pair is the source's other form: it gets the source's augmentation draws.
            batch.x_pair = augment(batch.x_pair, augmentation, step_generator(seed, step))
        yield step, batch


def labelled_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor | None:
    """Bool mask [N] of the images whose label a semi-supervised method may use (``None`` for 0).

    A fixed ``fraction`` of every domain, drawn once from ``seed`` (the same on every rank and
    on resume), as in TUNIT's semi-supervised setting. Methods ask for it through
    ``Method.labelled_fraction``.
    """
    if fraction <= 0:
        return None
    labels = torch.as_tensor(labels)
    mask = torch.zeros(labels.shape[0], dtype=torch.bool)
    g = torch.Generator().manual_seed(seed)
    for d in range(num_label_domains(labels)):
        members = domain_members(labels, d)
        if len(members):
            keep = max(1, round(fraction * len(members)))
            mask[members[torch.randperm(len(members), generator=g)[:keep]]] = True
    return mask


def paired_subset(pairs: torch.Tensor | None, fraction: float | None, seed: int) -> torch.Tensor | None:
    """``pairs`` (LongTensor ``[N]``, each image's aligned pair or -1) with only some links kept.

    ``fraction``: share of the split's contents (images, an aligned pair counted once) whose
    link is kept, ``round(fraction * contents)`` links drawn once from ``seed``; ``None``: all.
    ConfigError if the split has fewer aligned pairs than that.
    """
    if pairs is None or fraction is None:
        return pairs
    pairs = torch.as_tensor(pairs, dtype=torch.long)
    idx = torch.arange(len(pairs))
    first = ((pairs >= 0) & (idx < pairs)).nonzero().flatten()  # one image per link
    contents = len(pairs) - len(first)
    keep = int(round(fraction * contents))
    if keep > len(first):
        raise ConfigError(f"paired fraction {fraction:g} asks for {keep} aligned pairs; the training split has "
                          f"{len(first)} among {contents} contents")
    out = torch.full_like(pairs, -1)
    chosen = first[torch.randperm(len(first), generator=torch.Generator().manual_seed(seed))[:keep]]
    out[chosen] = pairs[chosen]
    out[pairs[chosen]] = chosen
    return out
