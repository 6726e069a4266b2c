"""What every peer implements: build a trainer for a workload, train, score.

A :class:`Trainer` owns one library's model for one workload. ``train(seed)``
trains every member of the workload for ``workload.epochs`` epochs from the
workload's initial weights (copied anew each call, so every repetition does the
same work), reshuffling every epoch from ``seed``, and returns only when the
results are computed. ``accuracy()`` scores the last trained models on the test set.

``train_fresh(seed)`` does the same work the way a user's repeated call is
written in a notebook cell or a loop over seeds: the model object and the
optimizer object are built anew and equal (``optax.sgd(lr)`` again, a new
``MLP``), while functions the user defines once (a module-level ``jax.jit``
step) are kept. A peer whose ``train`` already builds everything per call
(PyTorch) or holds no such objects (the hand-written JAX loops, whose update is
written inline) inherits the default, which is ``train`` itself.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

import numpy as np

from benchmarks.workloads import Workload

__all__ = ["Peer", "Trainer", "accuracy_of_logits", "batch_slices", "predicted_labels"]


class Trainer:
    """Base class: trains members one after another with :meth:`train_member`."""

    #: What ``train_fresh`` builds anew per call, for the report.
    fresh_objects = "nothing to rebuild: train() already builds its per-run objects"

    def __init__(self, workload: Workload):
        self.workload = workload
        self.scores: list[float] = []
        self.fresh = False  # True inside train_fresh: subclasses then build new model and optimizer objects

    def train(self, seed: int) -> None:
        """Trains all members (one after another unless a subclass batches them)."""
        self.scores = []
        for member in range(self.workload.members):
            self.train_member(member, seed)

    def train_fresh(self, seed: int) -> None:
        """:meth:`train` with freshly built, equal model and optimizer objects (see the module docstring)."""
        self.fresh = True
        try:
            self.train(seed)
        finally:
            self.fresh = False

    def train_member(self, member: int, seed: int) -> None:
        raise NotImplementedError

    def test_accuracy(self, member: int) -> float:
        """Test accuracy of the last trained model of ``member``."""
        raise NotImplementedError

    def accuracy(self) -> float:
        """Mean test accuracy over the members of the last :meth:`train`."""
        return float(np.mean([self.test_accuracy(m) for m in range(self.workload.members)]))



@dataclasses.dataclass(frozen=True)
class Peer:
    """A competitor: a row of the table.

    Attributes:
      name: the row label.
      library: the library and version it measures.
      make: ``make(workload) -> Trainer``.
      workloads: the workload keys it runs.
      family: "nnjax", "scan", "jit-step", "eager", "sklearn" or "reference" (targets compare families).
      module: the module under ``benchmarks.peers`` that defines it (filled in by :func:`available`).
    """

    name: str
    library: str
    make: Callable[[Workload], Trainer]
    workloads: tuple[str, ...]
    family: str
    module: str = ""


def batch_slices(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive minibatch slices of ``range(n)``; the last one may be short (kept, not padded)."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def predicted_labels(logits: np.ndarray) -> np.ndarray:
    """Class predictions from logits: argmax for several outputs, ``logit > 0`` for one."""
    logits = np.asarray(logits)
    return (logits[:, 0] > 0).astype(np.int32) if logits.shape[1] == 1 else np.argmax(logits, axis=1)


def accuracy_of_logits(logits: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of test examples classified correctly."""
    return float(np.mean(predicted_labels(logits) == labels))
