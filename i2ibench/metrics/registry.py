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
    when the overall row keeps the same key (mean density, ...).
    """

    name: str
    label: str
    description: str
    higher_is_better: bool
    decimals: int = 3
    overall: str | None = None


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
