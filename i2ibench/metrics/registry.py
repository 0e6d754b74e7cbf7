"""The metric registry's entries: every metric i2ibench reports, with what it takes and its direction.

``METRICS.get("fid")`` is a ``MetricSpec``: call it like the function it wraps. ``inputs`` says
what the function takes, so that a caller (protocols, tables) can treat metrics generically:

- ``features``: (real_feats [N, D], fake_feats [M, D]) -> float
- ``outputs``:  (outputs [n_outs, N, 3, H, W], lpips: LPIPS) -> float
- ``labels``:   (pred, true) -> float
- ``values``:   (per-task values) -> float (an aggregate such as mFID)
- ``groups``:   (groups: [(real_feats, fake_feats), ...]) -> float (a bootstrap interval end of a
  mean over groups; a harness computes the interval once with ``metrics.bootstrap`` instead)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from i2ibench.metrics import keys as mk
from i2ibench.metrics.fid import fid
from i2ibench.metrics.labels import clustering_accuracy, multi_hot_precision_recall, top1_accuracy
from i2ibench.metrics.lpips import lpips_diversity
from i2ibench.metrics.bootstrap import bootstrap_mean_interval
from i2ibench.metrics.classifier import content_preservation, translation_accuracy
from i2ibench.metrics.kid import kid
from i2ibench.metrics.prdc import density_coverage, precision_recall_density_coverage
from i2ibench.registry import register_metric

INPUT_KINDS = ("features", "outputs", "labels", "values", "groups")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    description: str
    higher_is_better: bool
    inputs: str
    compute: Callable[..., float]

    def __call__(self, *args: Any, **kwargs: Any) -> float:
        return self.compute(*args, **kwargs)


def _metric(name: str, description: str, *, higher_is_better: bool, inputs: str):
    """Register the decorated function as metric ``name``; the function itself is returned."""
    assert inputs in INPUT_KINDS, inputs

    def deco(fn: Callable[..., float]) -> Callable[..., float]:
        register_metric(name)(MetricSpec(name, description, higher_is_better, inputs, fn))
        return fn

    return deco


@_metric(mk.FID, "Fréchet Inception distance (torch-fidelity formula) of fake vs real features",
         higher_is_better=False, inputs="features")
def fid_metric(real_feats, fake_feats) -> float:
    return fid(real_feats, fake_feats)


@_metric(mk.MFID, "mean FID over a protocol's tasks (stargan2) or targets (pooled)",
         higher_is_better=False, inputs="values")
def mfid_metric(fids) -> float:
    values = np.asarray(list(fids), dtype=np.float64)
    return float(values.mean()) if values.size else float("nan")


@_metric(mk.DENSITY, "density (Naeem et al. 2020, k = 5): how many real k-NN balls hold each fake sample, / k",
         higher_is_better=True, inputs="features")
def density_metric(real_feats, fake_feats, k: int = 5) -> float:
    return density_coverage(real_feats, fake_feats, k)[0]


@_metric(mk.COVERAGE, "coverage (Naeem et al. 2020, k = 5): share of real k-NN balls holding a fake sample",
         higher_is_better=True, inputs="features")
def coverage_metric(real_feats, fake_feats, k: int = 5) -> float:
    return density_coverage(real_feats, fake_feats, k)[1]


@_metric(mk.LPIPS, "LPIPS diversity: mean pairwise LPIPS (AlexNet) among the outputs for one input",
         higher_is_better=True, inputs="outputs")
def lpips_metric(outputs, lpips) -> float:
    return lpips_diversity(outputs, lpips)


@_metric(mk.CLUSTER_ACC, "clustering accuracy of pseudo labels, best one-to-one (Hungarian) matching",
         higher_is_better=True, inputs="labels")
def cluster_acc_metric(pred, true) -> float:
    return clustering_accuracy(pred, true)


@_metric(mk.LABEL_PRECISION, "micro-averaged precision of multi-hot pseudo labels",
         higher_is_better=True, inputs="labels")
def label_precision_metric(pred, true) -> float:
    return multi_hot_precision_recall(pred, true)[0]


@_metric(mk.LABEL_RECALL, "micro-averaged recall of multi-hot pseudo labels",
         higher_is_better=True, inputs="labels")
def label_recall_metric(pred, true) -> float:
    return multi_hot_precision_recall(pred, true)[1]


@_metric(mk.TOP1_ACC, "top-1 accuracy of pseudo-label scores against the true class",
         higher_is_better=True, inputs="labels")
def top1_acc_metric(scores_or_pred, true) -> float:
    return top1_accuracy(scores_or_pred, true)


@_metric(mk.LABEL_SLACK, "fraction of images whose multi-hot pseudo label is empty (the slack domain)",
         higher_is_better=False, inputs="labels")
def label_slack_metric(pred, true) -> float:
    return float((pred.sum(1) == 0).float().mean()) if len(pred) else float("nan")


@_metric(mk.KID, "kernel Inception distance (Bińkowski et al. 2018; torch-fidelity's definition), mean over subsets",
         higher_is_better=False, inputs="features")
def kid_metric(real_feats, fake_feats) -> float:
    return kid(real_feats, fake_feats)[0]


@_metric(mk.KID_STD, "standard deviation of KID over its subsets (torch-fidelity's kid std)",
         higher_is_better=False, inputs="features")
def kid_std_metric(real_feats, fake_feats) -> float:
    return kid(real_feats, fake_feats)[1]


@_metric(mk.MKID, "mean KID over a protocol's tasks (stargan2) or targets (pooled)",
         higher_is_better=False, inputs="values")
def mkid_metric(kids) -> float:
    values = np.asarray(list(kids), dtype=np.float64)
    return float(values.mean()) if values.size else float("nan")


@_metric(mk.PRECISION, "precision (Kynkäänniemi et al. 2019, k = 5): share of fakes inside the real k-NN manifold",
         higher_is_better=True, inputs="features")
def precision_metric(real_feats, fake_feats, k: int = 5) -> float:
    return precision_recall_density_coverage(real_feats, fake_feats, k)["precision"]


@_metric(mk.RECALL, "recall (Kynkäänniemi et al. 2019, k = 5): share of reals inside the fake k-NN manifold",
         higher_is_better=True, inputs="features")
def recall_metric(real_feats, fake_feats, k: int = 5) -> float:
    return precision_recall_density_coverage(real_feats, fake_feats, k)["recall"]


@_metric(mk.TRANSLATION_ACC, "translation accuracy: share of translations into t the domain classifier assigns to t",
         higher_is_better=True, inputs="labels")
def translation_acc_metric(pred, targets) -> float:
    return translation_accuracy(pred, targets)


@_metric(mk.CONTENT_PRESERVATION, "content preservation: share of outputs whose content label is the input's",
         higher_is_better=True, inputs="labels")
def content_preservation_metric(pred, input_content) -> float:
    return content_preservation(pred, input_content)


@_metric(mk.CLASSIFIER_VAL_ACC, "validation accuracy of the classifier behind a classifier metric (top-1)",
         higher_is_better=True, inputs="labels")
def classifier_val_acc_metric(pred, true) -> float:
    return top1_accuracy(pred, true)


def _interval_end(metric: str, end: str):
    def compute(groups, **kwargs) -> float:
        return getattr(bootstrap_mean_interval(metric, groups, **kwargs), end)

    return compute


for _key, _metric_name, _end, _what in ((mk.MFID_CI_LOW, "fid", "low", "lower"), (mk.MFID_CI_HIGH, "fid", "high", "upper"),
                                        (mk.MKID_CI_LOW, "kid", "low", "lower"), (mk.MKID_CI_HIGH, "kid", "high", "upper")):
    _metric(_key, f"{_what} end of the 95 % bootstrap interval (over fake images, 200 resamples, seeded) of "
            f"m{_metric_name.upper()}", higher_is_better=False, inputs="groups")(_interval_end(_metric_name, _end))
