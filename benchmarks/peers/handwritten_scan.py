"""The best hand-written pure-JAX loop: the whole run as ``lax.scan`` over epochs of ``lax.scan`` over batches.

Each epoch permutes the data with its own key and gathers it once into
``(steps, batch, ...)``; the full batches run in a scan and the short last
batch, if any, in one more step of its own static shape (no padding, no mask).
The update is written inline (``p - lr * g``), and the only metric kept is the
epoch's mean training loss. Population workloads ``jax.vmap`` the run over members.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.peers.base import Peer, Trainer, accuracy_of_logits
from benchmarks.peers.jax_mlp import as_tuples, forward, make_sgd_step
from benchmarks.workloads import Workload

__all__ = ["PEERS", "ScanTrainer", "make_run"]


def make_run(w: Workload, unroll: int = 1):
    """``run(params, x, y, key) -> (params, epoch_losses)`` for ``w.epochs`` epochs (unjitted)."""
    step = make_sgd_step(w)
    n, batch = w.n_train, w.batch_size
    steps, tail = divmod(n, batch)

    def epoch(params, key, x, y):
        perm = jax.random.permutation(key, n)
        xp, yp = x[perm], y[perm]
        xs = xp[: steps * batch].reshape((steps, batch) + x.shape[1:])
        ys = yp[: steps * batch].reshape((steps, batch))
        params, losses = jax.lax.scan(lambda p, b: step(p, *b), params, (xs, ys), unroll=unroll)
        total = jnp.sum(losses) * batch
        if tail:
            params, last = step(params, xp[steps * batch:], yp[steps * batch:])
            total = total + last * tail
        return params, total / n

    def run(params, x, y, key):
        return jax.lax.scan(lambda p, k: epoch(p, k, x, y), params, jax.random.split(key, w.epochs))

    return run


class ScanTrainer(Trainer):
    """One compiled program per run; members are vmapped when there are several."""

    fresh_objects = "none: the jitted run is defined once and its SGD update is inline (no optimizer object)"

    def __init__(self, workload: Workload):
        super().__init__(workload)
        self.x, self.y = jnp.asarray(workload.x_train), jnp.asarray(workload.y_train)
        run = make_run(workload)
        if workload.members == 1:
            self.start = as_tuples(workload.init_params[0])
            self.run = jax.jit(run)
        else:
            self.start = jax.tree.map(lambda *a: jnp.stack(a), *[as_tuples(p) for p in workload.init_params])
            self.run = jax.jit(jax.vmap(run, in_axes=(0, None, None, 0)))
        self.params = None

    def train(self, seed: int) -> None:
        key = jax.random.key(seed)
        if self.workload.members > 1:
            key = jax.random.split(key, self.workload.members)
        self.params, losses = self.run(self.start, self.x, self.y, key)
        jax.block_until_ready((self.params, losses))

    def test_accuracy(self, member: int) -> float:
        params = self.params if self.workload.members == 1 else jax.tree.map(lambda a: a[member], self.params)
        logits = forward(params, jnp.asarray(self.workload.x_test), self.workload.activation)
        return accuracy_of_logits(np.asarray(logits), self.workload.y_test)


PEERS = (
    Peer("hand-written lax.scan", f"jax {jax.__version__}", ScanTrainer, ("w1", "w2", "w4", "w5"), "scan"),
)
