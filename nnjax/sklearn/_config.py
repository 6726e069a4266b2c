"""scikit-learn hyper-parameters, checked and translated into nnjax pieces.

The estimators store their constructor arguments untouched (scikit-learn's
rule); everything here runs at the start of ``fit``. The translation is where
the two conventions meet, so it is spelled out:

* **Loss scale.** scikit-learn reports (``loss_curve_``) half the squared error
  averaged over outputs for regression and the *sum* over labels of the binary
  log-loss for multilabel targets; nnjax's "mse" has no factor 1/2 and its
  "binary_cross_entropy" averages over outputs. Its gradient steps follow the
  same objectives, except that for regression the squared error is summed over
  outputs. So nnjax's loss is ``c`` times the objective scikit-learn descends
  (``c = 2 / n_outputs`` for regression, ``1 / n_labels`` for multilabel, 1
  otherwise), and the optimizer starts with ``optax.scale(1 / c)``: every
  gradient step equals scikit-learn's. ``loss_curve_`` and ``tol`` use the
  reported units.
* **alpha.** scikit-learn adds ``alpha / (2 * sw_sum) * sum ||W||^2`` to each
  batch's mean loss (``sw_sum``: the batch's number of samples, or the sum of
  its sample weights). nnjax adds a fixed ``l2 * sum W^2``, so
  ``l2 = c * alpha / (2 * batch_size * mean_weight)``, exact for full batches
  (and for every batch with unit weights) and off only for a short last batch.
* **tol.** Training stops after ``n_iter_no_change + 1`` epochs in a row
  without an improvement larger than ``tol`` over the best so far of the
  training loss (in scikit-learn's units, penalty excluded) or, with
  ``early_stopping``, of the validation score (accuracy or R^2). As in
  scikit-learn the best follows every improvement, however small, and early
  stopping keeps the parameters of the best validation score.
"""

from __future__ import annotations

import functools
import numbers
import warnings
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import optax

from nnjax.nn import activations, initializers
from nnjax._base import checks, optimizers
from nnjax.train import optim
from nnjax.train.loop import EarlyStopping
from nnjax.train.options import AUTO, is_auto

__all__ = ["Settings", "batch_size", "check_settings", "early_stopping", "l2_strength", "optimizer"]

SOLVERS = ("sgd", "adam")

#: scikit-learn's solver (with its momentum and nesterovs_momentum switches) -> nnjax's optimizer table.
_TABLE_NAME = {("sgd", False, False): "sgd", ("sgd", False, True): "sgd", ("sgd", True, False): "momentum",
               ("sgd", True, True): "nesterov",
               **{("adam", momentum, nesterov): "adam" for momentum in (False, True) for nesterov in (False, True)}}
LEARNING_RATES = ("constant", "invscaling")


class Settings(NamedTuple):
    """Checked hyper-parameters of one ``fit`` call."""

    hidden: tuple[int, ...]
    activation: str
    solver: str
    alpha: float
    learning_rate_init: Any  # a number, or "auto" until the range test replaces it
    max_iter: int
    tol: float
    n_iter_no_change: float
    validation_fraction: float
    n_seeds: int


def _number(est: Any, name: str, *, low: float = 0.0, high: float = np.inf, low_open: bool = False,
            high_open: bool = False, integer: bool = False) -> Any:
    value = getattr(est, name)
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = "an integer" if integer else "a number"
        raise TypeError(f"{name}: expected {expected}, got {value!r} of type {type(value).__name__}")
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above or value != value:  # NaN is in no interval
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open or high == np.inf else ']'}"
        raise ValueError(f"{name}: expected a value in {interval}, got {value!r}")
    return value


def _rule(est: Any, name: str, rule: str | None = None) -> float:
    """A real hyper-parameter checked by the rule every entry point shares (:mod:`nnjax.checks`)."""
    value = getattr(est, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {value!r} of type {type(value).__name__}")
    return checks.check(rule or name, value, name)


def _choice(est: Any, name: str, options: tuple[str, ...], hint: str = "") -> str:
    value = getattr(est, name)
    if value not in options:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, options))}, got {value!r}{hint}")
    return value


def _flag(est: Any, name: str) -> bool:
    value = getattr(est, name)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def _hidden_sizes(value: Any) -> tuple[int, ...]:
    sizes = (value,) if isinstance(value, numbers.Integral) else value
    try:
        sizes = tuple(sizes)
    except TypeError:
        raise TypeError(f"hidden_layer_sizes: expected an int or a sequence of ints, got {value!r}") from None
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in sizes):
        raise ValueError(f"hidden_layer_sizes: expected positive integers, got {value!r}")
    return tuple(int(s) for s in sizes)


def check_settings(est: Any) -> Settings:
    """Checks every hyper-parameter of ``est``; errors name it, what was expected and what came."""
    activation = est.activation
    if not isinstance(activation, str):
        raise TypeError(f"activation: expected a name such as 'relu', got {activation!r}")
    activations.get(activation)  # raises for an unknown name, listing the known ones
    if isinstance(est.init, str):
        initializers.get(est.init)
    solver = _choice(est, "solver", SOLVERS, "; 'lbfgs' is not offered: nnjax trains with compiled minibatch "
                     "loops (use sklearn.neural_network for L-BFGS)" if est.solver == "lbfgs" else "")
    _choice(est, "learning_rate", LEARNING_RATES, "; 'adaptive' needs the host between epochs, which the "
            "compiled loop avoids" if est.learning_rate == "adaptive" else "")
    if not (isinstance(est.batch_size, str) and est.batch_size == "auto"):
        _number(est, "batch_size", low=1, integer=True)
    for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping", "batch_norm"):
        _flag(est, name)
    _number(est, "power_t")
    for name in ("momentum", "beta_1", "beta_2", "epsilon", "l1", "dropout"):
        _rule(est, name)
    for name in ("clip_norm", "clip_value"):
        if getattr(est, name) is not None:
            _rule(est, name)
    n_iter_no_change = est.n_iter_no_change
    if not (isinstance(n_iter_no_change, float) and n_iter_no_change == np.inf):
        n_iter_no_change = _number(est, "n_iter_no_change", low=1, integer=True)
    return Settings(
        hidden=_hidden_sizes(est.hidden_layer_sizes),
        activation=activation,
        solver=solver,
        alpha=_rule(est, "alpha"),
        learning_rate_init=(AUTO if is_auto(est.learning_rate_init) else
                            _rule(est, "learning_rate_init", "learning_rate")),
        max_iter=int(_number(est, "max_iter", low=1, integer=True)),
        tol=float(_number(est, "tol")),
        n_iter_no_change=n_iter_no_change,
        validation_fraction=float(_number(est, "validation_fraction", high=1.0, high_open=True)),
        n_seeds=int(_number(est, "n_seeds", low=1, integer=True)),
    )


def batch_size(value: int | str, n: int) -> int:
    """scikit-learn's rule: "auto" is ``min(200, n)``; a larger size is clipped with a warning."""
    if isinstance(value, str):
        return min(200, n)
    if value > n:
        warnings.warn(f"batch_size: got {value}, larger than the {n} training samples; it is clipped to {n}",
                      UserWarning, stacklevel=3)
    return int(min(value, n))


def l2_strength(alpha: float, loss_scale: float, batch: int, mean_weight: float) -> float:
    """nnjax's ``l2`` for scikit-learn's ``alpha`` (see the module docstring)."""
    return loss_scale * alpha / (2.0 * batch * mean_weight)


def early_stopping(settings: Settings, *, validation: bool, monitor: str, loss_scale: float) -> EarlyStopping | None:
    """The nnjax stopping rule for scikit-learn's ``tol`` and ``n_iter_no_change``.

    scikit-learn stops once the no-improvement count exceeds ``n_iter_no_change``,
    that is after ``n_iter_no_change + 1`` bad epochs in a row.
    """
    patience = settings.max_iter + 1 if settings.n_iter_no_change == np.inf else settings.n_iter_no_change + 1
    if validation:
        return EarlyStopping(patience=patience, min_delta=settings.tol, monitor=monitor, mode="max",
                             restore_best=True, best_follows_any_gain=True)
    return EarlyStopping(patience=patience, min_delta=settings.tol * loss_scale, monitor="loss", mode="min",
                         restore_best=False, best_follows_any_gain=True)


def _inverse_scaling(learning_rate_init: float, power_t: float, steps_per_epoch: int, n_train: int):
    """scikit-learn's "invscaling": ``lr / (t + 1) ** power_t``, ``t`` the samples seen before the epoch."""

    def schedule(count):
        samples_seen = (count // steps_per_epoch) * n_train
        return learning_rate_init / jnp.power(samples_seen + 1.0, power_t)

    return schedule


def range_test(settings: dict) -> tuple[Any, float]:
    """What the range test of ``learning_rate_init="auto"`` drives: ``learning_rate -> optimizer``
    of :func:`optimizer`'s ``settings`` at a constant rate ("invscaling" starts at that rate), and
    the back-off of the solver's optimizer in the table (:func:`nnjax.lr_find`)."""
    fixed = {**settings, "schedule": "constant", "steps_per_epoch": None, "n_train": None}
    name = _TABLE_NAME[settings["solver"], bool(settings["momentum"]), bool(settings["nesterov"])]
    return (lambda rate: optimizer.__wrapped__(**{**fixed, "learning_rate_init": rate}),
            optimizers.OPTIMIZERS[name].range_backoff)


@functools.lru_cache(maxsize=128)
def optimizer(
    solver: str,
    learning_rate_init: float,
    *,
    schedule: str = "constant",
    power_t: float = 0.5,
    momentum: float = 0.9,
    nesterov: bool = True,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    grad_scale: float = 1.0,
    steps_per_epoch: int | None = None,
    n_train: int | None = None,
) -> optax.GradientTransformation:
    """The optax optimizer for these settings, built once and cached.

    ``nnjax.fit`` compares optimizers by what they compute, and the numbers are
    injected into the optimizer state, so every learning rate shares one compiled
    loop; the cache only spares ``nnjax.optim.by_value`` re-reading an equal object.
    scikit-learn's momentum ``v <- momentum v - lr g`` equals optax's trace
    ``t <- g + momentum t``, update ``-lr t``, at a constant learning rate.
    """
    learning_rate: Any = learning_rate_init
    if solver == "sgd" and schedule == "invscaling":
        learning_rate = _inverse_scaling(learning_rate_init, power_t, steps_per_epoch, n_train)
    # The numbers were checked under scikit-learn's names (check_settings); the table builds them.
    tx = optim.build(_TABLE_NAME[solver, bool(momentum), bool(nesterov)], learning_rate, momentum=momentum,
                     beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, clip_norm=clip_norm, clip_value=clip_value)
    return optax.chain(optax.scale(grad_scale), tx) if grad_scale != 1.0 else tx
