"""Every feature metric of one group (task or target) in one call, for the evaluation harness.

``score_features(real, fake, k)`` returns the values of FID, KID (mean and std), precision,
recall, density and coverage of fake features against real features, keyed by
``metrics.keys``, and a note for each metric that is undefined at these sample counts (its
value is then NaN, as the harness's rows expect). No Inception pass: it works on the features
the harness already has. Cost at the cpu preset's sizes (200 reals, 90 fakes, D = 2048), one
thread: FID ~6 ms, KID ~12 ms, the nearest-neighbour pass ~12 ms.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from i2ibench.metrics import keys as mk
from i2ibench.metrics.fid import fid
from i2ibench.metrics.kid import kid, kid_subset_size
from i2ibench.metrics.prdc import nearest_neighbour_scores, precision_recall_density_coverage

FEATURE_KEYS = (mk.FID, mk.KID, mk.KID_STD, mk.PRECISION, mk.RECALL, mk.DENSITY, mk.COVERAGE)


def _rows(feats) -> int:
    return int(feats.shape[0]) if isinstance(feats, (torch.Tensor, np.ndarray)) else len(feats)


def score_features(real_feats, fake_feats, k: int = 5) -> tuple[dict[str, float], dict[str, str]]:
    """({key: value}, {key: note}) for ``FEATURE_KEYS`` of fake features [M, D] against real [N, D].

    Undefined metrics are NaN with a one-line note: FID and KID need >= 2 images per set;
    precision, density and coverage need N > k and M >= 1; recall needs M > k (its k-NN balls
    are the fakes'). Values: FID >= 0, KID unit-less (may be slightly negative), precision,
    recall and coverage in [0, 1], density in [0, N / k]. KID's subset size is min(1000, N, M)
    (``kid.kid_subset_size``; noted when capped). Raises ``I2IError`` for malformed features
    (not 2-D, differing dimensions).
    """
    n_real, n_fake = _rows(real_feats), _rows(fake_feats)
    values: dict[str, float] = {key: math.nan for key in FEATURE_KEYS}
    notes: dict[str, str] = {}
    if n_real >= 2 and n_fake >= 2:
        values[mk.FID] = float(fid(real_feats, fake_feats))
        values[mk.KID], values[mk.KID_STD] = kid(real_feats, fake_feats)
        if kid_subset_size(n_real, n_fake) < 1000:
            notes[mk.KID] = notes[mk.KID_STD] = f"KID subsets of {kid_subset_size(n_real, n_fake)} (capped by n)"
    else:
        notes[mk.FID] = notes[mk.KID] = notes[mk.KID_STD] = (
            f"FID/KID need >= 2 real and fake images (real {n_real}, fake {n_fake})")
    if n_real > k and n_fake > k:
        values.update(precision_recall_density_coverage(real_feats, fake_feats, k))
    elif n_real > k and n_fake >= 1:  # precision, density, coverage need only the real k-NN balls
        values.update(nearest_neighbour_scores(real_feats, fake_feats, k, with_recall=False))
        notes[mk.RECALL] = f"recall needs more than k={k} fake images (fake {n_fake})"
    else:
        for key in (mk.PRECISION, mk.RECALL, mk.DENSITY, mk.COVERAGE):
            notes[key] = (f"precision/recall/density/coverage need more than k={k} real images and a fake one "
                          f"(real {n_real}, fake {n_fake})")
    return values, notes
