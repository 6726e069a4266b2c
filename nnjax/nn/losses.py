"""Losses: the per-example functions and the registry of :class:`Loss` records.

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
so large logits do not overflow). Each registered name resolves to a :class:`Loss` record that
owns everything that follows from the loss (its targets, output activation, predictions,
probabilities and history metrics; the host-side pieces are in :mod:`nnjax.nn.targets`), so no
caller compares loss names. Penalties (``l1 * sum |W| + l2 * sum W^2`` over the weight matrices
only) are in :mod:`nnjax.nn.penalties`, re-exported here.

Example:
  >>> import jax.numpy as jnp
  >>> from nnjax import losses
  >>> losses.get("mse")(jnp.array([[1.0], [3.0]]), jnp.array([0.0, 1.0]))
  Array([1., 4.], dtype=float32)
"""

from __future__ import annotations

import functools
import types
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax.nn import targets
from nnjax.nn.penalties import l1_penalty, l2_penalty, penalty, weight_matrices

LossFn = Callable[[jax.Array, jax.Array], jax.Array]

__all__ = [
    "DEFAULTS",
    "MAXIMISED",
    "REGISTRY",
    "Loss",
    "LossFn",
    "accuracy",
    "binary_cross_entropy",
    "for_output",
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


# ----------------------------------------------------------------------------------------------
# The device side: metrics of the history besides the loss


def _fit_metrics(logits: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
    """MSE and R^2 (averaged over outputs) of the whole set at once, for the history."""
    target = _as_columns(y, logits)
    sse = jnp.sum(jnp.square(logits - target), axis=0)
    sst = jnp.sum(jnp.square(target - jnp.mean(target, axis=0)), axis=0)
    return {"mse": jnp.mean(sse) / target.shape[0], "r2": jnp.mean(1.0 - sse / jnp.where(sst > 0, sst, 1.0))}


def _no_metrics(logits: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
    return {}


class Loss(NamedTuple):
    """A resolved loss and everything that follows from it: the registry's one entry per loss.

    Every caller asks the record instead of comparing loss names: the training loop (``fn``,
    ``correct``, :meth:`metrics`), the host checks (``check_targets``, :meth:`check_output`), the
    run directories and saved models (``encode``, ``decode``, ``probabilities``, ``n_outputs``,
    ``output``) and the command line.

    Attributes:
      name: the registered name (or the callable's ``__name__``).
      fn: the per-example loss ``fn(logits, y) -> (n,)``.
      classification: whether it classifies (then ``correct`` is set and accuracy is recorded).
      correct: ``correct(logits, y) -> (n,)`` booleans, for classification losses.
      output: the output activation that turns its logits into predictions (``MLP(output=...)``).
      check_targets: the host-side target check ``check_targets(y, n, k, name) -> np.ndarray``
        for ``n`` examples and ``k`` outputs.
      outputs: every output activation that reads its logits as trained (``output`` first);
        None: any (a loss of your own).
      encode: ``encode(y) -> targets`` as the loss takes them, from class indices (a classifier:
        indices for softmax cross-entropy, 0/1 for binary cross-entropy, -1/+1 for the hinge
        loss) or from values (float32).
      decode: ``decode(logits) -> predictions``: class indices ``(n,)`` (0/1 indicators
        ``(n, k)`` for several sigmoid outputs), or values (``(n,)`` for one output).
      probabilities: ``probabilities(logits) -> (n, n_classes)`` float64 class probabilities
        (per label for several sigmoid outputs), or None where the loss gives none.
      n_outputs: ``n_outputs(k)``: the network's output width for ``k`` classes (a classifier)
        or ``k`` target columns; raises ValueError for a ``k`` the loss cannot take.
      extra_metrics: ``extra_metrics(logits, y) -> dict`` of history metrics besides the loss and
        accuracy, computed on the device (MSE and R^2 for "mse").
    """

    name: str
    fn: LossFn
    classification: bool
    correct: Callable[[jax.Array, jax.Array], jax.Array] | None = None
    output: str = "identity"
    check_targets: Callable[..., np.ndarray] = targets.check_values
    outputs: tuple[str, ...] | None = None
    encode: Callable[[Any], np.ndarray] = targets.encode_values
    decode: Callable[[Any], np.ndarray] = targets.decode_values
    probabilities: Callable[[Any], np.ndarray | None] = targets.no_probabilities
    n_outputs: Callable[[int], int] = targets.one_output_each
    extra_metrics: Callable[[jax.Array, jax.Array], dict] = _no_metrics

    def accuracy(self, logits: jax.Array, y: jax.Array) -> jax.Array:
        """Per-example correctness, 1.0 or 0.0."""
        if self.correct is None:
            raise ValueError(f"accuracy is defined for classification losses, got {self.name!r}")
        return self.correct(logits, y).astype(logits.dtype)

    def metrics(self, logits: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
        """Evaluation metrics of ``(logits, y)`` for the history, besides the loss (on the device):
        "accuracy" for a classifier, plus :attr:`extra_metrics` ("mse" and "r2" for "mse")."""
        out = {"accuracy": jnp.mean(self.accuracy(logits, y))} if self.classification else {}
        return {**out, **self.extra_metrics(logits, y)}

    def check_output(self, output: str | None, name: str = "output") -> None:
        """Refuses an output activation that contradicts the loss (None, a model's own, passes).

        A softmax or sigmoid squashes logits that "mse" fits as values; a softmax over the one
        output of binary cross-entropy is the constant 1. Such a network trains and then predicts
        nonsense, so it is refused before training.

        Raises:
          ValueError: ``NAME: expected one of ... for the loss ..., got ...``.

        Example:
          >>> resolve("mse").check_output("sigmoid")
          Traceback (most recent call last):
          ...
          ValueError: output: expected 'identity' or 'sign' for the loss 'mse', got 'sigmoid' (...)
        """
        if output is None or self.outputs is None or output in self.outputs:
            return
        allowed = " or ".join(repr(o) for o in self.outputs)
        raise ValueError(f"{name}: expected {allowed} for the loss {self.name!r}, got {output!r} (the output "
                         "activation must read the logits as the loss trained them)")


#: The registered losses by name (aliases in :func:`names`); read-only.
REGISTRY: Mapping[str, Loss] = types.MappingProxyType({
    "mse": Loss("mse", mse, False, outputs=("identity", "sign"), extra_metrics=_fit_metrics),
    "binary_cross_entropy": Loss(
        "binary_cross_entropy", binary_cross_entropy, True, _binary_hit, "sigmoid", targets.check_zero_one,
        outputs=("sigmoid", "step", "identity"), encode=targets.encode_zero_one, decode=targets.decode_above_zero,
        probabilities=targets.sigmoid_probabilities,
        n_outputs=functools.partial(targets.one_output_for_two_classes, "binary_cross_entropy")),
    "softmax_cross_entropy": Loss(
        "softmax_cross_entropy", softmax_cross_entropy, True, _softmax_hit, "softmax", targets.check_classes,
        outputs=("softmax", "identity"), encode=targets.encode_indices, decode=targets.decode_argmax,
        probabilities=targets.softmax_probabilities),
    "hinge": Loss(
        "hinge", hinge, True, _sign_hit, "sign", targets.check_plus_minus_one, outputs=("sign", "identity"),
        encode=targets.encode_plus_minus_one, decode=targets.decode_at_least_zero,
        n_outputs=functools.partial(targets.one_output_for_two_classes, "hinge")),
})
_ALIASES = {
    "squared_error": "mse",
    "bce": "binary_cross_entropy",
    "log_loss": "binary_cross_entropy",
    "cross_entropy": "softmax_cross_entropy",
    "categorical_cross_entropy": "softmax_cross_entropy",
}

#: The loss a task trains with unless told otherwise (the command line's ``--loss auto``).
DEFAULTS = {"classification": "softmax_cross_entropy", "regression": "mse"}


def for_output(output: str) -> Loss:
    """The registered loss that reads outputs of the activation ``output``: the loss whose default
    output it is, else the first that accepts it ("step": binary cross-entropy's 0/1 classes).

    What a checkpoint saved without its loss is read as: a softmax output gives classes and
    probabilities as softmax cross-entropy does, a sigmoid output as binary cross-entropy.

    Raises:
      ValueError: an output activation that no registered loss reads.

    Example:
      >>> for_output("sigmoid").name, for_output("step").name, for_output("sign").name
      ('binary_cross_entropy', 'binary_cross_entropy', 'hinge')
    """
    found = [loss for loss in REGISTRY.values() if loss.output == output] or \
        [loss for loss in REGISTRY.values() if output in loss.outputs]
    if not found:
        raise ValueError(f"output: expected an output activation that a loss reads "
                         f"({', '.join(sorted({o for loss in REGISTRY.values() for o in loss.outputs}))}), "
                         f"got {output!r}")
    return found[0]


#: History metrics where larger is better (everything else is minimised): the one table that
#: early stopping, populations, sweeps and the estimators read.
MAXIMISED = ("accuracy", "r2")


def is_maximised(metric: str) -> bool:
    """Whether larger values of the history metric ``metric`` (e.g. "val_accuracy") are better."""
    return any(part in metric for part in MAXIMISED)


def accuracy(kind: str | Loss, logits: jax.Array, y: jax.Array) -> jax.Array:
    """Per-example correctness (1.0 or 0.0) for the classification loss ``kind``."""
    name = _ALIASES.get(kind, kind) if isinstance(kind, str) else None
    if name is not None and name not in REGISTRY:
        raise ValueError(f"accuracy is defined for classification losses, got {kind!r}")
    return resolve(kind).accuracy(logits, y)


def names() -> tuple[str, ...]:
    """All registered loss names, aliases included."""
    return tuple(sorted([*REGISTRY, *_ALIASES]))


def resolve(loss: str | LossFn | Loss) -> Loss:
    """A :class:`Loss` for a name, a callable (not a classifier) or a Loss."""
    if isinstance(loss, Loss):
        return loss
    if callable(loss):
        return Loss(getattr(loss, "__name__", "custom"), loss, False, check_targets=targets.check_any)
    name = _ALIASES.get(loss, loss)
    if name not in REGISTRY:
        raise ValueError(f"unknown loss {loss!r}: expected one of {', '.join(names())} or a callable")
    return REGISTRY[name]


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
