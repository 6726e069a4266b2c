"""Gradient health: what the compiled loop records per layer, and what it means.

:func:`layer_stats` runs inside every training step (cheap reductions over the
parameters); :func:`nnjax.fit` averages it over each epoch's steps into the
history keys listed in :data:`LAYER_KEYS`, each an array of shape
``(epochs, n_layers)`` (``dead_units``: ``(epochs, n_hidden)``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nnjax._typing import Params

__all__ = ["LAYER_KEYS", "dead_fraction", "layer_stats"]

#: Per-layer history keys recorded by ``fit(..., diagnostics=True)``.
LAYER_KEYS = (
    "layer_grad_norm",  # ||dL/dW|| of each weight matrix, mean over the epoch's steps
    "layer_weight_norm",  # ||W|| at the end of the epoch
    "layer_update_ratio",  # ||delta W|| / ||W||, mean over steps
    "layer_grad_above_1",  # fraction of dL/dW entries with |g| > 1, mean over steps
    "layer_nonfinite",  # count of NaN/Inf gradient entries over the epoch
    "dead_units",  # fraction of hidden units that output 0 for every example of a batch
)


def _norm(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.sum(jnp.square(x.astype(jnp.float32))))


def layer_stats(params: Params, grads: Params, updates: Params) -> dict[str, jax.Array]:
    """Per-layer gradient, weight and update statistics of one step, each of shape ``(n_layers,)``.

    ``layer_nonfinite`` counts every non-finite gradient entry of the layer
    (weights, bias and any other leaf); the other statistics use the weight
    matrix ``"w"``. Non-finite gradients are zeroed before the norms so that
    one bad entry does not hide the others.
    """
    out: dict[str, list] = {k: [] for k in LAYER_KEYS if k != "dead_units"}
    for p, g, u in zip(params, grads, updates):
        gw = g["w"]
        finite = jnp.isfinite(gw)
        gw = jnp.where(finite, gw, 0.0)
        w_norm = _norm(p["w"])
        out["layer_grad_norm"].append(_norm(gw))
        out["layer_weight_norm"].append(w_norm)
        out["layer_update_ratio"].append(_norm(jnp.where(finite, u["w"], 0.0)) / jnp.maximum(w_norm, 1e-12))
        out["layer_grad_above_1"].append(jnp.mean((jnp.abs(gw) > 1.0).astype(jnp.float32)))
        out["layer_nonfinite"].append(
            sum(jnp.sum(~jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(g)).astype(jnp.float32)
        )
    return {k: jnp.stack(v) for k, v in out.items()}


def dead_fraction(hidden: list[jax.Array], row_weights: jax.Array) -> jax.Array:
    """Per hidden layer, the fraction of units that are 0 for every real row of the batch."""
    real = (row_weights > 0)[:, None]
    fractions = [jnp.mean(jnp.all((h == 0) | ~real, axis=0).astype(jnp.float32)) for h in hidden]
    return jnp.stack(fractions) if fractions else jnp.zeros((0,), jnp.float32)

