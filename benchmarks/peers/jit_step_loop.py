"""A Python loop of jitted steps in plain JAX: the way most JAX training loops are written.

Each epoch draws a permutation with NumPy, gathers the data on the host and
feeds minibatch slices to a ``jax.jit`` step (the short last batch compiles a
second shape once). Losses stay on the device; the epoch's mean is read once per epoch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.peers.base import Peer, Trainer, accuracy_of_logits, batch_slices
from benchmarks.peers.jax_mlp import as_tuples, forward, make_sgd_step
from benchmarks.workloads import Workload

__all__ = ["PEERS", "JitStepTrainer", "epoch_loop"]


def epoch_loop(step, state, w: Workload, seed: int, member: int = 0):
    """Runs ``w.epochs`` epochs of ``state, loss = step(state, x, y)``; returns the last state.

    Shared by every jit-step peer (plain JAX, Flax Linen, Equinox): the same
    NumPy shuffle, host gather and minibatch slices for each of them.
    """
    rng = np.random.default_rng([seed, member])
    x, y, n = w.x_train, w.y_train, w.n_train
    for _ in range(w.epochs):
        perm = rng.permutation(n)
        xp, yp = x[perm], y[perm]
        losses = []
        for s in batch_slices(n, w.batch_size):
            state, loss = step(state, xp[s], yp[s])
            losses.append(loss * (s.stop - s.start))
        float(sum(losses)) / n  # the epoch's mean loss, read on the host as a real loop would log it
    return state


class JitStepTrainer(Trainer):
    fresh_objects = "none: the jitted step is defined once and its SGD update is inline (no optimizer object)"

    def __init__(self, workload: Workload):
        super().__init__(workload)
        self.step = jax.jit(make_sgd_step(workload))
        self.params = [None] * workload.members

    def train_member(self, member: int, seed: int) -> None:
        start = as_tuples(self.workload.init_params[member])
        self.params[member] = jax.block_until_ready(epoch_loop(self.step, start, self.workload, seed, member))

    def test_accuracy(self, member: int) -> float:
        logits = forward(self.params[member], jnp.asarray(self.workload.x_test), self.workload.activation)
        return accuracy_of_logits(np.asarray(logits), self.workload.y_test)


PEERS = (Peer("jit-step loop (JAX)", f"jax {jax.__version__}", JitStepTrainer, ("w1", "w2", "w5"), "jit-step"),)
