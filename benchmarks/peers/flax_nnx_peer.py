"""Flax NNX: a mutable ``nnx.Module``, ``nnx.Optimizer`` and a loop of default ``nnx.jit`` steps."""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from benchmarks.peers.base import Peer, Trainer, accuracy_of_logits
from benchmarks.peers.jax_mlp import mean_loss
from benchmarks.peers.jit_step_loop import epoch_loop
from benchmarks.workloads import Workload

__all__ = ["NnxMLP", "NnxTrainer", "PEERS"]


class NnxMLP(nnx.Module):
    """``nnx.Linear`` layers with a hidden activation; returns logits."""

    def __init__(self, sizes: tuple[int, ...], activation: str, *, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.relu = activation == "relu"

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = layer(x)
            x = nnx.relu(x) if self.relu else nnx.sigmoid(x)
        return self.layers[-1](x)


class NnxTrainer(Trainer):
    """A new module per run (NNX modules are updated in place), holding one reused ``optax.sgd`` object."""

    fresh_objects = "a new optax.sgd(lr) in the new nnx.Optimizer (steady runs reuse one optax object)"

    def __init__(self, workload: Workload):
        super().__init__(workload)
        self.tx = optax.sgd(workload.learning_rate)
        loss_name = workload.loss

        @nnx.jit
        def step(model, optimizer, x, y):
            def objective(m):
                return mean_loss(m(x), y, loss_name)

            loss, grads = nnx.value_and_grad(objective)(model)
            optimizer.update(model, grads)
            return loss

        def stateful_step(state, x, y):
            return state, step(*state, x, y)  # model and optimizer are updated in place

        self.step = stateful_step
        self.models = [None] * workload.members

    def _fresh(self, member: int):
        w = self.workload
        model = NnxMLP(w.sizes, w.activation, rngs=nnx.Rngs(0))
        for layer, p in zip(model.layers, w.init_params[member]):
            layer.kernel.value = jnp.asarray(p["w"])
            layer.bias.value = jnp.asarray(p["b"])
        tx = optax.sgd(w.learning_rate) if self.fresh else self.tx
        return model, nnx.Optimizer(model, tx, wrt=nnx.Param)

    def train_member(self, member: int, seed: int) -> None:
        model, optimizer = epoch_loop(self.step, self._fresh(member), self.workload, seed, member)
        jax.block_until_ready(nnx.state(model))
        self.models[member] = model

    def test_accuracy(self, member: int) -> float:
        logits = self.models[member](jnp.asarray(self.workload.x_test))
        return accuracy_of_logits(np.asarray(logits), self.workload.y_test)


PEERS = (Peer("Flax NNX, nnx.jit loop", f"flax {flax.__version__}", NnxTrainer, ("w1", "w2", "w5"), "jit-step"),)
