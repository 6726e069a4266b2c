"""Gradient health: what the compiled loop records per layer, and what it means.

Every training step calls :func:`layer_stats` (a few reductions per weight
matrix, no copies) and :func:`dead_fraction`; at the end of the epoch
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

__all__ = ["LAYER_KEYS", "dead_fraction", "epoch_stats", "layer_stats"]

#: Per-layer history keys recorded by ``fit(..., diagnostics=True)``.
LAYER_KEYS = (
    "layer_grad_norm",  # ||dL/dW|| of each weight matrix, mean over the epoch's steps
    "layer_weight_norm",  # ||W|| at the end of the epoch
    "layer_update_ratio",  # ||delta W|| / ||W|| of a step, mean over the epoch's steps
    "layer_grad_above_1",  # fraction of dL/dW entries with |g| > 1, mean over the epoch's steps
    "layer_nonfinite",  # count of NaN/Inf gradient entries (every leaf of the layer) over the epoch
    "dead_units",  # fraction of hidden units that output 0 for every example of a batch, mean over steps
)


def _sum_squares(x: jax.Array) -> jax.Array:
    return jnp.sum(jnp.square(x.astype(jnp.float32)))


def layer_stats(params: Params, grads: Params, updates: Params) -> dict[str, jax.Array]:
    """Raw per-layer numbers of one step, each of shape ``(n_layers,)``.

    Sums rather than means, with no masking of non-finite entries: a handful of
    fused reductions per layer is all a step pays. :func:`epoch_stats` turns them
    into the history's statistics.

    Returns:
      ``{"grad_sq": sum g^2, "weight_sq": sum W^2, "update_sq": sum u^2,
      "grad_above_1": count |g| > 1, "nonfinite": count of NaN/Inf}``: the first
      four over the weight matrix ``"w"``, the count over every gradient leaf of the layer.
    """
    out: dict[str, list] = {"grad_sq": [], "weight_sq": [], "update_sq": [], "grad_above_1": [], "nonfinite": []}
    for p, g, u in zip(params, grads, updates):
        gw = g["w"]
        out["grad_sq"].append(_sum_squares(gw))
        out["weight_sq"].append(_sum_squares(p["w"]))
        out["update_sq"].append(_sum_squares(u["w"]))
        out["grad_above_1"].append(jnp.sum(jnp.abs(gw) > 1.0).astype(jnp.float32))
        nonfinite = [jnp.sum(~jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(g)]
        out["nonfinite"].append(sum(nonfinite[1:], nonfinite[0]).astype(jnp.float32))
    return {k: jnp.stack(v) for k, v in out.items()}


def _mean_skipping_nan(values: jax.Array) -> jax.Array:
    """Mean over axis 0 of the values that are not NaN (NaN where every value is NaN)."""
    present = ~jnp.isnan(values)
    count = jnp.sum(present, axis=0)
    total = jnp.sum(jnp.where(present, values, 0.0), axis=0)
    return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)


def epoch_stats(per_step: dict[str, jax.Array], params: Params) -> dict[str, jax.Array]:
    """The history's per-layer statistics of one epoch from its steps' :func:`layer_stats`.

    Args:
      per_step: :func:`layer_stats` stacked over the epoch's steps (arrays of
        shape ``(steps, n_layers)``), plus ``"dead_units"`` ``(steps, n_hidden)``.
      params: the parameters at the end of the epoch.

    Returns:
      The :data:`LAYER_KEYS` arrays of the epoch. Means skip NaN step values
      (steps whose loss was NaN); Inf stays (a norm that overflowed).
    """
    grad_norm = jnp.sqrt(per_step["grad_sq"])
    ratio = jnp.sqrt(per_step["update_sq"]) / jnp.maximum(jnp.sqrt(per_step["weight_sq"]), 1e-12)
    sizes = jnp.array([p["w"].size for p in params], jnp.float32)
    above = jnp.where(jnp.isnan(per_step["grad_sq"]), jnp.nan, per_step["grad_above_1"] / sizes)
    return {
        "layer_grad_norm": _mean_skipping_nan(grad_norm),
        "layer_weight_norm": jnp.sqrt(jnp.stack([_sum_squares(p["w"]) for p in params])),
        "layer_update_ratio": _mean_skipping_nan(ratio),
        "layer_grad_above_1": _mean_skipping_nan(above),
        "layer_nonfinite": jnp.sum(per_step["nonfinite"], axis=0),
        "dead_units": jnp.mean(per_step["dead_units"], axis=0),
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
