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

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax._base import cache, checks, xla_options
from nnjax.nn import losses
from nnjax.train import optim
from nnjax._base.typing import Params, PRNGKey, State
from nnjax._base import validation as data_lib
from nnjax.nn.model import as_model
from nnjax.train.loop import EarlyStopping, FitConfig, HyperParams, TrainState, init_train_state, run, split_run_key

__all__ = ["FitResult", "Plan", "Prepared", "fit", "hyperparameters", "plan", "prepare", "run_compiled", "scan_length",
           "start"]


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


def _train_program(cfg: FitConfig, key, data, hp, ts, n_epochs):
    ts, history = run(cfg, key, data, hp, ts, n_epochs)
    return _result(cfg, key, ts, history)


_run_jit = xla_options.jit(_train_program, static_argnums=0)


def _is_concrete(*trees: Any) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(trees))


def scan_length(epochs: int) -> int:
    """The compiled epoch scan's length for a run of ``epochs``: the next power of two.

    Runs of 17 to 32 epochs share one program (the slots past the run are skipped at the
    cost of a branch), so changing ``epochs`` rarely compiles; see :func:`nnjax.training.run`.
    """
    return 1 << max(0, int(epochs) - 1).bit_length()


class Prepared(NamedTuple):
    """The host's part of a run: checked, encoded device arrays (see :func:`prepare`)."""

    x: Any
    y: Any
    weights: Any
    validation: tuple[Any, Any] | None

    @property
    def n(self) -> int:
        return int(jnp.shape(self.x)[0])


def _class_weights(y: Any, class_weight: dict | None, sample_weight: Any) -> Any:
    if class_weight is None:
        return sample_weight
    labels = np.asarray(y)
    labels = labels.argmax(-1) if labels.ndim == 2 and labels.shape[1] > 1 else labels.reshape(len(labels))
    class_weight = checks.check_class_weight(class_weight, labels)
    per_row = np.array([class_weight.get(int(c), 1.0) for c in labels], np.float32)
    return per_row if sample_weight is None else per_row * np.asarray(sample_weight, np.float32)


def _check_classes(y: np.ndarray, loss: losses.Loss, k: int) -> None:
    if loss.output != "softmax":  # the loss record says whether outputs are classes of a softmax
        return
    if k < 2:
        raise ValueError(f"net: expected at least 2 outputs for softmax classification, got {k}; for one "
                         "class there is nothing to learn")
    checks.check_classes(y.argmax(-1) if y.ndim == 2 else y, "y")


def prepare(net: Any, data: tuple[Any, Any], *, loss: Any, sample_weight: Any = None, class_weight: dict | None = None,
            validation: tuple[Any, Any] | None = None) -> Prepared:
    """Checks and encodes a run's data on the host, once: the first of a run's three pieces.

    ``net`` is anything :func:`nnjax.model.as_model` accepts. Concrete inputs are validated
    (shapes, dtypes, finiteness, label ranges, weights, at least two classes); traced ones (under
    ``jax.vmap`` or ``jax.jit``) get shape checks only.

    Raises:
      ValueError: naming the argument, what was expected and what came.
    """
    model = as_model(net)
    loss = losses.resolve(loss)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"data: expected a pair (x, y), got {type(data).__name__}")
    x, y = data
    if not _is_concrete(x, y, sample_weight, validation):
        if jnp.ndim(x) < 2:
            raise ValueError(f"x: expected shape (n, features), got {jnp.shape(x)}")
        w = jnp.ones((jnp.shape(x)[0],), jnp.float32) if sample_weight is None else sample_weight
        return Prepared(x, y, w, validation)
    x = model.check_inputs(x, "x")
    n, k = x.shape[0], model.output_width(x)
    y = loss.check_targets(y, n, k, "y")
    _check_classes(np.asarray(y), loss, k)
    sample_weight = _class_weights(y, class_weight, sample_weight)
    if sample_weight is None:
        w = np.ones((n,), np.float32)
    else:
        w = data_lib.check_targets(sample_weight, n, "sample_weight").astype(np.float32)
        if w.ndim != 1 or np.any(w < 0) or not np.any(w > 0):
            raise ValueError("sample_weight: expected a (n,) array of non-negative weights, not all zero")
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise ValueError(f"validation: expected a pair (x_val, y_val), got {type(validation).__name__}")
        xv = model.check_inputs(validation[0], "validation x")
        validation = (_on_device(xv), _on_device(loss.check_targets(validation[1], xv.shape[0], k, "validation y")))
    return Prepared(_on_device(x), _on_device(y), _on_device(w), validation)


def _on_device(a: Any) -> jax.Array:
    """``a`` as a JAX array: host data transferred with ``jax.device_put`` (``jnp.asarray`` of a NumPy
    array compiles a small copy program per shape and dtype), JAX arrays and tracers as they are."""
    return jnp.asarray(a) if isinstance(a, jax.Array) else jax.device_put(np.asarray(a))


def start(key: PRNGKey, cfg: FitConfig, params: Params | None = None) -> TrainState:
    """A run's untrained state from its key: the second piece (pure; ``jax.vmap`` maps it).

    Parameters come from ``cfg.model.init(split_run_key(key)[0])`` unless ``params`` is given.
    """
    if params is None:
        params = cfg.model.init(split_run_key(key)[0])
    return init_train_state(cfg, params, cfg.model.start_state())


def hyperparameters(l1: Any = 0.0, l2: Any = 0.0, dropout: Any = None) -> HyperParams:
    """The traced numbers of a run as one record; a static zero penalty leaves the program.

    Raises:
      ValueError: for a concrete negative or non-finite penalty, or a dropout rate outside [0, 1).
    """
    values = {}
    for name, value in (("l1", l1), ("l2", l2)):
        checks.check(name, value)
        if _is_concrete(value) and np.all(np.asarray(value) == 0):
            continue  # a static 0 costs nothing
        values[name] = jnp.asarray(value, jnp.float32)
    if dropout is not None:
        checks.check("dropout", dropout)
        values["dropout"] = jnp.asarray(dropout, jnp.float32)
    return HyperParams(**values)


def run_compiled(cfg: FitConfig, key: PRNGKey, data: Prepared, hp: HyperParams, ts: TrainState,
                 epochs: int | None = None, *, slots: int | None = None) -> FitResult:
    """Trains ``epochs`` epochs (default ``cfg.epochs``) from ``ts``: the third piece, one compiled call.

    With concrete inputs the program's epoch scan has ``slots`` slots (default
    :func:`scan_length` of ``epochs``), so runs of nearby lengths share it; under a
    transformation (``jax.vmap``) it has exactly ``epochs``.
    """
    epochs = cfg.epochs if epochs is None else int(epochs)
    arrays = (data.x, data.y, data.weights, data.validation)
    if not _is_concrete(key, arrays, hp, ts):
        return _run_jit(dataclasses.replace(cfg, epochs=epochs), key, arrays, hp, ts, None)
    slots = scan_length(epochs) if slots is None else max(int(slots), epochs)
    result = _run_jit(dataclasses.replace(cfg, epochs=slots), key, arrays, hp, ts, np.int32(epochs))
    if slots == epochs:
        return result
    # a transfer, not a compile: NumPy slices put back on the device
    history = {k: _on_device(np.asarray(v)[:epochs]) for k, v in result.history.items()}
    return result._replace(history=history)


def fit(
    key: PRNGKey | None,
    net: Any,
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
      dropout: overrides the net's dropout rate(s); may be traced (e.g. swept under
        ``jax.vmap``). A single number replaces the rate of the hidden layers the net was
        built with dropout in, and leaves the layers without dropout without it; on a net
        built without any dropout it applies to every hidden layer. One rate per hidden
        layer (a sequence or a ``(n_hidden,)`` array) sets each layer, 0 switching one off.
        None keeps the net's rates.
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
    p = plan(key, net, data, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
             learning_rate=learning_rate, l1=l1, l2=l2, dropout=dropout, validation=validation,
             sample_weight=sample_weight, class_weight=class_weight, drop_last=drop_last,
             early_stopping=early_stopping, on_nonfinite=on_nonfinite, clip_norm=clip_norm,
             clip_value=clip_value, diagnostics=diagnostics, params=params, resume=resume,
             batch_sharding=batch_sharding, shuffle=shuffle)
    if progress and _is_concrete(p.key, p.data, p.hp, p.ts):
        from nnjax.train.runner import run_in_chunks

        every = max(1, min(epochs, progress_every or max(1, epochs // 10)))
        slots = scan_length(every)  # every chunk, the short last one too, runs one program
        return run_in_chunks(lambda ts, size: p.run(ts, size, slots=slots), p.ts, epochs, progress, every)
    return p.run(p.ts)


class Plan(NamedTuple):
    """A checked run, ready to train: what :func:`plan` returns and :func:`fit` runs.

    ``run(ts, epochs)`` trains ``epochs`` epochs from the training state ``ts`` (``ts`` first:
    the untrained or resumed state; then a previous result's ``train_state``); a run cut into
    calls of ``run`` is the run done in one call, bit for bit, and the host's checks, the
    encoding of the data and the program are paid once.
    """

    cfg: FitConfig
    key: PRNGKey
    data: Prepared
    hp: HyperParams
    ts: TrainState

    def run(self, ts: TrainState, epochs: int | None = None, *, slots: int | None = None) -> FitResult:
        """:func:`run_compiled` of this plan from ``ts`` (default: ``cfg.epochs`` epochs)."""
        return run_compiled(self.cfg, self.key, self.data, self.hp, ts, epochs, slots=slots)


def plan(
    key: PRNGKey | None,
    net: Any,
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
    batch_sharding: Any = None,
    shuffle: bool = True,
) -> Plan:
    """Everything :func:`fit` does before training: checks, encoding, the start state and config.

    Takes :func:`fit`'s arguments (less the progress ones). ``fit(...)`` is
    ``plan(...).run(plan(...).ts)``; the command line plans once and runs chunk after chunk.

    Raises:
      ValueError: as :func:`fit`.
    """
    cache.enable_default()
    model = as_model(net)
    loss_obj = losses.resolve(loss)
    if isinstance(optimizer, str):
        optimizer = optim.make(optimizer, learning_rate)  # checks learning_rate (nnjax.checks)
    elif not hasattr(optimizer, "update") or not hasattr(optimizer, "init"):
        raise ValueError(f"optimizer: expected an optax.GradientTransformation or a name from "
                         f"{', '.join(optim.OPTIMIZERS)}, got {optimizer!r}")
    optimizer = optim.with_clipping(optimizer, clip_norm=clip_norm, clip_value=clip_value)
    if isinstance(early_stopping, int) and not isinstance(early_stopping, bool):
        early_stopping = EarlyStopping(patience=early_stopping)
    if on_nonfinite not in ("skip", "stop"):
        raise ValueError(f"on_nonfinite: expected 'skip' or 'stop', got {on_nonfinite!r}")
    epochs = data_lib.check_positive_int(epochs, "epochs")
    batch_size = data_lib.check_positive_int(batch_size, "batch_size")
    prepared = prepare(model, data, loss=loss_obj, sample_weight=sample_weight, class_weight=class_weight,
                       validation=validation)
    n = prepared.n
    if batch_size > n:
        raise ValueError(f"batch_size: expected at most the number of examples ({n}), got {batch_size}")
    hp = hyperparameters(l1, l2, dropout)

    cfg = FitConfig(
        model=model, loss=loss_obj, optimizer=optimizer, epochs=epochs, batch_size=batch_size, n=n,
        drop_last=drop_last, early_stopping=early_stopping, on_nonfinite=on_nonfinite,
        diagnostics=diagnostics, dynamic_dropout=dropout is not None, batch_sharding=batch_sharding,
        shuffle=bool(shuffle),
    )
    if resume is not None:
        key = resume.key if key is None else key
        ts = resume.train_state
        _check_resume(ts, model, optimizer)
    else:
        if key is None:
            raise ValueError("key: expected a jax PRNG key (e.g. jax.random.key(0)), got None")
        ts = start(key, cfg, params)
    # Compare the optimizer by what it computes, so a fresh but equal one reuses the program;
    # a model without weight matrices has no per-layer diagnostics to record.
    cfg = dataclasses.replace(cfg, optimizer=optim.by_value(optimizer, ts.params),
                              diagnostics=diagnostics and bool(model.layer_weights(ts.params)))

    return Plan(cfg, key, prepared, hp, ts)


def _check_resume(ts: TrainState, model: Any, optimizer: Any) -> None:
    """A resumed state must be one this model and optimizer make (same structure and shapes)."""
    want = jax.eval_shape(model.init, jax.random.key(0))
    got_shapes = jax.tree.map(lambda a: tuple(jnp.shape(a)), ts.params)
    want_shapes = jax.tree.map(lambda a: tuple(a.shape), want)
    if jax.tree.structure(got_shapes) != jax.tree.structure(want_shapes) or got_shapes != want_shapes:
        raise ValueError(f"resume: expected a result of this network (parameter shapes {want_shapes}), "
                         f"got one with parameter shapes {got_shapes}")
    want_opt = jax.eval_shape(optimizer.init, want)
    if jax.tree.structure(want_opt) != jax.tree.structure(ts.opt_state):
        raise ValueError("resume: expected a result trained with this optimizer (the same kind, clipping and "
                         "schedule), got one whose optimizer state has another structure; pass the optimizer "
                         "the run was started with")


def _result(cfg: FitConfig, key, ts: TrainState, history: dict) -> FitResult:
    if cfg.early_stopping is not None and cfg.early_stopping.restore_best:
        has_best = ts.best_epoch >= 0
        params = jax.tree.map(lambda b, p: jnp.where(has_best, b, p), ts.best_params, ts.params)
        state = jax.tree.map(lambda b, p: jnp.where(has_best, b, p), ts.best_state, ts.state)
    else:
        params, state = ts.params, ts.state
    return FitResult(params=params, state=state, history=history, train_state=ts, key=key)
