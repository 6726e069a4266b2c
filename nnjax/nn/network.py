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

Mixed precision: ``MLP(..., compute_dtype="bfloat16")`` keeps the parameters (and so the
optimiser state and the batch-norm statistics) in ``dtype`` (float32), and casts them to
bfloat16 where they are used: the matmuls, activations and dropout run in bfloat16, batch-norm
statistics are computed in float32, the output layer accumulates in float32 and the logits come
back in ``dtype``, so losses and reductions downstream stay in float32. Gradients reach the
float32 parameters through the casts; the backward matmuls take bfloat16 operands, except the
output layer's two, which take the float32 gradient of the logits.

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

from nnjax.nn import activations, initializers
from nnjax._base.typing import Params, PRNGKey, State

__all__ = [
    "MLP",
    "OUTPUTS",
    "apply",
    "apply_compiled",
    "apply_with_state",
    "dropout_mask",
    "init",
    "init_state",
    "predict",
]

OUTPUTS = ("softmax", "sigmoid", "identity", "sign", "step")
_RELU_FAMILY = frozenset({"relu", "leaky_relu", "elu", "gelu"})
_PARAM_DTYPES = ("float32", "bfloat16", "float16", "float64")
_COMPUTE_DTYPES = ("float32", "bfloat16")


def _float_name(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    """The canonical name of a dtype given as a name or a type, e.g. ``jnp.bfloat16 -> "bfloat16"``."""
    try:
        canonical = jnp.dtype(value).name
    except TypeError:
        canonical = None
    if canonical not in allowed:
        hint = " (float16 needs loss scaling, which nnjax does not do: use bfloat16)" if canonical == "float16" else ""
        raise ValueError(f"{name}: expected one of {', '.join(allowed)}, got {value!r}{hint}")
    return canonical


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
      dtype: the parameter dtype (and of the logits, batch-norm statistics and
        optimiser state); also the computation dtype unless ``compute_dtype`` is set.
      compute_dtype: the dtype of the matmuls, activations and dropout: "bfloat16" for mixed
        precision with float32 parameters (see the module docstring), or None (the default)
        to compute in ``dtype``. A value equal to ``dtype`` is stored as None, so equal
        policies are equal topologies and share compiled programs. float16 is refused:
        it needs loss scaling, which nnjax does not do.

    Raises:
      ValueError: for fewer than two sizes, a width below one, an unknown
        activation/output/init, a dropout rate outside [0, 1), or a dtype or
        compute dtype that is not a supported floating type.
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
    compute_dtype: str | None = None

    def __post_init__(self):
        if isinstance(self.sizes, (str, bytes)) or not all(_is_int(s) for s in tuple(self.sizes)):
            raise TypeError(f"sizes: expected integer widths such as (4, 8, 3), got {self.sizes!r}")
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
        if not (isinstance(self.bn_epsilon, (int, float, np.floating)) and 0.0 < self.bn_epsilon < float("inf")):
            raise ValueError(f"bn_epsilon: expected a finite number > 0 (added to the variance), got {self.bn_epsilon!r}")
        dtype = _float_name(self.dtype, "dtype", _PARAM_DTYPES)
        compute = None if self.compute_dtype is None else _float_name(self.compute_dtype, "compute_dtype",
                                                                       _COMPUTE_DTYPES)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "compute_dtype", None if compute == dtype else compute)
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
    def computation_dtype(self) -> str:
        """The dtype the matmuls and activations run in: ``compute_dtype``, else ``dtype``."""
        return self.dtype if self.compute_dtype is None else self.compute_dtype

    @property
    def mixed_precision(self) -> bool:
        """Whether the computation runs in another dtype than the parameters are kept in."""
        return self.compute_dtype is not None

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


@functools.partial(jax.jit, static_argnames="net")
def init(key: PRNGKey, net: MLP) -> Params:
    """Draws the parameters of ``net``: one dict per dense layer, biases zero.

    Layer ``i``'s weights use ``jax.random.fold_in(key, i)``. One compiled program per topology
    (op by op, every layer's key folding, draw and scaling compiled a program of its own, each
    read again from the persistent cache in every new process); :func:`nnjax.fit` starts from
    this same program, so its start and yours give the same bits.
    """
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
    """Inverted-dropout multiplier: 0 with probability ``rate``, else ``1 / (1 - rate)``.

    The draw uses at least float32 (a bfloat16 keep probability would be rounded to its coarse
    grid); the multiplier comes back in ``dtype``.
    """
    keep = 1.0 - jnp.asarray(rate, jnp.promote_types(dtype, jnp.float32))
    kept = jax.random.bernoulli(key, keep, shape)
    return jnp.where(kept, (1.0 / keep).astype(dtype), jnp.zeros((), dtype))


def _batch_norm(h, layer, stats, net, train, row_weights):
    """Normalises ``h`` with batch statistics (train) or running statistics (eval).

    Statistics, normalisation and the affine map run in the parameters' dtype (float32 under
    mixed precision); the result comes back in ``h``'s dtype.
    """
    compute = h.dtype
    h = h.astype(jnp.dtype(net.dtype))
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
    return (h * layer["gamma"] + layer["beta"]).astype(compute), new_stats


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
      dropout: overrides ``net.dropout`` (may be traced, e.g. under ``jax.vmap``). A scalar
        replaces the rate of the hidden layers that have dropout in ``net`` and leaves the
        others without it; on a net built without any dropout it applies to every hidden
        layer. A sequence (or ``(n_hidden,)`` array) sets every layer's rate explicitly.
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
    _check_layers(params, net)
    rates, active = _dropout_rates(dropout, net)
    needs_key = train and any(active)
    if needs_key and key is None:
        raise ValueError(
            "key: dropout is on in training, so apply needs a PRNG key; fixes: pass key=jax.random.key(...), "
            "or train=False for evaluation, or build the MLP with dropout=0.0"
        )
    compute = jnp.dtype(net.computation_dtype)
    cast = (lambda a: a.astype(compute)) if net.mixed_precision else (lambda a: a)
    h = jnp.asarray(x, compute)
    new_state, hidden = [], []
    for i, layer in enumerate(params[:-1]):
        with jax.named_scope(f"hidden_{i}"):
            z = h @ cast(layer["w"]) + cast(layer["b"])
            stats = state[i]
            if net.batch_norm:
                z, stats = _batch_norm(z, layer, stats, net, train, row_weights)
            out = activations.get(net.hidden_activations[i])(z)
            # the activation itself, before skip and dropout: a dead ReLU is 0 here even in a residual net
            hidden.append(out)
            if net.has_skip(i):
                out = out + (h @ cast(layer["proj"]) if "proj" in layer else h)
            if train and active[i]:
                out = out * dropout_mask(jax.random.fold_in(key, i), rates[i], out.shape, out.dtype)
            new_state.append(stats)
            h = out
    with jax.named_scope("output"):
        last = params[-1]
        if net.mixed_precision:  # low-precision operands, accumulated and returned in the parameters' dtype
            logits = jnp.matmul(h, cast(last["w"]), preferred_element_type=last["w"].dtype) + last["b"]
        else:
            logits = h @ last["w"] + last["b"]
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


@functools.partial(jax.jit, static_argnames="net")
def apply_compiled(params: Params, x: jax.Array, net: MLP, *, state: State | None = None) -> jax.Array:
    """:func:`apply` in evaluation mode as one compiled program per network and input shape.

    The same logits as ``apply(params, x, net, state=state)``; what scoring on the host calls
    (the command line, :class:`nnjax.SavedModel`): op by op, every layer's few operations would
    each compile their own small program for every new input shape.
    """
    return apply(params, x, net, state=state)


def predict(params: Params, x: jax.Array, net: MLP, *, state: State | None = None) -> jax.Array:
    """The output activation applied to :func:`apply` in evaluation mode (same shape).

    One compiled program per network and input shape (op by op, each layer's operations and the
    output activation compiled a small program of their own for every new input shape).
    """
    if not isinstance(x, (jax.Array, np.ndarray)):
        x = np.asarray(x)
    return _predict_compiled(params, x, net, state=state)


@functools.partial(jax.jit, static_argnames="net")
def _predict_compiled(params: Params, x: jax.Array, net: MLP, *, state: State | None = None) -> jax.Array:
    return activations.get(net.output)(apply(params, x, net, state=state))


def _dropout_rates(dropout, net: MLP) -> tuple[tuple, tuple[bool, ...]]:
    """Per hidden layer, the rate and whether dropout is applied at all (a static decision).

    The override rule (see :func:`apply_with_state`): None keeps the net's rates; a scalar
    replaces the rate of every hidden layer that has dropout in ``net`` (every hidden layer
    when ``net`` has none); a sequence or a ``(n_hidden,)`` array sets each layer.
    """
    if dropout is None:
        rates = net.dropout_rates
        return rates, tuple(r > 0 for r in rates)
    if isinstance(dropout, (list, tuple)):
        return _per_layer(tuple(dropout), net.n_hidden, "dropout"), (True,) * net.n_hidden
    rates = jnp.asarray(dropout)
    if rates.ndim == 0:
        built = tuple(r > 0 for r in net.dropout_rates)
        active = built if any(built) else (True,) * net.n_hidden
        return tuple(rates if on else 0.0 for on in active), active
    if rates.shape != (net.n_hidden,):
        raise ValueError(f"dropout: expected a scalar or shape ({net.n_hidden},), got {rates.shape}")
    return tuple(rates[i] for i in range(net.n_hidden)), (True,) * net.n_hidden


def _is_int(value: Any) -> bool:
    """An integer width: int or NumPy integer, or a float with no fraction is not one (2.5 is a mistake)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_layers(params: Any, net: MLP) -> None:
    """``params`` must be this network's: one layer per dense layer, weights ``(n_in, n_out)``
    (shapes are static, so under ``jit`` this costs nothing at run time)."""
    try:
        got = [tuple(np.shape(layer["w"])) for layer in params]
    except (TypeError, KeyError, IndexError):
        return  # not the layers init makes: the forward pass reports what it cannot read
    want = list(zip(net.sizes[:-1], net.sizes[1:]))
    if got != want:
        raise ValueError(f"net: expected the network of the parameters, whose weights have shapes {got}, got "
                         f"sizes {net.sizes} (weights {want})")


def _check_input_width(x: Any, net: MLP) -> None:
    shape = np.shape(x)
    if len(shape) != 2 or shape[1] != net.sizes[0]:
        raise ValueError(f"x: expected shape (n, {net.sizes[0]}), got {shape}")
