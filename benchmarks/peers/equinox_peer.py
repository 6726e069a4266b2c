"""Equinox: a module pytree, optax, and a loop of ``eqx.filter_jit`` steps (Equinox's documented pattern)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.peers.base import Peer, Trainer, accuracy_of_logits
from benchmarks.peers.jax_mlp import mean_loss
from benchmarks.peers.jit_step_loop import epoch_loop
from benchmarks.workloads import Workload

__all__ = ["EqxMLP", "EquinoxTrainer", "PEERS"]


class EqxMLP(eqx.Module):
    """``eqx.nn.Linear`` layers for one example (batches go through ``jax.vmap``)."""

    layers: list
    relu: bool = eqx.field(static=True)

    def __init__(self, sizes, activation: str, *, key):
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = [eqx.nn.Linear(a, b, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys)]
        self.relu = activation == "relu"

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = layer(x)
            x = jax.nn.relu(x) if self.relu else jax.nn.sigmoid(x)
        return self.layers[-1](x)


class EquinoxTrainer(Trainer):
    fresh_objects = "a new EqxMLP and optax.sgd(lr), passed to the filter_jit step defined once"

    def __init__(self, workload: Workload):
        super().__init__(workload)
        self.optimizer = optax.sgd(workload.learning_rate)
        loss_name = workload.loss

        @eqx.filter_jit
        def step(model, opt_state, optimizer, x, y):  # the optimizer is a static (non-array) argument
            def objective(m):
                return mean_loss(jax.vmap(m)(x), y, loss_name)

            loss, grads = eqx.filter_value_and_grad(objective)(model)
            updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
            return eqx.apply_updates(model, updates), opt_state, loss

        self.jit_step = step
        self.models = [None] * workload.members

    def _start(self, member: int, optimizer):
        w = self.workload
        model = EqxMLP(w.sizes, w.activation, key=jax.random.key(0))
        for i, p in enumerate(w.init_params[member]):  # eqx stores (n_out, n_in)
            model = eqx.tree_at(lambda m: (m.layers[i].weight, m.layers[i].bias), model,
                                (jnp.asarray(p["w"].T), jnp.asarray(p["b"])))
        return model, optimizer.init(eqx.filter(model, eqx.is_array))

    def train_member(self, member: int, seed: int) -> None:
        optimizer = optax.sgd(self.workload.learning_rate) if self.fresh else self.optimizer

        def pair_step(state, x, y):
            model, opt_state, loss = self.jit_step(*state, optimizer, x, y)
            return (model, opt_state), loss

        model, _ = epoch_loop(pair_step, self._start(member, optimizer), self.workload, seed, member)
        self.models[member] = jax.block_until_ready(model)

    def test_accuracy(self, member: int) -> float:
        logits = jax.vmap(self.models[member])(jnp.asarray(self.workload.x_test))
        return accuracy_of_logits(np.asarray(logits), self.workload.y_test)


PEERS = (Peer("Equinox, filter_jit loop", f"equinox {eqx.__version__}", EquinoxTrainer, ("w1", "w2", "w5"), "jit-step"),)
