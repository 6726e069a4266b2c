"""Plain JAX math shared by the hand-written loops (no library beyond jax and optax's losses)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from benchmarks.workloads import Workload

__all__ = ["as_tuples", "forward", "make_sgd_step", "mean_loss"]


def as_tuples(params) -> tuple:
    """nnjax's ``[{"w", "b"}, ...]`` as a tuple of ``(w, b)`` device arrays."""
    return tuple((jnp.asarray(layer["w"]), jnp.asarray(layer["b"])) for layer in params)


def forward(params: tuple, x: jax.Array, activation: str) -> jax.Array:
    """Logits of the MLP ``params`` (tuple of ``(w, b)``) on the batch ``x``."""
    act = jax.nn.relu if activation == "relu" else jax.nn.sigmoid
    for w, b in params[:-1]:
        x = act(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def mean_loss(logits: jax.Array, y: jax.Array, loss: str) -> jax.Array:
    """The batch mean of softmax cross-entropy (integer labels) or sigmoid cross-entropy (0/1 labels)."""
    if loss == "softmax_cross_entropy":
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits[:, 0], y.astype(logits.dtype)))


def make_sgd_step(w: Workload):
    """``step(params, x, y) -> (params, loss)``: one plain SGD step on the batch mean loss."""
    lr = w.learning_rate

    def objective(params, x, y):
        return mean_loss(forward(params, x, w.activation), y, w.loss)

    def step(params, x, y):
        loss, grads = jax.value_and_grad(objective)(params, x, y)
        return jax.tree.map(lambda p, g: p - lr * g, params, grads), loss

    return step
