"""Classifier metrics of translations (the ones StarGAN-family papers report beside FID).

- *translation accuracy*: the share of translations into domain t that a domain classifier
  trained on the real data assigns to t (StarGAN, Choi et al. 2018, Sec. 4.3 "classification
  error"; StarGAN v2 reports it as "accuracy" of a classifier on translated images);
- *content preservation*: the share of translations whose content label (cmnist's digit, a
  two-domain task's class) according to a content classifier equals the input's label.

Both take predicted labels (argmax of the classifier's logits) and are shares in [0, 1]. The
classifiers themselves are ``i2ibench.features.classifier``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from i2ibench.errors import I2IError


def _labels(x, what: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim == 2:  # logits or scores [N, K]
        arr = arr.argmax(axis=1)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise I2IError(f"{what} must be integer labels [N] or scores [N, K], got shape {arr.shape} dtype {arr.dtype}")
    return arr.astype(np.int64)


def translation_accuracy(pred, targets) -> float:
    """Share of translations whose predicted domain equals the domain they were translated *into*.

    ``pred``: the domain classifier's labels [N] (or logits [N, K], argmax taken) for N
    translated images; ``targets``: the target domain of each translation, an int or [N].
    Never the source domain: an identity "translation" scores 0 (tested). Returns a share in
    [0, 1]. Raises ``I2IError`` for mismatched lengths or no translations.
    """
    p = _labels(pred, "predicted domains")
    t = np.full(p.shape, int(targets), dtype=np.int64) if np.ndim(targets) == 0 else _labels(targets, "target domains")
    if p.shape != t.shape or p.size == 0:
        raise I2IError(f"translation accuracy needs one target per translation, got {p.size} predictions "
                       f"and {t.size} targets")
    return float((p == t).mean())


def content_preservation(pred, input_content) -> float:
    """Share of translations whose predicted content label equals their input's content label.

    ``pred``: the content classifier's labels [N] (or logits [N, K]) for N translations;
    ``input_content``: the ground-truth content label of each translation's input [N] (cmnist:
    the digit). Returns a share in [0, 1]. Raises ``I2IError`` for mismatched lengths.
    """
    p, t = _labels(pred, "predicted content"), _labels(input_content, "input content labels")
    if p.shape != t.shape or p.size == 0:
        raise I2IError(f"content preservation needs one input label per translation, got {p.size} predictions "
                       f"and {t.size} labels")
    return float((p == t).mean())


def per_target_translation_accuracy(pred, targets, num_domains: int) -> dict[int, float]:
    """Translation accuracy per target domain (only targets that occur) -> {target: share}."""
    p, t = _labels(pred, "predicted domains"), _labels(targets, "target domains")
    if p.shape != t.shape:
        raise I2IError(f"translation accuracy needs one target per translation, got {p.size} and {t.size}")
    return {d: float((p[t == d] == d).mean()) for d in range(num_domains) if (t == d).any()}


def mean_over(values: Sequence[float]) -> float:
    """Mean of per-task or per-target values (NaN for none)."""
    arr = np.asarray(list(values), dtype=np.float64)
    return float(arr.mean()) if arr.size else float("nan")
