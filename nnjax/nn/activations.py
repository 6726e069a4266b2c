"""Activation functions: the non-linearity a neuron applies to its weighted sum.

Every function maps an array to an array of the same shape, elementwise, except
``softmax`` and ``log_softmax`` which act along the last axis.

Derivatives (what ``jax.grad`` gives):

* ``identity``: 1.
* ``step`` (Heaviside, 0/1) and ``sign`` (+1/-1): 0 everywhere. They are
  piecewise constant, so gradient descent cannot train through them; the
  perceptron uses its own learning rule instead (:mod:`nnjax.perceptron`).
* ``sigmoid``: s(x) (1 - s(x)), at most 1/4 -- the source of vanishing gradients
  in deep sigmoid networks.
* ``tanh``: 1 - tanh(x)^2, at most 1.
* ``relu``: 1 for x > 0, 0 for x <= 0 (JAX's convention at 0).
* ``leaky_relu``: 1 for x > 0, ``negative_slope`` otherwise.
* ``elu``: 1 for x > 0, exp(x) otherwise.
* ``softplus``: sigmoid(x).
* ``gelu``: Phi(x) + x phi(x) (tanh approximation by default, as in jax.nn).
* ``softmax``: diag(p) - p p^T (the Jacobian along the last axis).

Example:
  >>> import jax.numpy as jnp
  >>> from nnjax import activations
  >>> activations.get("sign")(jnp.array([-2.0, 0.0, 3.0]))
  Array([-1.,  1.,  1.], dtype=float32)
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Activation = Callable[[jax.Array], jax.Array]

__all__ = [
    "Activation",
    "elu",
    "gelu",
    "get",
    "identity",
    "leaky_relu",
    "log_softmax",
    "names",
    "relu",
    "sigmoid",
    "sign",
    "softmax",
    "softplus",
    "step",
    "tanh",
]


def identity(x: jax.Array) -> jax.Array:
    """Linear activation f(x) = x (regression outputs)."""
    return x


def step(x: jax.Array) -> jax.Array:
    """Heaviside step: 1 for x >= 0, else 0. Gradient is zero everywhere."""
    x = jnp.asarray(x)
    return jnp.where(x >= 0, 1, 0).astype(_float_dtype(x))


def sign(x: jax.Array) -> jax.Array:
    """Sign with sign(0) = +1 (the perceptron's convention). Gradient is zero."""
    x = jnp.asarray(x)
    return jnp.where(x >= 0, 1, -1).astype(_float_dtype(x))


def sigmoid(x: jax.Array) -> jax.Array:
    """Logistic function 1 / (1 + exp(-x))."""
    return jax.nn.sigmoid(x)


def tanh(x: jax.Array) -> jax.Array:
    """Hyperbolic tangent."""
    return jnp.tanh(x)


def relu(x: jax.Array) -> jax.Array:
    """Rectified linear unit max(x, 0)."""
    return jax.nn.relu(x)


def leaky_relu(x: jax.Array, negative_slope: float = 0.01) -> jax.Array:
    """x for x > 0, ``negative_slope * x`` otherwise."""
    return jnp.where(x > 0, x, negative_slope * x)


def elu(x: jax.Array, alpha: float = 1.0) -> jax.Array:
    """x for x > 0, alpha (exp(x) - 1) otherwise."""
    return jax.nn.elu(x, alpha)


def softplus(x: jax.Array) -> jax.Array:
    """log(1 + exp(x)), computed stably."""
    return jax.nn.softplus(x)


def gelu(x: jax.Array) -> jax.Array:
    """Gaussian error linear unit (tanh approximation)."""
    return jax.nn.gelu(x)


def softmax(x: jax.Array) -> jax.Array:
    """exp(x_i) / sum_j exp(x_j) along the last axis; stable for large inputs."""
    return jax.nn.softmax(x, axis=-1)


def log_softmax(x: jax.Array) -> jax.Array:
    """x_i - logsumexp(x) along the last axis; stable for large inputs."""
    return jax.nn.log_softmax(x, axis=-1)


def _float_dtype(x: jax.Array):
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32


_REGISTRY: dict[str, Activation] = {
    "identity": identity,
    "linear": identity,
    "step": step,
    "heaviside": step,
    "sign": sign,
    "sigmoid": sigmoid,
    "logistic": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "softplus": softplus,
    "gelu": gelu,
    "softmax": softmax,
    "log_softmax": log_softmax,
}

#: Activations whose derivative is zero almost everywhere (not trainable by gradients).
PIECEWISE_CONSTANT = frozenset({"step", "heaviside", "sign"})


def names() -> tuple[str, ...]:
    """All registered activation names, aliases included."""
    return tuple(sorted(_REGISTRY))


def get(name: str | Activation) -> Activation:
    """Returns the activation called ``name`` (a callable is returned unchanged).

    Raises:
      ValueError: for an unknown name; the message lists the valid ones.
    """
    if callable(name):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}: expected one of {', '.join(names())}"
        ) from None
