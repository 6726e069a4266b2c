"""A ``lax.cond`` that stays a branch under ``jax.vmap``.

Under ``jax.vmap`` a :func:`jax.lax.cond` whose predicate differs per member becomes a
``select``: both branches run for every member, every time. In a population
(``jax.vmap(nnjax.fit)``) that means an epoch that every member would skip is computed anyway,
and a costly check that a loop runs only on a rare event (counting the NaN entries of a
gradient) runs on every step. :func:`cond` batches differently: it looks at the predicate
over the whole batch and takes

* the true branch alone (mapped over the members) when it holds for every member,
* the false branch alone when it holds for none,
* both, then a per-member choice, only when the members disagree.

Each member's result is what ``lax.cond`` gives it, so a population equals a loop of runs;
the branch a loop skips is skipped whenever all members skip it. Nested ``vmap`` s work
level by level.

Built on ``jax.custom_batching.custom_vmap``; what a branch closes over is traced once and passed
in as an operand, so a branch may use a member's own values. Forward-mode differentiation passes
through; reverse mode (``jax.grad`` through the branch) is not supported, as for any
``custom_vmap`` function.

Example:
  >>> import jax, jax.numpy as jnp
  >>> def f(x):
  ...     return cond(x > 0, lambda v: v * 2.0, lambda v: -v, x)
  >>> jax.vmap(f)(jnp.array([1.0, -3.0, 2.0])).tolist()
  [2.0, 3.0, 4.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_batching import custom_vmap

__all__ = ["cond"]


def cond(pred: jax.Array | bool, true_fn: Callable, false_fn: Callable, *operands: Any) -> Any:
    """``lax.cond(pred, true_fn, false_fn, *operands)``, batched as a branch (see the module).

    Args:
      pred: a boolean scalar (per member under ``jax.vmap``).
      true_fn, false_fn: functions of ``operands`` returning pytrees of the same structure,
        shapes and dtypes. What they close over may be traced, and mapped by ``jax.vmap``
        (a member's learning rate inside its optimizer): it is passed to the branch as an operand.
      *operands: the branches' arguments.
    """
    if isinstance(pred, bool):
        return true_fn(*operands) if pred else false_fn(*operands)
    # Closure conversion: custom_vmap maps only explicit arguments, so every value a branch
    # closes over (a traced learning rate, a member's key) becomes one.
    true_jaxpr, shape = jax.make_jaxpr(true_fn, return_shape=True)(*operands)
    false_jaxpr = jax.make_jaxpr(false_fn)(*operands)
    out_tree = jax.tree.structure(shape)

    def evaluate(closed):
        return lambda consts, flat: jax.tree.unflatten(out_tree, jax.core.eval_jaxpr(closed.jaxpr, consts, *flat))

    on_true, on_false = evaluate(true_jaxpr), evaluate(false_jaxpr)
    flat = jax.tree.leaves(operands)
    return _branch(pred, lambda tc, fc, ops: on_true(tc, ops), lambda tc, fc, ops: on_false(fc, ops),
                   (list(true_jaxpr.consts), list(false_jaxpr.consts), flat))


def _branch(pred, true_fn: Callable, false_fn: Callable, operands: tuple) -> Any:
    """:func:`cond` of branches that close over nothing traced."""
    branch = custom_vmap(lambda p, *ops: lax.cond(p, true_fn, false_fn, *ops))
    branch.def_vmap(lambda axis_size, in_batched, p, *ops: _batched(
        true_fn, false_fn, axis_size, in_batched, p, ops))
    return branch(jnp.asarray(pred, bool), *operands)


def _batched(true_fn, false_fn, axis_size: int, in_batched: list, pred, operands: tuple):
    """The batching rule: one branch for all members when they agree, both only when they do not."""
    axes = tuple(jax.tree.map(lambda b: 0 if b else None, flags) for flags in in_batched[1:])

    def mapped(fn):
        return lambda *ops: jax.vmap(fn, in_axes=axes, axis_size=axis_size)(*ops)

    on_true, on_false = mapped(true_fn), mapped(false_fn)
    if not in_batched[0]:  # one predicate for every member: an ordinary branch of the mapped functions
        out = _branch(pred, on_true, on_false, operands)
    else:
        def pick(p, *ops):  # the members disagree: both, then each member's own
            t, f = on_true(*ops), on_false(*ops)
            return jax.tree.map(lambda a, b: jnp.where(p.reshape(p.shape + (1,) * (a.ndim - 1)), a, b), t, f)

        def some(p, *ops):
            return _branch(jnp.any(p), pick, lambda p, *ops: on_false(*ops), (p, *ops))

        out = _branch(jnp.all(pred), lambda p, *ops: on_true(*ops), some, (pred, *operands))
    return out, jax.tree.map(lambda _: True, out)
