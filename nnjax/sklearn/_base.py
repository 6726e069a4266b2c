"""The training engine shared by :class:`MLPClassifier` and :class:`MLPRegressor`.

``fit`` validates on the host with scikit-learn's own validators, translates the
hyper-parameters (:mod:`nnjax.sklearn._config`) and calls :func:`nnjax.fit` once:
the whole run is one compiled program, and ``n_seeds > 1`` trains a population
under ``jax.vmap`` and keeps the best member. Fitted arrays are NumPy, so the
estimators pickle and clone like any scikit-learn estimator.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from nnjax.train.fitting import FitResult, fit
from nnjax.nn.network import MLP, apply, init_state
from nnjax.sklearn import _config, _padding
from nnjax.train import optim
from nnjax.train.loop import TrainState, fresh_state
from nnjax.train.options import Options, is_auto
from nnjax.train.search import lr_range

__all__ = ["BaseMLP", "Run", "Targets", "check_sample_weight", "forward"]

_PREDICT_CHUNK = 4096  # rows per compiled forward pass; smaller inputs are padded to a power of two


class Targets(NamedTuple):
    """Targets encoded for nnjax, and how the network and its loss are set up for them."""

    y: np.ndarray  # what nnjax.fit trains on
    n_outputs: int
    output: str  # nnjax output activation
    out_activation: str  # scikit-learn's name for it
    loss: str  # nnjax loss name
    loss_scale: float  # nnjax loss / scikit-learn's reported loss (loss_curve_, tol)
    objective_scale: float  # nnjax loss / the objective scikit-learn's gradient steps follow
    monitor: str  # the history key of the validation score
    stratify: bool  # stratify the early-stopping split on y


@functools.partial(jax.jit, static_argnums=2)
def _compiled_logits(params, state, net: MLP, x):
    return apply(params, x, net, state=state)


def forward(params, state, net: MLP, x: np.ndarray) -> np.ndarray:
    """Logits of ``x`` as float64, in compiled chunks padded like training (few recompilations)."""
    padded_net = _padding.pad_features(net, l1=0.0)
    params = _padding.pad_params(params, padded_net)
    x = _padding.pad_inputs(x, padded_net)
    out = []
    for start in range(0, x.shape[0], _PREDICT_CHUNK):
        part = x[start:start + _PREDICT_CHUNK]
        padded = np.zeros((_padding.bucket(part.shape[0], minimum=_padding.MIN_ROWS), x.shape[1]), np.float32)
        padded[: part.shape[0]] = part
        out.append(np.asarray(_compiled_logits(params, state, padded_net, padded))[: part.shape[0]])
    return np.concatenate(out).astype(np.float64)


def check_sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    """Sample weights as a float32 ``(n,)`` array: finite, non-negative, not all zero."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"sample_weight: expected shape ({n},), one weight per sample, got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight: expected finite weights, got NaN or infinite values")
    if np.any(w < 0):
        raise ValueError(f"sample_weight: expected non-negative weights, got a minimum of {w.min()}")
    if not np.any(w > 0):
        raise ValueError("sample_weight: expected at least one positive weight, got all weights zero")
    return w.astype(np.float32)


class Run(NamedTuple):
    """One call of ``nnjax.fit``: the compiled topology, its (padded) data and settings."""

    net: MLP  # the true topology (coefs_ shapes)
    train_net: MLP  # what the program is compiled for (input width bucketed)
    data: tuple[np.ndarray, np.ndarray]
    options: Options
    optimizer: Any
    signature: tuple  # what a carried optimizer state must match
    n_train: int
    range_test: tuple  # (learning_rate -> the optimizer at a constant rate, its back-off): for lr_find


def _population(keys: list, run: Run, resume: TrainState | None, incremental: bool):
    """``nnjax.fit`` for every key: one run, or a ``jax.vmap``-ed population; NumPy results.

    Every run starts from a :class:`TrainState` (fresh, or the one carried from the previous
    call), so ``fit`` and ``partial_fit`` compile the same program. ``partial_fit`` trains one
    epoch by entering that program one bad epoch short of its stopping patience.
    """
    stopping = run.options.early_stopping

    def one(key):
        if resume is None:
            params = _padding.initial_params(key, run.net, run.train_net)
            start = fresh_state(params, init_state(run.train_net), optim.initial_state(run.optimizer, params),
                                maximise=stopping is not None and stopping.mode == "max")
        else:  # NumPy leaves (as stored) to device arrays, so jit sees the same signature as a fresh start
            start = jax.tree.map(jnp.asarray, resume)
        if incremental:
            start = start._replace(best_value=jnp.asarray(-np.inf, jnp.float32),
                                   bad_epochs=jnp.asarray(stopping.patience - 1, jnp.int32))
        result = fit(key, run.train_net, run.data, run.options,
                     resume=FitResult(start.params, start.state, {}, start, key))
        return result.params, result.state, result.history, result.train_state

    if len(keys) == 1:
        return jax.tree.map(lambda a: np.asarray(a)[None], jax.device_get(one(keys[0])))
    return jax.device_get(jax.vmap(one)(jnp.stack(keys)))


def _member(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda a: a[i], tree)


class BaseMLP(BaseEstimator):
    """Shared fit/partial_fit machinery; subclasses encode targets and decode outputs."""

    def _encode_targets(self, y, *, first_pass: bool, incremental: bool, classes: Any = None) -> Targets:
        raise NotImplementedError

    def _validate_xy(self, X, y, reset: bool):
        return validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32), reset=reset)

    # ------------------------------------------------------------------------------------------
    # fitting

    def _fit(self, X, y, sample_weight=None, *, incremental: bool, classes: Any = None):
        settings = _config.check_settings(self)
        if incremental and self.early_stopping:
            raise ValueError("early_stopping: partial_fit does not support early_stopping=True; "
                             "set early_stopping=False or call fit")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_xy(X, y, reset=first_pass)
        weights = check_sample_weight(sample_weight, X.shape[0])
        targets = self._encode_targets(y, first_pass=first_pass, incremental=incremental, classes=classes)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        x, validation = X.astype(np.float32), None
        if self.early_stopping:
            x, validation, targets, weights = self._split(x, targets, weights, settings, rng)
        if is_auto(settings.learning_rate_init):
            rate = self._found_rate(x, targets, weights, settings, seed, first_pass, incremental)
            settings = settings._replace(learning_rate_init=rate)
        run = self._prepare(x, targets, weights, validation, settings, incremental)
        if not first_pass and run.net != self._net:
            raise ValueError(f"warm_start/partial_fit: expected the topology of the previous fit {self._net.sizes}, "
                             f"got {run.net.sizes} (hidden_layer_sizes, activation or outputs changed); "
                             "set warm_start=False to start afresh")
        resume = None if first_pass else self._resume_state(run, incremental)
        if resume is not None and incremental:  # continue the run: member 0 keeps the previous key
            base = jax.random.wrap_key_data(self._carry["key"])
            keys = [base] + [jax.random.fold_in(base, i) for i in range(1, settings.n_seeds)]
        else:
            keys = [jax.random.fold_in(jax.random.key(seed), i) for i in range(settings.n_seeds)]
        params, state, history, train_state = _population(keys, run, resume, incremental)
        best, scores = self._pick(history, targets, validation is not None)
        self._net = run.net
        carried = _member(train_state, best)
        n_iter = int(np.sum(~np.asarray(history["stopped"][best])))
        carried = carried._replace(epoch=carried.epoch - (run.options.epochs - n_iter))  # epochs trained
        if incremental:  # partial_fit entered the program one bad epoch from stopping; forget that
            carried = carried._replace(best_value=np.array(np.inf, np.float32), bad_epochs=np.array(0, np.int32))
        self._store(_member(params, best), _member(state, best), carried, keys[best], run)
        self.seed_scores_, self.best_seed_ = scores, best
        self.learning_rate_init_ = float(settings.learning_rate_init)
        self._record(_member(history, best), targets, run.n_train, first_pass, validation is not None)
        self._warn(bool(train_state.stopped[best]), settings, incremental)
        return self

    def _found_rate(self, x, targets: Targets, weights, settings, seed: int, first_pass: bool,
                    incremental: bool) -> float:
        """``learning_rate_init="auto"``: the range test's suggestion (:func:`nnjax.lr_find`, 4 seeds
        from the fit's seed) on the training rows with the estimator's solver, loss and penalties;
        a warm start or ``partial_fit`` keeps the rate the first fit found."""
        if not first_pass and hasattr(self, "learning_rate_init_"):
            return self.learning_rate_init_
        probe = self._prepare(x, targets, weights, None, settings._replace(learning_rate_init=1e-3), incremental)
        factory, backoff = probe.range_test
        options = probe.options.replace(optimizer=factory, validation=None, early_stopping=None)
        return float(lr_range.auto_rate(jax.random.key(seed), probe.train_net, probe.data, options, backoff=backoff))

    def _prepare(self, x, targets: Targets, weights, validation, settings, incremental: bool) -> Run:
        """Translates the settings into one ``nnjax.fit`` call (see ``_config`` and ``_padding``)."""
        net = MLP((x.shape[1], *settings.hidden, targets.n_outputs), activation=settings.activation,
                  output=targets.output, init=self.init, dropout=float(self.dropout), batch_norm=bool(self.batch_norm))
        train_net = _padding.pad_features(net, float(self.l1))
        n_train = x.shape[0]
        batch = _config.batch_size(self.batch_size, n_train)
        scale = targets.objective_scale
        inverse_scaling = self.learning_rate == "invscaling"
        opt_settings = dict(
            solver=settings.solver, learning_rate_init=settings.learning_rate_init, schedule=self.learning_rate,
            power_t=float(self.power_t), momentum=float(self.momentum), nesterov=bool(self.nesterovs_momentum),
            beta_1=float(self.beta_1), beta_2=float(self.beta_2), epsilon=float(self.epsilon),
            clip_norm=self.clip_norm, clip_value=self.clip_value, grad_scale=1.0 / scale,
            steps_per_epoch=-(-n_train // batch) if inverse_scaling else None,
            n_train=n_train if inverse_scaling else None,
        )
        tx = _config.optimizer(**opt_settings)
        stopping = _config.early_stopping(settings, validation=validation is not None, monitor=targets.monitor,
                                          loss_scale=targets.loss_scale)
        # in float64, and as a sum over a count: a full batch's batch * mean_weight is then exactly the
        # weights' sum, as for the same rows repeated (a float32 mean differed in its last digits)
        mean_weight = 1.0 if weights is None else float(np.sum(weights, dtype=np.float64)) / n_train
        x = _padding.pad_inputs(x, train_net)
        x, y, weights, batch_rows = _padding.pad_full_batch(x, targets.y, weights, batch,
                                                            merge=not (self.batch_norm or self.dropout))
        if validation is not None:
            validation = (_padding.pad_inputs(validation[0], train_net), validation[1])
        options = Options(
            loss=targets.loss, optimizer=tx, epochs=settings.max_iter, batch_size=batch_rows,
            l1=scale * float(self.l1), l2=_config.l2_strength(settings.alpha, scale, batch, mean_weight),
            validation=validation, sample_weight=weights, early_stopping=stopping, diagnostics=False,
            shuffle=bool(self.shuffle),
        )
        signature = (tuple(sorted(opt_settings.items())), train_net, stopping)
        return Run(net, train_net, (x, y), options, tx, signature, n_train, _config.range_test(opt_settings))

    def _split(self, x, targets: Targets, weights, settings, rng):
        """scikit-learn's early-stopping split: ``validation_fraction`` held out, stratified for binary."""
        parts = [x, targets.y] + ([] if weights is None else [weights])
        split = train_test_split(*parts, random_state=rng, test_size=settings.validation_fraction,
                                 stratify=targets.y if targets.stratify else None)
        x_train, x_val, y_train, y_val = split[:4]
        if x_val.shape[0] < 2:
            raise ValueError(f"validation_fraction: the validation set has {x_val.shape[0]} sample(s), expected "
                             "at least 2; increase validation_fraction or use more data")
        return x_train, (x_val, y_val), targets._replace(y=y_train), (None if weights is None else split[4])

    def _resume_state(self, run: Run, incremental: bool) -> TrainState:
        """The state a warm start (new optimizer state, as scikit-learn) or ``partial_fit`` continues from.

        Parameters come from ``coefs_``/``intercepts_``; the early-stopping record carries over
        (scikit-learn keeps ``best_loss_`` and its no-improvement count) unless the settings changed.
        """
        params = _padding.pad_params(self._params(), run.train_net)
        previous: TrainState = self._carry["train_state"]
        if self._carry["signature"] != run.signature:
            stopping = run.options.early_stopping
            fresh = fresh_state(params, self._bn_state, run.optimizer.init(params),
                                maximise=stopping is not None and stopping.mode == "max")
            return fresh._replace(epoch=jnp.asarray(previous.epoch, jnp.int32))
        opt_state = previous.opt_state if incremental else run.optimizer.init(params)
        return previous._replace(params=params, state=self._bn_state, opt_state=opt_state, stopped=np.array(False))

    def _pick(self, history: dict, targets: Targets, validated: bool) -> tuple[int, np.ndarray]:
        """The population member to keep: best validation score, else lowest final training loss."""
        ran = ~np.asarray(history["stopped"])
        if validated:
            scores = np.where(ran, history[targets.monitor], -np.inf).max(axis=1)
            scores = np.where(np.isfinite(scores), scores, -np.inf)
            return int(np.argmax(scores)), scores
        last = np.maximum(ran.sum(axis=1) - 1, 0)
        scores = np.asarray(history["loss"])[np.arange(len(last)), last] / targets.loss_scale
        return int(np.argmin(np.where(np.isfinite(scores), scores, np.inf))), scores

    def _store(self, params, state, train_state, key, run: Run) -> None:
        params = _padding.unpad_params(params, run.net.sizes[0])
        self.coefs_ = [np.asarray(layer["w"]) for layer in params]
        self.intercepts_ = [np.asarray(layer["b"]) for layer in params]
        self._layer_extras = [{k: np.asarray(v) for k, v in layer.items() if k not in ("w", "b")} for layer in params]
        self._bn_state = state
        self._carry = {"train_state": train_state, "key": np.asarray(jax.random.key_data(key)),
                       "signature": run.signature}

    def _record(self, history: dict, targets: Targets, n_train: int, first_pass: bool, validated: bool) -> None:
        """scikit-learn's fitted attributes from this run's history (appended to under warm start)."""
        n_iter = int(np.sum(~np.asarray(history["stopped"])))
        history = {k: np.asarray(v)[:n_iter] for k, v in history.items()}
        curve = [float(v) for v in history["loss"] / targets.loss_scale]
        self.history_ = history
        self.n_iter_ = n_iter
        self.n_outputs_ = targets.n_outputs
        self.n_layers_ = len(self.coefs_) + 1
        self.out_activation_ = targets.out_activation
        self.t_ = (0 if first_pass else self.t_) + n_iter * n_train
        self.loss_curve_ = (curve if first_pass else list(self.loss_curve_) + curve)
        self.loss_ = self.loss_curve_[-1]
        if validated:
            scores = [float(v) for v in history[targets.monitor]]
            previous = [] if first_pass or self.validation_scores_ is None else list(self.validation_scores_)
            self.validation_scores_ = previous + scores
            self.best_validation_score_ = float(np.nanmax(self.validation_scores_))
            self.best_loss_ = None
        else:
            previous_best = np.inf if first_pass or self.best_loss_ is None else self.best_loss_
            self.best_loss_ = float(min(previous_best, np.nanmin(curve)))
            self.validation_scores_ = None
            self.best_validation_score_ = None
        if self.verbose:
            for i, value in enumerate(curve, start=1):
                print(f"Iteration {i}, loss = {value:.8f}")
                if validated:
                    print(f"Validation score: {history[targets.monitor][i - 1]:f}")

    def _warn(self, stopped: bool, settings, incremental: bool) -> None:
        skipped = int(np.sum(self.history_["skipped"]))
        if skipped:
            warnings.warn(f"{skipped} training step(s) were skipped because the loss or the gradients were "
                          "not finite; rescale the features or lower learning_rate_init", RuntimeWarning,
                          stacklevel=3)
        if not incremental and self.n_iter_ == settings.max_iter and not stopped:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({settings.max_iter}) reached and the "
                          "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=3)

    # ------------------------------------------------------------------------------------------
    # prediction

    def _params(self) -> list[dict]:
        """The parameter pytree from ``coefs_`` and ``intercepts_`` (as scikit-learn, they are the model)."""
        return [{**extra, "w": np.asarray(w, np.float32), "b": np.asarray(b, np.float32)}
                for w, b, extra in zip(self.coefs_, self.intercepts_, self._layer_extras)]

    def _logits(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        return forward(self._params(), self._bn_state, self._net, X.astype(np.float32))
