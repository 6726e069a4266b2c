"""Flax interoperability: nnjax parameters to and from Flax NNX and Linen.

An nnjax network is a list of ``{"w": (n_in, n_out), "b": (n_out,)}`` dicts
applied as ``h @ w + b``; Flax's ``Linear``/``Dense`` layers store the same
``kernel`` of shape ``(n_in, n_out)`` and ``bias`` and compute the same product,
so conversion copies arrays and the outputs agree to float32 rounding.

================================  ===================================================
nnjax                             Flax
================================  ===================================================
layer ``i`` ``"w"``, ``"b"``      NNX ``Linear.kernel``, ``.bias``; Linen ``Dense_i``
hidden ``"gamma"``, ``"beta"``    NNX ``BatchNorm.scale``, ``.bias``; Linen ``BatchNorm_i``
state ``"mean"``, ``"var"``       ``BatchNorm`` ``mean``/``var`` (Linen: ``batch_stats``)
hidden activation, dropout        a function and ``nnx.Dropout`` in ``nnx.Sequential``
residual hidden layer ``i``       NNX :class:`ResidualBlock` (``Linear``, ``BatchNorm``,
                                  activation, skip); Linen ``Dense_i`` + skip
skip projection ``"proj"``        NNX ``ResidualBlock.proj`` (``Linear`` without bias);
                                  Linen ``Proj_i`` ``{"kernel"}``
================================  ===================================================

Both sides return the logits (pre-activation output), as :func:`nnjax.apply`
does. A residual hidden layer computes ``act(bn(h @ w + b)) + skip(h)`` with the
identity as skip where the widths match and ``h @ proj`` where they differ, then
dropout; on the NNX side it is one :class:`ResidualBlock` inside the
``nnx.Sequential``, on the Linen side :class:`LinenMLP` with ``residual=True``.

Example:
  >>> import jax, jax.numpy as jnp, nnjax
  >>> from nnjax import flax_interop
  >>> net = nnjax.MLP((3, 8, 2), activation="tanh")
  >>> params = nnjax.init(jax.random.key(0), net)
  >>> model = flax_interop.to_nnx(params, net)             # an nnx.Sequential
  >>> x = jnp.ones((4, 3))
  >>> bool(jnp.allclose(model(x), nnjax.apply(params, x, net), atol=1e-6))
  True
  >>> back, state = flax_interop.from_nnx(model)
  >>> bool(jnp.array_equal(back[0]["w"], params[0]["w"]))
  True
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

from nnjax.nn import activations
from nnjax._base.typing import Params, State
from nnjax.nn.network import MLP, init_state

__all__ = ["LinenMLP", "ResidualBlock", "from_linen", "from_nnx", "linen_module", "to_linen", "to_nnx"]


class ResidualBlock(nnx.Module):
    """One residual hidden layer: ``activation(norm(linear(x))) + skip(x)``.

    ``skip(x)`` is ``proj(x)`` (a ``Linear`` without bias) when the block changes the width,
    else ``x``. Dropout, when the layer has it, follows the block in the ``nnx.Sequential``.

    Args:
      linear: the layer's ``nnx.Linear``.
      activation: the hidden activation (a function).
      norm: an ``nnx.BatchNorm`` applied before the activation, or None.
      proj: an ``nnx.Linear`` without bias from the input to the output width, or None for an
        identity skip (input and output widths equal).
    """

    def __init__(self, linear: nnx.Linear, activation: Any, *, norm: nnx.BatchNorm | None = None,
                 proj: nnx.Linear | None = None):
        if proj is None and linear.in_features != linear.out_features:
            raise ValueError(f"proj: an identity skip needs equal widths, got {linear.in_features} -> "
                             f"{linear.out_features}; pass proj=nnx.Linear(..., use_bias=False)")
        self.linear = linear
        self.norm = norm
        self.activation = activation
        self.proj = proj

    def __call__(self, x: jax.Array) -> jax.Array:
        z = self.linear(x)
        if self.norm is not None:
            z = self.norm(z)
        return self.activation(z) + (self.proj(x) if self.proj is not None else x)


def _check_convertible(params: Params, net: MLP) -> None:
    if len(params) != net.n_layers:
        raise ValueError(f"params: expected {net.n_layers} layers for sizes {net.sizes}, got {len(params)}")
    for i, (layer, n_in, n_out) in enumerate(zip(params, net.sizes[:-1], net.sizes[1:])):
        if jnp.shape(layer["w"]) != (n_in, n_out) or jnp.shape(layer["b"]) != (n_out,):
            raise ValueError(f"params[{i}]: expected w {(n_in, n_out)} and b {(n_out,)}, got w "
                             f"{jnp.shape(layer['w'])} and b {jnp.shape(layer['b'])}")
        needs_proj = i < net.n_hidden and net.has_skip(i) and n_in != n_out
        if needs_proj and jnp.shape(layer.get("proj")) != (n_in, n_out):
            raise ValueError(f"params[{i}]: expected a residual projection proj {(n_in, n_out)}, got "
                             f"{jnp.shape(layer['proj']) if 'proj' in layer else 'none'}")


def _constant(value: Any):
    return lambda key, shape, dtype=None: jnp.asarray(value, dtype).reshape(shape)


def to_nnx(params: Params, net: MLP, *, state: State | None = None, rngs: nnx.Rngs | None = None) -> nnx.Sequential:
    """An ``nnx.Sequential`` of ``Linear`` layers (with ``BatchNorm``, activations, ``Dropout``) equal to ``net``.

    Args:
      params: nnjax parameters of ``net``.
      net: the topology (hidden activations, batch norm and dropout rates are taken from it).
      state: batch-norm running statistics (required when ``net.batch_norm``).
      rngs: ``nnx.Rngs`` for the ``Dropout`` layers (required when a dropout rate is nonzero).

    Returns:
      The model in evaluation mode (call ``.train()`` before training it in Flax). Calling
      it on ``x`` returns the logits, as ``nnjax.apply(params, x, net, state=state)``. A
      residual hidden layer is one :class:`ResidualBlock` (its ``Linear``, ``BatchNorm``,
      activation and skip), followed by its ``Dropout``.

    Raises:
      ValueError: for parameters that do not fit ``net``, or a missing ``state``/``rngs``.
    """
    _check_convertible(params, net)
    if net.batch_norm and state is None:
        raise ValueError("state: a batch-norm network needs its running statistics; pass state=result.state")
    if any(rate > 0 for rate in net.dropout_rates) and rngs is None:
        raise ValueError("rngs: the network has dropout, so nnx.Dropout needs nnx.Rngs; pass rngs=nnx.Rngs(0)")
    init_rngs = nnx.Rngs(0)  # only calls the constant initialisers below; draws nothing that is kept
    layers: list[Any] = []
    for i, layer in enumerate(params):
        n_in, n_out = net.sizes[i], net.sizes[i + 1]
        dtype = jnp.asarray(layer["w"]).dtype
        linear = nnx.Linear(n_in, n_out, kernel_init=_constant(layer["w"]), bias_init=_constant(layer["b"]),
                            param_dtype=dtype, rngs=init_rngs)
        if i == net.n_layers - 1:
            layers.append(linear)
            break
        bn = None
        if net.batch_norm:
            bn = nnx.BatchNorm(n_out, momentum=net.bn_momentum, epsilon=net.bn_epsilon, rngs=init_rngs)
            bn.scale[...] = jnp.asarray(layer["gamma"])
            bn.bias[...] = jnp.asarray(layer["beta"])
            bn.mean[...] = jnp.asarray(state[i]["mean"])
            bn.var[...] = jnp.asarray(state[i]["var"])
        act = activations.get(net.hidden_activations[i])
        if net.has_skip(i):
            proj = None
            if "proj" in layer:
                proj = nnx.Linear(n_in, n_out, use_bias=False, kernel_init=_constant(layer["proj"]),
                                  param_dtype=dtype, rngs=init_rngs)
            layers.append(ResidualBlock(linear, act, norm=bn, proj=proj))
        else:
            layers.extend([linear] + ([bn] if bn is not None else []) + [act])
        if net.dropout_rates[i] > 0:
            layers.append(nnx.Dropout(net.dropout_rates[i], rngs=rngs))
    model = nnx.Sequential(*layers)
    model.eval()
    return model


def from_nnx(model: nnx.Module | Iterable[Any]) -> tuple[Params, State]:
    """nnjax ``(params, state)`` from an NNX stack of ``Linear`` (and ``BatchNorm``) layers.

    Args:
      model: an ``nnx.Sequential`` or any iterable of layers, in order. ``Linear`` layers
        become dense layers; a ``BatchNorm`` after a hidden ``Linear`` becomes its
        ``"gamma"``/``"beta"`` and running statistics; a :class:`ResidualBlock` becomes a
        hidden layer (with ``"proj"`` from its projection); functions and ``Dropout`` carry no
        parameters and are skipped (pass the matching activations, and ``residual=True`` for
        blocks, to ``nnjax.MLP``).

    Returns:
      ``(params, state)``: the parameter list and one batch-norm dict per hidden layer.

    Raises:
      ValueError: no ``Linear`` layer, a ``BatchNorm`` before the first or after the last
        ``Linear``, or batch norm on some hidden layers only.
    """
    layers = model.layers if isinstance(model, nnx.Sequential) else list(model)
    params: list[dict] = []
    norms: dict[int, dict] = {}
    def dense(linear: nnx.Linear) -> dict:
        bias = linear.bias[...] if linear.bias is not None else jnp.zeros((linear.out_features,))
        return {"w": jnp.asarray(linear.kernel[...]), "b": jnp.asarray(bias)}

    def norm(bn: nnx.BatchNorm) -> dict:
        return {"gamma": bn.scale[...], "beta": bn.bias[...], "mean": bn.mean[...], "var": bn.var[...]}

    for layer in layers:
        if isinstance(layer, ResidualBlock):
            params.append(dense(layer.linear))
            if layer.proj is not None:
                params[-1]["proj"] = jnp.asarray(layer.proj.kernel[...])
            if layer.norm is not None:
                norms[len(params) - 1] = norm(layer.norm)
        elif isinstance(layer, nnx.Linear):
            params.append(dense(layer))
        elif isinstance(layer, nnx.BatchNorm):
            if not params:
                raise ValueError("model: expected a Linear layer before each BatchNorm, got a BatchNorm first")
            norms[len(params) - 1] = norm(layer)
    return _assemble(params, norms, "model")


def _assemble(params: list[dict], norms: dict[int, dict], name: str) -> tuple[Params, State]:
    if not params:
        raise ValueError(f"{name}: expected at least one Linear/Dense layer, got none")
    n_hidden = len(params) - 1
    if norms and sorted(norms) != list(range(n_hidden)):
        raise ValueError(f"{name}: expected batch norm after every hidden layer or none (nnjax normalises all "
                         f"hidden layers), got it after layers {sorted(norms)} of {n_hidden} hidden")
    state = [{} for _ in range(n_hidden)]
    for i, bn in norms.items():
        params[i]["gamma"], params[i]["beta"] = jnp.asarray(bn["gamma"]), jnp.asarray(bn["beta"])
        state[i] = {"mean": jnp.asarray(bn["mean"]), "var": jnp.asarray(bn["var"])}
    return params, state


class LinenMLP(nn.Module):
    """A Linen MLP with nnjax's layer order, named ``Dense_i`` and ``BatchNorm_i``.

    Attributes:
      features: output width of every dense layer (``net.sizes[1:]``).
      activation: one activation name per hidden layer.
      batch_norm: normalise every hidden layer (``BatchNorm_i`` after ``Dense_i``).
      dropout: one rate per hidden layer (dropout after the activation, in training only).
      bn_momentum, bn_epsilon: as ``nnjax.MLP``.
      residual: hidden layers 1 .. n-1 add a skip from their input, after the activation and
        before dropout: the input itself where the widths match, else ``Proj_i`` (a ``Dense``
        without bias), as ``nnjax.MLP(residual=True)``.
    """

    features: Sequence[int]
    activation: Sequence[str]
    batch_norm: bool = False
    dropout: Sequence[float] = ()
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    residual: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """The logits of ``x``; ``train`` uses batch statistics and dropout (``rngs={"dropout": key}``)."""
        for i, width in enumerate(self.features):
            h = x
            x = nn.Dense(width, name=f"Dense_{i}")(x)
            if i == len(self.features) - 1:
                break
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                                 epsilon=self.bn_epsilon, name=f"BatchNorm_{i}")(x)
            x = activations.get(self.activation[i])(x)
            if self.residual and i >= 1:
                x = x + (h if h.shape[-1] == width else nn.Dense(width, use_bias=False, name=f"Proj_{i}")(h))
            if self.dropout and self.dropout[i] > 0:
                x = nn.Dropout(self.dropout[i], deterministic=not train)(x)
        return x


def linen_module(net: MLP) -> LinenMLP:
    """The :class:`LinenMLP` with ``net``'s topology (residual skips and projections included)."""
    return LinenMLP(features=tuple(net.sizes[1:]), activation=net.hidden_activations, batch_norm=net.batch_norm,
                    dropout=net.dropout_rates, bn_momentum=net.bn_momentum, bn_epsilon=net.bn_epsilon,
                    residual=net.residual)


def to_linen(params: Params, net: MLP, *, state: State | None = None) -> dict:
    """Linen variables for :func:`linen_module` ``(net)``: ``{"params": {"Dense_i": {"kernel", "bias"}}}``.

    With batch norm, ``"params"`` also holds ``"BatchNorm_i": {"scale", "bias"}`` and
    ``"batch_stats"`` holds ``"BatchNorm_i": {"mean", "var"}``; a residual network's skip
    projections are ``"Proj_i": {"kernel"}``.

    Example:
      >>> import jax, jax.numpy as jnp, nnjax
      >>> net = nnjax.MLP((3, 8, 2))
      >>> params = nnjax.init(jax.random.key(0), net)
      >>> variables = to_linen(params, net)
      >>> logits = linen_module(net).apply(variables, jnp.ones((1, 3)))
      >>> sorted(variables["params"])
      ['Dense_0', 'Dense_1']
    """
    _check_convertible(params, net)
    if net.batch_norm and state is None:
        raise ValueError("state: a batch-norm network needs its running statistics; pass state=result.state")
    state = init_state(net) if state is None else state
    out: dict = {"params": {}}
    for i, layer in enumerate(params):
        out["params"][f"Dense_{i}"] = {"kernel": jnp.asarray(layer["w"]), "bias": jnp.asarray(layer["b"])}
        if "proj" in layer:
            out["params"][f"Proj_{i}"] = {"kernel": jnp.asarray(layer["proj"])}
        if net.batch_norm and i < net.n_hidden:
            out["params"][f"BatchNorm_{i}"] = {"scale": jnp.asarray(layer["gamma"]), "bias": jnp.asarray(layer["beta"])}
            out.setdefault("batch_stats", {})[f"BatchNorm_{i}"] = {"mean": jnp.asarray(state[i]["mean"]),
                                                                   "var": jnp.asarray(state[i]["var"])}
    return out


def _index(name: str) -> int:
    match = re.search(r"(\d+)$", name)
    if match is None:
        raise ValueError(f"variables: expected layer names ending in their index (Dense_0, ...), got {name!r}")
    return int(match.group(1))


def from_linen(variables: dict) -> tuple[Params, State]:
    """nnjax ``(params, state)`` from Linen variables of ``Dense`` (and ``BatchNorm``) layers.

    Args:
      variables: ``{"params": ..., "batch_stats": ...}`` or the ``"params"`` dict alone; dense
        layers are the entries with a ``"kernel"`` and are ordered by the index that ends their
        name (``Dense_0``, ``Dense_1``, ...); batch-norm entries (with a ``"scale"``) follow the
        same numbering over hidden layers, their statistics from ``"batch_stats"``; ``Proj_i``
        entries (:class:`LinenMLP` with ``residual=True``) become layer ``i``'s ``"proj"``.
    """
    tree = variables.get("params", variables)
    stats = variables.get("batch_stats", {})
    dense = sorted((k for k, v in tree.items() if "kernel" in v and not k.startswith("Proj_")), key=_index)
    params = [{"w": jnp.asarray(tree[k]["kernel"]),
               "b": jnp.asarray(tree[k].get("bias", jnp.zeros(jnp.shape(tree[k]["kernel"])[1])))} for k in dense]
    for k in (k for k in tree if k.startswith("Proj_")):
        if not 0 <= _index(k) < len(params):
            raise ValueError(f"variables: {k!r} projects into no dense layer (there are {len(params)})")
        params[_index(k)]["proj"] = jnp.asarray(tree[k]["kernel"])
    norms = {}
    for position, k in enumerate(sorted((k for k, v in tree.items() if "scale" in v), key=_index)):
        if k not in stats:
            raise ValueError(f"variables: expected batch_stats for {k!r}, got none")
        norms[position] = {"gamma": tree[k]["scale"], "beta": tree[k]["bias"], **stats[k]}
    return _assemble(params, norms, "variables")
