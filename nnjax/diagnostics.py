"""Gradient health: what the compiled loop records per layer, and what it means.

Every training step calls :func:`layer_stats`: the gradient norms and NaN/Inf
counts of every step, and on :data:`SAMPLES_PER_EPOCH` evenly spaced steps per
epoch the update norms, entries above 1 and dead units; at the end of the epoch
:func:`epoch_stats` turns the steps' numbers into the history keys listed in
:data:`LAYER_KEYS`, each an array of shape ``(epochs, n_layers)``
(``dead_units``: ``(epochs, n_hidden)``). :func:`nnjax.diagnose` reads them.

A step whose loss is NaN has NaN gradients everywhere; its norms say nothing
about the size of the gradients, so the epoch means skip NaN step values
(an epoch in which every step was NaN records NaN). The NaN/Inf counts in
``layer_nonfinite`` keep the evidence.

Example:
  >>> import jax, optax, nnjax
  >>> data = nnjax.data.load_dataset("xor", n=64)
  >>> net = nnjax.MLP((2, 8, 8, 1), activation="tanh", output="sigmoid")
  >>> result = nnjax.fit(jax.random.key(0), net, (data.x, data.y), loss="binary_cross_entropy",
  ...                    optimizer=optax.sgd(0.1), epochs=3, batch_size=16)
  >>> result.history["layer_grad_norm"].shape   # (epochs, dense layers)
  (3, 3)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nnjax._typing import Params

__all__ = ["LAYER_KEYS", "SAMPLES_PER_EPOCH", "STEP_COLUMNS", "dead_fraction", "epoch_stats", "layer_stats", "sampled_step"]

#: Per-layer history keys recorded by ``fit(..., diagnostics=True)``.
LAYER_KEYS = (
    "layer_grad_norm",  # ||dL/dW|| of each weight matrix, mean over the epoch's steps
    "layer_weight_norm",  # ||W|| at the end of the epoch
    "layer_update_ratio",  # ||delta W|| of a step over ||W||, mean over the sampled steps
    "layer_grad_above_1",  # fraction of dL/dW entries with |g| > 1, mean over the sampled steps
    "layer_nonfinite",  # count of NaN/Inf entries of dL/dW over the epoch's steps
    "dead_units",  # fraction of hidden units that output 0 for every example of a batch, mean over the sampled steps
)


#: Steps per epoch that record the sampled statistics (evenly spaced, the last step included).
SAMPLES_PER_EPOCH = 4


def sampled_step(step: jax.Array | int, steps: int) -> jax.Array:
    """Whether ``step`` (0-based, of ``steps`` per epoch) records the sampled statistics."""
    stride = max(1, -(-steps // SAMPLES_PER_EPOCH))
    return (steps - 1 - jnp.asarray(step)) % stride == 0


def _count(mask: jax.Array) -> jax.Array:
    # a float sum down the columns first: XLA's CPU code for boolean counts is several times slower
    return jnp.sum(jnp.sum(mask.astype(jnp.float32), axis=0))


def layer_stats(
    grads: Params, updates: Params, hidden: list[jax.Array], row_weights: jax.Array, *,
    sampled: jax.Array | bool = True,
) -> dict[str, jax.Array]:
    """Raw numbers of one step: ``{"stats": (n_layers, 4), "dead_units": (n_hidden,)}``.

    Every step pays for one reduction per weight matrix, ``sum g^2``, which the
    NaN guard computes anyway (the compiler shares it); NaN/Inf entries are
    counted only in a step whose sum is not finite. The update norm, the count of
    entries above 1 and the dead units cost a pass over the parameters and the
    activations each, about as much as a small network's step: they are taken on
    ``sampled`` steps only (see :func:`sampled_step`) and are NaN on the others.

    Returns:
      ``"stats"`` with the columns (:data:`STEP_COLUMNS`) sum g^2, NaN/Inf count
      of g, sum u^2 (u the optimizer's update) and the count of |g| > 1, over each
      layer's weight matrix ``"w"``; ``"dead_units"`` from :func:`dead_fraction`.
    """
    gw = [g["w"] for g in grads]
    grad_sq = jnp.stack([jnp.sum(jnp.square(g)) for g in gw])  # the guard's expression: computed once
    nonfinite = jax.lax.cond(
        jnp.all(jnp.isfinite(grad_sq)),
        lambda: jnp.zeros_like(grad_sq),
        lambda: jnp.stack([_count(~jnp.isfinite(g)) for g in gw]),
    )

    def measure():
        update_sq = jnp.stack([jnp.sum(jnp.sum(jnp.square(u["w"]), axis=0)) for u in updates])
        above = jnp.stack([_count(jnp.abs(g) > 1.0) for g in gw])
        return jnp.stack([update_sq, above], axis=1), dead_fraction(hidden, row_weights)

    def skip():
        return jnp.full((len(gw), 2), jnp.nan, jnp.float32), jnp.full((len(hidden),), jnp.nan, jnp.float32)

    if isinstance(sampled, bool):
        sampled_stats, dead = measure() if sampled else skip()
    else:
        sampled_stats, dead = jax.lax.cond(sampled, measure, skip)
    stats = jnp.concatenate([jnp.stack([grad_sq, nonfinite], axis=1).astype(jnp.float32), sampled_stats], axis=1)
    return {"stats": stats, "dead_units": dead}


#: Columns of the ``"stats"`` array :func:`layer_stats` returns.
STEP_COLUMNS = ("grad_sq", "nonfinite", "update_sq", "grad_above_1")


def _sum_squares(x: jax.Array) -> jax.Array:
    return jnp.sum(jnp.square(x.astype(jnp.float32)))


def _mean_skipping_nan(values: jax.Array) -> jax.Array:
    """Mean over axis 0 of the values that are not NaN (NaN where every value is NaN)."""
    present = ~jnp.isnan(values)
    count = jnp.sum(present, axis=0)
    total = jnp.sum(jnp.where(present, values, 0.0), axis=0)
    return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)


def epoch_stats(per_step: dict[str, jax.Array], params: Params) -> dict[str, jax.Array]:
    """The history's per-layer statistics of one epoch from its steps' :func:`layer_stats`.

    Args:
      per_step: :func:`layer_stats` stacked over the epoch's steps: ``"stats"`` of
        shape ``(steps, n_layers, 4)`` and ``"dead_units"`` of shape ``(steps, n_hidden)``.
      params: the parameters at the end of the epoch.

    Returns:
      The :data:`LAYER_KEYS` arrays of the epoch. Means skip NaN step values
      (steps whose loss was NaN, and steps not sampled); Inf stays (a norm that
      overflowed). The update ratio is the mean update norm over the weight norm
      at the end of the epoch.
    """
    col = {name: per_step["stats"][..., i] for i, name in enumerate(STEP_COLUMNS)}  # each (steps, n_layers)
    weight_norm = jnp.sqrt(jnp.stack([_sum_squares(p["w"]) for p in params]))
    sizes = jnp.array([p["w"].size for p in params], jnp.float32)
    return {
        "layer_grad_norm": _mean_skipping_nan(jnp.sqrt(col["grad_sq"])),
        "layer_weight_norm": weight_norm,
        "layer_update_ratio": _mean_skipping_nan(jnp.sqrt(col["update_sq"])) / jnp.maximum(weight_norm, 1e-12),
        "layer_grad_above_1": _mean_skipping_nan(jnp.where(jnp.isnan(col["grad_sq"]), jnp.nan, col["grad_above_1"]))
        / sizes,
        "layer_nonfinite": jnp.sum(col["nonfinite"], axis=0),
        "dead_units": _mean_skipping_nan(per_step["dead_units"]),
    }


def dead_fraction(hidden: list[jax.Array], row_weights: jax.Array) -> jax.Array:
    """Per hidden layer, the fraction of units that are 0 for every real row of the batch.

    Args:
      hidden: each hidden layer's activation, shape ``(batch, width)``.
      row_weights: ``(batch,)``; rows of weight 0 (padding) are ignored.
    """
    real = (row_weights > 0)[:, None]
    fractions = [jnp.mean(jnp.all((h == 0) | ~real, axis=0).astype(jnp.float32)) for h in hidden]
    return jnp.stack(fractions) if fractions else jnp.zeros((0,), jnp.float32)
