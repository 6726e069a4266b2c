"""Multi-layer perceptrons: a static topology and pure init/apply functions.

A network is a frozen, hashable :class:`MLP` (the topology: a static argument
under ``jit``) plus a parameter pytree of arrays, one dict per dense layer::

    params = [{"w": (n_in, n_out), "b": (n_out,)}, ...]   # in order, input to output

Hidden layers with batch norm add ``"gamma"`` and ``"beta"``; hidden layers with a
residual skip between different widths add a projection ``"proj"``. Batch-norm
running statistics are a separate pytree, :func:`init_state`.

Each hidden layer computes ``h = dropout(act(bn(h_prev @ w + b)) + skip(h_prev))``;
the output layer computes the logits ``h_prev @ w + b`` and :func:`predict` applies
the output activation.

Dropout is inverted dropout: in training each hidden unit is kept with
probability ``q = 1 - rate`` and scaled by ``1 / q``, so evaluation needs no
rescaling. ``rate`` is the probability of *dropping* a unit. The mask of layer
``i`` is drawn from ``jax.random.fold_in(key, i)``, so every layer and every call
(a new key) gets a fresh mask, and ``jax.grad`` differentiates through the same
mask the forward pass used.

Example:
  >>> import jax, jax.numpy as jnp
  >>> import nnjax
  >>> net = nnjax.MLP((4, 8, 3), activation="relu", output="softmax")
  >>> params = nnjax.init(jax.random.key(0), net)
  >>> [p["w"].shape for p in params]
  [(4, 8), (8, 3)]
  >>> nnjax.predict(params, jnp.ones((2, 4)), net).sum(axis=-1)
  Array([1., 1.], dtype=float32)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import activations, initializers
from nnjax._typing import Params, PRNGKey, State

__all__ = [
    "MLP",
    "OUTPUTS",
    "apply",
    "apply_with_state",
    "dropout_mask",
    "init",
    "init_state",
    "predict",
]

OUTPUTS = ("softmax", "sigmoid", "identity", "sign", "step")
_RELU_FAMILY = frozenset({"relu", "leaky_relu", "elu", "gelu"})


def _per_layer(value: Any, n: int, name: str) -> tuple:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name}: expected one value or {n} (one per hidden layer), got {len(value)}")
        return tuple(value)
    return (value,) * n


@dataclasses.dataclass(frozen=True)
class MLP:
    """The topology of a multi-layer perceptron (static and hashable).

    Args:
      sizes: input, hidden and output widths, e.g. ``(64, 128, 64, 10)``.
      activation: one activation name for every hidden layer, or one per hidden layer.
      output: the output activation: "softmax", "sigmoid", "identity", "sign" or "step".
      init: an initialiser name or function for every weight matrix (biases
        start at zero). ``None`` picks He normal for ReLU-like hidden
        activations and Xavier normal otherwise.
      dropout: the probability of dropping a hidden unit in training; one rate
        or one per hidden layer. Never applied to the input or the output.
      batch_norm: batch-normalise every hidden layer's pre-activation.
      residual: add skip connections between consecutive hidden layers
        (identity when widths match, a learned projection ``"proj"`` otherwise).
      bn_momentum: running-average momentum of the batch-norm statistics.
      bn_epsilon: added to the variance before the square root.
      dtype: parameter and computation dtype.

    Raises:
      ValueError: for fewer than two sizes, a width below one, an unknown
        activation/output/init, or a dropout rate outside [0, 1).
    """

    sizes: Sequence[int]
    activation: str | Sequence[str] = "relu"
    output: str = "identity"
    init: str | Callable | None = None
    dropout: float | Sequence[float] = 0.0
    batch_norm: bool = False
    residual: bool = False
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    dtype: str = "float32"

    def __post_init__(self):
        sizes = tuple(int(s) for s in self.sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes: expected at least (n_in, n_out), got {self.sizes!r}")
        if any(s < 1 for s in sizes):
            raise ValueError(f"sizes: expected every width >= 1, got {sizes}")
        n_hidden = len(sizes) - 2
        acts = _per_layer(self.activation, n_hidden, "activation")
        for a in acts:
            activations.get(a)
        if self.output not in OUTPUTS:
            raise ValueError(f"output: expected one of {', '.join(OUTPUTS)}, got {self.output!r}")
        rates = tuple(float(r) for r in _per_layer(self.dropout, n_hidden, "dropout"))
        for r in rates:
            if not 0.0 <= r < 1.0:
                raise ValueError(
                    f"dropout: expected a rate in [0, 1) (the probability of dropping a unit), got {r}"
                )
        if isinstance(self.init, str):
            initializers.get(self.init)
        if not 0.0 <= self.bn_momentum < 1.0:
            raise ValueError(f"bn_momentum: expected a value in [0, 1), got {self.bn_momentum}")
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "activation", acts if isinstance(self.activation, (list, tuple)) else self.activation)
        object.__setattr__(self, "dropout", rates if isinstance(self.dropout, (list, tuple)) else float(self.dropout))

    @property
    def n_hidden(self) -> int:
        """Number of hidden layers."""
        return len(self.sizes) - 2

    @property
    def n_layers(self) -> int:
        """Number of dense layers (hidden layers plus the output layer)."""
        return len(self.sizes) - 1

    @property
    def hidden_activations(self) -> tuple[str, ...]:
        """One activation name per hidden layer."""
        return _per_layer(self.activation, self.n_hidden, "activation")

    @property
    def dropout_rates(self) -> tuple[float, ...]:
        """One dropout rate per hidden layer."""
        return _per_layer(self.dropout, self.n_hidden, "dropout")

    def layer_init(self, layer: int) -> Callable:
        """The weight initialiser of dense layer ``layer``."""
        if self.init is not None:
            return initializers.get(self.init)
        acts = self.hidden_activations
        act = acts[layer] if layer < len(acts) else (acts[-1] if acts else "identity")
        name = act if isinstance(act, str) else ""
        return initializers.get("he_normal" if name in _RELU_FAMILY else "xavier_normal")

    def has_skip(self, layer: int) -> bool:
        """Whether hidden layer ``layer`` adds a residual skip from its input."""
        return self.residual and 1 <= layer < self.n_hidden


def init(key: PRNGKey, net: MLP) -> Params:
    """Draws the parameters of ``net``: one dict per dense layer, biases zero.

    Layer ``i``'s weights use ``jax.random.fold_in(key, i)``. One compiled program per
    topology, so :func:`nnjax.fit`'s own start and a call of yours give the same bits.
    """
    return _init(key, net)


@functools.partial(jax.jit, static_argnums=1)
def _init(key: PRNGKey, net: MLP) -> Params:
    dtype = jnp.dtype(net.dtype)
    params = []
    for i, (n_in, n_out) in enumerate(zip(net.sizes[:-1], net.sizes[1:])):
        layer_key = jax.random.fold_in(key, i)
        layer = {
            "w": net.layer_init(i)(layer_key, (n_in, n_out), dtype),
            "b": jnp.zeros((n_out,), dtype),
        }
        if i < net.n_hidden:
            if net.batch_norm:
                layer["gamma"] = jnp.ones((n_out,), dtype)
                layer["beta"] = jnp.zeros((n_out,), dtype)
            if net.has_skip(i) and n_in != n_out:
                proj_key = jax.random.fold_in(layer_key, 1_000_003)
                layer["proj"] = initializers.get("lecun_normal")(proj_key, (n_in, n_out), dtype)
        params.append(layer)
    return params


def init_state(net: MLP) -> State:
    """Batch-norm running statistics: ``{"mean", "var"}`` per hidden layer (empty without batch norm)."""
    dtype = jnp.dtype(net.dtype)
    if not net.batch_norm:
        return [{} for _ in range(net.n_hidden)]
    return [
        {"mean": jnp.zeros((n,), dtype), "var": jnp.ones((n,), dtype)} for n in net.sizes[1:-1]
    ]


def dropout_mask(key: PRNGKey, rate: jax.Array | float, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """Inverted-dropout multiplier: 0 with probability ``rate``, else ``1 / (1 - rate)``."""
    keep = 1.0 - jnp.asarray(rate, dtype)
    kept = jax.random.bernoulli(key, keep, shape)
    return jnp.where(kept, 1.0 / keep, 0.0).astype(dtype)


def _batch_norm(h, layer, stats, net, train, row_weights):
    """Normalises ``h`` with batch statistics (train) or running statistics (eval)."""
    if train:
        w = jnp.ones((h.shape[0],), h.dtype) if row_weights is None else row_weights.astype(h.dtype)
        total = jnp.maximum(jnp.sum(w), 1.0)
        mean = jnp.sum(h * w[:, None], axis=0) / total
        var = jnp.sum(jnp.square(h - mean) * w[:, None], axis=0) / total
        m = net.bn_momentum
        new_stats = {"mean": m * stats["mean"] + (1 - m) * mean, "var": m * stats["var"] + (1 - m) * var}
    else:
        mean, var, new_stats = stats["mean"], stats["var"], stats
    h = (h - mean) * jax.lax.rsqrt(var + net.bn_epsilon)
    return h * layer["gamma"] + layer["beta"], new_stats


def apply_with_state(
    params: Params,
    state: State | None,
    x: jax.Array,
    net: MLP,
    *,
    key: PRNGKey | None = None,
    train: bool = False,
    dropout: jax.Array | float | Sequence[float] | None = None,
    row_weights: jax.Array | None = None,
    return_hidden: bool = False,
):
    """Forward pass that also returns the updated batch-norm statistics.

    Args:
      params: from :func:`init`.
      state: from :func:`init_state` (may be ``None`` without batch norm).
      x: inputs of shape ``(n, sizes[0])``.
      net: the topology.
      key: the dropout key (required when ``train`` and a dropout rate may be nonzero).
      train: training mode: dropout on, batch statistics used and updated.
      dropout: overrides ``net.dropout``: a scalar (possibly traced, e.g. under
        ``jax.vmap``) or one rate per hidden layer.
      row_weights: per-row weights for batch-norm statistics (0 excludes padded rows).
      return_hidden: also return each hidden layer's activation ``act(bn(z))`` (before the
        residual skip is added and before dropout).

    Returns:
      ``(logits, new_state)``, or ``(logits, new_state, hidden)`` with ``return_hidden``.
    """
    if state is None:
        if net.batch_norm and not train:
            raise ValueError(
                "state: a batch-norm network needs its running statistics at evaluation; "
                "pass state=result.state (or nnjax.init_state(net) before training)"
            )
        state = init_state(net)
    _check_input_width(x, net)
    rates, dynamic = _dropout_rates(dropout, net)
    needs_key = train and (dynamic or any(r > 0 for r in rates))
    if needs_key and key is None:
        raise ValueError(
            "key: dropout is on in training, so apply needs a PRNG key; fixes: pass key=jax.random.key(...), "
            "or train=False for evaluation, or build the MLP with dropout=0.0"
        )
    h = jnp.asarray(x, jnp.dtype(net.dtype))
    new_state, hidden = [], []
    for i, layer in enumerate(params[:-1]):
        with jax.named_scope(f"hidden_{i}"):
            z = h @ layer["w"] + layer["b"]
            stats = state[i]
            if net.batch_norm:
                z, stats = _batch_norm(z, layer, stats, net, train, row_weights)
            out = activations.get(net.hidden_activations[i])(z)
            # the activation itself, before skip and dropout: a dead ReLU is 0 here even in a residual net
            hidden.append(out)
            if net.has_skip(i):
                out = out + (h @ layer["proj"] if "proj" in layer else h)
            if train and (dynamic or rates[i] > 0):
                out = out * dropout_mask(jax.random.fold_in(key, i), rates[i], out.shape, out.dtype)
            new_state.append(stats)
            h = out
    with jax.named_scope("output"):
        logits = h @ params[-1]["w"] + params[-1]["b"]
    if return_hidden:
        return logits, new_state, hidden
    return logits, new_state


def apply(
    params: Params,
    x: jax.Array,
    net: MLP,
    *,
    key: PRNGKey | None = None,
    train: bool = False,
    state: State | None = None,
    dropout: jax.Array | float | Sequence[float] | None = None,
) -> jax.Array:
    """The network's pre-activation output (logits), shape ``(n, sizes[-1])``.

    With ``train=True`` and a nonzero dropout rate, ``key`` is required. A
    batch-norm network needs ``state`` at evaluation.
    """
    return apply_with_state(params, state, x, net, key=key, train=train, dropout=dropout)[0]


def predict(params: Params, x: jax.Array, net: MLP, *, state: State | None = None) -> jax.Array:
    """The output activation applied to :func:`apply` in evaluation mode (same shape)."""
    return activations.get(net.output)(apply(params, x, net, state=state))


def _dropout_rates(dropout, net: MLP) -> tuple[tuple, bool]:
    """Per-hidden-layer rates, and whether they are dynamic (an override, maybe traced)."""
    if dropout is None:
        return net.dropout_rates, False
    if isinstance(dropout, (list, tuple)):
        return _per_layer(tuple(dropout), net.n_hidden, "dropout"), True
    rates = jnp.asarray(dropout)
    if rates.ndim == 0:
        return (rates,) * net.n_hidden, True
    if rates.shape != (net.n_hidden,):
        raise ValueError(f"dropout: expected a scalar or shape ({net.n_hidden},), got {rates.shape}")
    return tuple(rates[i] for i in range(net.n_hidden)), True


def _check_input_width(x: Any, net: MLP) -> None:
    shape = np.shape(x)
    if len(shape) != 2 or shape[1] != net.sizes[0]:
        raise ValueError(f"x: expected shape (n, {net.sizes[0]}), got {shape}")
