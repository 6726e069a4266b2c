"""nnjax.metrics: every number equals scikit-learn's called directly, and a NumPy hand computation."""

import numpy as np
import pytest
from sklearn import metrics as skm

from nnjax import metrics, runs


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_multiclass_report_matches_sklearn_and_a_hand_computation(rng):
    y = rng.integers(0, 3, 200)
    proba = _softmax(rng.standard_normal((200, 3)) + 1.5 * np.eye(3)[y])
    pred = proba.argmax(1)
    report = metrics.classification_report(y, pred, proba=proba, class_names=("a", "b", "c"))

    assert report["accuracy"] == skm.accuracy_score(y, pred)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred)
    np.testing.assert_array_equal(report["precision_per_class"], p)
    np.testing.assert_array_equal(report["recall_per_class"], r)
    np.testing.assert_array_equal(report["f1_per_class"], f)
    assert report["support"] == s.tolist()
    assert report["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"), rel=1e-12)
    assert report["precision_macro"] == pytest.approx(skm.precision_score(y, pred, average="macro"), rel=1e-12)
    assert report["roc_auc"] == skm.roc_auc_score(y, proba, multi_class="ovr")
    assert report["log_loss"] == skm.log_loss(y, proba)
    assert report["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert report["classes"] == ["a", "b", "c"]

    # By hand: recall of class k is the diagonal over the row sum; log loss the mean -log p(true).
    cm = np.zeros((3, 3), int)
    np.add.at(cm, (y, pred), 1)
    assert report["confusion_matrix"] == cm.tolist()
    np.testing.assert_allclose(report["recall_per_class"], np.diag(cm) / cm.sum(1), rtol=1e-12)
    np.testing.assert_allclose(report["log_loss"], -np.mean(np.log(proba[np.arange(200), y])), rtol=1e-10)


def test_binary_auc_from_probabilities_or_scores_and_undefined_cases():
    y = np.array([0, 0, 1, 1, 1, 0])
    score = np.array([-2.0, 0.5, 0.1, 3.0, 1.0, -1.0])
    proba = np.stack([1 - 1 / (1 + np.exp(-score)), 1 / (1 + np.exp(-score))], 1)
    # By hand: AUC is the fraction of (positive, negative) pairs ranked correctly: 8 of 9.
    pairs = [(score[i] > score[j]) for i in np.flatnonzero(y) for j in np.flatnonzero(y == 0)]
    expected = np.mean(pairs)
    assert expected == pytest.approx(8 / 9)
    with_proba = metrics.classification_report(y, (score > 0).astype(int), proba=proba)
    with_scores = metrics.classification_report(y, (score >= 0).astype(int), scores=score, n_classes=2)
    assert with_proba["roc_auc"] == pytest.approx(expected) == with_scores["roc_auc"]
    assert with_scores["log_loss"] is None
    # One class only in y_true: AUC undefined, a class never predicted has precision 0 (no warning).
    alone = metrics.classification_report([1, 1, 1], [1, 0, 1], proba=np.full((3, 2), 0.5))
    assert alone["roc_auc"] is None and alone["precision_per_class"][0] == 0.0 and alone["support"] == [0, 3]


def test_bad_labels_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match=r"y_pred: expected class indices in \[0, 2\), got values in \[0, 2\]"):
        metrics.classification_report([0, 1], [0, 2], n_classes=2)
    with pytest.raises(ValueError, match=r"proba: expected shape \(2, 3\)"):
        metrics.classification_report([0, 1], [0, 1], proba=np.ones((2, 2)) / 2, n_classes=3)
    with pytest.raises(ValueError, match="y_pred: expected the shape of y_true"):
        metrics.regression_report([1.0, 2.0], [1.0])


def test_regression_report_matches_sklearn_and_numpy(rng):
    y = rng.standard_normal((50, 2)) * [1.0, 10.0]
    pred = y + rng.standard_normal((50, 2))
    report = metrics.regression_report(y, pred)
    assert report["mae"] == skm.mean_absolute_error(y, pred)
    assert report["mse"] == skm.mean_squared_error(y, pred)
    assert report["r2"] == skm.r2_score(y, pred)
    assert report["rmse"] == pytest.approx(np.sqrt(np.mean((pred - y) ** 2)), rel=1e-12)
    r2_by_hand = 1 - ((pred - y) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
    assert report["r2"] == pytest.approx(r2_by_hand.mean(), rel=1e-12)


def test_runs_score_delegates_for_each_loss(rng):
    x = rng.standard_normal((40, 2)).astype(np.float32)
    y = rng.integers(0, 2, 40)
    logits = rng.standard_normal((40, 1)).astype(np.float32)
    for loss in ("binary_cross_entropy", "hinge"):
        prep = runs.Preprocessing.fit(x, y, task="classification", loss=loss, feature_names=("a", "b"),
                                      class_names=("no", "yes"))
        scored = runs.score(prep, logits, y)
        assert scored["roc_auc"] == pytest.approx(skm.roc_auc_score(y, logits[:, 0]))
        assert scored["accuracy"] == skm.accuracy_score(y, prep.decode(logits))
        assert (scored["log_loss"] is None) == (loss == "hinge") and "loss" in scored
    values = rng.standard_normal(40)
    prep = runs.Preprocessing.fit(x, values, task="regression", loss="mse", feature_names=("a", "b"))
    scored = runs.score(prep, logits, values)
    assert scored["r2"] == pytest.approx(skm.r2_score(values, prep.decode(logits)), rel=1e-12)
    assert set(scored) == {"mae", "mse", "rmse", "r2", "loss"}


def test_format_report_lists_each_class_and_the_confusion_matrix():
    report = metrics.classification_report([0, 1, 1], [0, 1, 0], class_names=("cat", "dog"))
    text = metrics.format_report(report)
    assert text.splitlines()[0].startswith("accuracy 0.6667")
    assert "dog" in text.splitlines()[3] and "confusion matrix" in text
    assert text.splitlines()[-1].split() == ["dog", "1", "1"]


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse"])
def test_score_splits_equals_score_per_split_and_a_numpy_loss(rng, loss):
    """Scoring all splits from one loss call gives each split's own report; the loss is the mean
    per-example loss, computed here in float64 NumPy."""
    n_classes = 4
    sizes = {"train": int(rng.integers(20, 60)), "validation": int(rng.integers(5, 20)), "test": int(rng.integers(5, 20))}
    x = rng.standard_normal((10, 2)).astype(np.float32)
    if loss == "mse":
        prep = runs.Preprocessing.fit(x, rng.standard_normal(10), task="regression", loss=loss, feature_names=("a", "b"))
        splits = {k: (rng.standard_normal((n, 1)).astype(np.float32), 3.0 * rng.standard_normal(n)) for k, n in sizes.items()}
    else:
        names = tuple("abcd")
        prep = runs.Preprocessing.fit(x, rng.integers(0, n_classes, 10), task="classification", loss=loss,
                                      feature_names=("a", "b"), class_names=names)
        splits = {k: (rng.standard_normal((n, n_classes)).astype(np.float32), rng.integers(0, n_classes, n))
                  for k, n in sizes.items()}
    together = runs.score_splits(prep, splits)
    assert list(together) == list(splits)
    for name, (logits, y) in splits.items():
        alone = runs.score(prep, logits, y)
        assert set(alone) == set(together[name])
        for key, value in alone.items():
            if key == "loss" or not isinstance(value, float):
                continue
            assert together[name][key] == pytest.approx(value, rel=1e-12), (name, key)
        z = logits.astype(np.float64)
        if loss == "mse":
            t = prep.targets(y).astype(np.float64)
            expected = np.mean((z[:, 0] - t) ** 2)
        else:
            expected = np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y])
        assert together[name]["loss"] == pytest.approx(expected, rel=1e-5)
        assert alone["loss"] == pytest.approx(expected, rel=1e-5)
