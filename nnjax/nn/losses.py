"""Losses and weight penalties.

Every loss takes the network's pre-activation output (logits, shape ``(n, k)``)
and the targets and returns one value per example, shape ``(n,)``. The batch
loss is their (weighted) mean, :func:`mean_loss`.

=======================  ==========================================  ===================
name                     per example                                 targets
=======================  ==========================================  ===================
mse                      mean_k (o_k - y_k)^2 (no factor 1/2)        floats, (n,) or (n, k)
binary_cross_entropy     mean_k -[y log s(o) + (1-y) log(1-s(o))]     0/1, (n,) or (n, k)
softmax_cross_entropy    -log softmax(o)_y                           ints (n,) or one-hot (n, k)
hinge                    mean_k max(0, 1 - y_k o_k)                   -1/+1, (n,) or (n, k)
=======================  ==========================================  ===================

The sigmoid and softmax are applied inside the cross-entropies (in log space,
so large logits do not overflow). Penalties: ``l1 * sum |W| + l2 * sum W^2``
over the weight matrices only, never biases or batch-norm scales.

Example:
  >>> import jax.numpy as jnp
  >>> from nnjax import losses
  >>> losses.get("mse")(jnp.array([[1.0], [3.0]]), jnp.array([0.0, 1.0]))
  Array([1., 4.], dtype=float32)
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax._base import validation as checks

LossFn = Callable[[jax.Array, jax.Array], jax.Array]

__all__ = [
    "MAXIMISED",
    "Loss",
    "LossFn",
    "accuracy",
    "binary_cross_entropy",
    "get",
    "hinge",
    "is_maximised",
    "l1_penalty",
    "l2_penalty",
    "mean_loss",
    "mse",
    "names",
    "penalty",
    "resolve",
    "softmax_cross_entropy",
    "weight_matrices",
]


def _as_columns(y: jax.Array, out: jax.Array) -> jax.Array:
    """Targets of shape (n,) become (n, 1) when the output has one column."""
    y = jnp.asarray(y)
    if y.ndim == 1 and out.ndim == 2 and out.shape[-1] == 1:
        y = y[:, None]
    return y.astype(out.dtype)


def mse(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Squared error averaged over outputs, one value per example."""
    y = _as_columns(y, logits)
    return jnp.mean(jnp.square(logits - y), axis=-1)


def binary_cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Sigmoid cross-entropy from logits with 0/1 labels, averaged over outputs."""
    y = _as_columns(y, logits)
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y), axis=-1)


def _class_targets(y: jax.Array, logits: jax.Array) -> jax.Array:
    """Integer labels of shape (n, 1) become (n,) when there are several classes.

    A single column can never be a one-hot target for k > 1 classes; without this,
    it would broadcast against the log-probabilities and give a wrong loss silently.
    """
    y = jnp.asarray(y)
    if y.ndim == logits.ndim and y.shape[-1] == 1 and logits.shape[-1] > 1:
        y = y[..., 0]
    return y


def softmax_cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Softmax cross-entropy from logits; int labels (n,) or (n, 1), or one-hot (n, k)."""
    y = _class_targets(y, logits)
    if y.ndim == logits.ndim - 1:
        return optax.softmax_cross_entropy_with_integer_labels(logits, y.astype(jnp.int32))
    return optax.softmax_cross_entropy(logits, y.astype(logits.dtype))


def hinge(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Hinge loss max(0, 1 - y o) with labels in {-1, +1}, averaged over outputs."""
    y = _as_columns(y, logits)
    return jnp.mean(optax.hinge_loss(logits, y), axis=-1)


def _softmax_hit(logits: jax.Array, y: jax.Array) -> jax.Array:
    y = _class_targets(jnp.asarray(y), logits)
    labels = y if y.ndim == logits.ndim - 1 else jnp.argmax(y, axis=-1)
    return jnp.argmax(logits, axis=-1) == labels


def _binary_hit(logits: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.all((logits > 0) == (_as_columns(y, logits) > 0.5), axis=-1)


def _sign_hit(logits: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.all(jnp.where(logits >= 0, 1.0, -1.0) == _as_columns(y, logits), axis=-1)


def _width_check(y: np.ndarray, n: int, k: int, name: str) -> np.ndarray:
    width = 1 if y.ndim == 1 else y.shape[1]
    if width != k:
        raise ValueError(f"{name}: expected targets of shape ({n}, {k}){' or (n,)' if k == 1 else ''} for "
                         f"{k} output(s), got {y.shape}")
    return y


def _real_targets(y: Any, n: int, k: int, name: str) -> np.ndarray:
    return _width_check(checks.check_targets(y, n, name), n, k, name)


def _any_targets(y: Any, n: int, k: int, name: str) -> np.ndarray:
    """A callable loss defines its own targets: only the row count and finiteness are checked."""
    return checks.check_targets(y, n, name)


def _class_labels(y: Any, n: int, k: int, name: str) -> np.ndarray:
    if np.ndim(y) == 2:  # one-hot rows
        y = checks.check_targets(y, n, name)
        if y.shape[1] != k:
            raise ValueError(f"{name}: expected one-hot targets of shape ({n}, {k}), got {y.shape}")
        return y
    return checks.check_labels(y, k, name, n=n)


def _binary_labels(y: Any, n: int, k: int, name: str) -> np.ndarray:
    if np.ndim(y) == 2 and np.shape(y)[1] > 1:  # multilabel 0/1 rows
        y = checks.check_targets(y, n, name)
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"{name}: expected 0/1 label indicators, got values {np.unique(y[~np.isin(y, (0, 1))])[:10]}")
        return _width_check(y.astype(np.float32), n, k, name)
    return _width_check(checks.check_binary_labels(y, name, n=n), n, k, name)


def _signed_labels(y: Any, n: int, k: int, name: str) -> np.ndarray:
    return _width_check(checks.check_signed_labels(y, name, n=n), n, k, name)


class Loss(NamedTuple):
    """A resolved loss and everything that follows from it.

    Attributes:
      name: the registered name (or the callable's ``__name__``).
      fn: the per-example loss ``fn(logits, y) -> (n,)``.
      classification: whether it classifies (then ``correct`` is set and accuracy is recorded).
      correct: ``correct(logits, y) -> (n,)`` booleans, for classification losses.
      output: the output activation that turns logits into predictions.
      check_targets: the host-side target check ``check_targets(y, n, k, name) -> np.ndarray``
        for ``n`` examples and ``k`` outputs.
    """

    name: str
    fn: LossFn
    classification: bool
    correct: Callable[[jax.Array, jax.Array], jax.Array] | None = None
    output: str = "identity"
    check_targets: Callable[..., np.ndarray] = _real_targets

    def accuracy(self, logits: jax.Array, y: jax.Array) -> jax.Array:
        """Per-example correctness, 1.0 or 0.0."""
        if self.correct is None:
            raise ValueError(f"accuracy is defined for classification losses, got {self.name!r}")
        return self.correct(logits, y).astype(logits.dtype)


_REGISTRY: dict[str, Loss] = {
    "mse": Loss("mse", mse, False),
    "binary_cross_entropy": Loss("binary_cross_entropy", binary_cross_entropy, True, _binary_hit, "sigmoid",
                                 _binary_labels),
    "softmax_cross_entropy": Loss("softmax_cross_entropy", softmax_cross_entropy, True, _softmax_hit, "softmax",
                                  _class_labels),
    "hinge": Loss("hinge", hinge, True, _sign_hit, "sign", _signed_labels),
}
_ALIASES = {
    "squared_error": "mse",
    "bce": "binary_cross_entropy",
    "log_loss": "binary_cross_entropy",
    "cross_entropy": "softmax_cross_entropy",
    "categorical_cross_entropy": "softmax_cross_entropy",
}

#: History metrics where larger is better (everything else is minimised): the one table that
#: early stopping, populations, sweeps and the estimators read.
MAXIMISED = ("accuracy", "r2")


def is_maximised(metric: str) -> bool:
    """Whether larger values of the history metric ``metric`` (e.g. "val_accuracy") are better."""
    return any(part in metric for part in MAXIMISED)


def accuracy(kind: str | Loss, logits: jax.Array, y: jax.Array) -> jax.Array:
    """Per-example correctness (1.0 or 0.0) for the classification loss ``kind``."""
    name = _ALIASES.get(kind, kind) if isinstance(kind, str) else None
    if name is not None and name not in _REGISTRY:
        raise ValueError(f"accuracy is defined for classification losses, got {kind!r}")
    return resolve(kind).accuracy(logits, y)


def names() -> tuple[str, ...]:
    """All registered loss names, aliases included."""
    return tuple(sorted([*_REGISTRY, *_ALIASES]))


def resolve(loss: str | LossFn | Loss) -> Loss:
    """A :class:`Loss` for a name, a callable (not a classifier) or a Loss."""
    if isinstance(loss, Loss):
        return loss
    if callable(loss):
        return Loss(getattr(loss, "__name__", "custom"), loss, False, check_targets=_any_targets)
    name = _ALIASES.get(loss, loss)
    if name not in _REGISTRY:
        raise ValueError(f"unknown loss {loss!r}: expected one of {', '.join(names())} or a callable")
    return _REGISTRY[name]


def get(loss: str | LossFn) -> LossFn:
    """The per-example loss function called ``loss`` (a callable is returned unchanged)."""
    return resolve(loss).fn


def mean_loss(per_example: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Weighted mean ``sum(w l) / sum(w)`` (plain mean without weights).

    A batch whose weights sum to zero (all rows padding) has mean 0 and zero gradient.
    """
    if weights is None:
        return jnp.mean(per_example)
    weights = weights.astype(per_example.dtype)
    total = jnp.sum(weights)
    safe_total = jnp.where(total > 0, total, 1.0)
    return jnp.sum(per_example * weights) / safe_total


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
