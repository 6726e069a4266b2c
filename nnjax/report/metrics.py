"""Metrics on the host: scikit-learn's ``sklearn.metrics`` over NumPy arrays, as plain dicts.

:func:`classification_report` gives accuracy, precision, recall and F1 (macro-averaged and per
class), the confusion matrix, and, from class probabilities, log loss and ROC AUC (binary, or
one-vs-rest macro-averaged for more classes). :func:`regression_report` gives MAE, MSE, RMSE and
R^2 (averaged over outputs). :meth:`nnjax.saved.SavedModel.evaluate` scores a model opened with :func:`nnjax.load` on raw
data, as ``nnjax evaluate`` does. Every value is a Python float, int or list (JSON-ready); a
metric that the data leave undefined (ROC AUC when a class is absent from ``y_true``) is None.

Example:
  >>> import numpy as np
  >>> from nnjax import metrics
  >>> proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2]])
  >>> report = metrics.classification_report([0, 1, 1, 1], proba.argmax(1), proba=proba)
  >>> report["accuracy"], report["recall_per_class"], report["roc_auc"]
  (0.75, [1.0, 0.6666666666666666], 1.0)
  >>> report["confusion_matrix"]
  [[1, 0], [1, 2]]
  >>> metrics.regression_report([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])["mae"]
  0.6666666666666666
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from sklearn import metrics as skm

__all__ = ["classification_report", "format_report", "regression_report"]


def _indices(values: Any, name: str, n_classes: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)
                           and not np.all(np.mod(array, 1) == 0)):
        raise ValueError(f"{name}: expected class indices of shape (n,), got {array.dtype} of shape {array.shape}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= n_classes):
        raise ValueError(f"{name}: expected class indices in [0, {n_classes}), got values in "
                         f"[{array.min()}, {array.max()}]")
    return array


def _roc_auc(y_true: np.ndarray, proba: np.ndarray | None, scores: np.ndarray | None, k: int) -> float | None:
    """ROC AUC, or None where it is undefined (a class with no positive or no negative example)."""
    if np.any(np.bincount(y_true, minlength=k) == 0) or k < 2:
        return None
    if k == 2:
        positive = scores if proba is None else proba[:, 1]
        return None if positive is None else float(skm.roc_auc_score(y_true, positive))
    if proba is None:
        return None
    return float(skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=np.arange(k)))


def classification_report(y_true: Any, y_pred: Any, *, proba: Any = None, scores: Any = None,
                          n_classes: int | None = None, class_names: Sequence[str] = ()) -> dict[str, Any]:
    """Classification metrics of predicted class indices (and probabilities) against the truth.

    Args:
      y_true: true class indices, shape ``(n,)``.
      y_pred: predicted class indices, shape ``(n,)``.
      proba: class probabilities, shape ``(n, n_classes)``, rows summing to 1; gives "log_loss"
        and "roc_auc".
      scores: for two classes without ``proba``: decision values of shape ``(n,)``, larger for
        class 1 (a hinge model's logits); gives "roc_auc".
      n_classes: the number of classes (default: from ``proba``, ``class_names`` or the labels).
      class_names: names for the classes, copied into the report as "classes".

    Returns:
      A dict: "accuracy"; "precision_macro", "recall_macro", "f1_macro" (unweighted means over
      classes); "precision_per_class", "recall_per_class", "f1_per_class", "support" (lists in
      class order); "confusion_matrix" (rows: true class, columns: predicted); "log_loss" and
      "roc_auc" (None when not computable); "classes". A class never predicted has precision 0.

    Raises:
      ValueError: labels that are not indices in ``[0, n_classes)``, or mismatched lengths.

    Example:
      >>> classification_report([0, 1, 2, 2], [0, 2, 2, 2])["f1_per_class"]
      [1.0, 0.0, 0.8]
    """
    proba = None if proba is None else np.asarray(proba, np.float64)
    k = n_classes or (proba.shape[1] if proba is not None and proba.ndim == 2 else 0) or len(class_names)
    if not k:
        k = int(max(np.max(y_true, initial=0), np.max(y_pred, initial=0))) + 1
    y_true, y_pred = _indices(y_true, "y_true", k), _indices(y_pred, "y_pred", k)
    if len(y_true) != len(y_pred) or not len(y_true):
        raise ValueError(f"y_pred: expected {len(y_true)} predictions (one per true label, at least one), "
                         f"got {len(y_pred)}")
    if proba is not None and proba.shape != (len(y_true), k):
        raise ValueError(f"proba: expected shape ({len(y_true)}, {k}), got {proba.shape}")
    labels = np.arange(k)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0.0)
    report = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision_macro": float(np.mean(precision)),
        "recall_macro": float(np.mean(recall)),
        "f1_macro": float(np.mean(f1)),
        "precision_per_class": [float(v) for v in precision],
        "recall_per_class": [float(v) for v in recall],
        "f1_per_class": [float(v) for v in f1],
        "support": [int(v) for v in support],
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "log_loss": None if proba is None else float(skm.log_loss(y_true, proba, labels=labels)),
        "roc_auc": _roc_auc(y_true, proba, None if scores is None else np.asarray(scores, np.float64), k),
        "classes": [str(c) for c in class_names] if class_names else [str(c) for c in labels],
    }
    return report


def regression_report(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Regression metrics, in the targets' units, averaged over outputs with equal weights.

    Args:
      y_true: true values, shape ``(n,)`` or ``(n, outputs)``.
      y_pred: predictions of the same shape.

    Returns:
      ``{"mae", "mse", "rmse", "r2"}`` as floats; "rmse" is the square root of "mse".

    Example:
      >>> regression_report([0.0, 2.0], [1.0, 2.0])
      {'mae': 0.5, 'mse': 0.5, 'rmse': 0.7071067811865476, 'r2': 0.5}
    """
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    if y_true.shape != y_pred.shape or not len(y_true):
        raise ValueError(f"y_pred: expected the shape of y_true {y_true.shape}, got {y_pred.shape}")
    mse = float(skm.mean_squared_error(y_true, y_pred))
    return {"mae": float(skm.mean_absolute_error(y_true, y_pred)), "mse": mse, "rmse": math.sqrt(mse),
            "r2": float(skm.r2_score(y_true, y_pred))}


def format_report(report: dict[str, Any]) -> str:
    """A report as text: scalar metrics on one line, then a per-class table and the confusion matrix.

    Example:
      >>> print(format_report({"mae": 0.5, "r2": 0.25}))
      mae 0.5000, r2 0.2500
    """
    scalars = [f"{k} {v:.4f}" for k, v in report.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    lines = [", ".join(scalars)]
    if "f1_per_class" in report:
        names = report.get("classes") or [str(i) for i in range(len(report["f1_per_class"]))]
        width = max(8, *(len(n) for n in names))
        lines.append(f"{'class':<{width}} precision    recall        f1   support")
        for i, name in enumerate(names):
            lines.append(f"{name:<{width}} {report['precision_per_class'][i]:9.4f} {report['recall_per_class'][i]:9.4f}"
                         f" {report['f1_per_class'][i]:9.4f} {report['support'][i]:9d}")
        lines.append("confusion matrix (rows: true class, columns: predicted):")
        cells = max(len(str(v)) for row in report["confusion_matrix"] for v in row)
        lines += [f"{name:<{width}} " + " ".join(f"{v:>{cells}}" for v in row)
                  for name, row in zip(names, report["confusion_matrix"])]
    return "\n".join(lines)
