"""nnjax's rows: ``nnjax.fit`` as users call it, and its variants.

* ``nnjax.fit``: the defaults (``diagnostics=True``: per-layer gradient health recorded).
* ``nnjax.fit (no diagnostics)``: ``diagnostics=False``, the like-for-like match of the hand-written scan.
* ``nnjax.fit (progress bar)``: ``progress=True`` (a tqdm bar; the run is cut into compiled chunks).
* ``nnjax.fit (bfloat16 compute, no diagnostics)``: mixed precision, ``MLP(compute_dtype="bfloat16")``
  from the same float32 initial weights (W1, W2; see also ``benchmarks/precision.py``).
* W4: ``nnjax.fit_population`` (one ``vmap``-ed program) and a loop of ``nnjax.fit`` calls, both
  with ``diagnostics=False`` like ``benchmarks/population.py`` (PyTorch records no per-layer statistics).

Every steady call passes the workload's initial weights and the same ``MLP`` and
optax objects; the fresh calls (``train_fresh``) build a new, equal ``MLP`` and
``optax.sgd(lr)`` each time, as the README's quick start is written. The timed
call includes ``fit``'s host-side validation, as a user pays it.
"""

from __future__ import annotations

import dataclasses
import io

import jax
import numpy as np
import optax

import nnjax
from nnjax.population import fit_population
from benchmarks.peers.base import Peer, Trainer, accuracy_of_logits
from benchmarks.workloads import Workload

__all__ = ["FitTrainer", "PEERS", "PopulationTrainer"]


class FitTrainer(Trainer):
    """One ``nnjax.fit`` call per member."""

    fresh_objects = "a new nnjax.MLP and optax.sgd(lr) per fit call"

    def __init__(self, workload: Workload, **fit_options):
        super().__init__(workload)
        self.net = workload.net
        self.optimizer = optax.sgd(workload.learning_rate)  # one object: one compiled program
        self.options = fit_options
        self.results = [None] * workload.members

    def fit(self, key, params):
        w = self.workload
        net, optimizer = (w.net, optax.sgd(w.learning_rate)) if self.fresh else (self.net, self.optimizer)
        return nnjax.fit(
            key, net, (w.x_train, w.y_train), loss=w.loss, optimizer=optimizer,
            epochs=w.epochs, batch_size=w.batch_size, params=params, **self.options,
        )

    def train_member(self, member: int, seed: int) -> None:
        w = self.workload
        if w.members == 1:  # fresh shuffles every repetition, the workload's initial weights
            result = self.fit(jax.random.key(seed), w.init_params[member])
        else:  # a member is jax.random.key(its seed), as fit_population draws it
            result = self.fit(jax.random.key(w.seeds[member]), None)
        self.results[member] = jax.block_until_ready(result)

    def test_accuracy(self, member: int) -> float:
        logits = nnjax.apply(self.results[member].params, self.workload.x_test, self.net)
        return accuracy_of_logits(np.asarray(logits), self.workload.y_test)


class _MixedTrainer(FitTrainer):
    """Mixed precision: float32 parameters (the workload's), bfloat16 matmuls and activations."""

    def __init__(self, workload: Workload, **fit_options):
        super().__init__(workload, **fit_options)
        self.net = dataclasses.replace(workload.net, compute_dtype="bfloat16")


class _ProgressTrainer(FitTrainer):
    """``progress=True``; the bar is drawn into a buffer so the benchmark's own output stays readable."""

    def fit(self, key, params):
        import tqdm.auto

        sink, original = io.StringIO(), tqdm.auto.tqdm

        def to_sink(*args, **kwargs):
            return original(*args, **{**kwargs, "file": sink})

        tqdm.auto.tqdm = to_sink  # fit imports tqdm.auto.tqdm when it draws the bar
        try:
            return super().fit(key, params)
        finally:
            tqdm.auto.tqdm = original


class PopulationTrainer(Trainer):
    """All members in one compiled program: ``nnjax.fit_population``."""

    fresh_objects = "a new nnjax.MLP and optax.sgd(lr) per fit_population call"

    def __init__(self, workload: Workload, **fit_options):
        super().__init__(workload)
        self.net = workload.net
        self.optimizer = optax.sgd(workload.learning_rate)
        self.options = fit_options
        self.keys = jax.numpy.stack([jax.random.key(s) for s in workload.seeds])
        self.result = None

    def train(self, seed: int) -> None:
        w = self.workload
        net, optimizer = (w.net, optax.sgd(w.learning_rate)) if self.fresh else (self.net, self.optimizer)
        self.result = jax.block_until_ready(fit_population(
            self.keys, net, (w.x_train, w.y_train), loss=w.loss, optimizer=optimizer,
            epochs=w.epochs, batch_size=w.batch_size, **self.options,
        ))

    def test_accuracy(self, member: int) -> float:
        params = jax.tree.map(lambda a: a[member], self.result.params)
        return accuracy_of_logits(np.asarray(nnjax.apply(params, self.workload.x_test, self.net)), self.workload.y_test)


_LIB = f"nnjax {nnjax.__version__}"
PEERS = (
    Peer("nnjax.fit", _LIB, FitTrainer, ("w1", "w2", "w5"), "nnjax"),
    Peer("nnjax.fit (no diagnostics)", _LIB, lambda w: FitTrainer(w, diagnostics=False), ("w1", "w2", "w5"), "nnjax"),
    Peer("nnjax.fit (progress bar)", _LIB, lambda w: _ProgressTrainer(w, progress=True), ("w1", "w5"), "nnjax"),
    Peer("nnjax.fit (bfloat16 compute, no diagnostics)", _LIB, lambda w: _MixedTrainer(w, diagnostics=False),
         ("w1", "w2"), "nnjax"),
    Peer("nnjax.fit_population", _LIB, lambda w: PopulationTrainer(w, diagnostics=False), ("w4",), "nnjax"),
    Peer("nnjax.fit, one call per member", _LIB, lambda w: FitTrainer(w, diagnostics=False), ("w4",), "nnjax"),
)
