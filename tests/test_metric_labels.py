"""Pseudo-label metrics on hand-computed cases, and the metric registry's entries."""

import numpy as np
import pytest
import torch

from i2ibench.metrics import keys as mk
from i2ibench.errors import I2IError
from i2ibench.metrics.labels import clustering_accuracy, multi_hot_precision_recall, top1_accuracy
from i2ibench.registry import METRICS, UnknownNameError, list_metrics


def test_permuted_clusters_score_one():
    true = np.array([0, 0, 1, 1, 2, 2, 2, 3])
    perm = np.array([2, 3, 0, 1])  # cluster id of each class
    assert clustering_accuracy(perm[true], true) == 1.0
    assert clustering_accuracy(torch.from_numpy(perm[true]), torch.from_numpy(true)) == 1.0


def test_known_confusion_gives_the_best_matching_share():
    # contingency (cluster x class): c0 = {a:3, b:1}, c1 = {a:2, b:4}; best matching c0->a, c1->b = 7/10
    pred = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    true = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1])
    assert clustering_accuracy(pred, true) == pytest.approx(0.7)


def test_more_clusters_than_classes_leaves_surplus_clusters_unmatched():
    # 3 clusters for 2 classes: c0 -> class 0 (2), c1 -> class 1 (2); c2's 2 samples count as errors
    pred = np.array([0, 0, 1, 1, 2, 2])
    true = np.array([0, 0, 1, 1, 0, 1])
    assert clustering_accuracy(pred, true) == pytest.approx(4 / 6)
    # fewer clusters than classes: one cluster can only claim one class
    assert clustering_accuracy(np.zeros(4, dtype=int), np.array([0, 1, 2, 2])) == pytest.approx(0.5)


def test_multi_hot_precision_recall_hand_computed():
    pred = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0], [1, 0, 1]])
    true = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0], [1, 0, 1]])
    # hits: (0,0) (1,1) (3,0) (3,2) = 4; predicted 1s: 5; true 1s: 6
    assert multi_hot_precision_recall(pred, true) == pytest.approx((4 / 5, 4 / 6))


def test_multi_hot_against_integer_labels_uses_one_hot_truth():
    pred = torch.tensor([[1, 1, 0], [0, 0, 1], [0, 1, 0]])
    true = torch.tensor([0, 1, 1])
    # hits: sample 0 (class 0), sample 2 (class 1) = 2; predicted 4; true 3
    assert multi_hot_precision_recall(pred, true) == pytest.approx((2 / 4, 2 / 3))


def test_multi_hot_with_nothing_predicted_has_zero_precision():
    assert multi_hot_precision_recall(np.zeros((2, 3)), np.array([0, 2])) == (0.0, 0.0)


def test_multi_hot_input_errors():
    with pytest.raises(I2IError, match="only 0 and 1"):
        multi_hot_precision_recall(np.array([[0.5, 1.0]]), np.array([[0, 1]]))
    with pytest.raises(I2IError, match="out of range"):
        multi_hot_precision_recall(np.array([[0, 1]]), np.array([2]))
    with pytest.raises(I2IError, match="differ in shape"):
        multi_hot_precision_recall(np.zeros((2, 3)), np.zeros((2, 4)))


def test_top1_from_scores_and_from_labels():
    scores = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]])
    true = torch.tensor([1, 0, 0, 1])
    # argmax = [1, 0, 2, 0] (ties -> lowest index): 2 of 4 right
    assert top1_accuracy(scores, true) == 0.5
    assert top1_accuracy(np.array([1, 0, 0, 1]), true) == 1.0
    with pytest.raises(I2IError, match="N predictions for N labels"):
        top1_accuracy(scores, torch.tensor([0, 1]))


def test_clustering_input_errors():
    with pytest.raises(I2IError, match="integer labels"):
        clustering_accuracy(np.array([0.5, 1.0]), np.array([0, 1]))
    with pytest.raises(I2IError, match="equally long"):
        clustering_accuracy(np.array([0, 1]), np.array([0, 1, 1]))


# --------------------------------------------------------------------------- registry

def test_every_metric_key_is_registered_and_nothing_else():
    assert set(list_metrics()) == set(mk.ALL)


@pytest.mark.parametrize("name", list_metrics())
def test_registered_metric_is_described(name):
    spec = METRICS.get(name)
    assert spec.name == name
    assert isinstance(spec.higher_is_better, bool)
    assert spec.inputs in ("features", "outputs", "labels", "values", "groups")
    assert len(spec.description) > 20 and callable(spec)


def test_directions_of_the_main_metrics():
    assert not METRICS.get(mk.FID).higher_is_better and not METRICS.get(mk.MFID).higher_is_better
    assert all(METRICS.get(k).higher_is_better for k in (mk.DENSITY, mk.COVERAGE, mk.LPIPS, mk.CLUSTER_ACC))


def test_registered_metrics_compute_through_the_wrapped_functions():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(20, 4)), rng.normal(size=(15, 4))
    from i2ibench.metrics.prdc import density_coverage

    assert (METRICS.get(mk.DENSITY)(real, fake), METRICS.get(mk.COVERAGE)(real, fake)) == density_coverage(real, fake, 5)
    assert METRICS.get(mk.MFID)([10.0, 20.0, 60.0]) == 30.0
    assert METRICS.get(mk.CLUSTER_ACC)(np.array([1, 0]), np.array([0, 1])) == 1.0


def test_unknown_metric_lists_the_valid_names():
    with pytest.raises(UnknownNameError, match="did you mean 'mfid'"):
        METRICS.get("mfd")


def test_new_metrics_compute_through_their_functions():
    from i2ibench.metrics.bootstrap import bootstrap_mean_interval
    from i2ibench.metrics.kid import kid
    from i2ibench.metrics.prdc import precision_recall_density_coverage

    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(30, 4)), rng.normal(loc=0.5, size=(25, 4))
    assert (METRICS.get(mk.KID)(real, fake), METRICS.get(mk.KID_STD)(real, fake)) == kid(real, fake)
    prdc = precision_recall_density_coverage(real, fake, 5)
    assert METRICS.get(mk.PRECISION)(real, fake) == prdc["precision"]
    assert METRICS.get(mk.RECALL)(real, fake) == prdc["recall"]
    assert METRICS.get(mk.MKID)([0.1, 0.3]) == pytest.approx(0.2)
    assert METRICS.get(mk.TRANSLATION_ACC)(np.array([2, 2, 1]), 2) == pytest.approx(2 / 3)
    assert METRICS.get(mk.CONTENT_PRESERVATION)(np.array([3, 4]), np.array([3, 5])) == 0.5
    groups = [(real, fake)]
    iv = bootstrap_mean_interval("kid", groups, n_resamples=20)
    assert METRICS.get(mk.MKID_CI_LOW)(groups, n_resamples=20) == iv.low
    assert METRICS.get(mk.MKID_CI_HIGH)(groups, n_resamples=20) == iv.high
    assert not METRICS.get(mk.KID).higher_is_better and METRICS.get(mk.TRANSLATION_ACC).higher_is_better
