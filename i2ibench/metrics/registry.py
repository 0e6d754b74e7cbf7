"""The metric registry: every metric key i2ibench reports, with its label, direction and decimals.

The harness names its overall rows from it (a group metric's ``overall`` key: per-group FIDs
average into ``mfid``), and the tables take labels, decimals, order and which value is best
from it. ``METRICS.get("fid")`` is a ``MetricSpec``; registration order is table order.
"""

from __future__ import annotations

from dataclasses import dataclass

from i2ibench.metrics import keys as mk
from i2ibench.registry import METRICS, register_metric


@dataclass(frozen=True)
class MetricSpec:
    """What a table needs to know of a metric key.

    ``overall``: the key of its mean over a protocol's groups (``fid`` -> ``mfid``), or ``None``
    when the overall row keeps the same key (mean density, ...). ``ranked``: whether a table
    marks a best value (False for diagnostics without a better direction).
    """

    name: str
    label: str
    description: str
    higher_is_better: bool
    decimals: int = 3
    overall: str | None = None
    ranked: bool = True


def _register(spec: MetricSpec) -> None:
    register_metric(spec.name)(spec)


for _spec in (
    MetricSpec(mk.MFID, "mFID", "mean FID over a protocol's tasks (pairwise) or targets (pooled)", False, 2),
    MetricSpec(mk.FID, "FID", "Fréchet Inception distance (torch-fidelity's formula) of fake vs real features",
               False, 2, overall=mk.MFID),
    MetricSpec(mk.DENSITY, "density", "density (Naeem et al. 2020, k = 5): real k-NN balls holding each fake, / k",
               True, 3),
    MetricSpec(mk.COVERAGE, "coverage", "coverage (Naeem et al. 2020, k = 5): share of real k-NN balls holding a fake",
               True, 3),
    MetricSpec(mk.LPIPS, "LPIPS", "LPIPS diversity: mean pairwise LPIPS (AlexNet) among the outputs for one input",
               True, 4),
    MetricSpec(mk.CLUSTER_ACC, "cluster acc", "clustering accuracy of pseudo labels, best one-to-one (Hungarian) matching",
               True, 3),
    MetricSpec(mk.LABEL_PRECISION, "label precision", "micro-averaged precision of multi-hot pseudo labels", True, 3),
    MetricSpec(mk.LABEL_RECALL, "label recall", "micro-averaged recall of multi-hot pseudo labels", True, 3),
    MetricSpec(mk.TOP1_ACC, "top-1 acc", "top-1 accuracy of pseudo-label scores against the true class", True, 3),
    MetricSpec(mk.LABEL_SLACK, "slack", "fraction of images whose multi-hot pseudo label is empty (the slack domain)",
               False, 3),
    MetricSpec(mk.MKID, "mKID", "mean KID over a protocol's tasks (pairwise) or targets (pooled)", False, 4),
    MetricSpec(mk.KID, "KID", "kernel Inception distance (Binkowski et al. 2018; torch-fidelity's definition): "
               "unbiased MMD^2, cubic polynomial kernel, mean over subsets", False, 4, overall=mk.MKID),
    MetricSpec(mk.KID_STD, "KID std", "standard deviation of KID over its subsets", False, 4),
    MetricSpec(mk.PRECISION, "precision", "precision (Kynkaanniemi et al. 2019, k = 5): share of fakes in a real k-NN ball",
               True, 3),
    MetricSpec(mk.RECALL, "recall", "recall (Kynkaanniemi et al. 2019, k = 5): share of reals in a fake k-NN ball",
               True, 3),
    MetricSpec(mk.TRANSLATION_ACC, "translation acc", "share of translations into t that the domain classifier "
               "assigns to t", True, 3),
    MetricSpec(mk.CONTENT_PRESERVATION, "content kept", "share of translations whose content label (content "
               "classifier) equals the input's (1 - the flip rate)", True, 3),
    MetricSpec(mk.CLASSIFIER_VAL_ACC, "classifier val acc", "validation accuracy of the classifier behind a "
               "classifier metric", True, 3),
    MetricSpec(mk.MFID_CI_LOW, "mFID 95% low", "lower end of the 95 % bootstrap interval of mFID (fake images "
               "resampled, 200 times, seeded)", False, 2),
    MetricSpec(mk.MFID_CI_HIGH, "mFID 95% high", "upper end of the 95 % bootstrap interval of mFID", False, 2),
    MetricSpec(mk.MKID_CI_LOW, "mKID 95% low", "lower end of the 95 % bootstrap interval of mKID", False, 4),
    MetricSpec(mk.MKID_CI_HIGH, "mKID 95% high", "upper end of the 95 % bootstrap interval of mKID", False, 4),
    # Diagnostic, no better direction: ~0 means the output is the input (the CLIPTraVeLGAN paper's
    # lambda >= 0.003 failure); large values mean the image changed a lot. Marked lower-is-better
    # only so that tables order it, and never marked best; read it beside FID and lpips_truth.
    MetricSpec(mk.LPIPS_IO, "LPIPS in-out", "mean LPIPS (AlexNet) between each input and its translation", False, 4,
               ranked=False),
    MetricSpec(mk.LPIPS_TRUTH, "LPIPS to truth",
               "mean LPIPS (AlexNet) between each translation and the input's known true translation", False, 4),
    MetricSpec(mk.COLOUR_RECALL, "colour recall", "cmnist: distinct palette colours among an input's outputs / 10, "
               "mean over inputs", True, 3),
    MetricSpec(mk.COLOUR_RECALL_SET, "colour recall (set)", "cmnist: distinct palette colours among all outputs / 10",
               True, 3),
    MetricSpec(mk.COLOUR_PRECISION, "colour precision", "cmnist: share of outputs whose stroke colour snaps to a "
               "palette colour", True, 3),
    MetricSpec(mk.UNIQUE_COLOURS, "unique colours", "cmnist: distinct 10-degree hue bins among saturated outputs",
               True, 0),
    MetricSpec(mk.REF_COLOUR_ACC, "ref colour acc", "cmnist: share of reference-guided outputs in the reference's "
               "palette colour", True, 3),
    MetricSpec(mk.UNIMODAL_MSE, "uni-modal MSE", "cmnist: MSE ([0, 1] pixels) of colour -> gray translations vs the "
               "true gray digits", False, 4),
):
    _register(_spec)


def metric_spec(name: str) -> MetricSpec:
    """The spec of a registered metric key (UnknownNameError listing the valid keys otherwise)."""
    return METRICS.get(name)


def metric_order() -> list[str]:
    """Every registered key, in registration (= table) order."""
    return METRICS.in_order()
