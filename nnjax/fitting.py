"""``nnjax.fit``: validate on the host, then train in one compiled program.

Example:
  >>> import jax, optax, nnjax
  >>> data = nnjax.data.load_dataset("blobs")
  >>> net = nnjax.MLP((2, 1), output="sigmoid")
  >>> result = nnjax.fit(jax.random.key(0), net, (data.x, data.y), loss="binary_cross_entropy",
  ...                    optimizer=optax.sgd(0.1), epochs=5, batch_size=16)
  >>> float(result.history["accuracy"][-1]) > 0.9
  True
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax.data import validation as data_lib
from nnjax import losses, optim
from nnjax._typing import Params, PRNGKey, State
from nnjax.network import MLP, init, init_state
from nnjax.training import EarlyStopping, FitConfig, TrainState, init_train_state, run, split_run_key

__all__ = ["FitResult", "fit"]


class FitResult(NamedTuple):
    """The result of :func:`fit` (a pytree of arrays: ``jax.vmap`` can return it).

    Attributes:
      params: the trained parameters (the best epoch's under early stopping with ``restore_best``).
      state: the batch-norm running statistics that go with ``params``.
      history: per-epoch arrays of length ``epochs`` (see :func:`fit`).
      train_state: everything needed to continue (``fit(..., resume=result)``):
        the last parameters, optimiser state, epoch counter and early-stopping state.
      key: the run key.
    """

    params: Params
    state: State
    history: dict[str, jax.Array]
    train_state: TrainState
    key: PRNGKey

    @property
    def opt_state(self) -> Any:
        """The optimiser state after the last epoch run."""
        return self.train_state.opt_state

    @property
    def epochs_run(self) -> jax.Array:
        """Epochs actually trained over all continuations (fewer than asked after a stop)."""
        return jnp.sum(~self.history["stopped"], axis=-1)


@functools.partial(jax.jit, static_argnums=0)
def _run_jit(cfg: FitConfig, key, data, hp, ts):
    return run(cfg, key, data, hp, ts)


def _is_concrete(*trees: Any) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(trees))


def _check_targets_for_loss(y: Any, n: int, net: MLP, loss: losses.Loss) -> np.ndarray:
    k = net.sizes[-1]
    if loss.name == "softmax_cross_entropy":
        if np.ndim(y) == 2:
            y = data_lib.check_targets(y, n, "y")
            if y.shape[1] != k:
                raise ValueError(f"y: expected one-hot targets of shape ({n}, {k}), got {y.shape}")
            return y
        return data_lib.check_labels(y, k, "y", n=n)
    if loss.name == "binary_cross_entropy" and np.ndim(y) == 2 and np.shape(y)[1] > 1:  # multilabel 0/1 rows
        y = data_lib.check_targets(y, n, "y")
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"y: expected 0/1 label indicators, got values {np.unique(y[~np.isin(y, (0, 1))])[:10]}")
        y = y.astype(np.float32)
    elif loss.name == "binary_cross_entropy":
        y = data_lib.check_binary_labels(y, "y", n=n)
    elif loss.name == "hinge":
        y = data_lib.check_signed_labels(y, "y", n=n)
    else:
        y = data_lib.check_targets(y, n, "y")
    if loss.name in ("mse", "binary_cross_entropy", "hinge"):
        width = 1 if y.ndim == 1 else y.shape[1]
        if width != k:
            raise ValueError(f"y: expected targets of shape ({n}, {k}){' or (n,)' if k == 1 else ''} for "
                             f"{k} output(s), got {y.shape}")
    return y


def _prepare(net, x, y, sample_weight, validation, loss):
    """Host-side validation of concrete inputs; shape checks for traced ones."""
    if not _is_concrete(x, y, sample_weight, validation):
        if jnp.ndim(x) != 2 or jnp.shape(x)[1] != net.sizes[0]:
            raise ValueError(f"x: expected shape (n, {net.sizes[0]}), got {jnp.shape(x)}")
        w = jnp.ones((jnp.shape(x)[0],), jnp.float32) if sample_weight is None else sample_weight
        return x, y, w, validation
    x = data_lib.check_features(x, "x", allow_int=False)
    if x.shape[1] != net.sizes[0]:
        raise ValueError(f"x: expected {net.sizes[0]} features (net.sizes[0]), got {x.shape[1]}")
    n = x.shape[0]
    y = _check_targets_for_loss(y, n, net, loss)
    if sample_weight is None:
        w = np.ones((n,), np.float32)
    else:
        w = data_lib.check_targets(sample_weight, n, "sample_weight").astype(np.float32)
        if w.ndim != 1 or np.any(w < 0) or not np.any(w > 0):
            raise ValueError("sample_weight: expected a (n,) array of non-negative weights, not all zero")
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise ValueError(f"validation: expected a pair (x_val, y_val), got {type(validation).__name__}")
        xv = data_lib.check_features(validation[0], "validation x")
        if xv.shape[1] != net.sizes[0]:
            raise ValueError(f"validation x: expected {net.sizes[0]} features, got {xv.shape[1]}")
        validation = (xv, _check_targets_for_loss(validation[1], xv.shape[0], net, loss))
    return x, y, w, validation


def _class_weights(y: Any, class_weight: dict | None, sample_weight: Any) -> Any:
    if class_weight is None:
        return sample_weight
    labels = np.asarray(y)
    labels = labels.argmax(-1) if labels.ndim == 2 and labels.shape[1] > 1 else labels.reshape(len(labels))
    per_row = np.array([class_weight.get(int(c), 1.0) for c in labels], np.float32)
    return per_row if sample_weight is None else per_row * np.asarray(sample_weight, np.float32)


def fit(
    key: PRNGKey | None,
    net: MLP,
    data: tuple[Any, Any],
    *,
    loss: str | Callable | losses.Loss,
    optimizer: optax.GradientTransformation | str,
    epochs: int,
    batch_size: int,
    learning_rate: float | optax.Schedule = 0.01,
    l1: float | jax.Array = 0.0,
    l2: float | jax.Array = 0.0,
    dropout: float | jax.Array | None = None,
    validation: tuple[Any, Any] | None = None,
    sample_weight: Any = None,
    class_weight: dict | None = None,
    drop_last: bool = False,
    early_stopping: EarlyStopping | int | None = None,
    on_nonfinite: str = "skip",
    clip_norm: float | None = None,
    clip_value: float | None = None,
    diagnostics: bool = True,
    params: Params | None = None,
    resume: FitResult | None = None,
    progress: bool | Callable[[int, dict], None] = False,
    progress_every: int | None = None,
    batch_sharding: Any = None,
    shuffle: bool = True,
) -> FitResult:
    """Trains ``net`` on ``data = (x, y)`` with minibatch gradient descent, in one compiled program.

    Each epoch reshuffles with its own key and visits every example exactly once;
    a short last batch is padded with weight-0 rows so the batch mean stays exact
    (``drop_last=True`` drops it instead). ``batch_size=n`` is full-batch gradient
    descent, ``batch_size=1`` pure SGD. The objective of a batch is
    ``mean loss + l1 * sum|W| + l2 * sum W^2`` over weight matrices.

    Args:
      key: the run key (see :mod:`nnjax.training` for the key schedule). With
        ``resume`` it may be None (the resumed run's key is used).
      net: the topology.
      data: ``(x, y)``: features ``(n, sizes[0])`` and targets as the loss expects.
      loss: a name ("mse", "binary_cross_entropy", "softmax_cross_entropy",
        "hinge") or a per-example callable ``loss(logits, y) -> (n,)``.
      optimizer: any ``optax.GradientTransformation``, or a name from
        :data:`nnjax.optim.OPTIMIZERS` used with ``learning_rate``.
      epochs: passes over the data in this call.
      batch_size: examples per minibatch (1 <= batch_size <= n).
      learning_rate: a number or an optax schedule, for a named optimizer.
      l1, l2: penalty strengths (may be traced, e.g. under ``jax.vmap``).
      dropout: overrides the net's dropout rate(s); may be traced.
      validation: ``(x_val, y_val)``, scored at the end of every epoch.
      sample_weight: per-example weights ``(n,)``; class_weight: ``{label: weight}``.
      drop_last: drop the short last batch instead of padding it.
      early_stopping: an :class:`EarlyStopping`, or an int patience.
      on_nonfinite: "skip" a step whose loss, gradients or new parameters are
        not finite and go on, or "stop" training there (the step is never applied).
      clip_norm, clip_value: gradient clipping put in front of the optimizer.
      diagnostics: record per-layer gradient health (see :mod:`nnjax.diagnostics`).
      params: initial parameters (default: ``nnjax.init(init_key, net)``).
      resume: a previous result to continue from: 10 epochs equal 5 + 5, bit for bit.
      progress: show a tqdm bar (or call ``progress(epochs_done, metrics)``);
        training then runs in compiled chunks of ``progress_every`` epochs (default: a
        tenth of ``epochs``), bit for bit the same as one call.
      batch_sharding: a ``jax.sharding.Sharding`` for the epoch's ``(steps, batch, ...)``
        arrays, e.g. ``NamedSharding(mesh, P(None, "data"))``: data-parallel training
        (see :func:`nnjax.parallel.fit_data_parallel`, which builds it).
      shuffle: reshuffle every epoch (default); False visits the examples in order.

    Returns:
      A :class:`FitResult`. ``history`` holds arrays of length ``epochs``:
      "loss" (mean data loss over the epoch as seen while training, penalties
      excluded), "accuracy" (classification), "grad_norm", "skipped" (steps not
      applied), "stopped", "epoch"; with validation "val_loss" and
      "val_accuracy" or "val_mse"/"val_r2"; with diagnostics the per-layer keys
      of :data:`nnjax.diagnostics.LAYER_KEYS`. Epochs after a stop hold NaN.

    Raises:
      ValueError: for inputs of the wrong shape, dtype, range or finiteness,
        naming the argument, the expectation and what came.
    """
    loss_obj = losses.resolve(loss)
    if isinstance(optimizer, str):
        optimizer = optim.make(optimizer, learning_rate)
    optimizer = optim.with_clipping(optimizer, clip_norm=clip_norm, clip_value=clip_value)
    if isinstance(early_stopping, int) and not isinstance(early_stopping, bool):
        early_stopping = EarlyStopping(patience=early_stopping)
    if on_nonfinite not in ("skip", "stop"):
        raise ValueError(f"on_nonfinite: expected 'skip' or 'stop', got {on_nonfinite!r}")
    epochs = data_lib.check_positive_int(epochs, "epochs")
    batch_size = data_lib.check_positive_int(batch_size, "batch_size")
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"data: expected a pair (x, y), got {type(data).__name__}")
    x, y = data
    sample_weight = _class_weights(y, class_weight, sample_weight)
    x, y, w, validation = _prepare(net, x, y, sample_weight, validation, loss_obj)
    n = int(jnp.shape(x)[0])
    if batch_size > n:
        raise ValueError(f"batch_size: expected at most the number of examples ({n}), got {batch_size}")
    if dropout is not None and _is_concrete(dropout):
        rates = np.atleast_1d(np.asarray(dropout, np.float64))
        if np.any(rates < 0) or np.any(rates >= 1):
            raise ValueError(f"dropout: expected rates in [0, 1) (probability of dropping a unit), got {dropout}")

    cfg = FitConfig(
        net=net, loss=loss_obj, optimizer=optimizer, epochs=epochs, batch_size=batch_size, n=n,
        drop_last=drop_last, early_stopping=early_stopping, on_nonfinite=on_nonfinite,
        diagnostics=diagnostics, dynamic_dropout=dropout is not None, batch_sharding=batch_sharding,
        shuffle=bool(shuffle),
    )
    if resume is not None:
        key = resume.key if key is None else key
        ts = resume.train_state
    else:
        if key is None:
            raise ValueError("key: expected a jax PRNG key (e.g. jax.random.key(0)), got None")
        init_key, _ = split_run_key(key)
        start = init(init_key, net) if params is None else params
        ts = init_train_state(cfg, start, init_state(net))
    hp = {name: jnp.asarray(value, jnp.float32) for name, value in (("l1", l1), ("l2", l2))
          if not (_is_concrete(value) and np.all(np.asarray(value) == 0))}  # a static 0 costs nothing
    if dropout is not None:
        hp["dropout"] = jnp.asarray(dropout, jnp.float32)
    arrays = (jnp.asarray(x), jnp.asarray(y), jnp.asarray(w, jnp.float32),
              None if validation is None else tuple(jnp.asarray(a) for a in validation))

    if progress and _is_concrete(key, arrays, hp, ts):
        from nnjax.progress import run_in_chunks

        ts, history = run_in_chunks(_run_jit, cfg, key, arrays, hp, ts, progress, progress_every)
    else:
        ts, history = _run_jit(cfg, key, arrays, hp, ts)
    return _result(cfg, key, ts, history)


def _result(cfg: FitConfig, key, ts: TrainState, history: dict) -> FitResult:
    if cfg.early_stopping is not None and cfg.early_stopping.restore_best:
        has_best = ts.best_epoch >= 0
        params = jax.tree.map(lambda b, p: jnp.where(has_best, b, p), ts.best_params, ts.params)
        state = jax.tree.map(lambda b, p: jnp.where(has_best, b, p), ts.best_state, ts.state)
    else:
        params, state = ts.params, ts.state
    return FitResult(params=params, state=state, history=history, train_state=ts, key=key)
