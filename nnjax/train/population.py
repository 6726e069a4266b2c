"""Populations: many models trained at once by one compiled ``jax.vmap(nnjax.fit)``.

:func:`fit_population` trains one model per key (and, optionally, per
hyper-parameter setting) in a single XLA program and returns the stacked
:class:`~nnjax.FitResult`: every leaf gains a leading population axis.
:func:`best_index` and :func:`select` pick a member by a validation metric.

The hyper-parameters that may differ between members are
:data:`HYPERPARAMETERS`; each enters as a traced scalar:

* ``learning_rate``: the optax optimiser is built *inside* the vmapped
  function from the member's learning rate (``optimizer`` is then a name from
  :data:`nnjax.optim.OPTIMIZERS` or a factory ``lr -> GradientTransformation``);
* ``l1``, ``l2``, ``dropout``: passed to :func:`nnjax.fit` as traced values;
* ``init_scale``: the member's initial weights (drawn from the same init key
  :func:`nnjax.fit` would use) are multiplied by it, see :func:`scale_weights`.

Hyper-parameter sweeps (grids, random samples, a results table) live in
:mod:`nnjax.sweeps` (:func:`nnjax.sweep`).

Example:
  >>> import jax, optax, nnjax
  >>> data = nnjax.data.load_dataset("blobs")
  >>> net = nnjax.MLP((2, 8, 1), output="sigmoid")
  >>> keys = jax.random.split(jax.random.key(0), 4)
  >>> pop = nnjax.fit_population(keys, net, (data.x, data.y), loss="binary_cross_entropy",
  ...                            optimizer="sgd", learning_rate=[0.01, 0.03, 0.1, 0.3],
  ...                            epochs=3, batch_size=20, validation=(data.x, data.y))
  >>> pop.history["val_loss"].shape
  (4, 3)
  >>> best = nnjax.select(pop, nnjax.best_index(pop, "val_loss"))
  >>> best.params[0]["w"].shape
  (2, 8)
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax._base import checks, xla_options
from nnjax.nn import losses
from nnjax.train import optim
from nnjax.train import mesh as parallel_lib
from nnjax._base.typing import Params, PRNGKey
from nnjax.train.fitting import FitResult, fit, prepare
from nnjax.nn.model import as_model
from nnjax.nn.network import MLP, init
from nnjax.train.loop import split_run_key

__all__ = [
    "HYPERPARAMETERS",
    "best_index",
    "fit_population",
    "member_scores",
    "population_size",
    "scale_weights",
    "select",
]

HYPERPARAMETERS = ("learning_rate", "l1", "l2", "dropout", "init_scale")

# fit() keywords that fit_population handles itself or cannot vmap.
_NOT_FORWARDED = {
    "params": "use init_scale (initial weights are drawn per member from its key)",
    "progress": "a population runs as one compiled program, without a progress bar",
    "progress_every": "a population runs as one compiled program, without a progress bar",
    "batch_sharding": "pass mesh=nnjax.parallel.make_mesh(population=..., data=...) instead",
    "key": "pass the stacked keys as the first argument",
}


class _Spec(NamedTuple):
    """Everything static about a population run (hashable: a static argument of ``jit``)."""

    net: MLP
    optimizer: Any  # a name, a factory lr -> GradientTransformation, or a GradientTransformation
    fit_kwargs: tuple  # sorted (name, value) pairs forwarded to fit()
    mesh: Any  # jax.sharding.Mesh or None
    chunk_size: int | None = None  # members trained together; groups run one after another


def scale_weights(params: Params, scale: jax.Array | float) -> Params:
    """``params`` with every weight matrix (``"w"``, ``"proj"``) multiplied by ``scale``.

    Biases and batch-norm scales are left alone, so ``scale`` changes the
    initialisation's standard deviation and nothing else. ``scale`` may be traced.

    Example:
      >>> import jax, nnjax
      >>> net = nnjax.MLP((3, 4, 1))
      >>> p = nnjax.init(jax.random.key(0), net)
      >>> q = scale_weights(p, 2.0)
      >>> bool((q[0]["w"] == 2 * p[0]["w"]).all()), bool((q[0]["b"] == p[0]["b"]).all())
      (True, True)
    """
    return [{name: (v * scale if name in ("w", "proj") else v) for name, v in layer.items()} for layer in params]


def _build_optimizer(optimizer: Any, learning_rate: Any) -> optax.GradientTransformation:
    if isinstance(optimizer, (optax.GradientTransformation, optim.ByValue)):
        return optimizer
    if isinstance(optimizer, str):
        return optim.make(optimizer, learning_rate)
    return optimizer(learning_rate)


def _member(spec: _Spec, arrays, key, hp, resume) -> FitResult:
    """One member's fit: runs under ``jax.vmap`` with traced ``key`` and ``hp``."""
    x, y, w, validation = arrays
    lr = hp.get("learning_rate")
    optimizer = _build_optimizer(spec.optimizer, lr if lr is not None else dict(spec.fit_kwargs).get("learning_rate"))
    params = None
    if "init_scale" in hp and resume is None:
        params = scale_weights(init(split_run_key(key)[0], spec.net), hp["init_scale"])
    kwargs = {k: v for k, v in spec.fit_kwargs if k != "learning_rate"}
    if spec.mesh is not None and "data" in spec.mesh.axis_names:
        kwargs["batch_sharding"] = parallel_lib.batch_sharding(spec.mesh)
    return fit(
        key, spec.net, (x, y), optimizer=optimizer, l1=hp.get("l1", 0.0), l2=hp.get("l2", 0.0),
        dropout=hp.get("dropout"), sample_weight=w, validation=validation, params=params, resume=resume, **kwargs,
    )


def _fit_members_traced(spec: _Spec, arrays, keys, hp, resume) -> FitResult:
    axis = None
    if spec.mesh is not None and "population" in spec.mesh.axis_names:
        axis = "population"
        keys, hp, resume = parallel_lib.constrain_population((keys, hp, resume), spec.mesh)
    one = functools.partial(_member, spec, arrays)
    if spec.chunk_size is not None:  # vmapped groups, one after another: a smaller working set
        result = jax.lax.map(lambda member: one(*member), (keys, hp, resume), batch_size=spec.chunk_size)
    else:
        result = jax.vmap(one, spmd_axis_name=axis)(keys, hp, resume)
    if axis is not None:
        result = parallel_lib.constrain_population(result, spec.mesh)
    return result


_fit_members = xla_options.jit(_fit_members_traced, static_argnums=0)


def population_size(keys: Any) -> int:
    """The number of members of a stacked key array (typed keys ``(P,)`` or raw ``(P, 2)``)."""
    keys = jnp.asarray(keys) if not isinstance(keys, jax.Array) else keys
    typed = jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key)
    if (typed and keys.ndim != 1) or (not typed and (keys.ndim != 2 or keys.dtype != jnp.uint32)):
        raise ValueError(
            "keys: expected stacked PRNG keys, e.g. jax.random.split(jax.random.key(0), 8) (shape (P,)), "
            f"got dtype {keys.dtype} and shape {keys.shape}"
        )
    return int(keys.shape[0])


def _check_hyperparameter(name: str, value: Any, size: int) -> np.ndarray:
    """A float32 array with a leading population axis, range-checked on the host."""
    checks.check(name, value, name)  # the rules every entry point shares, on the values as given
    arr = np.asarray(value, np.float32)
    if arr.ndim == 0:
        arr = np.broadcast_to(arr, (size,))
    elif arr.shape[0] != size or arr.ndim > (2 if name == "dropout" else 1):
        raise ValueError(f"{name}: expected a scalar or shape ({size},) (one per member), got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _host_arrays(net: Any, data: Any, loss: Any, sample_weight: Any, class_weight: Any, validation: Any):
    """Validates the data once on the host with :func:`nnjax.fitting.prepare`, as ``fit`` does."""
    p = prepare(net, data, loss=loss, sample_weight=sample_weight, class_weight=class_weight, validation=validation)
    return p.x, p.y, p.weights, p.validation


def fit_population(
    keys: PRNGKey | None,
    net: MLP,
    data: tuple[Any, Any],
    *,
    optimizer: optax.GradientTransformation | str | Callable[[jax.Array], optax.GradientTransformation],
    learning_rate: Any = None,
    l1: Any = 0.0,
    l2: Any = 0.0,
    dropout: Any = None,
    init_scale: Any = None,
    validation: tuple[Any, Any] | None = None,
    sample_weight: Any = None,
    class_weight: dict | None = None,
    resume: FitResult | None = None,
    mesh: jax.sharding.Mesh | None = None,
    chunk_size: int | None = None,
    **fit_kwargs: Any,
) -> FitResult:
    """Trains one model per key in one compiled program: ``jax.jit(jax.vmap(nnjax.fit))``.

    Member ``i`` is exactly ``nnjax.fit(keys[i], net, data, ...)`` with its own
    hyper-parameters (results agree to float32 rounding; the same key gives the
    same initial weights, shuffles and dropout masks as a separate fit).

    Args:
      keys: stacked run keys, shape ``(P,)`` (``jax.random.split(key, P)``); with
        ``resume`` it may be None.
      net: the topology (shared by all members).
      data: ``(x, y)``, shared by all members; validated once on the host.
      optimizer: a name from :data:`nnjax.optim.OPTIMIZERS` or a factory
        ``learning_rate -> optax.GradientTransformation`` (built inside the
        vmapped function, so the learning rate may differ per member), or a
        fixed ``optax.GradientTransformation`` shared by all.
      learning_rate, l1, l2, dropout, init_scale: a scalar for every member or
        an array of shape ``(P,)`` (``dropout`` also ``(P, n_hidden)``).
        ``learning_rate`` defaults to 0.01 for a name; ``dropout=None`` keeps the
        net's rates; ``init_scale=None`` keeps :func:`nnjax.init`'s weights.
      validation, sample_weight, class_weight: as in :func:`nnjax.fit`, shared.
      resume: a previous population result (stacked) to continue, member by member.
      mesh: a :class:`jax.sharding.Mesh` from :func:`nnjax.parallel.make_mesh`:
        its "population" axis splits the members over devices, its "data" axis
        splits every batch (the population is padded to a multiple of the axis).
      chunk_size: train the members in vmapped groups of this size, one group
        after another, still in one program (``jax.lax.map(..., batch_size=)``).
        On a CPU a group of a few models keeps the working set in cache (about
        10 % faster for 32 digits models in groups of 4); on a GPU leave it None.
      **fit_kwargs: the rest of :func:`nnjax.fit`'s keywords (``loss``,
        ``epochs``, ``batch_size``, ``early_stopping``, ``diagnostics``, ...).

    Returns:
      A :class:`~nnjax.FitResult` whose leaves have a leading axis of size P;
      ``result.history["loss"]`` has shape ``(P, epochs)``.

    Raises:
      ValueError: bad keys, data, or hyper-parameter shapes or ranges, naming the argument.
    """
    for name, why in _NOT_FORWARDED.items():
        if name in fit_kwargs:
            raise ValueError(f"{name}: not accepted by fit_population ({why})")
    if "loss" not in fit_kwargs:
        raise ValueError("loss: expected a loss name or callable (e.g. loss='softmax_cross_entropy'), got none")
    if isinstance(optimizer, optax.GradientTransformation) and learning_rate is not None:
        raise ValueError(
            "learning_rate: a fixed optax optimizer already has its learning rate; to vary it per member, pass "
            "optimizer as a name ('sgd') or a factory (lambda lr: optax.sgd(lr, momentum=0.9))"
        )
    if not isinstance(optimizer, (str, optax.GradientTransformation)) and not callable(optimizer):
        raise ValueError(f"optimizer: expected a name, a factory lr -> optax transformation or one, got {optimizer!r}")
    if keys is None:
        if resume is None:
            raise ValueError("keys: expected stacked PRNG keys (jax.random.split(key, P)), got None")
        keys = resume.key
    size = population_size(keys)
    static_lr = learning_rate if callable(learning_rate) else None  # an optax schedule: shared, not traced
    if learning_rate is None and not isinstance(optimizer, optax.GradientTransformation):
        if not isinstance(optimizer, str):
            raise ValueError("learning_rate: expected a value for the optimizer factory, got None")
        learning_rate = 0.01
    swept = {"l1": l1, "l2": l2, "dropout": dropout, "init_scale": init_scale}
    if static_lr is None and learning_rate is not None:
        swept["learning_rate"] = learning_rate
    hp = {k: _check_hyperparameter(k, v, size) for k, v in swept.items() if v is not None}
    for name in ("l1", "l2"):  # a penalty that is 0 for every member stays out of the program
        if not np.any(hp[name]):
            del hp[name]
    if chunk_size is not None:
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise ValueError(f"chunk_size: expected a positive number of members, got {chunk_size!r}")
        if mesh is not None:
            raise ValueError("chunk_size: expected None with a mesh (the mesh already splits the members)")
    if resume is not None and init_scale is not None:
        raise ValueError("init_scale: a resumed population keeps its parameters; pass init_scale=None")

    if static_lr is not None:
        fit_kwargs["learning_rate"] = static_lr
    if isinstance(optimizer, optax.GradientTransformation):  # a fresh but equal optax object: the same program
        optimizer = optim.by_value(optimizer, jax.eval_shape(as_model(net).init, jax.random.key(0)))
    spec = _Spec(net=net, optimizer=optimizer, fit_kwargs=tuple(sorted(fit_kwargs.items())), mesh=mesh,
                 chunk_size=chunk_size)
    try:
        hash(spec)
    except TypeError as err:
        raise ValueError(f"fit_kwargs: expected hashable values (numbers, names, EarlyStopping), got {err}") from None
    batch_size = fit_kwargs.get("batch_size")
    data_shards = mesh.shape["data"] if mesh is not None and "data" in mesh.axis_names else 1
    if isinstance(batch_size, int) and batch_size % data_shards:
        raise ValueError(f"batch_size: expected a multiple of the {data_shards} devices on the mesh's 'data' "
                         f"axis, got {batch_size}")
    arrays = _host_arrays(net, data, fit_kwargs["loss"], sample_weight, class_weight, validation)
    members = (keys, hp, resume)
    if mesh is not None and "population" in mesh.axis_names:
        members = parallel_lib.pad_population(members, size, mesh.shape["population"])
    result = _fit_members(spec, arrays, *members)
    if population_size(result.key) != size:
        result = jax.tree.map(lambda a: a[:size], result)
    return result



def member_scores(result: FitResult, metric: str | None = None, *, at: str = "last") -> np.ndarray:
    """One score per member: ``history[metric]`` at the last epoch run, or its best epoch.

    Args:
      result: a stacked :class:`~nnjax.FitResult` (from :func:`fit_population`).
      metric: a history key; default "val_loss" when validation data was given, else "loss".
      at: "last" (the last epoch trained: early-stopped epochs are skipped) or
        "best" (the best epoch: maximum for accuracies and R^2, minimum otherwise).

    Returns:
      A NumPy array of shape ``(P,)``; NaN for a member whose metric never was finite.
    """
    metric = metric or ("val_loss" if "val_loss" in result.history else "loss")
    if metric not in result.history:
        raise ValueError(f"metric: expected one of {', '.join(sorted(result.history))}, got {metric!r}")
    values = np.asarray(result.history[metric], np.float64)
    if values.ndim != 2:
        raise ValueError(f"result: expected a population (history arrays of shape (P, epochs)), got {values.shape}")
    ran = ~np.asarray(result.history["stopped"], bool)
    if at == "last":
        last = values.shape[1] - 1 - np.argmax(ran[:, ::-1], axis=1)
        scores = values[np.arange(len(values)), last]
        return np.where(ran.any(axis=1), scores, np.nan)
    if at == "best":
        masked = np.where(ran & np.isfinite(values), values, np.nan)
        with np.errstate(all="ignore"):
            empty = np.all(np.isnan(masked), axis=1)
            filled = np.where(empty[:, None], 0.0, masked)
            best = np.nanmax(filled, axis=1) if losses.is_maximised(metric) else np.nanmin(filled, axis=1)
        return np.where(empty, np.nan, best)
    raise ValueError(f"at: expected 'last' or 'best', got {at!r}")


def best_index(result: FitResult, metric: str | None = None, *, at: str = "last") -> int:
    """The member with the best :func:`member_scores` (NaN scores never win; ties: the first).

    Example:
      >>> import numpy as np, nnjax
      >>> fake = nnjax.FitResult(None, None, {"val_accuracy": np.array([[0.5], [0.9], [0.7]]),
      ...                                     "stopped": np.zeros((3, 1), bool)}, None, None)
      >>> best_index(fake, "val_accuracy")
      1
    """
    scores = member_scores(result, metric, at=at)
    metric = metric or ("val_loss" if "val_loss" in result.history else "loss")
    if np.all(np.isnan(scores)):
        raise ValueError(f"result: no member has a finite {metric!r}; every run diverged or stopped")
    return int(np.nanargmax(scores) if losses.is_maximised(metric) else np.nanargmin(scores))


def select(result: Any, index: int) -> Any:
    """Member ``index`` of a stacked pytree: a :class:`~nnjax.FitResult` like one ``nnjax.fit`` returns."""
    return jax.tree.map(lambda a: a[index], result)
