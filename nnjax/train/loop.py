"""The compiled training loop: ``lax.scan`` over epochs of ``lax.scan`` over minibatches.

Everything here is pure and traceable; :func:`nnjax.fit` (in
:mod:`nnjax.fitting`) validates inputs on the host and calls :func:`run`.

Key schedule (so any epoch's shuffle or any minibatch's dropout mask can be
rebuilt after the fact from the run key ``key``)::

    init_key, loop_key = jax.random.split(key)          # parameters from init_key
    epoch_key   = fold_in(loop_key, epoch)              # epoch counts from 0 over continuations
    permutation = jax.random.permutation(fold_in(epoch_key, 0), n)
    batch_key   = fold_in(fold_in(epoch_key, 1), step)  # step within the epoch
    layer mask  = fold_in(batch_key, layer)             # inside nnjax.network

A step computes ``mean loss + l1 sum|W| + l2 sum W^2``, its gradient, and the
optax update; if the loss, a gradient or a new parameter is not finite the step
is skipped (parameters, batch-norm statistics and optimiser state unchanged)
and counted in ``history["skipped"]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax.train import branching, diagnostics, optim
from nnjax.nn import losses
from nnjax._base.typing import Params, PRNGKey, State
from nnjax.nn.model import as_model
from nnjax.train.options import EarlyStopping, Regularization

__all__ = [
    "EarlyStopping",
    "FitConfig",
    "Regularization",
    "StepInfo",
    "TrainState",
    "batch_key",
    "epoch_key",
    "epoch_permutation",
    "evaluate",
    "fresh_state",
    "init_train_state",
    "run",
    "split_run_key",
    "train_step",
]


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Everything static about a training run (hashable: a static argument of ``jit``).

    ``model`` is anything :func:`nnjax.model.as_model` accepts (an :class:`nnjax.MLP` is turned
    into its model here); ``epochs`` is the length of the compiled epoch scan (a run may use
    fewer, see :func:`run`). Equal settings are equal configs: they share a compiled program.
    """

    model: Any
    loss: losses.Loss
    optimizer: optax.GradientTransformation
    epochs: int
    batch_size: int
    n: int
    drop_last: bool = False
    early_stopping: EarlyStopping | None = None
    on_nonfinite: str = "skip"
    diagnostics: bool = True
    dynamic_dropout: bool = False
    # A jax.sharding.Sharding for the epoch's (steps, batch, ...) arrays, e.g.
    # NamedSharding(mesh, P(None, "data")): data-parallel training (see nnjax.parallel).
    batch_sharding: Any = None
    shuffle: bool = True  # False visits the examples in their given order every epoch

    def __post_init__(self):
        object.__setattr__(self, "model", as_model(self.model))

    @property
    def steps(self) -> int:
        """Minibatches per epoch."""
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def monitor(self, has_validation: bool) -> tuple[str, bool]:
        """The monitored history key and whether larger is better."""
        es = self.early_stopping
        name = es.monitor or ("val_loss" if has_validation else "loss")
        maximise = es.mode == "max" or (es.mode == "auto" and losses.is_maximised(name))
        return name, maximise


class TrainState(NamedTuple):
    """What a run carries from epoch to epoch (and what a continuation starts from)."""

    params: Params
    state: State
    opt_state: Any
    epoch: jax.Array  # epochs done so far, over all continuations
    best_params: Params
    best_state: State
    best_value: jax.Array
    best_epoch: jax.Array
    bad_epochs: jax.Array
    stopped: jax.Array


class StepInfo(NamedTuple):
    """What one step reports (sums over the batch's real rows, so epochs average exactly)."""

    loss_sum: jax.Array
    weight_sum: jax.Array
    correct_sum: jax.Array
    grad_norm: jax.Array
    applied: jax.Array
    layers: dict[str, jax.Array]


def split_run_key(key: PRNGKey) -> tuple[PRNGKey, PRNGKey]:
    """``(init_key, loop_key)`` of a run key."""
    init_key, loop_key = jax.random.split(key)
    return init_key, loop_key


def epoch_key(key: PRNGKey, epoch: int | jax.Array) -> PRNGKey:
    """The key of epoch ``epoch`` of the run with run key ``key``."""
    return jax.random.fold_in(split_run_key(key)[1], epoch)


def epoch_permutation(key: PRNGKey, epoch: int | jax.Array, n: int) -> jax.Array:
    """The order in which epoch ``epoch`` visits the ``n`` training examples."""
    return jax.random.permutation(jax.random.fold_in(epoch_key(key, epoch), 0), n)


def batch_key(key: PRNGKey, epoch: int | jax.Array, step: int | jax.Array) -> PRNGKey:
    """The dropout key of minibatch ``step`` of epoch ``epoch``."""
    return jax.random.fold_in(jax.random.fold_in(epoch_key(key, epoch), 1), step)


def _tree_select(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def train_step(
    params: Params,
    state: State,
    opt_state: Any,
    batch: tuple[jax.Array, jax.Array, jax.Array],
    *,
    key: PRNGKey,
    cfg: FitConfig,
    l1: jax.Array | float | None = None,
    l2: jax.Array | float | None = None,
    dropout: jax.Array | None = None,
    sampled: jax.Array | bool = True,
) -> tuple[Params, State, Any, StepInfo]:
    """One guarded optimiser step on ``batch = (x, y, weights)``; weights 0 mark padding rows.

    ``l1``/``l2`` of None leave the penalty out of the program altogether (a
    traced 0.0 would still compute it).
    """
    x, y, weights = batch
    loss = cfg.loss

    def objective(p):
        logits, new_state, hidden = cfg.model.core_apply(
            p, state, x, key=key, train=True, dropout=dropout, row_weights=(weights > 0),
        )
        per_example = loss.fn(logits, y)
        data_loss = losses.mean_loss(per_example, weights)
        total = data_loss
        if l1 is not None:
            total = total + l1 * losses.l1_penalty(p)
        if l2 is not None:
            total = total + l2 * losses.l2_penalty(p)
        return total, (per_example, logits, new_state, hidden)

    (total, (per_example, logits, new_state, hidden)), grads = jax.value_and_grad(objective, has_aux=True)(params)
    # The objective reaches transformations that take it (optax's extra-args protocol, e.g.
    # optax.contrib.reduce_on_plateau); float32 whatever the compute dtype, as their states keep it.
    updates, new_opt_state = optim.update(cfg.optimizer, grads, opt_state, params, value=total.astype(jnp.float32))
    new_params = optax.apply_updates(params, updates)
    # One sum of squares per gradient leaf gives the global norm and the finiteness
    # check at once (a norm beyond float32's range counts as non-finite, too).
    grad_sq = sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(grads))
    # A sum is finite only if every entry is (NaN and Inf propagate): one cheap
    # reduction per leaf instead of an elementwise test and an all().
    params_sum = sum(jnp.sum(p) for p in jax.tree_util.tree_leaves(new_params))
    ok = jnp.isfinite(total) & jnp.isfinite(grad_sq) & jnp.isfinite(params_sum)
    params_out = _tree_select(ok, new_params, params)
    state_out = _tree_select(ok, new_state, state)
    opt_out = _tree_select(ok, new_opt_state, opt_state)

    w = weights.astype(per_example.dtype)
    correct = loss.accuracy(logits, y) if loss.classification else jnp.zeros_like(per_example)
    layers = {}
    if cfg.diagnostics:
        # ``sampled``: whether this step also takes the costlier statistics (see nnjax.diagnostics)
        layers = diagnostics.layer_stats(_layers(cfg, grads), _layers(cfg, updates), hidden, weights,
                                         sampled=sampled, activations=cfg.model.hidden_activations)
    info = StepInfo(
        loss_sum=jnp.sum(jnp.where(w > 0, per_example, 0.0) * w),
        weight_sum=jnp.sum(w),
        correct_sum=jnp.sum(correct * w),
        grad_norm=jnp.sqrt(grad_sq),
        applied=ok,
        layers=layers,
    )
    return params_out, state_out, opt_out, info


def _epoch_order(cfg: FitConfig, key: PRNGKey, ts: TrainState, w):
    """The epoch's row indices and weights, cut into ``(steps, batch)``: the reshuffle, with the short
    last batch padded by weight-0 rows (row 0)."""
    perm = epoch_permutation(key, ts.epoch, cfg.n) if cfg.shuffle else jnp.arange(cfg.n)
    total = cfg.steps * cfg.batch_size
    if total <= cfg.n:
        idx, real = perm[:total], jnp.ones((total,), bool)
    else:  # pad the short last batch with weight-0 rows
        pad = total - cfg.n
        idx = jnp.concatenate([perm, jnp.zeros((pad,), perm.dtype)])
        real = jnp.concatenate([jnp.ones((cfg.n,), bool), jnp.zeros((pad,), bool)])
    shape = (cfg.steps, cfg.batch_size)
    return idx.reshape(shape), jnp.where(real, w[idx], 0.0).reshape(shape)


def _epoch_batches(cfg: FitConfig, key: PRNGKey, ts: TrainState, x, y, w):
    """The epoch's reshuffled data, gathered at once as ``(steps, batch, ...)`` arrays: a copy of the
    data per epoch, used only for data-parallel runs (their sharding is given for these shapes)."""
    idx, weights = _epoch_order(cfg, key, ts, w)
    batches = (x[idx], y[idx], weights)
    if cfg.batch_sharding is not None:  # split each batch over devices; XLA all-reduces the gradients
        batches = tuple(jax.lax.with_sharding_constraint(a, cfg.batch_sharding) for a in batches)
    return batches


def _layers(cfg: FitConfig, tree: Any) -> list[dict]:
    """The model's per-layer weight matrices of a params-shaped tree, as the diagnostics read them."""
    return [{"w": w} for w in cfg.model.layer_weights(tree)]


def evaluate(params: Params, state: State, x: jax.Array, y: jax.Array, net: Any, loss: losses.Loss) -> dict:
    """Evaluation-mode metrics on ``(x, y)``: the loss and the loss record's :meth:`~nnjax.losses.Loss.metrics`
    (accuracy, or MSE and R^2); ``net``: any model."""
    logits, _, _ = as_model(net).core_apply(params, state, x, train=False)
    return {"loss": jnp.mean(loss.fn(logits, y)), **loss.metrics(logits, y)}


def _train_epoch(cfg: FitConfig, key, data, hp, ts: TrainState):
    x, y, w, validation = data
    if cfg.batch_sharding is None:
        # Each step gathers its own rows: no shuffled copy of the whole data set per epoch.
        idx, wb = _epoch_order(cfg, key, ts, w)
        batches = (idx, wb, jnp.arange(cfg.steps))
    else:
        xb, yb, wb = _epoch_batches(cfg, key, ts, x, y, w)
        batches = (xb, yb, wb, jnp.arange(cfg.steps))
    dropout = hp.dropout

    def body(carry, inputs):
        params, state, opt_state = carry
        if cfg.batch_sharding is None:
            rows, ws, step = inputs
            xs, ys = jnp.take(x, rows, axis=0), jnp.take(y, rows, axis=0)
        else:
            xs, ys, ws, step = inputs
        k = batch_key(key, ts.epoch, step)
        params, state, opt_state, info = train_step(
            params, state, opt_state, (xs, ys, ws), key=k, cfg=cfg, l1=hp.l1, l2=hp.l2, dropout=dropout,
            sampled=diagnostics.sampled_step(step, cfg.steps),
        )
        return (params, state, opt_state), info

    (params, state, opt_state), infos = jax.lax.scan(body, (ts.params, ts.state, ts.opt_state), batches)
    applied = infos.applied.astype(jnp.float32)
    n_applied = jnp.sum(applied)
    weight_sum = jnp.sum(infos.weight_sum)
    metrics = {
        "loss": jnp.sum(infos.loss_sum) / weight_sum,
        "grad_norm": jnp.sum(jnp.where(infos.applied, infos.grad_norm, 0.0)) / jnp.where(n_applied > 0, n_applied, jnp.nan),
        "skipped": cfg.steps - jnp.sum(infos.applied.astype(jnp.int32)),
    }
    if cfg.loss.classification:
        metrics["accuracy"] = jnp.sum(infos.correct_sum) / weight_sum
    if cfg.diagnostics:
        metrics.update(diagnostics.epoch_stats(infos.layers, _layers(cfg, params)))
    if validation is not None:
        for name, value in evaluate(params, state, *validation, cfg.model, cfg.loss).items():
            metrics["val_" + name] = value
    ts = ts._replace(params=params, state=state, opt_state=opt_state, epoch=ts.epoch + 1)
    return _update_stopping(cfg, ts, metrics, validation is not None), metrics


def _update_stopping(cfg: FitConfig, ts: TrainState, metrics: dict, has_validation: bool) -> TrainState:
    stop_now = jnp.array(False)
    if cfg.on_nonfinite == "stop":
        stop_now = metrics["skipped"] > 0
    if cfg.early_stopping is not None:
        name, maximise = cfg.monitor(has_validation)
        value = metrics[name]
        delta = cfg.early_stopping.min_delta
        improved = (value > ts.best_value + delta) if maximise else (value < ts.best_value - delta)
        better = improved
        if cfg.early_stopping.best_follows_any_gain:
            better = (value > ts.best_value) if maximise else (value < ts.best_value)
        ts = ts._replace(
            best_params=_tree_select(better, ts.params, ts.best_params),
            best_state=_tree_select(better, ts.state, ts.best_state),
            best_value=jnp.where(better, value, ts.best_value),
            best_epoch=jnp.where(better, ts.epoch - 1, ts.best_epoch),
            bad_epochs=jnp.where(improved, 0, ts.bad_epochs + 1),
        )
        stop_now = stop_now | (ts.bad_epochs >= cfg.early_stopping.patience)
    return ts._replace(stopped=ts.stopped | stop_now)


def fresh_state(params: Params, state: State, opt_state: Any, *, maximise: bool = False) -> TrainState:
    """A :class:`TrainState` at epoch 0 with no best epoch yet (pure; ``jax.vmap`` maps it).

    ``maximise``: whether the early-stopping monitor is maximised (the best starts at -inf).
    The counters are NumPy scalars (constants under a transformation): made by ``jnp``, each
    would compile a small program of its own in a fresh process.
    """
    return TrainState(
        params=params,
        state=state,
        opt_state=opt_state,
        epoch=np.zeros((), np.int32),
        best_params=params,
        best_state=state,
        best_value=np.array(-np.inf if maximise else np.inf, np.float32),
        best_epoch=np.full((), -1, np.int32),
        bad_epochs=np.zeros((), np.int32),
        stopped=np.array(False),
    )


def init_train_state(cfg: FitConfig, params: Params, state: State, opt_state: Any = None) -> TrainState:
    """A fresh training state for ``cfg`` from initial parameters and batch-norm statistics
    (and the optimizer's state, default ``cfg.optimizer.init(params)``)."""
    maximise = cfg.early_stopping is not None and cfg.monitor(False)[1]
    return fresh_state(params, state, cfg.optimizer.init(params) if opt_state is None else opt_state,
                       maximise=maximise)


def _missing(s: jax.ShapeDtypeStruct) -> jax.Array:
    """NaN (floats) or 0 (counts) for the metrics of an epoch that was not run."""
    return jnp.full(s.shape, jnp.nan if jnp.issubdtype(s.dtype, jnp.floating) else 0, s.dtype)


def run(cfg: FitConfig, key: PRNGKey, data, hp: Regularization, ts: TrainState,
        n_epochs: jax.Array | int | None = None) -> tuple[TrainState, dict]:
    """Runs ``cfg.epochs`` epochs from ``ts`` (or the first ``n_epochs``); returns the new state and metrics.

    Args:
      data: ``(x, y, weights, validation)`` with ``validation`` ``(x_val, y_val)`` or None.
      hp: the traced :class:`Regularization` (l1, l2, dropout).
      n_epochs: how many of the scan's ``cfg.epochs`` slots to train (may be traced); the
        slots after it change nothing, not even the epoch counter, and their history rows
        are to be dropped. One program of ``cfg.epochs`` slots thus serves every shorter run.

    Epochs after a stop (early stopping or a non-finite step with
    ``on_nonfinite="stop"``) are not run: their metrics are NaN (counts 0).
    """

    traced: list = []  # the metrics' shapes, captured when `go` is traced

    # The branches take the key, data and settings as operands: under jax.vmap they may be
    # per member, and branching.cond maps only its operands.
    def go(ts, key, data, hp):
        out = _train_epoch(cfg, key, data, hp, ts)
        traced.append(jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), out[1]))
        return out

    def skip(ts, key, data, hp):
        # the true branch (`go`) is traced first; eval_shape is only a fallback.
        shapes = traced[-1] if traced else jax.eval_shape(lambda t: _train_epoch(cfg, key, data, hp, t)[1], ts)
        return ts._replace(epoch=ts.epoch + 1), jax.tree.map(_missing, shapes)

    def epoch(ts, slot):
        inside = True if n_epochs is None else slot < n_epochs
        # a branch even under jax.vmap: a population whose members have all stopped skips the epoch
        ts_out, metrics = branching.cond(~ts.stopped & inside, go, skip, ts, key, data, hp)
        metrics["stopped"] = ts.stopped
        metrics["epoch"] = ts.epoch
        if n_epochs is not None:  # a slot past the run's end (skipped) does not count as an epoch
            ts_out = ts_out._replace(epoch=jnp.where(inside, ts_out.epoch, ts.epoch))
        return ts_out, metrics

    return jax.lax.scan(epoch, ts, jnp.arange(cfg.epochs))
