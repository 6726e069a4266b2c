"""Models as pure ``(init, apply)`` pairs: what the compiled training loop trains.

The loop in :mod:`nnjax.training` never looks inside a model. It calls five things, with the
conventions of :func:`nnjax.init` and :func:`nnjax.apply_with_state`:

* ``init(key) -> params`` and ``init_state() -> state`` (batch-norm statistics; ``{}`` if none);
* ``apply(params, state, x, *, key, train, dropout, row_weights) -> (logits, new_state, hidden)``,
  ``hidden`` being the hidden activations the diagnostics read for dead units (may be ``[]``);
* ``layer_weights(tree)``: the per-layer weight matrices of a params-shaped tree (parameters,
  gradients or updates), one entry per layer of the diagnostics' per-layer history;
* ``check_inputs(x, name)``: the host-side check of a concrete input array, and ``n_outputs``;
* ``output``: the output activation that reads the logits (checked against the loss,
  :meth:`nnjax.losses.Loss.check_output`), or None for a model of your own.

:class:`nnjax.MLP` becomes such a model through :func:`as_model` (an :class:`MLPModel`, equal
when the topologies are equal, so equal networks share compiled programs), the text models of
:mod:`nnjax.text` provide one, and :class:`Model` wraps two functions of your own.

Example:
  >>> import jax, jax.numpy as jnp, optax, numpy as np, nnjax
  >>> def init(key):
  ...     return {"w": 0.1 * jax.random.normal(key, (3, 1)), "b": jnp.zeros(1)}
  >>> def apply(params, state, x, *, key=None, train=False):
  ...     return x @ params["w"] + params["b"], state
  >>> linear = nnjax.Model(init, apply, n_inputs=3, n_outputs=1)
  >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
  >>> y = x @ np.array([1.0, -2.0, 0.5], np.float32)
  >>> r = nnjax.fit(jax.random.key(0), linear, (x, y), loss="mse", optimizer=optax.adam(0.1),
  ...               epochs=60, batch_size=16)
  >>> bool(r.history["loss"][-1] < 0.01)
  True
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import numpy as np

from nnjax.nn import losses, network
from nnjax._base.typing import Params, PRNGKey, State
from nnjax._base import validation as checks

__all__ = ["MLPModel", "Model", "as_model"]


@dataclasses.dataclass(frozen=True)
class Model:
    """A model of your own as two pure functions (hashable by the functions' identity).

    Args:
      init: ``init(key) -> params``, a pytree of arrays; weight matrices under the key ``"w"``
        (or ``"proj"``) are what ``l1``/``l2`` penalise and what the per-layer diagnostics read.
      apply: ``apply(params, state, x, *, key=None, train=False) -> (logits, new_state)``: the
        pre-activation output of shape ``(n, n_outputs)``; ``key`` is the minibatch's dropout key.
      init_state: ``init_state() -> state`` for state such as running statistics (default ``{}``).
      n_inputs: the input width, checked on the host (None: only a 2-D float array is required).
      n_outputs: the output width (None: found by tracing ``apply`` on one row).
      name: what errors and summaries call it.

    Define the two functions once (at module level, or once in a notebook): a fresh closure per
    call is a new model, and a new model compiles a new program.
    """

    init: Callable[[PRNGKey], Params]
    apply: Callable[..., tuple[jax.Array, State]]
    init_state: Callable[[], State] | None = None
    n_inputs: int | None = None
    n_outputs: int | None = None
    name: str = "model"

    #: No hidden activations are exposed, so no dead or saturated units are recorded.
    hidden_activations = ()
    #: The logits are the model's own business: any loss may train them.
    output = None

    def start_state(self) -> State:
        return {} if self.init_state is None else self.init_state()

    def core_apply(self, params, state, x, *, key=None, train=False, dropout=None, row_weights=None):
        if dropout is not None:
            raise ValueError(f"dropout: {self.name} takes no dropout override; apply your own dropout inside "
                             "apply with the key it receives")
        logits, new_state = self.apply(params, state, x, key=key, train=train)
        return logits, new_state, []

    def layer_weights(self, tree: Any) -> list:
        return losses.weight_matrices(tree)

    def check_inputs(self, x: Any, name: str = "x") -> np.ndarray:
        x = checks.check_features(x, name, allow_int=False)
        if self.n_inputs is not None and x.shape[1] != self.n_inputs:
            raise ValueError(f"{name}: expected {self.n_inputs} features, got {x.shape[1]}")
        return x

    def output_width(self, x: Any) -> int:
        if self.n_outputs is not None:
            return int(self.n_outputs)
        params = jax.eval_shape(self.init, jax.random.key(0))
        row = jax.ShapeDtypeStruct((1,) + np.shape(x)[1:], np.asarray(x).dtype if not hasattr(x, "aval") else x.dtype)
        logits = jax.eval_shape(lambda p, s, r: self.apply(p, s, r)[0], params, self.start_state(), row)
        return int(logits.shape[-1])


@dataclasses.dataclass(frozen=True)
class MLPModel:
    """:class:`nnjax.MLP` as a model: ``nnjax.init``, ``nnjax.init_state`` and ``nnjax.apply_with_state``."""

    net: network.MLP

    name = "MLP"
    #: ``init`` is one compiled program (:func:`nnjax.init`): drawn inside a larger program it gives
    #: the same bits, so :func:`nnjax.fitting.start` may compile the start around it. An op-by-op
    #: ``init`` (a :class:`Model` of your own, the text models) would be fused differently there.
    init_is_compiled = True

    @property
    def n_inputs(self) -> int:
        return self.net.sizes[0]

    @property
    def hidden_activations(self) -> tuple[str, ...]:
        return self.net.hidden_activations

    @property
    def n_outputs(self) -> int:
        return self.net.sizes[-1]

    @property
    def output(self) -> str:
        return self.net.output

    def init(self, key: PRNGKey) -> Params:
        return network.init(key, self.net)

    def start_state(self) -> State:
        return network.init_state(self.net)

    def core_apply(self, params, state, x, *, key=None, train=False, dropout=None, row_weights=None):
        return network.apply_with_state(params, state, x, self.net, key=key, train=train, dropout=dropout,
                                        row_weights=row_weights, return_hidden=True)

    def layer_weights(self, tree: Any) -> list:
        return [layer["w"] for layer in tree]

    def check_inputs(self, x: Any, name: str = "x") -> np.ndarray:
        x = checks.check_features(x, name, allow_int=False)
        if x.shape[1] != self.net.sizes[0]:
            raise ValueError(f"{name}: expected {self.net.sizes[0]} features (net.sizes[0]), got {x.shape[1]}")
        return x

    def output_width(self, x: Any = None) -> int:
        return self.net.sizes[-1]


def as_model(obj: Any) -> Any:
    """The trainable model of ``obj``: an :class:`nnjax.MLP`, a text model, or a :class:`Model`.

    Raises:
      TypeError: for anything else, naming what is accepted.
    """
    if isinstance(obj, network.MLP):
        return MLPModel(obj)
    if isinstance(obj, (Model, MLPModel)):
        return obj
    if hasattr(obj, "as_model"):
        return obj.as_model()
    if all(hasattr(obj, name) for name in ("init", "core_apply", "start_state", "layer_weights", "check_inputs")):
        return obj
    raise TypeError(f"net: expected an nnjax.MLP, an nnjax.text model or an nnjax.Model(init, apply), "
                    f"got {type(obj).__name__}")
