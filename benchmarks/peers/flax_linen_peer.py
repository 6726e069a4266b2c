"""Flax Linen with optax: a ``TrainState`` and a Python loop of ``jax.jit`` steps (Flax's own examples' pattern)."""

from __future__ import annotations

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from benchmarks.peers.base import Peer, Trainer, accuracy_of_logits
from benchmarks.peers.jax_mlp import mean_loss
from benchmarks.peers.jit_step_loop import epoch_loop
from benchmarks.workloads import Workload

__all__ = ["LinenMLP", "LinenTrainer", "PEERS"]


class LinenMLP(nn.Module):
    """Dense layers with a hidden activation; returns logits."""

    sizes: tuple[int, ...]
    activation: str

    @nn.compact
    def __call__(self, x):
        act = nn.relu if self.activation == "relu" else nn.sigmoid
        for width in self.sizes[1:-1]:
            x = act(nn.Dense(width)(x))
        return nn.Dense(self.sizes[-1])(x)


def linen_params(params) -> dict:
    """nnjax's parameter list as Linen's ``{"Dense_i": {"kernel", "bias"}}`` (same layout: (n_in, n_out))."""
    return {f"Dense_{i}": {"kernel": jnp.asarray(p["w"]), "bias": jnp.asarray(p["b"])} for i, p in enumerate(params)}


class LinenTrainer(Trainer):
    fresh_objects = "a new LinenMLP and optax.sgd(lr) in a new TrainState; the jitted step is defined once"

    def __init__(self, workload: Workload):
        super().__init__(workload)
        self.model = LinenMLP(workload.sizes, workload.activation)
        self.tx = optax.sgd(workload.learning_rate)
        loss_name = workload.loss

        @jax.jit
        def step(state, x, y):
            def objective(params):
                return mean_loss(state.apply_fn({"params": params}, x), y, loss_name)

            loss, grads = jax.value_and_grad(objective)(state.params)
            return state.apply_gradients(grads=grads), loss

        self.step = step
        self.states = [None] * workload.members

    def train_member(self, member: int, seed: int) -> None:
        w = self.workload
        model, tx = (LinenMLP(w.sizes, w.activation), optax.sgd(w.learning_rate)) if self.fresh else (self.model, self.tx)
        start = train_state.TrainState.create(apply_fn=model.apply, params=linen_params(w.init_params[member]), tx=tx)
        self.states[member] = jax.block_until_ready(epoch_loop(self.step, start, self.workload, seed, member))

    def test_accuracy(self, member: int) -> float:
        logits = self.model.apply({"params": self.states[member].params}, self.workload.x_test)
        return accuracy_of_logits(np.asarray(logits), self.workload.y_test)


PEERS = (
    Peer("Flax Linen + optax, jit-step loop", f"flax {flax.__version__}", LinenTrainer, ("w1", "w2", "w5"), "jit-step"),
)
