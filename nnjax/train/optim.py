"""Optimisers and learning-rate schedules by name, built from optax by the one table.

:func:`nnjax.fit` accepts any ``optax.GradientTransformation``; these helpers turn a name and a
few numbers into one, so that the CLI, the scikit-learn estimators and populations can be
configured with strings. What each name builds is one entry of the table in
:mod:`nnjax._base.optimizers` (the optax alias and the keywords it is given): :data:`OPTIMIZERS`
and :data:`SCHEDULES` are that table, :func:`make` and :func:`schedule` check the numbers and
build from it, and :func:`build` builds without checking (for callers that checked the numbers at
their own edge, naming them in their users' terms: the command line, the estimators).

Example:
  >>> from nnjax import optim
  >>> tx = optim.make("momentum", optim.schedule("cosine", 0.1, steps=1000), clip_norm=1.0)
  >>> type(tx).__name__
  'GradientTransformationExtraArgs'
  >>> list(optim.OPTIMIZERS)
  ['sgd', 'momentum', 'nesterov', 'adam', 'adamw', 'rmsprop', 'adagrad']
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax._base import checks
from nnjax._base.optimizers import NUMBERS, OPTIMIZERS, SCHEDULES, SETTINGS

__all__ = ["OPTIMIZERS", "SCHEDULES", "ByValue", "build", "build_schedule", "by_value", "initial_state", "make",
           "schedule", "update", "with_clipping"]


def _entry(table: dict, name: Any, what: str, extra: str = "") -> Any:
    if not isinstance(name, str) or name not in table:
        raise ValueError(f"{what}: expected one of {', '.join(table)}{extra}, got {name!r}")
    return table[name]


def build_schedule(name: str, learning_rate: float, **settings: Any) -> Any:
    """What an optimizer is given as its learning rate for the schedule ``name`` of :data:`SCHEDULES`.

    ``settings`` are any of :data:`nnjax._base.optimizers.SETTINGS` (:func:`schedule`'s keywords,
    its defaults; those the schedule does not use are ignored), taken as checked (:func:`schedule`
    checks them). A constant schedule gives the rate itself: a number stays traced in the optimizer
    state, so every rate shares one program.

    Raises:
      ValueError: an unknown name, or a length the schedule needs missing. TypeError: a setting no
        schedule takes.
    """
    entry = _entry(SCHEDULES, name, "schedule")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise TypeError(f"settings: expected some of {', '.join(SETTINGS)}, got {', '.join(unknown)}")
    if entry.alias is None:
        return learning_rate
    return getattr(optax, entry.alias)(**entry.keywords(learning_rate, **settings))


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
        ``warmup_steps`` from 0, then cosine decay to ``final_fraction * lr`` at ``steps``;
        without a warm-up it starts at ``lr``, as "cosine").
      learning_rate: the initial (peak) learning rate.
      steps: total optimiser steps (cosine schedules).

    Raises:
      ValueError: for an unknown name, a missing length argument or a value outside its rule
        (:mod:`nnjax.checks`: ``learning_rate`` finite and > 0, ``decay_rate`` in (0, 1],
        ``final_fraction`` in [0, 1], lengths integers >= 1, ``warmup_steps`` >= 0).

    Example:
      >>> round(float(schedule("warmup_cosine", 0.1, steps=10)(0)), 6)  # no warm-up: the peak at once
      0.1
    """
    _entry(SCHEDULES, name, "schedule")
    checks.check_schedule(learning_rate=learning_rate, decay_rate=decay_rate, final_fraction=final_fraction,
                          steps=steps, decay_steps=decay_steps, warmup_steps=warmup_steps)
    rate = build_schedule(name, learning_rate, steps=steps, decay_rate=decay_rate, decay_steps=decay_steps,
                          boundaries=boundaries, warmup_steps=warmup_steps, final_fraction=final_fraction)
    return rate if callable(rate) else optax.constant_schedule(rate)


def build(name: str, learning_rate: float | optax.Schedule, *, clip_norm: float | None = None,
          clip_value: float | None = None, **numbers: float) -> optax.GradientTransformation:
    """The optimizer ``name`` of :data:`OPTIMIZERS`, its numbers taken as checked (see :func:`make`).

    Args:
      name: a key of :data:`OPTIMIZERS`.
      learning_rate: a number or an optax schedule.
      clip_norm, clip_value: clipping put in front (see :func:`with_clipping`).
      **numbers: any of ``momentum``, ``beta_1``, ``beta_2``, ``epsilon``, ``weight_decay``;
        those the optimizer does not take are ignored, those not given keep optax's defaults.

    Raises:
      ValueError: an unknown name. TypeError: a number no optimizer of the table takes.
    """
    entry = _entry(OPTIMIZERS, name, "optimizer", " or an optax transformation")
    unknown = sorted(set(numbers) - set(NUMBERS))
    if unknown:
        raise TypeError(f"numbers: expected some of {', '.join(NUMBERS)}, got {', '.join(unknown)}")
    keywords = {key: numbers[ours] for ours, key in entry.numbers.items() if ours in numbers}
    # The numbers live in the optimizer state (optax.inject_hyperparams), not in the program:
    # every learning rate, momentum or beta compiles the same training program.
    alias = optax.inject_hyperparams(getattr(optax, entry.alias), static_args=tuple(entry.fixed))
    return _clipped(alias(learning_rate=learning_rate, **keywords, **entry.fixed), clip_norm, clip_value)


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
      name: a key of :data:`OPTIMIZERS`.
      learning_rate: a number or an optax schedule.
      momentum: for "momentum" and "nesterov".
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
    _entry(OPTIMIZERS, name, "optimizer", " or an optax transformation")
    numbers = {"momentum": momentum, "beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon,
               "weight_decay": weight_decay}
    checks.check_optimizer(learning_rate=learning_rate, clip_norm=clip_norm, clip_value=clip_value, **numbers)
    return build(name, learning_rate, clip_norm=clip_norm, clip_value=clip_value, **numbers)


def with_clipping(
    tx: optax.GradientTransformation, *, clip_norm: float | None = None, clip_value: float | None = None
) -> optax.GradientTransformation:
    """``tx`` preceded by global-norm and/or elementwise clipping (unchanged when both are None)."""
    checks.check_optimizer(clip_norm=clip_norm, clip_value=clip_value)
    return _clipped(tx, clip_norm, clip_value)


def _clipped(tx: optax.GradientTransformation, clip_norm: float | None, clip_value: float | None) -> Any:
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

    def update(self, updates: Any, state: Any, params: Any = None, **extra_args: Any) -> Any:
        """``tx``'s update, given optax's extra arguments (``value=``) when ``tx`` takes them."""
        return optax.with_extra_args_support(self.tx).update(updates, state, params, **extra_args)

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
        value = jax.ShapeDtypeStruct((), jnp.float32)  # the loss, as the training step passes it
        closed = jax.make_jaxpr(lambda g, s, p, v: update(tx, g, s, p, value=v))(shapes, state, shapes, value)
        computation = _computation(closed)  # a traced number closed over (a vmapped rate) is a tracer const
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError,
            jax.errors.UnexpectedTracerError):
        return tx
    return ByValue(tx, (*computation, str(jax.tree.structure(state))))


def _computation(closed: Any) -> tuple[str, tuple]:
    """What a closed jaxpr computes, as a hashable key: its text and the bytes of its constants
    (the numbers an optimizer closes over are constants, not part of the text)."""
    consts = tuple((np.shape(c), str(np.asarray(c).dtype), hashlib.sha256(np.asarray(c).tobytes()).hexdigest())
                   for c in closed.consts)
    return str(closed.jaxpr), consts


def update(tx: Any, grads: Any, state: Any, params: Any, *, value: Any) -> tuple[Any, Any]:
    """``(updates, new_state)`` of one step of ``tx``, which is told the step's loss ``value``.

    The loss travels by optax's extra-arguments protocol: an
    ``optax.GradientTransformationExtraArgs`` whose update takes ``value`` (such as
    ``optax.contrib.reduce_on_plateau``, alone or inside ``optax.chain``) receives it; any other
    transformation is called as ``tx.update(grads, state, params)``
    (``optax.with_extra_args_support`` drops what it does not take).

    Example:
      >>> import jax.numpy as jnp, optax
      >>> tx = optax.chain(optax.sgd(1.0), optax.contrib.reduce_on_plateau(patience=1, factor=0.5))
      >>> params = {"w": jnp.ones(2)}
      >>> state = tx.init(params)
      >>> scales = []
      >>> for _ in range(3):  # a loss that never improves: halved after each step without progress
      ...     updates, state = update(tx, params, state, params, value=jnp.float32(1.0))
      ...     scales.append(float(state[1].scale))
      >>> scales, updates["w"].tolist()
      ([1.0, 0.5, 0.25], [-0.25, -0.25])
    """
    if isinstance(tx, ByValue):  # not an optax type itself: it forwards the value to what it wraps
        return tx.update(grads, state, params, value=value)
    return optax.with_extra_args_support(tx).update(grads, state, params, value=value)


def initial_state(tx: Any, params: Any) -> Any:
    """``tx.init(params)``, as one compiled program per computation (concrete ``params`` only).

    Op by op, an optimizer's state compiled a small program per leaf shape and per injected
    number (Adam on a 3-layer network: nine in a fresh process). The program is identified, as
    :class:`ByValue` identifies ``update``, by the jaxpr of ``init`` on these shapes with the bytes
    of its constants: the numbers it writes into the state (an injected learning rate) are part
    of that text, so equal optimizers share the program and different numbers get their own.
    Traced ``params`` (under ``jax.vmap``) are initialised as they are.
    """
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(params)):
        return tx.init(params)
    try:
        closed, shapes = jax.make_jaxpr(tx.init, return_shape=True)(params)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError,
            jax.errors.UnexpectedTracerError):
        return tx.init(params)
    if not jax.tree_util.tree_leaves(shapes):  # nothing to compute (plain SGD): no program either
        return tx.init(params)
    # the state's structure too: states without leaves (optax.EmptyState) leave no trace in the jaxpr
    key = (*_computation(closed), str(jax.tree.structure(params)), str(jax.tree.structure(shapes)))
    program = _INIT_PROGRAMS.get(key)
    if program is None:
        program = _INIT_PROGRAMS[key] = jax.jit(tx.init)  # holds tx: equal keys compute alike
        while len(_INIT_PROGRAMS) > 64:
            _INIT_PROGRAMS.pop(next(iter(_INIT_PROGRAMS)))
    return program(params)


_INIT_PROGRAMS: dict = {}
