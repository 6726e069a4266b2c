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
    def __init__(self, workload: Workload):
        super().__init__(workload)
        self.optimizer = optax.sgd(workload.learning_rate)
        optimizer, loss_name = self.optimizer, workload.loss

        @eqx.filter_jit
        def step(model, opt_state, x, y):
            def objective(m):
                return mean_loss(jax.vmap(m)(x), y, loss_name)

            loss, grads = eqx.filter_value_and_grad(objective)(model)
            updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
            return eqx.apply_updates(model, updates), opt_state, loss

        def pair_step(state, x, y):
            model, opt_state, loss = step(*state, x, y)
            return (model, opt_state), loss

        self.step = pair_step
        self.models = [None] * workload.members

    def _fresh(self, member: int):
        w = self.workload
        model = EqxMLP(w.sizes, w.activation, key=jax.random.key(0))
        for i, p in enumerate(w.init_params[member]):  # eqx stores (n_out, n_in)
            model = eqx.tree_at(lambda m: (m.layers[i].weight, m.layers[i].bias), model,
                                (jnp.asarray(p["w"].T), jnp.asarray(p["b"])))
        return model, self.optimizer.init(eqx.filter(model, eqx.is_array))

    def train_member(self, member: int, seed: int) -> None:
        model, _ = epoch_loop(self.step, self._fresh(member), self.workload, seed, member)
        self.models[member] = jax.block_until_ready(model)

    def test_accuracy(self, member: int) -> float:
        logits = jax.vmap(self.models[member])(jnp.asarray(self.workload.x_test))
        return accuracy_of_logits(np.asarray(logits), self.workload.y_test)


PEERS = (Peer("Equinox, filter_jit loop", f"equinox {eqx.__version__}", EquinoxTrainer, ("w1", "w2", "w5"), "jit-step"),)
