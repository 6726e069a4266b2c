"""``MLPClassifier`` and ``MLPRegressor``: scikit-learn's MLP API on top of :func:`nnjax.fit`."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d, validate_data

from nnjax.nn import losses
from nnjax.sklearn._base import BaseMLP, Targets

__all__ = ["MLPClassifier", "MLPRegressor"]

_SHARED_ARGS = """
    Args:
      hidden_layer_sizes: widths of the hidden layers (an int for one layer; ``()`` for none).
      activation: hidden activation: scikit-learn's "identity", "logistic", "tanh", "relu",
        or any :mod:`nnjax.activations` name.
      solver: "adam" or "sgd" ("lbfgs" is not offered: training is a compiled minibatch loop).
      alpha: L2 strength; scikit-learn's ``alpha / (2 * batch)`` per batch (docs/sklearn.md).
      batch_size: minibatch size; "auto" is ``min(200, n_samples)``.
      learning_rate: "constant" or "invscaling" (sgd only, ``lr / (t + 1) ** power_t``).
      learning_rate_init, power_t, momentum, nesterovs_momentum, beta_1, beta_2, epsilon:
        optimizer settings with scikit-learn's meanings; ``learning_rate_init="auto"`` (an nnjax
        addition) runs the learning-rate range test (:func:`nnjax.lr_find`) on the training
        rows first and trains at its suggestion, kept as ``learning_rate_init_`` (a warm start
        or ``partial_fit`` keeps it).
      max_iter: epochs (passes over the data).
      shuffle: reshuffle the samples every epoch.
      random_state: seeds initialisation, shuffling, dropout and the validation split.
      tol, n_iter_no_change: stop after ``n_iter_no_change + 1`` epochs in a row without an
        improvement larger than ``tol`` (training loss, or validation score with early stopping).
      verbose: print the loss of every epoch after training.
      warm_start: start from the previous solution.
      early_stopping: hold out ``validation_fraction`` of the data, stop on its score and keep
        the best epoch's parameters.
      validation_fraction: the held-out fraction for early stopping.
      init: nnjax initialiser name or function (None: He normal for ReLU-like, else Xavier normal).
      dropout: probability of dropping a hidden unit in training.
      batch_norm: batch-normalise the hidden layers.
      l1: L1 strength, ``l1 * sum|W|`` added to each batch's mean loss.
      clip_norm, clip_value: clip the gradients' global norm / entries before the update.
      n_seeds: train this many networks at once (``jax.vmap`` over keys) and keep the best:
        highest validation score with early stopping, else lowest final training loss.

    Fitted attributes (scikit-learn's): ``coefs_``, ``intercepts_``, ``loss_``, ``loss_curve_``
    (data loss per epoch in scikit-learn's units, penalties excluded), ``best_loss_`` (None with
    early stopping), ``validation_scores_``, ``best_validation_score_``, ``n_iter_``, ``t_``,
    ``n_features_in_``, ``feature_names_in_``, ``n_layers_``, ``n_outputs_``, ``out_activation_``;
    nnjax's: ``history_`` (this fit's nnjax history), ``seed_scores_``, ``best_seed_``,
    ``learning_rate_init_`` (the rate trained with).
"""


def _keep_arguments(estimator: BaseMLP, arguments: dict) -> None:
    """Stores every constructor argument unchanged, as scikit-learn requires (checks come in fit)."""
    for name, value in arguments.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = """Multi-layer perceptron classifier trained by :func:`nnjax.fit`.

    Binary (one logistic output), multiclass (softmax) and multilabel (one logistic output per
    label) targets; labels may be any values ``numpy.unique`` can sort, strings included.
    """ + _SHARED_ARGS + """
    Example:
      >>> from sklearn.datasets import load_iris
      >>> from nnjax.sklearn import MLPClassifier
      >>> X, y = load_iris(return_X_y=True)
      >>> clf = MLPClassifier((16,), learning_rate_init=0.02, max_iter=300, random_state=0).fit(X, y)
      >>> clf.score(X, y) > 0.9
      True
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        init=None,
        dropout=0.0,
        batch_norm=False,
        l1=0.0,
        clip_norm=None,
        clip_value=None,
        n_seeds=1,
    ):
        _keep_arguments(self, locals())

    def fit(self, X, y, sample_weight=None):
        """Trains on ``X`` (n_samples, n_features) and labels ``y`` (n,) or indicators (n, n_labels)."""
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)``, continuing from the current state (optimizer state included).

        ``classes`` (all labels that will ever appear) is required on the first call.
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _encode_targets(self, y, *, first_pass: bool, incremental: bool, classes: Any = None) -> Targets:
        check_classification_targets(y)
        multilabel = type_of_target(y, input_name="y") == "multilabel-indicator"
        if not multilabel:
            y = column_or_1d(y, warn=True)
        if first_pass:
            if incremental and classes is None:
                raise ValueError("classes: expected all class labels on the first call to partial_fit, got None")
            self._multilabel = multilabel
            self._label_dtype = y.dtype
            self.classes_ = np.arange(y.shape[1]) if multilabel else unique_labels(y if classes is None else classes)
        elif incremental and classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
            raise ValueError(f"classes: expected the classes of the first call to partial_fit {self.classes_} (or "
                             f"None), got {unique_labels(classes)}")
        if multilabel != self._multilabel or (multilabel and y.shape[1] != len(self.classes_)):
            before = f"indicators of {len(self.classes_)} labels" if self._multilabel else "class labels"
            now = "an indicator matrix" if multilabel else "class labels"
            raise ValueError(f"y: expected {before} as in the previous fit, got {now} of shape {y.shape}")
        if not multilabel:
            seen = unique_labels(y)
            missing = np.setdiff1d(seen, self.classes_)
            if self.warm_start and not incremental and not first_pass and set(seen) != set(self.classes_):
                raise ValueError(f"y: warm_start expects the classes of the previous fit {self.classes_}, got {seen}")
            if missing.size:
                raise ValueError(f"y: expected labels among classes_ {self.classes_}, got unknown labels {missing}")
        k = len(self.classes_)
        if multilabel:  # one sigmoid output per label
            targets = Targets(np.asarray(y, np.float32), k, "sigmoid", "logistic", "binary_cross_entropy",
                              1.0 / k, 1.0 / k, "val_accuracy", False)
        elif k <= 2:
            targets = Targets(np.searchsorted(self.classes_, y).astype(np.float32), 1, "sigmoid", "logistic",
                              "binary_cross_entropy", 1.0, 1.0, "val_accuracy", True)
        else:
            targets = Targets(np.searchsorted(self.classes_, y).astype(np.int32), k, "softmax", "softmax",
                              "softmax_cross_entropy", 1.0, 1.0, "val_accuracy", False)
        self._loss = losses.resolve(targets.loss)  # what reads the outputs back: decode, probabilities
        return targets

    def predict(self, X):
        """Class labels (n,), or 0/1 indicators (n, n_labels) for multilabel targets."""
        logits = self._logits(X)
        decoded = self._loss.decode(logits)
        if self._multilabel:
            return decoded.astype(self._label_dtype)
        return self.classes_[np.minimum(decoded, len(self.classes_) - 1)]

    def predict_proba(self, X):
        """Probabilities (n, n_classes) in the order of ``classes_`` (per label for multilabel)."""
        logits = self._logits(X)
        return self._loss.probabilities(logits)  # one class: the logistic output's two columns, as scikit-learn

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = """Multi-layer perceptron regressor trained by :func:`nnjax.fit` (squared error).

    Single (n,) and multi-output (n, n_outputs) targets, identity output.

    Args:
      loss: "squared_error" (scikit-learn's half squared error; "poisson" is not offered).
    """ + _SHARED_ARGS.replace("    Args:\n", "") + """
    Example:
      >>> import numpy as np
      >>> from nnjax.sklearn import MLPRegressor
      >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
      >>> reg = MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", learning_rate_init=0.03, max_iter=2000,
      ...                    random_state=0).fit(X, np.sin(3 * X[:, 0]))
      >>> reg.score(X, np.sin(3 * X[:, 0])) > 0.9
      True
    """

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        init=None,
        dropout=0.0,
        batch_norm=False,
        l1=0.0,
        clip_norm=None,
        clip_value=None,
        n_seeds=1,
    ):
        _keep_arguments(self, locals())

    def fit(self, X, y, sample_weight=None):
        """Trains on ``X`` (n_samples, n_features) and targets ``y`` (n,) or (n, n_outputs)."""
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``, continuing from the current state (optimizer state included)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _validate_xy(self, X, y, reset: bool):
        return validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=(np.float64, np.float32),
                             reset=reset)

    def _encode_targets(self, y, *, first_pass: bool, incremental: bool, classes: Any = None) -> Targets:
        if self.loss != "squared_error":
            raise ValueError(f"loss: expected 'squared_error', got {self.loss!r}")
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        y = np.asarray(y, np.float32).reshape(y.shape[0], -1)
        self._loss = losses.resolve("mse")
        # scikit-learn reports half the squared error averaged over outputs, but its gradient
        # steps follow half the squared error summed over outputs.
        return Targets(y, y.shape[1], "identity", "identity", "mse", 2.0, 2.0 / y.shape[1], "val_r2", False)

    def predict(self, X):
        """Predictions (n,) for one output, else (n, n_outputs), in the float dtype of ``X``."""
        out = self._logits(X)
        dtype = np.float32 if getattr(X, "dtype", None) == np.float32 else np.float64
        return self._loss.decode(out.astype(dtype))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
