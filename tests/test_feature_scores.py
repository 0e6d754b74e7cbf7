"""score_features: all feature metrics of a group in one call, NaN with a note where undefined."""

import math

import numpy as np
import pytest

from i2ibench.metrics import keys as mk
from i2ibench.metrics.feature_scores import FEATURE_KEYS, score_features
from i2ibench.metrics.fid import fid
from i2ibench.metrics.kid import kid
from i2ibench.metrics.prdc import precision_recall_density_coverage


def test_values_are_the_metric_functions():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(40, 16)), rng.normal(loc=0.3, size=(30, 16))
    values, notes = score_features(real, fake, k=5)
    assert set(values) == set(FEATURE_KEYS)
    assert values[mk.FID] == fid(real, fake)
    assert (values[mk.KID], values[mk.KID_STD]) == kid(real, fake)
    prdc = precision_recall_density_coverage(real, fake, 5)
    assert all(values[key] == prdc[key] for key in prdc)
    assert set(notes) == {mk.KID, mk.KID_STD} and "subsets of 30" in notes[mk.KID]


def test_few_fakes_keep_precision_density_coverage_and_note_recall():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(40, 8)), np.concatenate([rng.normal(size=(2, 8)), rng.normal(size=(1, 8)) + 9])
    values, notes = score_features(real, fake, k=5)
    assert math.isnan(values[mk.RECALL]) and "more than k=5 fake" in notes[mk.RECALL]
    # brute force: a fake is "precise" when it lies in some real sample's 5-NN ball
    d_rr = np.linalg.norm(real[:, None] - real[None], axis=2)
    radii = np.sort(d_rr, axis=1)[:, 5]
    inside = np.linalg.norm(fake[:, None] - real[None], axis=2) < radii[None]
    assert values[mk.PRECISION] == pytest.approx(inside.any(axis=1).mean()) and values[mk.PRECISION] == pytest.approx(2 / 3)
    assert not math.isnan(values[mk.FID]) and not math.isnan(values[mk.DENSITY])


def test_too_few_images_give_nan_with_notes():
    values, notes = score_features(np.zeros((3, 4)), np.zeros((1, 4)), k=5)
    assert all(math.isnan(v) for v in values.values())
    assert set(notes) == set(FEATURE_KEYS) and all("\n" not in n for n in notes.values())
