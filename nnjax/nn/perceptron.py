"""The perceptron: a weighted sum, a sign, and Rosenblatt's mistake-driven learning rule.

A perceptron with weights ``w`` (shape ``(d,)``) and bias ``b`` predicts
``sign(w . x + b)`` in {-1, +1}, with ``sign(0) = +1``. Training starts from
``w = 0, b = 0`` and visits the examples one at a time; a *mistake* is
``y (w . x + b) <= 0`` (a point on the boundary counts), and only a mistake
changes the weights::

    w <- w + lr * y * x
    b <- b + lr * y

The whole run is one compiled program: ``lax.scan`` over epochs, each a
``lax.scan`` over the examples in the epoch's keyed order
(:func:`epoch_order`). Once an epoch makes no mistake the data are separated
and training stops: later epochs are not run and record 0 mistakes.

Novikoff's theorem: if some unit vector ``u`` in the space of ``(x, 1)``
separates the data with margin ``gamma = min_i y_i u . (x_i, 1) > 0`` and
``R = max_i ||(x_i, 1)||``, the perceptron makes at most ``(R / gamma)^2``
mistakes in total, whatever the order and the learning rate
(:func:`mistake_bound`). On data that no line separates (XOR) it never stops.

Variants (``fit(..., variant=...)``):

* ``"classic"``: the last weights.
* ``"pocket"`` (Gallant's pocket algorithm with ratchet): after every update the
  new weights are scored on the whole training set (O(n d) per mistake) and kept
  "in the pocket" when they make fewer training errors than the pocketed ones;
  the result is the pocket. For data that are not linearly separable.
* ``"averaged"``: the mean of the weights after every example visited, over all
  epochs run (Freund & Schapire's voted perceptron, averaged). Steadier on noisy data.

Example:
  >>> import jax, numpy as np
  >>> from nnjax import perceptron
  >>> x = np.array([[2.0, 1.0], [1.0, 3.0], [-1.0, -2.0], [-2.0, -0.5]])
  >>> y = np.array([1, 1, -1, -1])
  >>> result = perceptron.fit(jax.random.key(0), x, y, epochs=10)
  >>> perceptron.predict(result.params, x).tolist()
  [1.0, 1.0, -1.0, -1.0]
  >>> int(result.history["mistakes"][-1])
  0
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.nn import activations
from nnjax._base.typing import PRNGKey
from nnjax._base import validation

__all__ = [
    "VARIANTS",
    "PerceptronResult",
    "decision_function",
    "epoch_order",
    "fit",
    "mistake_bound",
    "predict",
    "training_errors",
]

VARIANTS = ("classic", "pocket", "averaged")

Params = dict  # {"w": (d,), "b": ()}


class PerceptronResult(NamedTuple):
    """The result of :func:`fit` (arrays only, so ``jax.vmap`` can return it).

    Attributes:
      params: ``{"w": (d,), "b": ()}``, the weights the variant returns.
      history: per-epoch arrays of length ``epochs``: ``"mistakes"`` (updates made in the
        epoch, 0 once converged), ``"errors"`` (training examples with ``y (w . x + b) <= 0``
        under the weights the variant would return after that epoch) and ``"converged"``
        (True from the first mistake-free epoch on).
      key: the run key.
    """

    params: Params
    history: dict[str, jax.Array]
    key: PRNGKey

    @property
    def converged(self) -> jax.Array:
        """Whether some epoch made no mistake (the training data were separated)."""
        return jnp.any(self.history["mistakes"] == 0, axis=-1)

    @property
    def total_mistakes(self) -> jax.Array:
        """All updates made over the run (what Novikoff's theorem bounds)."""
        return jnp.sum(self.history["mistakes"], axis=-1)


class _Carry(NamedTuple):
    params: Params
    pocket: Params
    pocket_errors: jax.Array
    weight_sum: Params
    visits: jax.Array
    done: jax.Array


def epoch_order(key: PRNGKey, epoch: int | jax.Array, n: int) -> jax.Array:
    """The order in which epoch ``epoch`` of the run with key ``key`` visits the ``n`` examples."""
    return jax.random.permutation(jax.random.fold_in(key, epoch), n)


def decision_function(params: Params, x: jax.Array) -> jax.Array:
    """The weighted sums ``x @ w + b``, shape ``(n,)``."""
    return jnp.asarray(x) @ params["w"] + params["b"]


def predict(params: Params, x: Any) -> jax.Array:
    """Predicted labels ``sign(x @ w + b)`` in {-1, +1} (``+1`` on the boundary), shape ``(n,)``.

    Raises:
      ValueError: ``x`` is not 2-D with ``len(params["w"])`` columns.
    """
    d = jnp.shape(params["w"])[-1]
    if jnp.ndim(x) != 2 or jnp.shape(x)[1] != d:
        raise ValueError(f"x: expected shape (n, {d}), got {jnp.shape(x)}")
    return activations.sign(decision_function(params, jnp.asarray(x, jnp.result_type(params["w"]))))


def training_errors(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """How many examples the weights get wrong by the training criterion ``y (w . x + b) <= 0``."""
    return jnp.sum(y * decision_function(params, x) <= 0).astype(jnp.int32)


def mistake_bound(x: Any, y: Any, w: Any, b: Any = 0.0) -> float:
    """Novikoff's bound ``(R / gamma)^2`` on the perceptron's total mistakes, from a separator.

    ``R = max_i ||(x_i, 1)||`` and ``gamma = min_i y_i (w . x_i + b) / ||(w, b)||``: the
    margin of the separator ``(w, b)`` in the space of inputs with a constant 1 appended
    (that is where the bias lives). Any separator gives a valid bound; the maximum-margin
    one gives the tightest. Computed in float64 on the host.

    Returns:
      The bound, or ``inf`` when ``(w, b)`` does not separate the data.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64).reshape(-1)
    u = np.append(np.asarray(w, np.float64).reshape(-1), float(b))
    radius = np.sqrt(np.max(np.sum(x**2, axis=1) + 1.0))
    gamma = np.min(y * (x @ u[:-1] + u[-1])) / np.linalg.norm(u)
    return float((radius / gamma) ** 2) if gamma > 0 else float("inf")


def _train(key, x, y, lr, *, epochs: int, variant: str, shuffle: bool):
    """The compiled run: scan over epochs of a scan over examples."""
    n, d = x.shape
    zeros = {"w": jnp.zeros((d,), x.dtype), "b": jnp.zeros((), x.dtype)}
    lr = jnp.asarray(lr, x.dtype)

    def visit(carry: _Carry, i):
        xi, yi = x[i], y[i]
        p = carry.params
        wrong = yi * (xi @ p["w"] + p["b"]) <= 0
        change = jnp.where(wrong, lr * yi, 0.0)
        p = {"w": p["w"] + change * xi, "b": p["b"] + change}
        carry = carry._replace(params=p)
        if variant == "pocket":
            carry = jax.lax.cond(wrong, _maybe_pocket, lambda c, *_: c, carry, x, y)
        elif variant == "averaged":
            total = jax.tree.map(jnp.add, carry.weight_sum, p)
            carry = carry._replace(weight_sum=total, visits=carry.visits + 1)
        return carry, wrong.astype(jnp.int32)

    def returned(carry: _Carry) -> Params:
        if variant == "pocket":
            return carry.pocket
        if variant == "averaged":
            count = jnp.maximum(carry.visits, 1).astype(x.dtype)
            return jax.tree.map(lambda s: s / count, carry.weight_sum)
        return carry.params

    def epoch(carry: _Carry, e):
        order = epoch_order(key, e, n) if shuffle else jnp.arange(n)

        def run(c):
            c, wrong = jax.lax.scan(visit, c, order)
            return c, jnp.sum(wrong)

        carry, mistakes = jax.lax.cond(carry.done, lambda c: (c, jnp.zeros((), jnp.int32)), run, carry)
        carry = carry._replace(done=carry.done | (mistakes == 0))
        record = {"mistakes": mistakes, "errors": training_errors(returned(carry), x, y), "converged": carry.done}
        return carry, record

    start = _Carry(
        params=zeros, pocket=zeros, pocket_errors=jnp.asarray(n, jnp.int32),
        weight_sum=zeros, visits=jnp.zeros((), jnp.int32), done=jnp.asarray(False),
    )
    carry, history = jax.lax.scan(epoch, start, jnp.arange(epochs))
    return returned(carry), history


def _maybe_pocket(carry: _Carry, x, y) -> _Carry:
    """Pockets the current weights if they make fewer training errors than the pocketed ones."""
    errors = training_errors(carry.params, x, y)
    better = errors < carry.pocket_errors
    pocket = jax.tree.map(lambda new, old: jnp.where(better, new, old), carry.params, carry.pocket)
    return carry._replace(pocket=pocket, pocket_errors=jnp.where(better, errors, carry.pocket_errors))


_train_jit = jax.jit(_train, static_argnames=("epochs", "variant", "shuffle"))


def _is_traced(*values: Any) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(values))


def fit(
    key: PRNGKey,
    x: Any,
    y: Any,
    *,
    epochs: int,
    lr: float | jax.Array = 1.0,
    variant: str = "classic",
    shuffle: bool = True,
) -> PerceptronResult:
    """Trains a perceptron with the perceptron learning rule, in one compiled program.

    Args:
      key: the run key; epoch ``e`` visits the examples in the order
        :func:`epoch_order` ``(key, e, n)``.
      x: inputs of shape ``(n, d)``, int or float, finite.
      y: labels in {-1, +1}, int or float, shape ``(n,)`` or ``(n, 1)``.
      epochs: the most passes over the data; training stops after the first pass
        without a mistake (later epochs record 0 mistakes).
      lr: the learning rate (> 0; may be traced, e.g. under ``jax.vmap``). From zero
        weights it only scales ``(w, b)``: the mistakes and predictions do not depend on it.
      variant: "classic", "pocket" or "averaged" (see the module docstring).
      shuffle: visit the examples in a keyed reshuffled order each epoch; False keeps
        the order given.

    Returns:
      A :class:`PerceptronResult` with ``.params = {"w": (d,), "b": ()}`` and
      ``.history["mistakes"]``, ``["errors"]``, ``["converged"]``, each of length ``epochs``.

    Raises:
      ValueError: labels outside {-1, +1} (0/1 labels get a hint: ``2 * y - 1``),
        a length mismatch, non-finite inputs, ``epochs < 1``, ``lr <= 0`` or an
        unknown variant.

    Example:
      >>> import jax, numpy as np
      >>> x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
      >>> and_labels = np.array([-1, -1, -1, 1])
      >>> r = fit(jax.random.key(1), x, and_labels, epochs=20, variant="averaged")
      >>> predict(r.params, x).tolist()
      [-1.0, -1.0, -1.0, 1.0]
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {', '.join(VARIANTS)}, got {variant!r}")
    epochs = validation.check_positive_int(epochs, "epochs")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle: expected a bool, got {type(shuffle).__name__} {shuffle!r}")
    if key is None:
        raise ValueError("key: expected a jax PRNG key (e.g. jax.random.key(0)), got None")
    if _is_traced(x, y):
        if jnp.ndim(x) != 2:
            raise ValueError(f"x: expected shape (n, d), got {jnp.shape(x)}")
        x = jnp.asarray(x, jnp.float32) if not jnp.issubdtype(jnp.result_type(x), jnp.floating) else x
        y = jnp.reshape(jnp.asarray(y, x.dtype), (jnp.shape(x)[0],))
    else:
        x = validation.check_features(x, "x")
        y = validation.check_signed_labels(y, "y", n=x.shape[0]).reshape(-1)
    if not _is_traced(lr):
        lr = validation.check_positive(lr, "lr")
    params, history = _train_jit(key, jnp.asarray(x), jnp.asarray(y), lr, epochs=epochs, variant=variant,
                                 shuffle=bool(shuffle))
    return PerceptronResult(params=params, history=history, key=key)
