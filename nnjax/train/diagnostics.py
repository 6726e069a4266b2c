"""Gradient health: what the compiled loop records per layer, and what it means.

Every training step calls :func:`layer_stats`: the gradient norms and NaN/Inf
counts of every step, and on :data:`SAMPLES_PER_EPOCH` evenly spaced steps per
epoch the update norms, entries above 1, dead units and saturated units; at the end
of the epoch :func:`epoch_stats` turns the steps' numbers into the history keys
listed in :data:`LAYER_KEYS`, each an array of shape ``(epochs, n_layers)``
(``dead_units`` and ``saturated_units``: ``(epochs, n_hidden)``).
:func:`nnjax.diagnose` reads them.

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

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from nnjax._base.typing import Params
from nnjax.train import branching

__all__ = [
    "LAYER_KEYS", "SAMPLES_PER_EPOCH", "SATURATING", "SATURATION_LEVEL", "STEP_COLUMNS", "dead_fraction", "epoch_stats",
    "layer_stats", "sampled_step", "saturated_fraction",
]

#: Per-layer history keys recorded by ``fit(..., diagnostics=True)``.
LAYER_KEYS = (
    "layer_grad_norm",  # ||dL/dW|| of each weight matrix, mean over the epoch's steps
    "layer_weight_norm",  # ||W|| at the end of the epoch
    "layer_update_ratio",  # ||delta W|| of a step over ||W||, mean over the sampled steps
    "layer_grad_above_1",  # fraction of dL/dW entries with |g| > 1, mean over the sampled steps
    "layer_nonfinite",  # count of NaN/Inf entries of dL/dW over the epoch's steps
    "dead_units",  # fraction of hidden units that output 0 for every example of a batch, mean over the sampled steps
    "saturated_units",  # fraction of sigmoid/tanh activations in the flat tails, mean over the sampled steps
)

#: Activations with flat tails, each with the map of its output onto [-1, 1] that puts the tails
#: at -1 and 1: ``tanh`` itself, and ``2 sigmoid - 1`` (which is ``tanh(x / 2)``).
SATURATING = {"tanh": lambda h: h, "sigmoid": lambda h: 2.0 * h - 1.0}

#: A unit is saturated where its mapped output is beyond this in magnitude: ``|tanh| > 0.99``,
#: a sigmoid below 0.005 or above 0.995. There the activation's slope is below 2% of its peak
#: (``1 - 0.99^2 = 0.0199``), so almost no gradient passes back through it.
SATURATION_LEVEL = 0.99


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
    sampled: jax.Array | bool = True, activations: Sequence[str] | None = None,
) -> dict[str, jax.Array]:
    """Raw numbers of one step: ``{"stats": (n_layers, 4), "dead_units": (n_hidden,), "saturated_units": (n_hidden,)}``.

    Every step pays for one reduction per weight matrix, ``sum g^2``, which the
    NaN guard computes anyway (the compiler shares it); NaN/Inf entries are
    counted only in a step whose sum is not finite. The update norm, the count of
    entries above 1 and the dead units cost a pass over the parameters and the
    activations each, about as much as a small network's step: they are taken on
    ``sampled`` steps only (see :func:`sampled_step`) and are NaN on the others.
    The saturated units add one comparison per sigmoid/tanh activation on those steps.

    Args:
      grads: the step's gradients, one ``{"w", "b", ...}`` dict per dense layer.
      updates: the optimizer's updates, the same structure.
      hidden: each hidden layer's activation, shape ``(batch, width)``.
      row_weights: ``(batch,)``; rows of weight 0 (padding) are ignored.
      sampled: whether this step takes the sampled statistics.
      activations: each hidden layer's activation name; ``None`` (or a name without
        flat tails, see :data:`SATURATING`) records NaN saturated units.

    Returns:
      ``"stats"`` with the columns (:data:`STEP_COLUMNS`) sum g^2, NaN/Inf count
      of g, sum u^2 (u the optimizer's update) and the count of |g| > 1, over each
      layer's weight matrix ``"w"``; ``"dead_units"`` from :func:`dead_fraction`;
      ``"saturated_units"`` from :func:`saturated_fraction`.
    """
    gw = [g["w"] for g in grads]
    grad_sq = jnp.stack([jnp.sum(jnp.square(g)) for g in gw])  # the guard's expression: computed once
    # branching.cond: under jax.vmap (a population) the count is taken only in a step where
    # some member's gradient is not finite, not in every step of every member
    nonfinite = branching.cond(
        jnp.all(jnp.isfinite(grad_sq)),
        lambda sq, gs: jnp.zeros_like(sq),
        lambda sq, gs: jnp.stack([_count(~jnp.isfinite(g)) for g in gs]),
        grad_sq, gw,
    )

    def measure():
        update_sq = jnp.stack([jnp.sum(jnp.sum(jnp.square(u["w"]), axis=0)) for u in updates])
        above = jnp.stack([_count(jnp.abs(g) > 1.0) for g in gw])
        return (jnp.stack([update_sq, above], axis=1), dead_fraction(hidden, row_weights),
                saturated_fraction(hidden, row_weights, activations))

    def skip():
        nan_hidden = jnp.full((len(hidden),), jnp.nan, jnp.float32)
        return jnp.full((len(gw), 2), jnp.nan, jnp.float32), nan_hidden, nan_hidden

    if isinstance(sampled, bool):
        sampled_stats, dead, saturated = measure() if sampled else skip()
    else:
        sampled_stats, dead, saturated = jax.lax.cond(sampled, measure, skip)
    stats = jnp.concatenate([jnp.stack([grad_sq, nonfinite], axis=1).astype(jnp.float32), sampled_stats], axis=1)
    return {"stats": stats, "dead_units": dead, "saturated_units": saturated}


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
        shape ``(steps, n_layers, 4)``, ``"dead_units"`` and ``"saturated_units"`` of
        shape ``(steps, n_hidden)``.
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
        "saturated_units": _mean_skipping_nan(per_step["saturated_units"]),
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


def saturated_fraction(
    hidden: list[jax.Array], row_weights: jax.Array, activations: Sequence[str] | None,
) -> jax.Array:
    """Per hidden layer, the fraction of activations (real rows x units) in the flat tails.

    A sigmoid or tanh unit is saturated on an example where its output, mapped
    onto [-1, 1] by :data:`SATURATING`, exceeds :data:`SATURATION_LEVEL` in
    magnitude: ``|tanh| > 0.99``, a sigmoid below 0.005 or above 0.995.

    Args:
      hidden: each hidden layer's activation, shape ``(batch, width)``.
      row_weights: ``(batch,)``; rows of weight 0 (padding) are ignored.
      activations: each hidden layer's activation name, or ``None``.

    Returns:
      ``(n_hidden,)``; NaN for a layer whose activation has no flat tails (ReLU
      and the like), for every layer when ``activations`` is ``None``, and for a
      batch without real rows.

    Example:
      >>> import jax.numpy as jnp
      >>> h = [jnp.array([[0.999, 0.5], [-0.995, 0.0]]), jnp.array([[0.999, 0.2], [0.001, 0.5]])]
      >>> saturated_fraction(h, jnp.ones(2), ("tanh", "sigmoid")).tolist()
      [0.5, 0.5]
    """
    real = (row_weights > 0).astype(jnp.float32)[:, None]
    rows = jnp.sum(real)
    fractions = []
    for i, h in enumerate(hidden):
        to_unit = SATURATING.get(activations[i]) if activations is not None else None
        if to_unit is None:
            fractions.append(jnp.array(jnp.nan, jnp.float32))
            continue
        flat = (jnp.abs(to_unit(h.astype(jnp.float32))) > SATURATION_LEVEL).astype(jnp.float32) * real
        fractions.append(jnp.sum(jnp.sum(flat, axis=0)) / (rows * h.shape[1]))  # NaN without real rows
    return jnp.stack(fractions) if fractions else jnp.zeros((0,), jnp.float32)
