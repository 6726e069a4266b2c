"""Weight penalties: ``l1 * sum |W| + l2 * sum W^2`` over the weight matrices only.

Never biases or batch-norm scales. A weight matrix is a leaf under the key "w" (dense layers),
"proj" (residual projections) or "kernel" (Flax's layers); :mod:`nnjax.losses` re-exports these.

Example:
  >>> import jax.numpy as jnp
  >>> params = [{"w": jnp.array([[1.0, -2.0]]), "b": jnp.array([5.0, 5.0])}]
  >>> float(penalty(params, l1=0.5, l2=0.25))  # 0.5 * 3 + 0.25 * 5
  2.75
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["l1_penalty", "l2_penalty", "penalty", "weight_matrices"]

_WEIGHT_KEYS = ("w", "proj", "kernel")  # "kernel": Flax's weight matrices


def weight_matrices(params: Any) -> list[jax.Array]:
    """The weight matrices of a parameter pytree: leaves under the keys "w", "proj" and "kernel"."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    out = []
    for path, leaf in leaves:
        last = path[-1]
        if isinstance(last, jax.tree_util.DictKey) and last.key in _WEIGHT_KEYS:
            out.append(leaf)
    return out


def l1_penalty(params: Any) -> jax.Array:
    """sum |W| over the weight matrices."""
    return sum((jnp.sum(jnp.abs(w)) for w in weight_matrices(params)), jnp.zeros(()))


def l2_penalty(params: Any) -> jax.Array:
    """sum W^2 over the weight matrices."""
    return sum((jnp.sum(jnp.square(w)) for w in weight_matrices(params)), jnp.zeros(()))


def penalty(params: Any, l1: float | jax.Array = 0.0, l2: float | jax.Array = 0.0) -> jax.Array:
    """``l1 * sum |W| + l2 * sum W^2`` over weight matrices (biases excluded)."""
    return l1 * l1_penalty(params) + l2 * l2_penalty(params)
