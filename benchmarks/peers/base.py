"""What every peer implements: build a trainer for a workload, train, score.

A :class:`Trainer` owns one library's model for one workload. ``train(seed)``
trains every member of the workload for ``workload.epochs`` epochs from the
workload's initial weights (copied anew each call, so every repetition does the
same work), reshuffling every epoch from ``seed``, and returns only when the
results are computed. ``accuracy()`` scores the last trained models on the test set.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

import numpy as np

from benchmarks.workloads import Workload

__all__ = ["Peer", "Trainer", "accuracy_of_logits", "batch_slices", "predicted_labels"]


class Trainer:
    """Base class: trains members one after another with :meth:`train_member`."""

    def __init__(self, workload: Workload):
        self.workload = workload
        self.scores: list[float] = []

    def train(self, seed: int) -> None:
        """Trains all members (one after another unless a subclass batches them)."""
        self.scores = []
        for member in range(self.workload.members):
            self.train_member(member, seed)

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
