"""Quality of the labels a method trains with, against ground truth, on the evaluated images.

Clusters (tunit): clustering accuracy with Hungarian matching. Multi-hot pseudo labels (lanit):
micro precision and recall, the slack fraction (images active for no domain) and, where the
method gives scores, top-1 accuracy. Labels over a method's own domains are mapped to the
dataset's classes with ``Method.labels_to_classes``. Each of the method's ``label_views()``
gives its own rows (lanit: after training, and from the written prompts).
"""

from __future__ import annotations

from typing import Any

import torch

from i2ibench.errors import I2IError
from i2ibench.evaluation.protocols import Task
from i2ibench.evaluation.scoring import Rows
from i2ibench.method import Method
from i2ibench.metrics import keys as mk
from i2ibench.metrics import labels as ml
from i2ibench.names import CLIP_MULTI_HOT, CLUSTERS, GROUND_TRUTH
from i2ibench.report import records as R


def label_rows(method: Method, val: Any, tasks: list[Task], rows: Rows, batch: int) -> None:
    """Add the label-quality rows of ``method`` on the union of the tasks' input images.

    ``n_real`` of these rows is the number of images scored. Nothing for ground-truth methods.
    """
    kind = method.label_kind
    if kind == GROUND_TRUTH:
        return
    if kind not in (CLUSTERS, CLIP_MULTI_HOT):
        raise I2IError(f"{method.name}: unknown label_kind '{kind}' (expected {GROUND_TRUTH}, {CLUSTERS} or {CLIP_MULTI_HOT})")
    idx = torch.unique(torch.cat([t.inputs for t in tasks])) if tasks else torch.zeros(0, dtype=torch.long)
    if len(idx) == 0:
        return
    true = val.labels[idx]
    n = len(idx)
    images = [val.images(idx[s:s + batch]).to(method.device) for s in range(0, n, batch)]  # decoded once

    def over(fn: Any) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([fn(x).cpu() for x in images])

    if kind == CLUSTERS:
        if true.dim() != 1:
            return  # clustering accuracy needs one ground-truth class per image
        for view in method.label_views():
            pred = over(view.labels)
            rows.add(view.protocol, R.MODE_NONE, mk.CLUSTER_ACC, R.SCOPE_OVERALL, "",
                     float(ml.clustering_accuracy(pred, true)), None, n)
        return
    k = len(val.domains)
    true_mh = torch.nn.functional.one_hot(true, k).float() if true.dim() == 1 else true.float()
    for view in method.label_views():
        pred = method.labels_to_classes(over(view.labels), 0.0)
        p, r = ml.multi_hot_precision_recall(pred, true_mh)
        rows.add(view.protocol, R.MODE_NONE, mk.LABEL_PRECISION, R.SCOPE_OVERALL, "", float(p), None, n)
        rows.add(view.protocol, R.MODE_NONE, mk.LABEL_RECALL, R.SCOPE_OVERALL, "", float(r), None, n)
        rows.add(view.protocol, R.MODE_NONE, mk.LABEL_SLACK, R.SCOPE_OVERALL, "",
                 float((pred.sum(1) == 0).float().mean()), None, n)
        # Top-1 needs the method's scores (argmax of a multi-hot label is no top-1 prediction).
        if true.dim() == 1 and view.scores is not None:
            scores = method.labels_to_classes(over(view.scores), float("-inf"))
            rows.add(view.protocol, R.MODE_NONE, mk.TOP1_ACC, R.SCOPE_OVERALL, "",
                     float(ml.top1_accuracy(scores, true)), None, n)
