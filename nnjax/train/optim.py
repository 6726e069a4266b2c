"""Optimiser and learning-rate schedule shortcuts, all built from optax.

:func:`nnjax.fit` accepts any ``optax.GradientTransformation``; these helpers
turn a name and a few numbers into one, so that the CLI and the scikit-learn
estimators can be configured with strings.

Example:
  >>> from nnjax import optim
  >>> tx = optim.make("momentum", optim.schedule("cosine", 0.1, steps=1000), clip_norm=1.0)
  >>> type(tx).__name__
  'GradientTransformationExtraArgs'
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax._base import checks

__all__ = ["OPTIMIZERS", "SCHEDULES", "ByValue", "by_value", "make", "schedule", "with_clipping"]

OPTIMIZERS, SCHEDULES = checks.OPTIMIZERS, checks.SCHEDULES  # the names the shared checks accept


def schedule(
    name: str,
    learning_rate: float,
    *,
    steps: int | None = None,
    decay_rate: float = 0.5,
    decay_steps: int | None = None,
    boundaries: Sequence[int] | None = None,
    warmup_steps: int = 0,
    final_fraction: float = 0.0,
) -> optax.Schedule:
    """A learning-rate schedule (a function of the optimiser step count).

    Args:
      name: "constant"; "exponential" (``lr * decay_rate ** (t / decay_steps)``);
        "cosine" (from ``lr`` to ``final_fraction * lr`` over ``steps``);
        "step"/"piecewise" (multiply by ``decay_rate`` at each of ``boundaries``,
        or every ``decay_steps``); "warmup_cosine" (linear warm-up over
        ``warmup_steps`` from 0, then cosine decay to ``final_fraction * lr`` at ``steps``).
      learning_rate: the initial (peak) learning rate.
      steps: total optimiser steps (cosine schedules).

    Raises:
      ValueError: for an unknown name, a missing length argument or a value outside its rule
        (:mod:`nnjax.checks`: ``learning_rate`` finite and > 0, ``decay_rate`` in (0, 1],
        ``final_fraction`` in [0, 1], lengths integers >= 1, ``warmup_steps`` >= 0).
    """
    checks.check_schedule(learning_rate=learning_rate, decay_rate=decay_rate, final_fraction=final_fraction,
                          steps=steps, decay_steps=decay_steps, warmup_steps=warmup_steps)
    if name == "constant":
        return optax.constant_schedule(learning_rate)
    if name == "exponential":
        return optax.exponential_decay(learning_rate, _need(decay_steps or steps, "decay_steps"), decay_rate)
    if name == "cosine":
        return optax.cosine_decay_schedule(learning_rate, _need(steps, "steps"), alpha=final_fraction)
    if name in ("step", "piecewise"):
        if boundaries is None:
            every = _need(decay_steps, "decay_steps or boundaries")
            total = _need(steps, "steps")
            boundaries = range(every, total, every)
        return optax.piecewise_constant_schedule(learning_rate, {int(b): decay_rate for b in boundaries})
    if name == "warmup_cosine":
        total = _need(steps, "steps")
        return optax.warmup_cosine_decay_schedule(
            0.0, learning_rate, max(warmup_steps, 1), max(total, warmup_steps + 1), learning_rate * final_fraction
        )
    raise ValueError(f"schedule: expected one of {', '.join(SCHEDULES)}, got {name!r}")


def _need(value: Any, name: str) -> int:
    if value is None:
        raise ValueError(f"{name}: expected a number of steps for this schedule, got None")
    return int(value)


def make(
    name: str,
    learning_rate: float | optax.Schedule = 0.01,
    *,
    momentum: float = 0.9,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    weight_decay: float = 1e-4,
    clip_norm: float | None = None,
    clip_value: float | None = None,
) -> optax.GradientTransformation:
    """An optax optimiser by name, optionally preceded by gradient clipping.

    Args:
      name: one of ``OPTIMIZERS``.
      learning_rate: a number or an optax schedule.
      momentum: for "momentum" and "nesterov" (and rmsprop's momentum when > 0 is wanted, pass it).
      beta_1, beta_2, epsilon: for "adam" and "adamw".
      weight_decay: for "adamw" (decoupled).
      clip_norm: clip the gradients' global norm to this value first.
      clip_value: clip each gradient entry to [-clip_value, clip_value] first.

    Raises:
      ValueError: for an unknown name or a number outside its rule (:mod:`nnjax.checks`): a
        learning rate, epsilon or clip that is not finite and > 0, a momentum or beta outside
        [0, 1), a negative weight decay.

    Example:
      >>> make("sgd", -0.1)
      Traceback (most recent call last):
      ...
      ValueError: learning_rate: expected a finite number > 0, got -0.1
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)} or an optax transformation, got {name!r}")
    checks.check_optimizer(learning_rate=learning_rate, momentum=momentum, beta_1=beta_1, beta_2=beta_2,
                           epsilon=epsilon, weight_decay=weight_decay, clip_norm=clip_norm, clip_value=clip_value)
    # The numbers live in the optimizer state (optax.inject_hyperparams), not in the program:
    # every learning rate, momentum or beta compiles the same training program.
    inject = optax.inject_hyperparams
    if name == "sgd":
        tx = inject(optax.sgd)(learning_rate=learning_rate)
    elif name == "momentum":
        tx = inject(optax.sgd)(learning_rate=learning_rate, momentum=momentum)
    elif name == "nesterov":
        tx = inject(optax.sgd, static_args=("nesterov",))(learning_rate=learning_rate, momentum=momentum,
                                                          nesterov=True)
    elif name == "adam":
        tx = inject(optax.adam)(learning_rate=learning_rate, b1=beta_1, b2=beta_2, eps=epsilon)
    elif name == "adamw":
        tx = inject(optax.adamw)(learning_rate=learning_rate, b1=beta_1, b2=beta_2, eps=epsilon,
                                 weight_decay=weight_decay)
    elif name == "rmsprop":
        tx = inject(optax.rmsprop)(learning_rate=learning_rate)
    elif name == "adagrad":
        tx = inject(optax.adagrad)(learning_rate=learning_rate)
    else:
        raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)} or an optax transformation, got {name!r}")
    return with_clipping(tx, clip_norm=clip_norm, clip_value=clip_value)


def with_clipping(
    tx: optax.GradientTransformation, *, clip_norm: float | None = None, clip_value: float | None = None
) -> optax.GradientTransformation:
    """``tx`` preceded by global-norm and/or elementwise clipping (unchanged when both are None)."""
    checks.check_optimizer(clip_norm=clip_norm, clip_value=clip_value)
    parts = []
    if clip_value is not None:
        parts.append(optax.clip(clip_value))
    if clip_norm is not None:
        parts.append(optax.clip_by_global_norm(clip_norm))
    return optax.chain(*parts, tx) if parts else tx


class ByValue:
    """An optax transformation that compares by what it computes, not by object identity.

    ``nnjax.fit`` compiles one program per distinct optimizer; two freshly built
    ``optax.sgd(0.05)`` are different Python objects but the same computation. ``ByValue``
    identifies ``tx`` by the jaxpr of its ``update`` on the given parameter shapes (with the
    bytes of any array constants), so equal settings share the compiled program. Build it with
    :func:`by_value`.
    """

    __slots__ = ("tx", "key", "_hash")

    def __init__(self, tx: optax.GradientTransformation, key: Any):
        self.tx, self.key, self._hash = tx, key, hash(key)

    @property
    def init(self):
        return self.tx.init

    @property
    def update(self):
        return self.tx.update

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, ByValue) and self._hash == other._hash and self.key == other.key

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"ByValue({type(self.tx).__name__})"


def _abstract(tree: Any) -> Any:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.result_type(a)), tree)


def by_value(tx: Any, params: Any) -> Any:
    """``tx`` wrapped as a :class:`ByValue` for parameters shaped like ``params``.

    Returns ``tx`` itself where its computation cannot be read off by value (it closes over
    traced values, e.g. a learning rate under ``jax.vmap``): then identity decides, as before.
    """
    if isinstance(tx, ByValue):
        return tx
    shapes = _abstract(params)
    memo_key = (id(tx), str(shapes))
    hit = _MEMO.get(memo_key)
    if hit is not None and hit[0] is tx:  # the same object again: skip re-tracing its update
        return hit[1]
    wrapped = _by_value(tx, shapes)
    if isinstance(wrapped, ByValue):
        _MEMO[memo_key] = (tx, wrapped)  # holding tx keeps its id from being reused
    while len(_MEMO) > 64:
        _MEMO.pop(next(iter(_MEMO)))
    return wrapped


_MEMO: dict = {}


def _by_value(tx: Any, shapes: Any) -> Any:
    try:
        state = jax.eval_shape(tx.init, shapes)
        closed = jax.make_jaxpr(lambda g, s, p: tx.update(g, s, p))(shapes, state, shapes)
        consts = tuple((np.shape(c), str(np.asarray(c).dtype), hashlib.sha256(np.asarray(c).tobytes()).hexdigest())
                       for c in closed.consts)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError,
            jax.errors.UnexpectedTracerError):
        return tx
    return ByValue(tx, (str(closed.jaxpr), consts, str(jax.tree.structure(state))))
