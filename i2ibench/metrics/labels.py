"""Pseudo-label quality against ground truth: clustering accuracy, multi-hot P/R, top-1."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from i2ibench.errors import I2IError


def _as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _labels_1d(x, what: str) -> np.ndarray:
    arr = _as_numpy(x)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise I2IError(f"{what} must be a 1-D array of integer labels, got shape {arr.shape} dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise I2IError(f"{what} labels must be >= 0")
    return arr.astype(np.int64)


def clustering_accuracy(pred, true) -> float:
    """Accuracy of cluster ids ``pred`` [N] under the best one-to-one cluster -> class matching.

    The matching maximises the number of agreeing samples (Hungarian algorithm on the cluster x
    class contingency table). With more clusters than classes (or the reverse) the surplus
    clusters (classes) stay unmatched and their samples count as errors.
    """
    pred, true = _labels_1d(pred, "predicted clusters"), _labels_1d(true, "true labels")
    if pred.shape != true.shape or pred.size == 0:
        raise I2IError(f"clustering accuracy needs equally long, non-empty label arrays, got {pred.size} and {true.size}")
    table = np.zeros((pred.max() + 1, true.max() + 1), dtype=np.int64)
    np.add.at(table, (pred, true), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / pred.size)


def multi_hot_precision_recall(pred, true) -> tuple[float, float]:
    """Micro-averaged precision and recall of multi-hot predictions ``pred`` [N, K] (0/1).

    ``true`` is multi-hot [N, K] (0/1) or integer class labels [N] (one-hot: one true domain per
    sample). Counting over all samples and domains together,

        precision = #(pred = 1 and true = 1) / #(pred = 1)
        recall    = #(pred = 1 and true = 1) / #(true = 1)

    A ratio whose denominator is 0 (nothing predicted, or nothing true) is 0.
    """
    p = _as_numpy(pred)
    if p.ndim != 2:
        raise I2IError(f"multi-hot predictions must be [N, K], got shape {p.shape}")
    t = _as_numpy(true)
    if t.ndim == 1:
        t = _labels_1d(t, "true labels")
        if t.size and t.max() >= p.shape[1]:
            raise I2IError(f"true label {t.max()} out of range for {p.shape[1]} domains")
        t = np.eye(p.shape[1], dtype=np.int64)[t]
    if t.shape != p.shape:
        raise I2IError(f"multi-hot predictions {p.shape} and truth {t.shape} differ in shape")
    for arr, what in ((p, "predictions"), (t, "truth")):
        if not np.isin(arr, (0, 1)).all():
            raise I2IError(f"multi-hot {what} must contain only 0 and 1")
    p, t = p.astype(bool), t.astype(bool)
    hits = int((p & t).sum())
    n_pred, n_true = int(p.sum()), int(t.sum())
    return (hits / n_pred if n_pred else 0.0), (hits / n_true if n_true else 0.0)


def top1_accuracy(scores_or_pred, true) -> float:
    """Share of samples whose top class equals the true label.

    ``scores_or_pred``: scores [N, K] (argmax taken; ties go to the lowest index) or predicted
    labels [N]; ``true``: integer labels [N].
    """
    s = _as_numpy(scores_or_pred)
    pred = s.argmax(axis=1) if s.ndim == 2 else _labels_1d(s, "predicted labels")
    t = _labels_1d(true, "true labels")
    if pred.shape != t.shape or t.size == 0:
        raise I2IError(f"top-1 accuracy needs N predictions for N labels, got {pred.shape[0]} and {t.size}")
    return float((pred == t).mean())
