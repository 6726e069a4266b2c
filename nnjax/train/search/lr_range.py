"""The learning-rate range test (Smith, 2017) over several seeds, as one compiled population.

:func:`lr_find` trains ``seeds`` copies of the model (one per seed, ``jax.vmap``) for ``steps``
minibatch steps while the learning rate rises exponentially from ``min_lr`` to ``max_lr``, and
records every step's minibatch loss. Per seed the losses are smoothed (an exponential moving
average with bias correction, window about a twentieth of the steps), and counting stops where the
run diverges (a non-finite loss, or the smoothed loss above :data:`DIVERGED` times its minimum so
far).

**The rule** (one, documented, on the log scale): a seed's suggestion is the learning rate at the
minimum of its smoothed loss divided by a back-off factor: the optimizer's own
(``range_backoff`` of the optimizer table, :mod:`nnjax._base.optimizers`): 10 for adaptive
optimizers (Adam's family), 3 for the SGD family, whose minimum sits at the divergence edge and
whose best fixed rate lies a small factor below it; :data:`BACKOFF` (10) for an optimizer given as
a factory, unless ``backoff=`` says otherwise. The minimum is a robust landmark (the steepest
slope of a noisy curve is not); the suggestion is the median of the seeds' suggestions on the log
scale, and the band their minimum and maximum.

``nnjax.fit(..., learning_rate="auto")`` runs this test first (with the fit's settings, 4 seeds
folded from its key) and logs the rate it chose on the ``nnjax`` logger; ``nnjax train --lr auto``
prints it.

Example:
  >>> import jax, nnjax
  >>> data = nnjax.data.load_dataset("blobs")
  >>> found = nnjax.lr_find(jax.random.key(0), nnjax.MLP((2, 8, 1), output="sigmoid"), (data.x, data.y),
  ...                       loss="binary_cross_entropy", optimizer="sgd", batch_size=16, steps=100)
  >>> found.losses.shape, found.band[0] <= found.suggestion <= found.band[1]
  ((4, 100), True)
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax._base import checks, optimizers
from nnjax.nn.model import as_model
from nnjax.train import optim
from nnjax.train import fitting
from nnjax.train.fitting import configure, prepare, start
from nnjax.train.loop import batch_key, epoch_permutation, train_step
from nnjax.train.options import Options, takes_settings

__all__ = ["BACKOFF", "DIVERGED", "EDGE", "LRFindResult", "auto_rate", "degenerate", "lr_find", "smooth", "suggest"]

#: A seed's suggestion is the rate at its smoothed loss's minimum divided by this, when the
#: optimizer is no name of the table (a factory) and ``backoff`` is not given.
BACKOFF = 10.0
#: A run counts as diverged once its smoothed loss exceeds this multiple of its minimum so far.
DIVERGED = 4.0
#: A seed's minimum within this fraction of the steps from either end of the range says the range
#: was too narrow: the loss still fell at ``max_lr``, or rose from ``min_lr`` on.
EDGE = 0.05

log = logging.getLogger("nnjax")


class LRFindResult(NamedTuple):
    """What :func:`lr_find` returns.

    Attributes:
      rates: ``(steps,)`` the learning rate of each step.
      losses: ``(seeds, steps)`` each step's minibatch loss (before its update).
      smoothed: ``(seeds, steps)`` the smoothed losses, NaN from the step a seed diverged.
      suggestions: ``(seeds,)`` each seed's suggested rate.
      suggestion: their median on the log scale.
      band: ``(min, max)`` of the seeds' suggestions.
      rule: the rule in words.
    """

    rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestions: np.ndarray
    suggestion: float
    band: tuple[float, float]
    rule: str


def smooth(losses: np.ndarray, beta: float) -> np.ndarray:
    """Exponential moving average along the last axis with bias correction, and cut at divergence.

    Values from the first non-finite loss, or from where the average exceeds :data:`DIVERGED`
    times its running minimum, are NaN.

    Example:
      >>> smooth(np.array([1.0, 1.0, np.inf, 1.0]), 0.5).tolist()
      [1.0, 1.0, nan, nan]
    """
    losses = np.asarray(losses, np.float64)
    out = np.full(losses.shape, np.nan)
    flat_in, flat_out = losses.reshape(-1, losses.shape[-1]), out.reshape(-1, losses.shape[-1])
    for row, target in zip(flat_in, flat_out):
        average, lowest = 0.0, np.inf
        for t, value in enumerate(row):
            if not np.isfinite(value):
                break
            average = beta * average + (1 - beta) * value
            corrected = average / (1 - beta ** (t + 1))
            if corrected > DIVERGED * lowest:
                break
            lowest = min(lowest, corrected)
            target[t] = corrected
    return out


def suggest(rates: np.ndarray, smoothed: np.ndarray, backoff: float = BACKOFF) -> np.ndarray:
    """Each row's suggestion: the rate at its smoothed minimum over ``backoff`` (NaN: no finite loss)."""
    smoothed = np.atleast_2d(smoothed)
    found = np.full(smoothed.shape[0], np.nan)
    for i, row in enumerate(smoothed):
        if np.isfinite(row).any():
            found[i] = rates[int(np.nanargmin(row))] / backoff
    return found


def degenerate(smoothed: np.ndarray, edge: float = EDGE) -> tuple[np.ndarray, np.ndarray]:
    """Which seeds' minima say nothing: ``(still_falling, rising_from_start)``, boolean per row.

    ``still_falling``: the row never diverged and its minimum lies in the last ``edge`` of the
    steps (the loss was still falling at ``max_lr``). ``rising_from_start``: its minimum lies in
    the first ``edge`` of the steps (``min_lr`` was already too high, or nothing was learnt).

    Example:
      >>> degenerate(np.array([[3.0, 2.0, 1.0, 0.5], [0.5, 1.0, 2.0, np.nan]]), edge=0.25)
      (array([ True, False]), array([False,  True]))
    """
    smoothed = np.atleast_2d(smoothed)
    steps = smoothed.shape[-1]
    margin = max(1, int(np.ceil(edge * steps)))
    high, low = np.zeros(len(smoothed), bool), np.zeros(len(smoothed), bool)
    for i, row in enumerate(smoothed):
        if not np.isfinite(row).any():
            continue
        at = int(np.nanargmin(row))
        high[i] = bool(np.isfinite(row[-1])) and at >= steps - margin
        low[i] = at < margin
    return high, low


def _range_program(cfg, steps: int, data, reg, keys, ts):
    x, y, w = data
    per_epoch = cfg.n // cfg.batch_size

    def one(key, ts):
        def step(carry, t):
            params, state, opt_state = carry
            epoch, j = t // per_epoch, t % per_epoch
            idx = jax.lax.dynamic_slice(epoch_permutation(key, epoch, cfg.n), (j * cfg.batch_size,),
                                        (cfg.batch_size,))
            params, state, opt_state, info = train_step(
                params, state, opt_state, (x[idx], y[idx], w[idx]), key=batch_key(key, epoch, j), cfg=cfg,
                l1=reg.l1, l2=reg.l2, dropout=reg.dropout)
            return (params, state, opt_state), info.loss_sum / info.weight_sum

        return jax.lax.scan(step, (ts.params, ts.state, ts.opt_state), jnp.arange(steps))[1]

    return jax.vmap(one)(keys, ts)


_compiled = jax.jit(_range_program, static_argnums=(0, 1))


def _exponential(min_lr: float, max_lr: float, steps: int):
    ratio = max_lr / min_lr

    def rate(count):
        return min_lr * ratio ** (jnp.minimum(count, steps - 1) / max(steps - 1, 1))

    return rate


@takes_settings
def lr_find(key: jax.Array, net: Any, data: tuple[Any, Any], options: Options | None = None, *, seeds: int = 4,
            steps: int = 300, min_lr: float = 1e-5, max_lr: float = 10.0, backoff: float | None = None,
            **settings: Any) -> LRFindResult:
    """Smith's learning-rate range test for ``seeds`` seeds at once; a suggestion and its band.

    Args:
      key: seed ``s`` trains with run key ``fold_in(key, s)``.
      net, data: as :func:`nnjax.fit`.
      options, **settings: as :func:`nnjax.fit` (``epochs`` and ``learning_rate`` are not used;
        ``optimizer`` must be a name or a factory ``lr -> transformation``; ``epochs`` defaults to 1).
      seeds: members of the population, at least 1.
      steps: minibatch steps (the rate rises by ``(max_lr / min_lr) ** (1 / (steps - 1))`` a step).
      min_lr, max_lr: the range, ``0 < min_lr < max_lr``.
      backoff: the factor below the loss's minimum; default the named optimizer's
        ``range_backoff`` (10 for Adam's family, 3 for SGD's), :data:`BACKOFF` for a factory.

    Returns:
      An :class:`LRFindResult` (see the module docstring for the rule).

    Raises:
      ValueError, TypeError: bad arguments, naming the argument.
    """
    seeds = checks.check_count("epochs", seeds, "seeds")
    steps = checks.check_count("steps", steps, "steps")
    if steps < 10:
        raise ValueError(f"steps: expected at least 10 steps for a range test, got {steps}")
    for name, value in (("min_lr", min_lr), ("max_lr", max_lr)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    if min_lr >= max_lr:
        raise ValueError(f"max_lr: expected more than min_lr={min_lr}, got {max_lr}")
    if backoff is not None and (isinstance(backoff, bool) or not isinstance(backoff, (int, float))
                                or not np.isfinite(backoff) or backoff < 1):
        raise ValueError(f"backoff: expected a finite factor >= 1, got {backoff!r}")
    settings.setdefault("epochs", 1)
    settings["learning_rate"] = None
    options = Options.of(options, **settings)
    if not isinstance(options.optimizer, str) and hasattr(options.optimizer, "update"):
        raise ValueError("optimizer: expected a name such as 'adam' or a factory lr -> optax transformation for "
                         "lr_find (it sets the rate), got a fixed optax transformation")
    model = as_model(net)
    prepared = prepare(model, data, options)
    tx = options.build_optimizer(_exponential(float(min_lr), float(max_lr), steps))
    cfg = configure(options.replace(validation=None), model, prepared.n, optimizer=tx)
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.arange(seeds))
    ts = jax.vmap(lambda k: start(k, cfg))(keys)
    cfg = dataclasses.replace(cfg, optimizer=optim.by_value(cfg.optimizer, jax.tree.map(lambda a: a[0], ts.params)),
                              diagnostics=False)
    losses = np.asarray(_compiled(cfg, steps, (prepared.x, prepared.y, prepared.weights), options.regularization(),
                                  keys, ts), np.float64)
    rates = np.asarray(_exponential(float(min_lr), float(max_lr), steps)(np.arange(steps)), np.float64)
    smoothed = smooth(losses, beta=max(0.0, 1.0 - 20.0 / steps))
    if backoff is None:
        backoff = optimizers.OPTIMIZERS[options.optimizer].range_backoff if isinstance(options.optimizer, str) \
            else BACKOFF
    found = suggest(rates, smoothed, float(backoff))
    if np.all(np.isnan(found)):
        raise ValueError("data: every seed's loss was non-finite from the first step; check the data and min_lr")
    high, low = degenerate(smoothed)
    if high.any():
        warnings.warn(f"lr_find: the loss of {int(high.sum())} of {seeds} seeds still fell at max_lr={max_lr:g} "
                      f"(no divergence): the suggestion is only max_lr / {float(backoff):g}; raise max_lr",
                      UserWarning, stacklevel=2)
    if low.any():
        warnings.warn(f"lr_find: the loss of {int(low.sum())} of {seeds} seeds was lowest at the start of the range "
                      f"(min_lr={min_lr:g}): lower min_lr, or check that the model learns at all",
                      UserWarning, stacklevel=2)
    logs = np.log(found[np.isfinite(found)])
    return LRFindResult(rates, losses, smoothed, found, float(np.exp(np.median(logs))),
                        (float(np.exp(logs.min())), float(np.exp(logs.max()))),
                        f"rate at the smoothed loss's minimum / {float(backoff):g}, median over seeds on the log scale")


def auto_rate(key: jax.Array, net: Any, data: tuple[Any, Any], options: Options | None = None,
              **settings: Any) -> float:
    """The rate ``learning_rate="auto"`` means: :func:`lr_find`'s suggestion with the run's settings.

    Uses 4 seeds folded from ``key`` (so the run's own draws are not reused) and logs the choice
    and its band on the ``nnjax`` logger.
    """
    settings = {k: v for k, v in settings.items() if k != "learning_rate"}
    found = lr_find(jax.random.fold_in(key, 0x1F), net, data, options, **settings)
    log.warning("learning_rate='auto': chose %.3g (band %.3g..%.3g over 4 seeds; %s)", found.suggestion,
                *found.band, found.rule)
    return found.suggestion


fitting.RATE_FINDER[:] = [auto_rate]  # fit(learning_rate="auto") runs the range test
