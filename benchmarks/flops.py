"""The hardware reference for W2: ``jnp.dot`` alone, on the matrix shapes of a training step.

:class:`DotChainTrainer` runs, for every full minibatch of an epoch, exactly the
matrix products that backpropagation through the MLP needs (forward ``h @ W``,
weight gradients ``h.T @ d``, input gradients ``d @ W.T`` except for the data)
and nothing else: no activations, loss or update. It takes its turn in the
rotation like a peer, so its rate is measured under the same load; a peer's
share of it is ``peer GFLOP/s / dot GFLOP/s``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from benchmarks.peers.base import Peer, Trainer
from benchmarks.workloads import Workload

__all__ = ["DOT_PEER", "DotChainTrainer", "dot_chain"]


def dot_chain(weights: tuple, x: jax.Array) -> tuple:
    """The weight-gradient-shaped products of one step on batch ``x`` (matrix products only)."""
    hs = [x]
    for w in weights:
        hs.append(jnp.dot(hs[-1], w))
    d = hs[-1]  # a stand-in for dL/dlogits, same shape
    grads = []
    for i in range(len(weights) - 1, -1, -1):
        grads.append(jnp.dot(hs[i].T, d))
        if i > 0:  # no gradient for the data
            d = jnp.dot(d, weights[i].T)
    return tuple(reversed(grads))


class DotChainTrainer(Trainer):
    """Times the products of one epoch: the full batches in a scan, then the short last batch."""

    def __init__(self, workload: Workload):
        super().__init__(workload)
        full = workload.n_train // workload.batch_size * workload.batch_size
        x = jnp.asarray(workload.x_train)
        self.batches = x[:full].reshape(-1, workload.batch_size, x.shape[1])
        self.tail = x[full:]
        self.weights = tuple(jnp.asarray(p["w"]) for p in workload.init_params[0])

        @jax.jit
        def epoch(weights, batches, tail):
            zero = tuple(jnp.zeros_like(w) for w in weights)

            def body(acc, x):
                return jax.tree.map(jnp.add, acc, dot_chain(weights, x)), None

            acc = jax.lax.scan(body, zero, batches)[0]
            if tail.shape[0]:
                acc = jax.tree.map(jnp.add, acc, dot_chain(weights, tail))
            return acc

        self.epoch = epoch

    def train(self, seed: int) -> None:
        for _ in range(self.workload.epochs):
            jax.block_until_ready(self.epoch(self.weights, self.batches, self.tail))

    def accuracy(self) -> None:
        return None  # it learns nothing


def _make(workload: Workload) -> Trainer:
    return DotChainTrainer(workload)


DOT_PEER = Peer("jnp.dot alone (same shapes)", f"jax {jax.__version__}", _make, ("w2",), "reference", module="flops")
