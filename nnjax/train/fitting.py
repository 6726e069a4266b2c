"""``nnjax.fit``: validate on the host, then train in one compiled program.

A run has three pieces, each usable on its own: :func:`prepare` (the host checks and encodes the
data), :func:`start` (the pure untrained state from the key) and :func:`run_compiled` (the
compiled epochs). :func:`plan` does the first two once from the settings (an
:class:`~nnjax.train.options.Options` record, or its fields as keywords) and returns a
:class:`Plan` whose ``run`` trains; :func:`fit` is ``plan`` then ``run``, or the chunk runner
(:mod:`nnjax.train.runner`) when it reports progress.

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
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax._base import cache, checks, xla_options
from nnjax.nn import losses
from nnjax.train import optim, runner
from nnjax._base.typing import Params, PRNGKey, State
from nnjax._base import validation as data_lib
from nnjax.nn.model import as_model
from nnjax.train.loop import FitConfig, TrainState, evaluate, init_train_state, run, split_run_key
from nnjax.train.options import Options, Regularization, is_auto, takes_settings

__all__ = ["FitResult", "Plan", "Prepared", "check_key", "configure", "fit", "plan", "prepare",
           "run_compiled", "scan_length", "start"]


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


def _check_classes(y: np.ndarray, loss: losses.Loss, k: int, resumed: bool = False) -> None:
    if loss.output != "softmax":  # the loss record says whether outputs are classes of a softmax
        return
    if k < 2:
        raise ValueError(f"net: expected at least 2 outputs for softmax classification, got {k}; for one "
                         "class there is nothing to learn")
    if not resumed:  # continuing a run on a batch of one class is online learning, not a mistake
        checks.check_classes(y.argmax(-1) if y.ndim == 2 else y, "y")


def prepare(net: Any, data: tuple[Any, Any], options: Options, *, resumed: bool = False) -> Prepared:
    """Checks and encodes a run's data on the host, once: the first of a run's three pieces.

    ``net`` is anything :func:`nnjax.model.as_model` accepts; ``options`` gives the loss, the
    weights and the validation data. Concrete inputs are validated (shapes, dtypes,
    finiteness, label ranges, weights, at least two classes unless ``resumed`` (a run continued
    on a batch of one class), ``batch_size`` at most the number of examples); traced ones (under ``jax.vmap`` or
    ``jax.jit``) get shape checks only.

    Raises:
      ValueError: naming the argument, what was expected and what came.
    """
    model, loss = as_model(net), options.loss
    sample_weight, validation = options.sample_weight, options.validation
    loss.check_output(getattr(model, "output", None))  # an output activation that contradicts the loss
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"data: expected a pair (x, y), got {type(data).__name__}")
    x, y = data
    if not _is_concrete(x, y, sample_weight, validation):
        if jnp.ndim(x) < 2:
            raise ValueError(f"x: expected shape (n, features), got {jnp.shape(x)}")
        w = jnp.ones((jnp.shape(x)[0],), jnp.float32) if sample_weight is None else sample_weight
        return Prepared(x, y, w, validation)
    given_x, given_y = x, y
    x = model.check_inputs(x, "x")
    n, k = x.shape[0], model.output_width(x)
    if options.batch_size > n:
        raise ValueError(f"batch_size: expected at most the number of examples ({n}), got {options.batch_size}")
    y = loss.check_targets(y, n, k, "y")
    _check_classes(np.asarray(y), loss, k, resumed)
    sample_weight = _class_weights(y, options.class_weight, sample_weight)
    if sample_weight is None:
        w = np.ones((n,), np.float32)
    else:
        w = data_lib.check_targets(sample_weight, n, "sample_weight").astype(np.float32)
        if w.ndim != 1 or np.any(w < 0) or not np.any(w > 0):
            raise ValueError("sample_weight: expected a (n,) array of non-negative weights, not all zero")
    if validation is not None:
        xv = model.check_inputs(validation[0], "validation x")
        yv = loss.check_targets(validation[1], xv.shape[0], k, "validation y")
        validation = (_kept(validation[0], xv), _kept(validation[1], yv))
    return Prepared(_kept(given_x, x), _kept(given_y, y), _on_device(w), validation)


def _kept(given: Any, checked: np.ndarray) -> jax.Array:
    """The checked array on the device: a JAX array given as it was checked (same dtype and shape) is
    used as it is, so data put on the device once (``jax.device_put(x)``) is not copied back and forth
    by every call; anything else is transferred."""
    if isinstance(given, jax.Array) and given.dtype == checked.dtype and given.shape == checked.shape:
        return given
    return _on_device(checked)


def _on_device(a: Any) -> jax.Array:
    """``a`` as a JAX array: host data transferred with ``jax.device_put`` (``jnp.asarray`` of a NumPy
    array compiles a small copy program per shape and dtype), JAX arrays and tracers as they are."""
    return jnp.asarray(a) if isinstance(a, jax.Array) else jax.device_put(np.asarray(a))


def start(key: PRNGKey, cfg: FitConfig, params: Params | None = None) -> TrainState:
    """A run's untrained state from its key: the second piece (pure; ``jax.vmap`` maps it).

    Parameters come from ``cfg.model.init(split_run_key(key)[0])`` unless ``params`` is given.
    With a concrete key and a model whose ``init`` is compiled (an :class:`nnjax.MLP`'s: the same
    bits inside a larger program) the key split, the draw and the model's start state are one compiled
    program per model (op by op, each compiled a small program of its own: three in a fresh
    process, ~0.3 s of a first fit on a 2-core CPU); the optimizer's state is one more
    (:func:`nnjax.train.optim.initial_state`: its numbers, an injected learning rate, are the
    program's, so it is shared only by equal optimizers).
    """
    if params is None:
        if _is_concrete(key) and getattr(cfg.model, "init_is_compiled", False) and _hashable(cfg.model):
            params, state = _drawn_jit(key, cfg.model)
        else:
            params, state = _drawn(key, cfg.model)
    else:
        state = cfg.model.start_state()
    return init_train_state(cfg, params, state, optim.initial_state(cfg.optimizer, params))


def _drawn(key: PRNGKey, model: Any) -> tuple[Params, State]:
    return model.init(split_run_key(key)[0]), model.start_state()


_drawn_jit = jax.jit(_drawn, static_argnums=1)


def run_compiled(cfg: FitConfig, key: PRNGKey, data: Prepared, reg: Regularization, ts: TrainState,
                 epochs: int | None = None, *, slots: int | None = None, trim: bool = True) -> FitResult:
    """Trains ``epochs`` epochs (default ``cfg.epochs``) from ``ts``: the third piece, one compiled call.

    With concrete inputs the program's epoch scan has :func:`scan_length` of ``slots``
    (default ``epochs``) slots, so runs of nearby lengths share it; under a transformation
    (``jax.vmap``) it has exactly ``epochs``. The history rows of the slots past ``epochs`` are
    cut off on the host; ``trim=False`` leaves them (the call then returns before the device is
    done: the chunk runner cuts them when it reads the chunk).
    """
    epochs = cfg.epochs if epochs is None else int(epochs)
    arrays = (data.x, data.y, data.weights, data.validation)
    if not _is_concrete(key, arrays, reg, ts):
        return _run_jit(dataclasses.replace(cfg, epochs=epochs), key, arrays, reg, ts, None)
    slots = scan_length(max(epochs, int(slots or epochs)))
    result = _run_jit(dataclasses.replace(cfg, epochs=slots), key, arrays, reg, ts, np.int32(epochs))
    if slots == epochs or not trim:
        return result
    # a transfer, not a compile: NumPy slices put back on the device
    history = {k: _on_device(np.asarray(v)[:epochs]) for k, v in result.history.items()}
    return result._replace(history=history)


#: What ``learning_rate="auto"`` runs: the range test registers itself here
#: (:func:`nnjax.train.search.lr_range.auto_rate`; it sits above this module and imports it, so this
#: module never imports it). ``nnjax.train`` imports the search package, so it is always registered.
RATE_FINDER: list = []


def with_found_rate(key: PRNGKey, net: Any, data: tuple[Any, Any], options: Options) -> Options:
    """``options`` with ``learning_rate="auto"`` replaced by the range test's suggestion
    (:data:`RATE_FINDER`, run with ``key``); any other ``options`` as they are.

    Raises:
      ValueError: "auto" with a traced key (the range test runs on the host: resolve it first).
    """
    if not is_auto(options.learning_rate):
        return options
    if not _is_concrete(key):
        raise ValueError("learning_rate: 'auto' runs the range test on the host: expected a concrete key, got a "
                         "traced one; call nnjax.lr_find first and pass its suggestion")
    return options.replace(learning_rate=float(RATE_FINDER[0](key, net, data, options)))


@takes_settings
def fit(key: PRNGKey | None, net: Any, data: tuple[Any, Any], options: Options | None = None, *,
        params: Params | None = None, resume: FitResult | None = None, progress: Any = False,
        progress_every: int | None = None, **settings: Any) -> FitResult:
    """Trains ``net`` on ``data = (x, y)`` with minibatch gradient descent, in one compiled program.

    Each epoch reshuffles with its own key and visits every example exactly once;
    a short last batch is padded with weight-0 rows so the batch mean stays exact
    (``drop_last=True`` drops it instead). ``batch_size=n`` is full-batch gradient
    descent, ``batch_size=1`` pure SGD. The objective of a batch is
    ``mean loss + l1 * sum|W| + l2 * sum W^2`` over weight matrices.

    Args:
      key: the run key (see :mod:`nnjax.training` for the key schedule): one key,
        ``jax.random.key(0)``. With ``resume`` it may be None (the resumed run's key is used).
      net: the topology (anything :func:`nnjax.model.as_model` accepts).
      data: ``(x, y)``: features ``(n, sizes[0])`` and targets as the loss expects.
      options: the settings as one :class:`~nnjax.train.options.Options` record; keywords
        given as well replace its fields.
      params: initial parameters (default: ``nnjax.init(init_key, net)``); they must have the
        shapes ``net`` initialises.
      resume: the :class:`FitResult` of an earlier run to continue: 10 epochs equal 5 + 5, bit for bit.
      progress: report between compiled chunks of ``progress_every`` epochs (default: a
        twentieth of ``epochs``, see :func:`nnjax.train.runner.chunk_epochs`), bit for bit the
        same run as one call: True for a tqdm bar; a callable ``progress(epochs_done, metrics)``
        (the last epoch's metrics); a hook with ``on_chunk(epochs_done, chunk)`` such as
        :class:`nnjax.tensorboard.Writer`; or a list of these. A callable or hook that returns
        :class:`nnjax.train.runner.Stop` ends training at that chunk boundary.
      **settings: the fields of :class:`~nnjax.train.options.Options`: ``loss``, ``optimizer``,
        ``epochs`` and ``batch_size`` (required), ``learning_rate`` (also "auto": the suggestion
        of :func:`nnjax.lr_find` with these settings, logged on the ``nnjax`` logger), ``l1``, ``l2``, ``dropout``,
        ``validation``, ``sample_weight``, ``class_weight``, ``drop_last``, ``early_stopping``,
        ``on_nonfinite``, ``clip_norm``, ``clip_value``, ``diagnostics``, ``shuffle``,
        ``batch_sharding``; each is described there.

    Returns:
      A :class:`FitResult`. ``history`` holds arrays of length ``epochs``:
      "loss" (mean data loss over the epoch as seen while training, penalties
      excluded), "accuracy" (classification), "grad_norm", "skipped" (steps not
      applied), "stopped", "epoch"; with validation "val_loss" and
      "val_accuracy" or "val_mse"/"val_r2"; with diagnostics the per-layer keys
      of :data:`nnjax.diagnostics.LAYER_KEYS`. Epochs after a stop hold NaN. After a stop
      request of a progress hook, the arrays hold the epochs run (and ``resume=`` continues).

    Raises:
      ValueError: for inputs of the wrong shape, dtype, range or finiteness,
        naming the argument, the expectation and what came.
      TypeError: for a setting of the wrong type or an unknown keyword.
    """
    p = plan(key, net, data, options, params=params, resume=resume, **settings)
    if not progress or not _is_concrete(p.key, p.data, p.reg, p.ts):
        return p.run(p.ts)
    epochs = p.cfg.epochs
    outcome = runner.train(p, epochs, every=progress_every, hooks=runner.hooks_for(progress, epochs))
    history = outcome.result.history
    if outcome.all_stopped and outcome.epochs_done < epochs:  # as one call: the epochs never run hold NaN
        history = runner.stopped_tail(history, epochs - outcome.epochs_done)
    return outcome.result._replace(history={k: _on_device(v) for k, v in history.items()})


class Plan(NamedTuple):
    """A checked run, ready to train: what :func:`plan` returns and :func:`fit` runs.

    ``run(ts, epochs)`` trains ``epochs`` epochs from the training state ``ts`` (``ts`` first:
    the untrained or resumed state; then a previous result's ``train_state``); a run cut into
    calls of ``run`` is the run done in one call, bit for bit, and the host's checks, the
    encoding of the data and the program are paid once. :func:`nnjax.train.runner.train`
    runs a plan chunk by chunk.
    """

    cfg: FitConfig
    key: PRNGKey
    data: Prepared
    reg: Regularization
    ts: TrainState

    def run(self, ts: TrainState, epochs: int | None = None, *, slots: int | None = None,
            trim: bool = True) -> FitResult:
        """:func:`run_compiled` of this plan from ``ts`` (default: ``cfg.epochs`` epochs)."""
        return run_compiled(self.cfg, self.key, self.data, self.reg, ts, epochs, slots=slots, trim=trim)

    @property
    def may_stop(self) -> bool:
        """Whether the run can stop before its last epoch (early stopping or ``on_nonfinite="stop"``)."""
        return self.cfg.early_stopping is not None or self.cfg.on_nonfinite == "stop"


def configure(options: Options, net: Any, n: int, optimizer: Any = None) -> FitConfig:
    """The static part of a run (what the compiled program is specialised on), from its settings.

    Args:
      options: the run's settings.
      net: the model.
      n: the number of training examples.
      optimizer: the transformation (default ``options.build_optimizer()``; a population passes
        each member's, built from its traced learning rate).
    """
    return FitConfig(
        model=net, loss=options.loss, optimizer=options.build_optimizer() if optimizer is None else optimizer,
        epochs=options.epochs, batch_size=options.batch_size, n=n, drop_last=options.drop_last,
        early_stopping=options.early_stopping, on_nonfinite=options.on_nonfinite, diagnostics=options.diagnostics,
        dynamic_dropout=options.dropout is not None, batch_sharding=options.batch_sharding, shuffle=options.shuffle,
    )


@takes_settings
def plan(key: PRNGKey | None, net: Any, data: tuple[Any, Any], options: Options | None = None, *,
         params: Params | None = None, resume: FitResult | None = None, **settings: Any) -> Plan:
    """Everything :func:`fit` does before training: checks, encoding, the start state and config.

    Takes :func:`fit`'s arguments (less the progress ones). ``fit(...)`` is
    ``plan(...).run(plan(...).ts)``; the command line plans once and runs chunk after chunk.

    Raises:
      ValueError, TypeError: as :func:`fit`.
    """
    cache.enable_default()
    options = Options.of(options, **settings)
    model = as_model(net)
    if resume is not None:
        if not isinstance(getattr(resume, "train_state", None), TrainState):
            raise TypeError(f"resume: expected the FitResult of an earlier fit, got {type(resume).__name__}")
        if params is not None:
            raise ValueError("params: a resumed run continues from its own parameters; pass params=None")
        key = resume.key if key is None else key
    key = check_key(key)
    options = with_found_rate(key, net, data, options)
    prepared = prepare(model, data, options, resumed=resume is not None)
    cfg = configure(options, model, prepared.n)
    shapes = _init_shapes(model)
    like = resume.train_state.params if resume is not None else (shapes if params is None else params)
    # Compare the optimizer by what it computes, so a fresh but equal one reuses the programs (the
    # start's and the training's); a model without weight matrices has no per-layer diagnostics.
    cfg = dataclasses.replace(cfg, optimizer=optim.by_value(cfg.optimizer, like),
                              diagnostics=cfg.diagnostics and bool(model.layer_weights(shapes)))
    if resume is not None:
        ts = resume.train_state
        _check_state(ts, model, cfg.optimizer)
    else:
        if params is not None and _is_concrete(params):
            _check_params(params, shapes, "params")
        ts = start(key, cfg, params)
    reg = options.regularization()
    if _is_concrete(key, prepared, ts):
        _check_monitor(cfg, key, prepared, reg, ts)
    return Plan(cfg, key, prepared, reg, ts)


def check_key(key: Any) -> PRNGKey:
    """One PRNG key: ``jax.random.key(0)`` (shape ``()``) or a raw ``jax.random.PRNGKey(0)`` (``(2,)``).

    Raises:
      ValueError: None, or a key array of another shape (such as the stacked keys of a population).
      TypeError: not a key at all (a Python int, a string).
    """
    if key is None:
        raise ValueError("key: expected a jax PRNG key (e.g. jax.random.key(0)), got None")
    if not _is_concrete(key):
        return key
    dtype, shape = getattr(key, "dtype", None), getattr(key, "shape", None)
    if dtype is None or shape is None:
        raise TypeError(f"key: expected a jax PRNG key (e.g. jax.random.key(0)), got {type(key).__name__} {key!r}")
    typed = jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    if (typed and shape != ()) or (not typed and (dtype != np.uint32 or shape != (2,))):
        raise ValueError(f"key: expected one PRNG key, jax.random.key(0) (shape ()) or a raw jax.random.PRNGKey(0) "
                         f"(shape (2,)), got dtype {dtype} and shape {tuple(shape)}; a population takes stacked "
                         "keys (nnjax.fit_population)")
    return key


def _init_shapes(model: Any) -> Any:
    """The shapes and dtypes of ``model``'s parameters (traced once per model, nothing computed)."""
    return _INIT_SHAPES(model) if _hashable(model) else jax.eval_shape(model.init, jax.random.key(0))


@functools.lru_cache(maxsize=64)
def _INIT_SHAPES(model: Any) -> Any:
    return jax.eval_shape(model.init, jax.random.key(0))


def _hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def _shapes(tree: Any) -> list[tuple[str, tuple]]:
    """Each leaf's path and shape; a list and a tuple of layers read alike (the program takes either)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [(jax.tree_util.keystr(path), tuple(jnp.shape(a))) for path, a in leaves]


def _check_params(params: Any, want: Any, name: str) -> None:
    """``params`` must have the leaves and shapes this model initialises (``want``)."""
    if _shapes(params) != _shapes(want):
        what = "a result of this network" if name == "resume" else "parameters of this network"
        shapes = jax.tree.map(lambda a: tuple(jnp.shape(a)), want), jax.tree.map(lambda a: tuple(jnp.shape(a)), params)
        raise ValueError(f"{name}: expected {what} (parameter shapes {shapes[0]}), "
                         f"got one with parameter shapes {shapes[1]}")


def _check_state(ts: TrainState, model: Any, optimizer: Any) -> None:
    """A resumed state must be one this model and optimizer make (same structure and shapes)."""
    want = _init_shapes(model)
    _check_params(ts.params, want, "resume")
    want_opt = jax.eval_shape(optimizer.init, want)
    if jax.tree.structure(want_opt) != jax.tree.structure(ts.opt_state):
        raise ValueError("resume: expected a result trained with this optimizer (the same kind, clipping and "
                         "schedule), got one whose optimizer state has another structure; pass the optimizer "
                         "the run was started with")


def _check_monitor(cfg: FitConfig, key: PRNGKey, data: Prepared, reg: Regularization, ts: TrainState) -> None:
    """Early stopping's ``monitor`` must name a number the run records every epoch.

    The names are read off the program by tracing (nothing is computed): a validation metric
    off the evaluation pass alone, any other name off one whole epoch; "loss" is always recorded.
    """
    es = cfg.early_stopping
    if es is None or es.monitor is None or es.monitor == "loss":
        return
    if data.validation is not None and es.monitor.startswith("val_"):
        scores = jax.eval_shape(lambda p, s, x, y: evaluate(p, s, x, y, cfg.model, cfg.loss), ts.params, ts.state,
                                *data.validation)
        if es.monitor[len("val_"):] in scores:
            return
    plain = dataclasses.replace(cfg, epochs=1, early_stopping=None)
    arrays = (data.x, data.y, data.weights, data.validation)
    history = jax.eval_shape(lambda k, a, r, t: run(plain, k, a, r, t)[1], key, arrays, reg, ts)
    names = sorted(k for k, v in history.items() if v.shape == (1,) and k not in ("epoch", "stopped"))
    if es.monitor not in names:
        raise ValueError(f"monitor: expected a number this run records every epoch ({', '.join(names)}), "
                         f"got {es.monitor!r}")


def _result(cfg: FitConfig, key, ts: TrainState, history: dict) -> FitResult:
    if cfg.early_stopping is not None and cfg.early_stopping.restore_best:
        has_best = ts.best_epoch >= 0
        params = jax.tree.map(lambda b, p: jnp.where(has_best, b, p), ts.best_params, ts.params)
        state = jax.tree.map(lambda b, p: jnp.where(has_best, b, p), ts.best_state, ts.state)
    else:
        params, state = ts.params, ts.state
    return FitResult(params=params, state=state, history=history, train_state=ts, key=key)
