import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from facecli.verification.metrics import equal_error_rate, tar_at_far, verification_report


def test_reproduces_the_reference_lfw_evaluation_exactly(reference):
    data = json.loads((reference / "lfw_evaluate.json").read_text())
    distances = np.array(data["inputs"]["distances"])
    labels = np.array(data["inputs"]["labels"])
    expected = data["outputs"]
    report = verification_report(-distances, labels, "euclidean", n_folds=data["inputs"]["nrof_folds"])
    assert report.accuracy_per_fold == expected["accuracy_per_fold"]
    assert report.accuracy_mean == pytest.approx(expected["accuracy_mean"], abs=1e-12)
    assert report.accuracy_std == pytest.approx(expected["accuracy_std"], abs=1e-12)
    assert report.threshold_per_fold[-1] == pytest.approx(expected["best_threshold_last_fold"], abs=1e-12)
    np.testing.assert_allclose(report.tar_curve, expected["tpr"], atol=1e-12)
    np.testing.assert_allclose(report.far_curve, expected["fpr"], atol=1e-12)


def test_auc_and_roc_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000)
    scores = rng.normal(labels * 1.5, 1.0)
    report = verification_report(scores, labels, "cosine")
    assert report.auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    fpr, tpr, _ = roc_curve(labels, scores)
    tars = tar_at_far(scores, labels)
    assert set(tars) == {"0.1", "0.01"}  # ~1000 impostors cannot resolve FAR 1e-3
    assert tars["0.1"] == pytest.approx(tpr[fpr <= 0.1].max())


def test_equal_error_rate_on_separable_and_symmetric_scores():
    labels = np.array([0] * 50 + [1] * 50)
    assert equal_error_rate(np.r_[np.zeros(50), np.ones(50)], labels) == pytest.approx(0.0)
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 20000)
    scores = rng.normal(labels * 2.0, 1.0)
    # two unit normals 2 apart cross at 1: FAR = FRR = P(z > 1) = 0.1587
    assert equal_error_rate(scores, labels) == pytest.approx(0.1587, abs=0.01)


def test_perfect_scores_give_perfect_accuracy_with_given_folds():
    labels = np.tile([1, 1, 0, 0], 5)
    scores = np.tile([0.9, 0.8, 0.1, 0.2], 5)
    report = verification_report(scores, labels, "cosine", folds=np.repeat(np.arange(5), 4))
    assert report.folds == 5 and report.accuracy_mean == 1.0 and report.best_accuracy == 1.0


@pytest.mark.parametrize("seed", range(20))
def test_tar_at_far_in_one_pass_is_the_best_point_of_the_full_roc_curve(seed):
    """Against every point of scikit-learn's ROC curve (none dropped), with tied scores."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, int(rng.integers(20, 30000)))
    scores = np.round(rng.normal(labels * rng.uniform(0, 2), 1.0), int(rng.integers(0, 3)))
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    impostors = int((labels == 0).sum())
    expected = {f"{far:g}": tpr[fpr <= far].max() for far in (0.1, 0.01, 1e-3, 1e-4) if impostors >= round(1 / far)}
    assert tar_at_far(scores, labels) == pytest.approx(expected, abs=1e-12)


def test_very_low_fars_are_shown_only_with_enough_impostors():
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(1000, int), np.zeros(999_999, int)]
    scores = rng.normal(labels * 3.0, 1.0)
    assert "1e-06" not in tar_at_far(scores, labels) and "1e-05" in tar_at_far(scores, labels)
    labels, scores = np.r_[labels, 0], np.r_[scores, -5.0]  # one more impostor: 10^6 of them
    tars = tar_at_far(scores, labels)
    assert list(tars) == ["0.1", "0.01", "0.001", "0.0001", "1e-05", "1e-06"]
    assert tars["1e-06"] == pytest.approx(np.mean(scores[labels == 1] > np.sort(scores[labels == 0])[-2]))


@pytest.mark.parametrize("seed", range(10))
def test_roc_auc_and_folds_in_numpy_equal_scikit_learns_with_ties(seed):
    """eval computes these without scikit-learn (not imported by eval); they must not drift from it."""
    from sklearn.model_selection import KFold

    from facecli.verification.metrics import area_under_curve, roc_points

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, int(rng.integers(10, 5000)))
    scores = np.round(rng.normal(labels * rng.uniform(-1, 3), 1.0), int(rng.integers(0, 3)))
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    mine_fpr, mine_tpr = roc_points(scores, labels)
    np.testing.assert_allclose(mine_fpr, fpr, atol=1e-15)
    np.testing.assert_allclose(mine_tpr, tpr, atol=1e-15)
    assert area_under_curve(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    index = np.arange(len(scores))
    expected = [list(test) for _, test in KFold(n_splits=10).split(index)]
    tests = [list(test) for test in np.array_split(index, 10)]  # what kfold_accuracy uses
    assert tests == expected
