"""scikit-learn's ``MLPClassifier`` with solver "sgd", no momentum, no L2, no early stopping."""

from __future__ import annotations

import warnings

import numpy as np
import sklearn
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from benchmarks.peers.base import Peer, Trainer
from benchmarks.workloads import Workload

__all__ = ["PEERS", "SklearnTrainer"]


class SklearnTrainer(Trainer):
    """Starts every run from the workload's weights through ``warm_start``.

    scikit-learn draws its own initial weights on the first ``fit``; one
    untimed epoch sets up the estimator, then ``coefs_``/``intercepts_`` are
    overwritten with the shared initial weights before each timed ``fit``.
    Its loss is the batch mean like everyone's (``alpha=0`` removes the L2 term).
    A fresh call clones the estimator and fits the clone from scratch, so
    scikit-learn draws its own initial weights there (same shapes, same work).
    """

    fresh_objects = "a cloned, unfitted MLPClassifier (its own initial weights)"

    def __init__(self, workload: Workload):
        super().__init__(workload)
        self.model = MLPClassifier(
            hidden_layer_sizes=workload.sizes[1:-1], activation="relu" if workload.activation == "relu" else "logistic",
            solver="sgd", alpha=0.0, batch_size=workload.batch_size, learning_rate="constant",
            learning_rate_init=workload.learning_rate, max_iter=1, shuffle=True, tol=0.0, momentum=0.0,
            nesterovs_momentum=False, early_stopping=False, n_iter_no_change=workload.epochs + 1, warm_start=True,
        )
        self._fit()
        self.models = [None] * workload.members

    def _fit(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached is the point here
            self.model.fit(self.workload.x_train, self.workload.y_train)

    def train_member(self, member: int, seed: int) -> None:
        if self.fresh:
            self._train_clone(member, seed)
            return
        params = self.workload.init_params[member]
        self.model.coefs_ = [p["w"].copy() for p in params]  # updated in place by sklearn: copy
        self.model.intercepts_ = [p["b"].copy() for p in params]
        # warm_start keeps the best loss of the previous run; reset it, or the no-improvement counter
        # stops this run after an epoch or two
        self.model.best_loss_, self.model._no_improvement_count, self.model.loss_curve_ = np.inf, 0, []
        self.model.set_params(max_iter=self.workload.epochs, random_state=seed * 1009 + member)
        self._fit()
        self.models[member] = ([c.copy() for c in self.model.coefs_], [b.copy() for b in self.model.intercepts_])

    def _train_clone(self, member: int, seed: int) -> None:
        model = clone(self.model).set_params(warm_start=False, max_iter=self.workload.epochs,
                                             random_state=seed * 1009 + member)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(self.workload.x_train, self.workload.y_train)
        self.models[member] = (model.coefs_, model.intercepts_)

    def test_accuracy(self, member: int) -> float:
        self.model.coefs_, self.model.intercepts_ = self.models[member]
        return float(np.mean(self.model.predict(self.workload.x_test) == self.workload.y_test))


PEERS = (Peer("scikit-learn MLPClassifier", f"scikit-learn {sklearn.__version__}", SklearnTrainer, ("w1", "w2", "w5"), "sklearn"),)
